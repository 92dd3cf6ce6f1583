package e2e

import (
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/codec/awskms"
	"github.com/payloadkit/payloadkit/workflowtest"
)

// TestKMSOutageRetriesWorkflowTask starts a workflow while KMS is down for a worker whose
// data-key cache is cold: decoding the workflow's input fails with a retryable error, which
// must not fail the workflow (the SDK fails a workflow for good when its input cannot be
// decoded) but fail the workflow task, so that the server retries it. Once KMS is back, the
// workflow completes.
func TestKMSOutageRetriesWorkflowTask(t *testing.T) {
	kms := workflowtest.StartKMS(t)
	keyID := kms.NewKey()
	newKMSKit := func() *payloadkit.Kit {
		provider, err := awskms.New(kms.Client(), keyID)
		if err != nil {
			t.Fatal(err)
		}
		return newKit(t, payloadkit.Options{Encryption: &codec.EncryptionOptions{Keys: provider}})
	}
	clientKit, workerKit := newKMSKit(), newKMSKit() // separate data-key caches: the worker's is cold
	s := startServer(t, clientKit)
	ctx := testContext(t, 2*time.Minute)
	in := kmsOrder{ID: "order-outage", Email: "outage.customer@example.com"}
	run, err := s.GetDefaultClient().ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "kms-outage"}, "kmsWorkflow", in)
	if err != nil {
		t.Fatal(err)
	}

	kms.SetUnavailable(true)
	wc := s.NewClientWithOptions(workerKit.ClientOptions(client.Options{}))
	w := worker.New(wc, "kms-outage", workerKit.WorkerOptions(worker.Options{}))
	w.RegisterWorkflowWithOptions(kmsWorkflow, workflow.RegisterOptions{Name: "kmsWorkflow"})
	w.RegisterActivityWithOptions(kmsStepActivity, activity.RegisterOptions{Name: "kmsStep"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	// Wait for a failed workflow task caused by the outage, then end the outage.
	events := func() []*historypb.HistoryEvent {
		var out []*historypb.HistoryEvent
		iter := s.GetDefaultClient().GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for iter.HasNext() {
			ev, err := iter.Next()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ev)
		}
		return out
	}
	var taskFailure string
	for deadline := time.Now().Add(time.Minute); taskFailure == "" && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		for _, ev := range events() {
			if a := ev.GetWorkflowTaskFailedEventAttributes(); a != nil {
				taskFailure = a.GetFailure().GetMessage()
			}
			if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED {
				t.Fatalf("the workflow failed during the KMS outage: %v", ev.GetWorkflowExecutionFailedEventAttributes().GetFailure())
			}
		}
	}
	kms.SetUnavailable(false)
	if taskFailure == "" {
		t.Fatal("no workflow task failed while KMS was unavailable")
	}
	// The failure names the retryable cause (when KMS is down the failure converter cannot
	// encrypt the failure either, and says so instead).
	if !strings.Contains(taskFailure, "retryable") && !strings.Contains(taskFailure, "temporarily unavailable") {
		t.Errorf("workflow task failure %q does not name the retryable cause", taskFailure)
	}

	var out kmsOrder
	if err := run.Get(ctx, &out); err != nil {
		t.Fatalf("workflow after the outage: %v", err)
	}
	if got, want := strings.Join(out.Steps, ","), strings.Join(kmsSteps, ","); got != want || out.Email != in.Email {
		t.Fatalf("result = %+v, want steps %s and email %s", out, want, in.Email)
	}
	t.Logf("workflow task failure during the outage: %s", taskFailure)
}
