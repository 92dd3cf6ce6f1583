package e2e

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/codec/awskms"
	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/offload/s3store"
	"github.com/payloadkit/payloadkit/workflowtest"
)

const (
	// dedupeDocSize is the size of the document of dedupeWorkflow (it does not compress).
	dedupeDocSize = 1 << 20
	// dedupeLateTimeout is the StartToCloseTimeout of the produce activity, whose first attempt
	// returns after it.
	dedupeLateTimeout = 2 * time.Second
)

// dedupeLateProduceActivity returns the document. Its first attempt returns after its
// StartToCloseTimeout: the worker encodes (and offloads) the result, then drops it because the
// deadline passed, and the server retries the activity, which offloads the same result again.
func dedupeLateProduceActivity(ctx context.Context, seed uint64, size int) ([]byte, error) {
	if activity.GetInfo(ctx).Attempt == 1 {
		time.Sleep(dedupeLateTimeout + time.Second)
	}
	return offloadBlob(seed, size), nil
}

// dedupeWorkflow gets the document from a retried activity, then passes it to two activities
// at once, and returns their digests.
func dedupeWorkflow(ctx workflow.Context, seed uint64, size int) ([]string, error) {
	produceCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: dedupeLateTimeout,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, MaximumAttempts: 3},
	})
	var doc []byte
	if err := workflow.ExecuteActivity(produceCtx, "dedupeLateProduce", seed, size).Get(ctx, &doc); err != nil {
		return nil, err
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	a := workflow.ExecuteActivity(ctx, "offloadDigest", doc)
	b := workflow.ExecuteActivity(ctx, "offloadDigest", doc)
	digests := make([]string, 2)
	for i, f := range []workflow.Future{a, b} {
		if err := f.Get(ctx, &digests[i]); err != nil {
			return nil, err
		}
	}
	return digests, nil
}

// TestOffloadDedupeWithEncryption runs, with compression, KMS encryption and offload to MinIO
// on the in-process server, a workflow whose 1 MiB document is the result of an activity
// retried after its result was offloaded, then the input of two activities. MinIO holds one
// object, written by one PUT; every other encode found it and skipped the PUT.
func TestOffloadDedupeWithEncryption(t *testing.T) {
	s3c, bucket := workflowtest.S3(t)
	prefix := "e2e-dedupe-" + offloadRandomHex(t, 6)
	store, err := s3store.New(s3c, bucket, nil)
	if err != nil {
		t.Fatal(err)
	}
	kms := workflowtest.StartKMS(t)
	provider, err := awskms.New(kms.Client(), kms.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	var puts, deduplicated atomic.Int64
	kit := newKit(t, payloadkit.Options{
		Encryption: &codec.EncryptionOptions{Keys: provider},
		Offload: &offload.Options{Store: store, Prefix: prefix, OnObject: func(e offload.ObjectEvent) {
			switch {
			case e.Err != nil:
				t.Errorf("store %s of %s: %v", e.Operation, e.Key, e.Err)
			case e.Operation == offload.OpPut:
				puts.Add(1)
			case e.Operation == offload.OpDeduplicated:
				deduplicated.Add(1)
			}
		}},
	})
	s := startServer(t, kit)
	s.worker("dedupe", func(r worker.Registry) {
		r.RegisterWorkflowWithOptions(dedupeWorkflow, workflow.RegisterOptions{Name: "dedupeWorkflow"})
		r.RegisterActivityWithOptions(dedupeLateProduceActivity, activity.RegisterOptions{Name: "dedupeLateProduce"})
		r.RegisterActivityWithOptions(offloadDigestActivity, activity.RegisterOptions{Name: "offloadDigest"})
	})

	ctx := testContext(t, 2*time.Minute)
	const seed = 20261202
	want := offloadDigest(offloadBlob(seed, dedupeDocSize))
	run, err := s.GetDefaultClient().ExecuteWorkflow(ctx,
		client.StartWorkflowOptions{ID: "dedupe-" + offloadRandomHex(t, 6), TaskQueue: "dedupe"}, "dedupeWorkflow", seed, dedupeDocSize)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := run.Get(ctx, &got); err != nil {
		t.Fatalf("workflow: %v", err)
	}
	if len(got) != 2 || got[0] != want || got[1] != want {
		t.Fatalf("digests %v, want %s twice", got, want)
	}

	// The produce activity ran twice: its first result was dropped after it was offloaded.
	var produceAttempt int32
	iter := s.GetDefaultClient().GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && produceAttempt == 0 {
			produceAttempt = a.GetAttempt()
		}
	}
	if produceAttempt != 2 {
		t.Fatalf("the produce activity completed on attempt %d, want 2", produceAttempt)
	}
	keys := map[string]int{}
	for _, p := range s.historyPayloads(t, run) {
		if key, ok := offloadObjectKey(t, p.Payload); ok {
			keys[key]++
		}
	}
	// The history names the one object three times: the activity's result and two inputs.
	if len(keys) != 1 {
		t.Fatalf("history names %d objects, want 1: %v", len(keys), keys)
	}
	for key, n := range keys {
		if n != 3 {
			t.Errorf("history names %s %d times, want 3 (one result, two inputs)", key, n)
		}
		offloadCheckObject(t, ctx, s3c, bucket, key)
	}
	// One payload object under the namespace; with S3 the Kit writes envelope v2, whose one
	// data key has one key object next to it.
	listed := offloadListKeys(t, ctx, s3c, bucket, prefix+"/"+s.GetDefaultNamespace()+"/")
	if len(listed) != 1 {
		t.Fatalf("MinIO holds %d payload objects under %s, want 1: %v", len(listed), prefix, listed)
	}
	if keyObjects := offloadListKeys(t, ctx, s3c, bucket, prefix+"/keys/"); len(keyObjects) != 1 {
		t.Fatalf("MinIO holds %d key objects, want 1: %v", len(keyObjects), keyObjects)
	}
	// Encodes: the dropped result (the PUT), the retried result, two inputs; replays may add
	// more, all deduplicated.
	if puts.Load() != 1 || deduplicated.Load() < 3 {
		t.Fatalf("%d PUTs and %d deduplicated encodes, want 1 and at least 3", puts.Load(), deduplicated.Load())
	}
	t.Logf("1 MiB document encoded %d times: %d object in MinIO, %d PUT, %d deduplicated",
		puts.Load()+deduplicated.Load(), len(listed), puts.Load(), deduplicated.Load())
}
