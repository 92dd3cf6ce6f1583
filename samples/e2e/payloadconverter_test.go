package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/codecserver"
	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/samples/internal/history"
)

// pcEncodingJSON is the encoding of pcJSON, a team's own JSON payload converter.
const pcEncodingJSON = "json/custom"

// pcSecret is written into every value the workflow passes: no stored payload may show it.
const pcSecret = "PAYLOADKIT-E2E-CONVERTER-SECRET"

// pcJSON is a payload converter of a team's own: JSON under its own encoding name.
type pcJSON struct{}

func (pcJSON) Encoding() string { return pcEncodingJSON }

func (pcJSON) ToPayload(v any) (*commonpb.Payload, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pcEncodingJSON, err)
	}
	return &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(pcEncodingJSON)}, Data: b}, nil
}

func (pcJSON) FromPayload(p *commonpb.Payload, valuePtr any) error {
	return json.Unmarshal(p.GetData(), valuePtr)
}

func (pcJSON) ToString(p *commonpb.Payload) string { return string(p.GetData()) }

// pcConverter is the composite payload converter under test: protobuf binary first, then pcJSON.
func pcConverter() converter.DataConverter {
	return converter.NewCompositeDataConverter(converter.NewProtoPayloadConverter(), pcJSON{})
}

// pcDoc is the custom-JSON value passed through pcWorkflow.
type pcDoc struct {
	ID   string `json:"id"`
	Text string `json:"text"`
	Tag  string `json:"tag,omitempty"`
}

// pcMergeActivity returns doc with msg's value as its text: a large custom-JSON result.
func pcMergeActivity(_ context.Context, msg *wrapperspb.StringValue, doc pcDoc) (pcDoc, error) {
	doc.Text = msg.GetValue()
	return doc, nil
}

// pcTagActivity returns a small proto result naming doc.
func pcTagActivity(_ context.Context, doc pcDoc) (*commonpb.WorkflowType, error) {
	return &commonpb.WorkflowType{Name: "tagged " + doc.ID + " " + pcSecret}, nil
}

// pcWorkflow passes a proto message and a custom-JSON value through two activities.
func pcWorkflow(ctx workflow.Context, msg *wrapperspb.StringValue, doc pcDoc) (pcDoc, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	var merged pcDoc
	if err := workflow.ExecuteActivity(ctx, "pcMerge", msg, doc).Get(ctx, &merged); err != nil {
		return pcDoc{}, err
	}
	var tag *commonpb.WorkflowType
	if err := workflow.ExecuteActivity(ctx, "pcTag", merged).Get(ctx, &tag); err != nil {
		return pcDoc{}, err
	}
	merged.Tag = tag.GetName()
	return merged, nil
}

