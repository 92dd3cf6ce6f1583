package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/codec/awskms"
	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/offload/s3store"
	"github.com/payloadkit/payloadkit/samples/internal/history"
	"github.com/payloadkit/payloadkit/workflowtest"
)

const (
	// offloadBlobSize is the size of the value passed between the activities of offloadWorkflow.
	offloadBlobSize = 20 << 20
	// offloadMarker is written into the value every offloadMarkerEvery bytes, so that a stored
	// object holding plaintext would show it.
	offloadMarker      = "PAYLOADKIT-E2E-PLAINTEXT-MARKER"
	offloadMarkerEvery = 1 << 20
	// offloadMaxHistoryPayload bounds every payload the server stores.
	offloadMaxHistoryPayload = 4 << 10
)

// offloadBlob returns size bytes from a PCG seeded with seed (they do not compress), with
// offloadMarker written at every offloadMarkerEvery-byte boundary.
func offloadBlob(seed uint64, size int) []byte {
	r := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, size)
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for off := 0; off+len(offloadMarker) <= len(b); off += offloadMarkerEvery {
		copy(b[off:], offloadMarker)
	}
	return b
}

func offloadDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// offloadProduceActivity returns the large value.
func offloadProduceActivity(_ context.Context, seed uint64, size int) ([]byte, error) {
	return offloadBlob(seed, size), nil
}

// offloadDigestActivity returns the SHA-256 of the large value it receives.
func offloadDigestActivity(_ context.Context, b []byte) (string, error) {
	return offloadDigest(b), nil
}

// offloadWorkflow passes a large value from one activity to another and returns its SHA-256.
func offloadWorkflow(ctx workflow.Context, seed uint64, size int) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
	})
	var blob []byte
	if err := workflow.ExecuteActivity(ctx, "offloadProduce", seed, size).Get(ctx, &blob); err != nil {
		return "", err
	}
	var digest string
	if err := workflow.ExecuteActivity(ctx, "offloadDigest", blob).Get(ctx, &digest); err != nil {
		return "", err
	}
	return digest, nil
}

func offloadRegister(r worker.Registry) {
	r.RegisterWorkflowWithOptions(offloadWorkflow, workflow.RegisterOptions{Name: "offloadWorkflow"})
	r.RegisterActivityWithOptions(offloadProduceActivity, activity.RegisterOptions{Name: "offloadProduce"})
	r.RegisterActivityWithOptions(offloadDigestActivity, activity.RegisterOptions{Name: "offloadDigest"})
}

func offloadRandomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// offloadKMSKit builds a Kit compressing, encrypting with the awskms provider on a KMS test
// server, and offloading to store with mode.
func offloadKMSKit(t *testing.T, store offload.Store, mode offload.Mode, prefix string) *payloadkit.Kit {
	t.Helper()
	kms := workflowtest.StartKMS(t)
	provider, err := awskms.New(kms.Client(), kms.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return newKit(t, payloadkit.Options{
		Encryption: &codec.EncryptionOptions{Keys: provider},
		Offload:    &offload.Options{Store: store, Mode: mode, Prefix: prefix, Timeout: 20 * time.Second},
	})
}

// offloadObjectKey returns the object key named by a history payload: a codec claim or an SDK
// external-storage reference. ok is false for other payloads.
func offloadObjectKey(t *testing.T, p *commonpb.Payload) (key string, ok bool) {
	t.Helper()
	md := p.GetMetadata()
	switch {
	case offload.IsClaim(p):
		return string(md[offload.MetadataClaimKey]), true
	case string(md["encoding"]) == "json/protobuf" &&
		string(md["messageType"]) == string((&sdkpb.ExternalStorageReference{}).ProtoReflect().Descriptor().FullName()):
		var ref sdkpb.ExternalStorageReference
		if err := protojson.Unmarshal(p.GetData(), &ref); err != nil {
			t.Fatalf("external storage reference: %v", err)
		}
		return ref.GetClaimData()[offload.DriverClaimKey], true
	}
	return "", false
}

// offloadListKeys lists the object keys under prefix.
func offloadListKeys(t *testing.T, ctx context.Context, c *s3.Client, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("listing %s/%s: %v", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// offloadEntropy is the Shannon entropy of b in bits per byte.
func offloadEntropy(b []byte) float64 {
	var counts [256]int
	for _, c := range b {
		counts[c]++
	}
	var h float64
	for _, n := range counts {
		if n == 0 {
			continue
		}
		p := float64(n) / float64(len(b))
		h -= p * math.Log2(p)
	}
	return h
}

// offloadCheckObject fetches key and checks that it holds an encrypted payload, not the plaintext.
func offloadCheckObject(t *testing.T, ctx context.Context, c *s3.Client, bucket, key string) int {
	t.Helper()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("object %s named in history is not in MinIO: %v", key, err)
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(out.Body)
	out.Body.Close()
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	obj := buf.Bytes()
	if bytes.Contains(obj, []byte(offloadMarker)) {
		t.Errorf("object %s holds the plaintext marker", key)
	}
	if json.Valid(obj) {
		t.Errorf("object %s is valid JSON", key)
	}
	var stored commonpb.Payload
	if err := proto.Unmarshal(obj, &stored); err != nil {
		t.Fatalf("object %s is not a marshalled payload: %v", key, err)
	}
	if enc := string(stored.GetMetadata()["encoding"]); enc != codec.EncodingEncrypted {
		t.Errorf("object %s holds a payload with encoding %q, want %q", key, enc, codec.EncodingEncrypted)
	}
	if h := offloadEntropy(stored.GetData()); h < 7.99 {
		t.Errorf("object %s: ciphertext entropy %.4f bits/byte, want >= 7.99", key, h)
	}
	return len(obj)
}

// TestOffloadLargeValueThroughS3 passes a 20 MiB value between two activities with compression,
// KMS encryption and offload to MinIO, once per offload mode, and checks the history and the
// stored objects.
func TestOffloadLargeValueThroughS3(t *testing.T) {
	s3c, bucket := workflowtest.S3(t)
	for _, mode := range []offload.Mode{offload.ModeCodec, offload.ModeExternalStorage} {
		t.Run(string(mode), func(t *testing.T) {
			prefix := "e2e-offload-" + offloadRandomHex(t, 6)
			store, err := s3store.New(s3c, bucket, nil)
			if err != nil {
				t.Fatal(err)
			}
			kit := offloadKMSKit(t, store, mode, prefix)
			s := startServer(t, kit)
			queue := "offload-" + string(mode)
			s.worker(queue, offloadRegister)

			ctx := testContext(t, 3*time.Minute)
			const seed = 20260611
			want := offloadDigest(offloadBlob(seed, offloadBlobSize))
			workflowID := "offload-" + offloadRandomHex(t, 6)
			run, err := s.GetDefaultClient().ExecuteWorkflow(ctx,
				client.StartWorkflowOptions{ID: workflowID, TaskQueue: queue}, "offloadWorkflow", seed, offloadBlobSize)
			if err != nil {
				t.Fatal(err)
			}
			var got string
			if err := run.Get(ctx, &got); err != nil {
				t.Fatalf("workflow: %v", err)
			}
			if got != want {
				t.Fatalf("digest = %s, want %s", got, want)
			}

			payloads := s.historyPayloads(t, run)
			keys := map[string]bool{}
			total, largest := 0, 0
			for _, p := range payloads {
				total += p.Size()
				largest = max(largest, p.Size())
				if p.Size() > offloadMaxHistoryPayload {
					t.Errorf("event %d %s %s: payload of %d bytes in history (encoding %q), want <= %d",
						p.EventID, p.EventType, p.Field, p.Size(), p.Encoding(), offloadMaxHistoryPayload)
				}
				if key, ok := offloadObjectKey(t, p.Payload); ok {
					keys[key] = true
				}
			}
			// The first activity's result and the second activity's input are offloaded. In
			// codec mode they are one object: the value is the same, in the same namespace,
			// under the same data key, so its envelope and key are the same too.
			wantKeys := 2
			if mode == offload.ModeCodec {
				wantKeys = 1
			}
			if len(keys) != wantKeys {
				t.Fatalf("history names %d stored objects, want %d: %v", len(keys), wantKeys, keys)
			}
			objectBytes := 0
			for key := range keys {
				objectBytes += offloadCheckObject(t, ctx, s3c, bucket, key)
			}

			listPrefix := prefix + "/"
			if mode == offload.ModeExternalStorage {
				listPrefix = "v0/ns/" + s.GetDefaultNamespace() + "/wt/offloadWorkflow/wi/" + workflowID + "/"
			}
			listed := offloadListKeys(t, ctx, s3c, bucket, listPrefix)
			for key := range keys {
				if !strings.HasPrefix(key, listPrefix) {
					t.Errorf("object key %s does not start with %s", key, listPrefix)
				}
			}
			// Each run of a workflow task that schedules the second activity stores its
			// input once; a replay of that task (rare) may store it again under a new key.
			if len(listed) < len(keys) || len(listed) > len(keys)+2 {
				t.Errorf("MinIO holds %d objects under %s, want %d (up to 2 more from replays): %v", len(listed), listPrefix, len(keys), listed)
			}
			t.Logf("mode %s: %d history payloads, %d bytes in all, largest %d; %d objects in MinIO (%d bytes for the %d named in history)",
				mode, len(payloads), total, largest, len(listed), objectBytes, len(keys))
		})
	}
}

// offloadRecordingStore is an s3store.Store that reports the errors of Stat, Exists, Put and
// PutParts (the codec calls Stat and PutParts, which the S3 store implements).
type offloadRecordingStore struct {
	*s3store.Store
	onError func(error)
}

func (s *offloadRecordingStore) Stat(ctx context.Context, key string) (offload.ObjectInfo, error) {
	info, err := s.Store.Stat(ctx, key)
	if err != nil && !errors.Is(err, offload.ErrNotFound) {
		s.onError(err)
	}
	return info, err
}

func (s *offloadRecordingStore) PutParts(ctx context.Context, key string, parts [][]byte, sum [sha256.Size]byte) error {
	err := s.Store.PutParts(ctx, key, parts, sum)
	if err != nil {
		s.onError(err)
	}
	return err
}

func (s *offloadRecordingStore) Exists(ctx context.Context, key string) (bool, error) {
	ok, err := s.Store.Exists(ctx, key)
	if err != nil {
		s.onError(err)
	}
	return ok, err
}

func (s *offloadRecordingStore) Put(ctx context.Context, key string, data []byte) error {
	err := s.Store.Put(ctx, key, data)
	if err != nil {
		s.onError(err)
	}
	return err
}

// TestOffloadStoreOutageRetries stops MinIO while an activity returns a large value: encoding its
// result fails with a retryable offload error, the activity is retried, and once MinIO is back
// the workflow completes with the right result.
func TestOffloadStoreOutageRetries(t *testing.T) {
	m := workflowtest.StartMinIO(t)
	store, err := s3store.New(m.Client(), m.Bucket(), nil)
	if err != nil {
		t.Fatal(err)
	}
	keyring := staticKeyring(t, "k1")

	var (
		mu          sync.Mutex
		storeErrors []error
	)
	failed := make(chan struct{})
	var failedOnce sync.Once
	recording := &offloadRecordingStore{Store: store, onError: func(err error) {
		mu.Lock()
		storeErrors = append(storeErrors, err)
		mu.Unlock()
		failedOnce.Do(func() { close(failed) })
	}}
	kit := newKit(t, payloadkit.Options{
		Encryption: &codec.EncryptionOptions{Keys: keyring},
		Offload:    &offload.Options{Store: recording, Threshold: 4 << 10, Timeout: 5 * time.Second},
	})

	s := startServer(t, kit)
	var attempts atomic.Int32
	stopped := make(chan struct{})
	running := make(chan struct{})
	const size = 256 << 10
	const seed = 7
	s.worker("offload-outage", func(r worker.Registry) {
		r.RegisterWorkflowWithOptions(func(ctx workflow.Context) (string, error) {
			ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
				StartToCloseTimeout: time.Minute,
				// Attempts fail fast while MinIO is down: allow enough of them for a slow restart.
				RetryPolicy: &temporal.RetryPolicy{InitialInterval: 500 * time.Millisecond, BackoffCoefficient: 1, MaximumAttempts: 120},
			})
			var blob []byte
			if err := workflow.ExecuteActivity(ctx, "offloadOutageProduce").Get(ctx, &blob); err != nil {
				return "", err
			}
			return offloadDigest(blob), nil
		}, workflow.RegisterOptions{Name: "offloadOutageWorkflow"})
		r.RegisterActivityWithOptions(func(ctx context.Context) ([]byte, error) {
			if attempts.Add(1) == 1 {
				close(running)
				select {
				case <-stopped:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			return offloadBlob(seed, size), nil
		}, activity.RegisterOptions{Name: "offloadOutageProduce"})
	})

	ctx := testContext(t, 2*time.Minute)
	run, err := s.GetDefaultClient().ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "offload-outage"}, "offloadOutageWorkflow")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-running:
	case <-ctx.Done():
		t.Fatal("the activity did not start")
	}
	m.Stop()
	close(stopped)
	select {
	case <-failed:
	case <-ctx.Done():
		t.Fatal("no store call failed while MinIO was stopped")
	}
	m.Start()

	var got string
	if err := run.Get(ctx, &got); err != nil {
		t.Fatalf("workflow: %v", err)
	}
	if want := offloadDigest(offloadBlob(seed, size)); got != want {
		t.Fatalf("digest = %s, want %s", got, want)
	}
	mu.Lock()
	firstErr := storeErrors[0]
	mu.Unlock()
	if !errors.Is(firstErr, offload.ErrRetryable) {
		t.Errorf("store error while MinIO was down is not retryable: %v", firstErr)
	}
	var oerr *offload.Error
	if !errors.As(firstErr, &oerr) || oerr.Key == "" {
		t.Errorf("store error does not name the object key: %v", firstErr)
	}
	if n := attempts.Load(); n < 2 {
		t.Errorf("activity ran %d times, want a retry", n)
	}

	// The completed attempt's start event records the failure of the attempt before it.
	events, err := history.Events(ctx, s.GetDefaultClient(), run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	var started bool
	for _, ev := range events {
		if ev.GetEventType() != enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED {
			continue
		}
		started = true
		a := ev.GetActivityTaskStartedEventAttributes()
		if a.GetAttempt() < 2 {
			t.Errorf("activity completed on attempt %d, want >= 2", a.GetAttempt())
		}
		lf := a.GetLastFailure()
		if lf == nil {
			t.Fatal("activity start event has no last failure")
		}
		cause := kit.FailureConverter().FailureToError(lf)
		if !strings.Contains(cause.Error(), "offload") || !strings.Contains(cause.Error(), "retryable") {
			t.Errorf("last failure %q does not describe the retryable offload error", cause)
		}
		if strings.Contains(lf.GetMessage(), "offload") {
			t.Errorf("history shows the failure message in plain text: %q", lf.GetMessage())
		}
		t.Logf("attempt %d; failure of the previous attempt, decoded: %v", a.GetAttempt(), cause)
	}
	if !started {
		t.Fatal("no activity start event in history")
	}
	// The retried result, and (the Kit writes envelope v2 with S3) its data key's key object.
	keys := offloadListKeys(t, ctx, m.Client(), m.Bucket(), "")
	var payloadObjects, keyObjects int
	for _, k := range keys {
		if strings.HasPrefix(k, offload.DefaultPrefix+"/keys/") {
			keyObjects++
		} else {
			payloadObjects++
		}
	}
	if payloadObjects != 1 || keyObjects != 1 {
		t.Errorf("MinIO holds %d payload objects and %d key objects, want 1 (the retried result) and 1: %v", payloadObjects, keyObjects, keys)
	}
	mu.Lock()
	t.Logf("%d activity attempts, %d failed store calls, %d objects; first store error: %v", attempts.Load(), len(storeErrors), len(keys), storeErrors[0])
	mu.Unlock()
}
