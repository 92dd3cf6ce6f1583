package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/samples/internal/history"
)

func badInputEcho(_ workflow.Context, s string) (string, error) { return s, nil }

// TestBadInputFailsTheWorkflowAndTheWorkerKeepsServing starts workflows through the raw gRPC API
// (no data converter, no codecs) with hand-made inputs a Kit cannot decode: an encrypted payload
// whose data is garbage, a claim whose JSON is truncated, and a payload of an encoding no
// converter knows. The Go SDK fails each workflow (WorkflowExecutionFailed, not a workflow task
// failure retried forever) with an error naming the payload's problem; afterwards a normal
// workflow on the same worker completes.
func TestBadInputFailsTheWorkflowAndTheWorkerKeepsServing(t *testing.T) {
	store := offload.NewMemoryStore()
	kit := newKit(t, payloadkit.Options{
		Encryption: &codec.EncryptionOptions{Keys: staticKeyring(t, "k1")},
		Offload:    &offload.Options{Store: store},
	})
	s := startServer(t, kit)
	const queue = "bad-input"
	s.worker(queue, func(r worker.Registry) {
		r.RegisterWorkflowWithOptions(badInputEcho, workflow.RegisterOptions{Name: "badInputEcho"})
	})
	ctx := testContext(t, 2*time.Minute)
	c := s.GetDefaultClient()

	claim, err := offload.Claim{Store: store.Name(), Key: "payloadkit/ns/sha256/" + strings.Repeat("ab", 32), Size: 1234, SHA256: strings.Repeat("ab", 32)}.Payload()
	if err != nil {
		t.Fatal(err)
	}
	claim.Data = claim.Data[:len(claim.Data)/2]

	cases := []struct {
		name    string
		payload *commonpb.Payload
		// want are substrings, each of which the workflow failure must hold (case-insensitive).
		want []string
	}{
		{
			name: "malformed encrypted payload",
			payload: &commonpb.Payload{
				Metadata: map[string][]byte{"encoding": []byte("binary/encrypted")},
				Data:     []byte("this is not an encryption envelope at all"),
			},
			want: []string{"unable to decode the workflow function input", "encryption decode [payload=0]", "malformed encrypted payload"},
		},
		{
			name:    "truncated claim",
			payload: claim,
			want:    []string{"unable to decode the workflow function input", "integrity check failed: malformed claim", "claim data: unexpected EOF"},
		},
		{
			name: "unknown encoding",
			payload: &commonpb.Payload{
				Metadata: map[string][]byte{"encoding": []byte("binary/rot13")},
				Data:     []byte("uryyb"),
			},
			want: []string{"unable to decode the workflow function input", "encoding binary/rot13", "payload encoding is not supported"},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("bad-input-%d-%s", i, offloadRandomHex(t, 4))
			resp, err := c.WorkflowService().StartWorkflowExecution(ctx, &workflowservice.StartWorkflowExecutionRequest{
				Namespace:    s.GetDefaultNamespace(),
				WorkflowId:   id,
				WorkflowType: &commonpb.WorkflowType{Name: "badInputEcho"},
				TaskQueue:    &taskqueuepb.TaskQueue{Name: queue},
				Input:        &commonpb.Payloads{Payloads: []*commonpb.Payload{tc.payload}},
				RequestId:    id,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.TerminateWorkflow(ctx, id, "", "test over") })
			runErr := c.GetWorkflow(ctx, id, resp.GetRunId()).Get(ctx, nil)
			if runErr == nil {
				t.Fatal("the workflow completed")
			}
			t.Logf("workflow failure: %v", runErr)
			for _, w := range tc.want {
				if !strings.Contains(strings.ToLower(runErr.Error()), strings.ToLower(w)) {
					t.Errorf("workflow failure %q does not hold %q", runErr, w)
				}
			}
			events, err := history.Events(ctx, c, id, resp.GetRunId())
			if err != nil {
				t.Fatal(err)
			}
			var types []string
			for _, ev := range events {
				types = append(types, ev.GetEventType().String())
				if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED {
					t.Errorf("event %d: a workflow task failed (%s), want the workflow to fail", ev.GetEventId(), ev.GetWorkflowTaskFailedEventAttributes().GetCause())
				}
			}
			if last := events[len(events)-1].GetEventType(); last != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED {
				t.Errorf("history ends with %s, want WorkflowExecutionFailed: %v", last, types)
			}
		})
	}

	// The worker keeps serving.
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: queue}, "badInputEcho", "still serving")
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil || got != "still serving" {
		t.Fatalf("workflow after the bad inputs: %q, %v", got, err)
	}
}