// TestOwnPayloadConverterOnServer runs a workflow on the in-process server with a Kit whose
// payload converter is a composite of protobuf binary and a custom JSON converter, under
// compression, encryption (static keyring) and offload (memory store, 1 KiB threshold). The
// result round trips; history holds only encrypted payloads and claims (besides the tracing
// header) and no plaintext; and the Codec Server built from the Kit decodes every stored
// payload back to binary/protobuf or json/custom, which the converter reads as the values the
// workflow passed.
func TestOwnPayloadConverterOnServer(t *testing.T) {
	store := offload.NewMemoryStore()
	kit := newKit(t, payloadkit.Options{
		PayloadConverter: pcConverter(),
		Encryption:       &codec.EncryptionOptions{Keys: staticKeyring(t, "k1"), RequireEncryption: true},
		Offload:          &offload.Options{Store: store, Threshold: 1024},
	})
	s := startServer(t, kit)
	s.worker("payload-converter", func(r worker.Registry) {
		r.RegisterWorkflowWithOptions(pcWorkflow, workflow.RegisterOptions{Name: "pcWorkflow"})
		r.RegisterActivityWithOptions(pcMergeActivity, activity.RegisterOptions{Name: "pcMerge"})
		r.RegisterActivityWithOptions(pcTagActivity, activity.RegisterOptions{Name: "pcTag"})
	})

	// About 16 KB of hex compresses to about 8 KB: above the threshold, so offloaded.
	r := mrand.New(mrand.NewPCG(11, 12))
	noise := make([]byte, 8<<10)
	for i := range noise {
		noise[i] = byte(r.Uint32())
	}
	msg := wrapperspb.String(pcSecret + " " + hex.EncodeToString(noise))
	doc := pcDoc{ID: "doc-1", Text: pcSecret}

	ctx := testContext(t, 2*time.Minute)
	run, err := s.GetDefaultClient().ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "payload-converter"}, "pcWorkflow", msg, doc)
	if err != nil {
		t.Fatal(err)
	}
	var got pcDoc
	if err := run.Get(ctx, &got); err != nil {
		t.Fatalf("workflow: %v", err)
	}
	want := pcDoc{ID: doc.ID, Text: msg.GetValue(), Tag: "tagged " + doc.ID + " " + pcSecret}
	if got != want {
		t.Fatalf("result = {%s, %d bytes of text, %s}, want {%s, %d bytes, %s}", got.ID, len(got.Text), got.Tag, want.ID, len(want.Text), want.Tag)
	}

	// What the server stores: encrypted payloads and claims, never the secret.
	var stored []*commonpb.Payload
	var storedFrom []history.Payload
	claims, encrypted := 0, 0
	for _, p := range s.historyPayloads(t, run) {
		if bytes.Contains(p.Payload.GetData(), []byte(pcSecret)) {
			t.Errorf("event %d %s: payload holds plaintext", p.EventID, p.Field)
		}
		if strings.Contains(p.Field, ".header.fields[") {
			kmsCheckHeader(t, p.Field, p.Encoding(), p.Payload.GetData())
			continue
		}
		switch {
		case offload.IsClaim(p.Payload):
			claims++
		case p.Encoding() == codec.EncodingEncrypted:
			encrypted++
		default:
			t.Errorf("event %d %s: encoding %q, want %q or a claim", p.EventID, p.Field, p.Encoding(), codec.EncodingEncrypted)
			continue
		}
		stored = append(stored, p.Payload)
		storedFrom = append(storedFrom, p)
	}
	// Claims: the workflow input and the first activity's input (the proto), that activity's
	// result, the second activity's input and the workflow result (the merged document).
	if claims < 5 || encrypted < 3 {
		t.Errorf("history holds %d claims and %d encrypted payloads, want at least 5 and 3", claims, encrypted)
	}
	for _, key := range store.Keys() {
		obj, err := store.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(obj, []byte(pcSecret)) {
			t.Errorf("stored object %s holds plaintext", key)
		}
	}

	// The Codec Server built from the Kit decodes what history holds back to the converter's
	// own encodings.
	ns := s.GetDefaultNamespace()
	h, err := codecserver.New(codecserver.Config{Namespaces: codecserver.FromKit(kit, ns), Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	remote := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint: srv.URL,
		ModifyRequest: func(r *http.Request) error {
			r.Header.Set(codecserver.NamespaceHeader, ns)
			return nil
		},
	})
	decoded, err := remote.Decode(stored)
	if err != nil {
		t.Fatalf("Codec Server decode: %v", err)
	}
	seen := map[string]int{}
	events := map[enumspb.EventType][]*commonpb.Payload{}
	for i, p := range decoded {
		from := storedFrom[i]
		enc := string(p.GetMetadata()[converter.MetadataEncoding])
		seen[enc]++
		if enc != "binary/protobuf" && enc != pcEncodingJSON {
			t.Errorf("event %d %s: decoded encoding %q, want binary/protobuf or %s", from.EventID, from.Field, enc, pcEncodingJSON)
		}
		events[from.EventType] = append(events[from.EventType], p)
	}
	t.Logf("history: %d claims, %d encrypted payloads; decoded by the Codec Server: %v", claims, encrypted, seen)
	if seen["binary/protobuf"] == 0 || seen[pcEncodingJSON] == 0 {
		t.Errorf("decoded encodings %v, want both binary/protobuf and %s", seen, pcEncodingJSON)
	}

	// The decoded workflow input and result read back as the values passed.
	pc := pcConverter()
	var inMsg *wrapperspb.StringValue
	var inDoc, outDoc pcDoc
	if err := pc.FromPayloads(&commonpb.Payloads{Payloads: events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED]}, &inMsg, &inDoc); err != nil {
		t.Fatalf("decoded workflow input: %v", err)
	}
	if !proto.Equal(inMsg, msg) || inDoc != doc {
		t.Errorf("decoded workflow input differs from the one passed (doc %+v)", inDoc)
	}
	if err := pc.FromPayloads(&commonpb.Payloads{Payloads: events[enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED]}, &outDoc); err != nil {
		t.Fatalf("decoded workflow result: %v", err)
	}
	if outDoc != want {
		t.Errorf("decoded workflow result differs from the result (id %s, tag %s)", outDoc.ID, outDoc.Tag)
	}
}
