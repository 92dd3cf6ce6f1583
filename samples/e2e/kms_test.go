package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/codec/awskms"
	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/workflowtest"
)

// kmsOrder is the value passed through every step of kmsWorkflow.
type kmsOrder struct {
	ID    string
	Email string
	Steps []string
}

// kmsStepActivity records that step ran on the order.
func kmsStepActivity(_ context.Context, o kmsOrder, step string) (kmsOrder, error) {
	o.Steps = append(o.Steps, step)
	return o, nil
}

// kmsSteps are the activities kmsWorkflow runs, in order.
var kmsSteps = []string{"validate", "reserve", "charge", "ship", "notify"}

// kmsWorkflow runs one activity per step of kmsSteps, passing the order along.
func kmsWorkflow(ctx workflow.Context, o kmsOrder) (kmsOrder, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	for _, step := range kmsSteps {
		if err := workflow.ExecuteActivity(ctx, "kmsStep", o, step).Get(ctx, &o); err != nil {
			return kmsOrder{}, err
		}
	}
	return o, nil
}

// kmsRequest is one KMS request seen on the wire.
type kmsRequest struct {
	Operation         string
	EncryptionContext map[string]string
}

// kmsRecorder is an HTTP client recording the operation and EncryptionContext of every KMS request.
type kmsRecorder struct {
	next interface {
		Do(*http.Request) (*http.Response, error)
	}
	mu       sync.Mutex
	requests []kmsRequest
}

func (r *kmsRecorder) Do(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body.Close()
	req.Body = io.NopCloser(bytes.NewReader(body))
	var in struct {
		EncryptionContext map[string]string
	}
	_ = json.Unmarshal(body, &in)
	r.mu.Lock()
	r.requests = append(r.requests, kmsRequest{
		Operation:         strings.TrimPrefix(req.Header.Get("X-Amz-Target"), "TrentService."),
		EncryptionContext: in.EncryptionContext,
	})
	r.mu.Unlock()
	return r.next.Do(req)
}

func (r *kmsRecorder) seen(operation string) []kmsRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []kmsRequest
	for _, q := range r.requests {
		if q.Operation == operation {
			out = append(out, q)
		}
	}
	return out
}

// kmsKit returns a Kit encrypting with the awskms provider on server under keyID, its KMS
// requests recorded by rec.
func kmsKit(t *testing.T, server *workflowtest.KMS, keyID string, rec *kmsRecorder) *payloadkit.Kit {
	t.Helper()
	client := server.Client(func(o *kms.Options) {
		rec.next = o.HTTPClient
		o.HTTPClient = rec
	})
	provider, err := awskms.New(client, keyID)
	if err != nil {
		t.Fatal(err)
	}
	return newKit(t, payloadkit.Options{Encryption: &codec.EncryptionOptions{Keys: provider}})
}

