package e2e

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
)

// hardeningBomb is a compressed payload of a few hundred bytes that decodes to size bytes.
func hardeningBomb(t *testing.T, size int) *commonpb.Payload {
	t.Helper()
	c, err := codec.NewCompressionCodec(&codec.CompressionOptions{Algorithm: codec.S2})
	if err != nil {
		t.Fatal(err)
	}
	p, err := converter.GetDefaultDataConverter().ToPayload(strings.Repeat("a", size))
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

// hardeningWorkflow is started with bomb payloads: the worker decodes all of its input
// payloads, as one batch, before it matches them to the parameters.
func hardeningWorkflow(_ workflow.Context, s string) (int, error) { return len(s), nil }

func hardeningEcho(_ workflow.Context, s string) (string, error) { return s, nil }

// heapPeak samples the heap in use until stop is called and returns the peak.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// TestBombPayloadsFailTheWorkflowOnly is finding 1 of the security review on a real worker: a
// workflow started, through a client without codecs, with 16 payloads of 60 bytes that decode
// to 60 MiB each (960 MiB in all) fails with an error naming the decode budget (the Go SDK fails
// a workflow whose input cannot be decoded), while the worker stays up with bounded heap and
// keeps completing other workflows.
func TestBombPayloadsFailTheWorkflowOnly(t *testing.T) {
	kit := newKit(t, payloadkit.Options{})
	s := startServer(t, kit)
	const queue = "hardening-bombs"
	s.worker(queue, func(r worker.Registry) {
		r.RegisterWorkflowWithOptions(hardeningWorkflow, workflow.RegisterOptions{Name: "hardeningWorkflow"})
		r.RegisterWorkflowWithOptions(hardeningEcho, workflow.RegisterOptions{Name: "hardeningEcho"})
	})
	ctx := testContext(t, 3*time.Minute)

	// A client with the SDK's default converter sends the bombs as they are.
	raw, err := client.NewClientFromExisting(s.GetDefaultClient(), client.Options{Namespace: s.GetDefaultNamespace(), DataConverter: converter.GetDefaultDataConverter()})
	if err != nil {
		t.Fatal(err)
	}
	bomb := hardeningBomb(t, 60<<20)
	t.Logf("one bomb: %d bytes on the wire, 60 MiB decoded", len(bomb.Data))
	// The payloads are stored as the workflow's input exactly as sent.
	args := make([]any, 16)
	for i := range args {
		args[i] = converter.NewRawValue(bomb)
	}

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stop := heapPeak()
	run, err := raw.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "bombs", TaskQueue: queue}, "hardeningWorkflow", args...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = s.GetDefaultClient().TerminateWorkflow(context.Background(), run.GetID(), run.GetRunID(), "test over")
	}()

	// The Go SDK fails the workflow (WorkflowExecutionFailed) when its input cannot be decoded.
	runErr := run.Get(ctx, nil)
	if runErr == nil {
		t.Fatal("the workflow started with bombs completed")
	}
	failure := runErr.Error()
	if !strings.Contains(failure, "MaxDecodedBatchSize") || !strings.Contains(failure, fmt.Sprint(2*codec.DefaultMaxDecodedSize)) {
		t.Fatalf("workflow failure %q does not name the decode budget", failure)
	}

	// The worker keeps serving.
	for i := range 5 {
		r, err := s.GetDefaultClient().ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: queue}, "hardeningEcho", fmt.Sprint("ok-", i))
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if err := r.Get(ctx, &got); err != nil || got != fmt.Sprint("ok-", i) {
			t.Fatalf("workflow %d next to the bombs: %q, %v", i, got, err)
		}
	}
	peak := stop()
	grew := int64(peak) - int64(base.HeapInuse)
	t.Logf("workflow failure: %s", failure)
	t.Logf("heap in use: %d MiB before, peak %d MiB (+%d MiB) while 16 payloads of 60 MiB were refused", base.HeapInuse>>20, peak>>20, grew>>20)
	// Two payloads fit the 128 MiB budget (each decoded into a pooled buffer and unmarshalled
	// into its own copy); without the budget all 16 were decoded: 1.9 GiB per attempt.
	if grew > 768<<20 {
		t.Fatalf("heap grew by %d MiB, want under 768 MiB", grew>>20)
	}
}

// hardeningPanics counts the runs of hardeningPanicOnce.
var hardeningPanics atomic.Int32

// hardeningPanicOnce panics the first time it runs (failing its workflow task), then completes.
func hardeningPanicOnce(_ workflow.Context) (string, error) {
	if hardeningPanics.Add(1) == 1 {
		panic("first attempt fails: customer ada@example.com")
	}
	return "done", nil
}

// TestWorkflowTaskFailureIsBoundToNamespace: the SDK encodes a workflow task failure with the
// worker's failure converter and no serialization context. The Kit's converters are bound to the
// client's namespace, so that failure, like every other payload, carries the namespace and
// decodes under strict (namespace-required) decoding.
func TestWorkflowTaskFailureIsBoundToNamespace(t *testing.T) {
	keys := staticKeyring(t, "k1")
	kit := newKit(t, payloadkit.Options{Encryption: &codec.EncryptionOptions{Keys: keys}})
	s := startServer(t, kit)
	const queue = "hardening-task-failure"
	// BlockWorkflow (which temporaltest's workers override): a panic fails the workflow task,
	// which is retried, not the workflow.
	w := worker.New(s.GetDefaultClient(), queue, kit.WorkerOptions(worker.Options{WorkflowPanicPolicy: worker.BlockWorkflow}))
	w.RegisterWorkflowWithOptions(hardeningPanicOnce, workflow.RegisterOptions{Name: "hardeningPanicOnce"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	ctx := testContext(t, 2*time.Minute)
	run, err := s.GetDefaultClient().ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: queue}, "hardeningPanicOnce")
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil || got != "done" {
		t.Fatalf("result %q, %v", got, err)
	}
	ns := s.GetDefaultNamespace()
	strict, err := codec.NewEncryptionCodec(&codec.EncryptionOptions{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	bound := strict.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: ns})
	taskFailures := 0
	for _, p := range s.historyPayloads(t, run) {
		env, err := codec.ReadEnvelope(p.Payload)
		if err != nil {
			t.Fatalf("event %d %s: %v", p.EventID, p.Field, err)
		}
		if env.Context[codec.ContextKeyNamespace] != ns {
			t.Errorf("event %d %s %s: envelope namespace %q, want %q", p.EventID, p.EventType, p.Field, env.Context[codec.ContextKeyNamespace], ns)
		}
		if _, err := bound.Decode([]*commonpb.Payload{p.Payload}); err != nil {
			t.Errorf("event %d %s: strict decode: %v", p.EventID, p.Field, err)
		}
		if p.EventType == enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED {
			taskFailures++
		}
	}
	if taskFailures == 0 {
		t.Fatal("no encoded workflow task failure in history")
	}
	t.Logf("%d workflow task failure payload(s), every payload bound to %q", taskFailures, ns)
}