// TestKMSDataKeysCachedAcrossRun runs a five-activity workflow with payloads encrypted under a
// key of the KMS test server and checks the KMS call counts, the encryption context sent to KMS,
// and that every payload the server stores is encrypted.
func TestKMSDataKeysCachedAcrossRun(t *testing.T) {
	server := workflowtest.StartKMS(t)
	keyID := server.NewKey()
	rec := &kmsRecorder{}
	kit := kmsKit(t, server, keyID, rec)
	s := startServer(t, kit)
	s.worker("kms", func(r worker.Registry) {
		r.RegisterWorkflowWithOptions(kmsWorkflow, workflow.RegisterOptions{Name: "kmsWorkflow"})
		r.RegisterActivityWithOptions(kmsStepActivity, activity.RegisterOptions{Name: "kmsStep"})
	})

	ctx := testContext(t, time.Minute)
	in := kmsOrder{ID: "order-1", Email: "kms.customer@example.com"}
	run, err := s.GetDefaultClient().ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "kms"}, "kmsWorkflow", in)
	if err != nil {
		t.Fatal(err)
	}
	var out kmsOrder
	if err := run.Get(ctx, &out); err != nil {
		t.Fatalf("workflow: %v", err)
	}
	if got, want := strings.Join(out.Steps, ","), strings.Join(kmsSteps, ","); got != want || out.Email != in.Email {
		t.Fatalf("result = %+v, want steps %s and email %s", out, want, in.Email)
	}

	payloads := s.historyPayloads(t, run)
	generate, decrypt := server.Calls(workflowtest.KMSGenerateDataKey), server.Calls(workflowtest.KMSDecrypt)
	// Client and worker share one Kit: one data key per encryption context serves the whole
	// run, and the keys it generated decrypt without a Decrypt call. (The client's payload-size
	// check measures the workflow input without a serialization context, which can cost one
	// more data key, under an empty context; it never reaches history, as checked below.)
	if generate < 1 || generate > 2 {
		t.Errorf("GenerateDataKey calls = %d for %d payloads, want 1 or 2", generate, len(payloads))
	}
	if decrypt > 2 {
		t.Errorf("Decrypt calls = %d for %d payloads, want at most 2", decrypt, len(payloads))
	}
	if got := len(rec.seen(workflowtest.KMSGenerateDataKey)); got != generate {
		t.Errorf("recorder saw %d GenerateDataKey requests, the server %d", got, generate)
	}

	// The namespace reached KMS as encryption context of the data key that encrypted the history.
	ns := s.GetDefaultNamespace()
	withNamespace := 0
	for _, q := range rec.seen(workflowtest.KMSGenerateDataKey) {
		if q.EncryptionContext[codec.ContextKeyNamespace] == ns {
			withNamespace++
		} else {
			t.Logf("GenerateDataKey without the namespace in its EncryptionContext: %v", q.EncryptionContext)
		}
	}
	if withNamespace == 0 {
		t.Errorf("no GenerateDataKey request carried %s=%s", codec.ContextKeyNamespace, ns)
	}

	// Every payload the server stores is encrypted; headers carry only the tracing context.
	encrypted := 0
	dataKeys := map[string]bool{}
	for _, p := range payloads {
		if strings.Contains(p.Field, ".header.fields[") {
			kmsCheckHeader(t, p.Field, p.Encoding(), p.Payload.GetData())
			continue
		}
		switch enc := p.Encoding(); enc {
		case codec.EncodingEncrypted:
			encrypted++
			env, err := codec.ReadEnvelope(p.Payload)
			if err != nil {
				t.Errorf("event %d %s: %v", p.EventID, p.Field, err)
			} else {
				dataKeys[string(env.EncryptedDataKey)] = true
				if env.Context[codec.ContextKeyNamespace] != ns {
					t.Errorf("event %d %s: envelope encryption context %v, want %s=%s", p.EventID, p.Field, env.Context, codec.ContextKeyNamespace, ns)
				}
			}
			if bytes.Contains(p.Payload.GetData(), []byte(in.Email)) {
				t.Errorf("event %d %s: encrypted payload holds the email in plain text", p.EventID, p.Field)
			}
			if got := string(p.Payload.GetMetadata()[codec.MetadataEncryptionKeyID]); got != keyID {
				t.Errorf("event %d %s: key id %q, want the key %s", p.EventID, p.Field, got, keyID)
			}
		case offload.EncodingClaimCheck:
		default:
			t.Errorf("event %d %s %s: payload with encoding %q in history, want %q", p.EventID, p.EventType, p.Field, enc, codec.EncodingEncrypted)
		}
	}
	// Workflow input and result, and each activity's input and result.
	if want := 2 + 2*len(kmsSteps); encrypted < want {
		t.Errorf("%d encrypted payloads in history, want at least %d", encrypted, want)
	}

	// One data key encrypted the whole history.
	if len(dataKeys) != 1 {
		t.Errorf("history payloads are encrypted under %d data keys, want 1", len(dataKeys))
	}

	// Another process (its own Kit, cold caches) reads the result: one Decrypt for its data key.
	coldRec := &kmsRecorder{}
	cold := s.NewClientWithOptions(kmsKit(t, server, keyID, coldRec).ClientOptions(client.Options{}))
	var again kmsOrder
	if err := cold.GetWorkflow(ctx, run.GetID(), run.GetRunID()).Get(ctx, &again); err != nil {
		t.Fatalf("reading the result with a second Kit: %v", err)
	}
	if again.ID != in.ID || len(again.Steps) != len(kmsSteps) {
		t.Errorf("second Kit read %+v", again)
	}
	coldDecrypts := coldRec.seen(workflowtest.KMSDecrypt)
	if len(coldDecrypts) != 1 {
		t.Errorf("second Kit made %d Decrypt calls to read one result, want 1", len(coldDecrypts))
	}
	for _, q := range coldDecrypts {
		if q.EncryptionContext[codec.ContextKeyNamespace] != ns {
			t.Errorf("Decrypt EncryptionContext = %v, want %s=%s", q.EncryptionContext, codec.ContextKeyNamespace, ns)
		}
	}
	t.Logf("%d history payloads (%d encrypted); run: %d GenerateDataKey, %d Decrypt; second Kit: %d Decrypt; context %v",
		len(payloads), encrypted, generate, decrypt, len(coldDecrypts), kmsContexts(rec.seen(workflowtest.KMSGenerateDataKey)))
}

// kmsCheckHeader checks a header payload: only the SDK tracing header may stay unencrypted, and
// it holds nothing but W3C trace context.
func kmsCheckHeader(t *testing.T, field, encoding string, data []byte) {
	t.Helper()
	if encoding == codec.EncodingEncrypted {
		return
	}
	if !strings.HasSuffix(field, "[_tracer-data]") {
		t.Errorf("%s: header payload with encoding %q, want %q", field, encoding, codec.EncodingEncrypted)
		return
	}
	var carrier map[string]string
	if err := json.Unmarshal(data, &carrier); err != nil {
		t.Errorf("%s: tracing header is not a JSON map: %v", field, err)
		return
	}
	for k := range carrier {
		switch k {
		case "traceparent", "tracestate", "baggage":
		default:
			t.Errorf("%s: tracing header carries %q", field, k)
		}
	}
}

func kmsContexts(reqs []kmsRequest) string {
	var parts []string
	for _, q := range reqs {
		parts = append(parts, fmt.Sprint(q.EncryptionContext))
	}
	return strings.Join(parts, " ")
}
