package workflowtest_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/workflowtest"
)

var updateReplayHistory = flag.Bool("update-replay-history", false, "regenerate "+greetingHistory)

const (
	greetingHistory = "testdata/greeting_history.json"
	// replayKeyID and replayKeyHex are the static key the history in greetingHistory was written with.
	replayKeyID      = "replay-key-1"
	replayKeyHex     = "5f1b2c7d9e4a3b6c8d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e"
	replayNamespace  = "payments"
	replayWorkflowID = "greeting-1"
	replayTaskQueue  = "greetings"
)

func ComposeGreeting(_ context.Context, name string) (string, error) {
	return "Hello, " + name + "!", nil
}

func GreetingWorkflow(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	var greeting string
	err := workflow.ExecuteActivity(ctx, ComposeGreeting, name).Get(ctx, &greeting)
	return greeting, err
}

// replayKit returns a Kit encrypting with a static keyring holding key (hex) under keyID.
func replayKit(t testing.TB, keyID, keyHex string) *workflowtest.Kit {
	t.Helper()
	key, err := hex.DecodeString(keyHex)
	require.NoError(t, err)
	ring, err := codec.NewStaticKeyring(keyID, map[string][]byte{keyID: key})
	require.NoError(t, err)
	return workflowtest.NewKit(t, workflowtest.WithKeyProvider(ring), workflowtest.WithoutOffload())
}

// writeGreetingHistory writes, as `temporal workflow show -o json` would, the history of a
// GreetingWorkflow run in namespace replayNamespace whose payloads k encoded.
func writeGreetingHistory(t *testing.T, k *workflowtest.Kit, path string) {
	wfCtx := converter.WorkflowSerializationContext{Namespace: replayNamespace, WorkflowID: replayWorkflowID}
	actCtx := converter.ActivitySerializationContext{Namespace: replayNamespace, WorkflowID: replayWorkflowID,
		WorkflowType: "GreetingWorkflow", ActivityType: "ComposeGreeting", TaskQueue: replayTaskQueue}
	encode := func(ctx converter.SerializationContext, v any) *commonpb.Payloads {
		p, err := converter.WithDataConverterSerializationContext(k.DataConverter(), ctx).ToPayloads(v)
		require.NoError(t, err)
		return p
	}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tq := &taskqueuepb.TaskQueue{Name: replayTaskQueue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL}
	var events []*historypb.HistoryEvent
	add := func(e *historypb.HistoryEvent) int64 {
		e.EventId = int64(len(events) + 1)
		e.EventTime = timestamppb.New(start.Add(time.Duration(e.EventId) * 10 * time.Millisecond))
		e.TaskId = 1048576 + e.EventId
		events = append(events, e)
		return e.EventId
	}
	workflowTask := func() int64 {
		sched := add(&historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
			Attributes: &historypb.HistoryEvent_WorkflowTaskScheduledEventAttributes{WorkflowTaskScheduledEventAttributes: &historypb.WorkflowTaskScheduledEventAttributes{
				TaskQueue: tq, StartToCloseTimeout: durationpb.New(10 * time.Second), Attempt: 1}}})
		started := add(&historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED,
			Attributes: &historypb.HistoryEvent_WorkflowTaskStartedEventAttributes{WorkflowTaskStartedEventAttributes: &historypb.WorkflowTaskStartedEventAttributes{
				ScheduledEventId: sched, Identity: "worker-1", RequestId: "request-" + string(rune('a'+sched))}}})
		return add(&historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
			Attributes: &historypb.HistoryEvent_WorkflowTaskCompletedEventAttributes{WorkflowTaskCompletedEventAttributes: &historypb.WorkflowTaskCompletedEventAttributes{
				ScheduledEventId: sched, StartedEventId: started, Identity: "worker-1"}}})
	}

	add(&historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
			WorkflowType: &commonpb.WorkflowType{Name: "GreetingWorkflow"}, TaskQueue: tq,
			Input:               encode(wfCtx, "Ada"),
			WorkflowTaskTimeout: durationpb.New(10 * time.Second), Attempt: 1, Identity: "starter",
			OriginalExecutionRunId: "0195c0de-0000-7000-8000-000000000001", FirstExecutionRunId: "0195c0de-0000-7000-8000-000000000001"}}})
	completed := workflowTask()
	scheduled := add(&historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
		Attributes: &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{
			ActivityId: "5", ActivityType: &commonpb.ActivityType{Name: "ComposeGreeting"}, TaskQueue: tq,
			Input:                        encode(actCtx, "Ada"),
			StartToCloseTimeout:          durationpb.New(time.Minute),
			WorkflowTaskCompletedEventId: completed,
			RetryPolicy:                  &commonpb.RetryPolicy{InitialInterval: durationpb.New(time.Second), BackoffCoefficient: 2, MaximumInterval: durationpb.New(100 * time.Second)}}}})
	started := add(&historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED,
		Attributes: &historypb.HistoryEvent_ActivityTaskStartedEventAttributes{ActivityTaskStartedEventAttributes: &historypb.ActivityTaskStartedEventAttributes{
			ScheduledEventId: scheduled, Identity: "worker-1", RequestId: "activity-request", Attempt: 1}}})
	add(&historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
		Attributes: &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{ActivityTaskCompletedEventAttributes: &historypb.ActivityTaskCompletedEventAttributes{
			Result: encode(actCtx, "Hello, Ada!"), ScheduledEventId: scheduled, StartedEventId: started, Identity: "worker-1"}}})
	completed = workflowTask()
	add(&historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionCompletedEventAttributes{WorkflowExecutionCompletedEventAttributes: &historypb.WorkflowExecutionCompletedEventAttributes{
			Result: encode(wfCtx, "Hello, Ada!"), WorkflowTaskCompletedEventId: completed}}})

	data, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: events})
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, append(data, '\n'), 0o644))
}

func TestReplayHistoryFile(t *testing.T) {
	if *updateReplayHistory {
		writeGreetingHistory(t, replayKit(t, replayKeyID, replayKeyHex), greetingHistory)
	}
	raw, err := os.ReadFile(greetingHistory)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "Ada", "the history holds a name in plain text")
	assert.Equal(t, 4, strings.Count(string(raw), base64.StdEncoding.EncodeToString([]byte(codec.EncodingEncrypted))),
		"the history holds four encrypted payloads")

	k := replayKit(t, replayKeyID, replayKeyHex)
	k.Replay(t, greetingHistory, GreetingWorkflow)
	assert.NotEmpty(t, k.Recorder().Payloads(workflowtest.Inbound), "replay decoded no payload")
	require.NoError(t, k.ReplayHistoryFile(greetingHistory, GreetingWorkflow))
}

func TestReplayWithChangedKeysFails(t *testing.T) {
	t.Run("other key material", func(t *testing.T) {
		k := replayKit(t, replayKeyID, strings.Repeat("ab", 32))
		err := k.ReplayHistoryFile(greetingHistory, GreetingWorkflow)
		assert.ErrorIs(t, err, codec.ErrDecrypt)
	})
	t.Run("other key id", func(t *testing.T) {
		k := replayKit(t, "replay-key-2", replayKeyHex)
		err := k.ReplayHistoryFile(greetingHistory, GreetingWorkflow)
		assert.ErrorIs(t, err, codec.ErrUnknownKey)
		assert.ErrorContains(t, err, replayKeyID)
	})
}

// The SDK's replayer gives workflows the namespace "ReplayNamespace": with the Kit's converters
// used as they are, payloads bound to their namespace do not decode. Replay makes it unknown.
func TestReplayNeedsUnknownNamespace(t *testing.T) {
	k := replayKit(t, replayKeyID, replayKeyHex)
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
		DataConverter:    k.DataConverter(),
		FailureConverter: k.FailureConverter(),
	})
	require.NoError(t, err)
	r.RegisterWorkflow(GreetingWorkflow)
	require.Error(t, r.ReplayWorkflowHistoryFromJSONFile(nil, greetingHistory))

	f, err := os.Open(greetingHistory)
	require.NoError(t, err)
	defer f.Close()
	h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	require.NoError(t, err)
	input := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetInput()
	inReplay := converter.WithDataConverterSerializationContext(k.DataConverter(),
		converter.WorkflowSerializationContext{Namespace: "ReplayNamespace", WorkflowID: "ReplayId"})
	var name string
	assert.ErrorIs(t, inReplay.FromPayloads(input, &name), codec.ErrNamespaceMismatch)

	require.NoError(t, k.ReplayHistoryFile(greetingHistory, GreetingWorkflow))
}

func TestReplayFileErrors(t *testing.T) {
	k := replayKit(t, replayKeyID, replayKeyHex)
	err := k.ReplayHistoryFile(filepath.Join(t.TempDir(), "missing.json"), GreetingWorkflow)
	assert.ErrorIs(t, err, workflowtest.ErrHistoryFile)
	assert.ErrorIs(t, err, os.ErrNotExist)

	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"events": [`), 0o644))
	assert.ErrorIs(t, k.ReplayHistoryFile(bad, GreetingWorkflow), workflowtest.ErrHistoryFile)

	assert.ErrorContains(t, k.ReplayHistoryFile(greetingHistory), "no workflow given")

	// Replay fails the test it is given.
	f := &fakeT{}
	func() {
		defer func() { _ = recover() }()
		k.Replay(f, bad, GreetingWorkflow)
	}()
	errorsContain(t, f, "unreadable history file")
	assert.False(t, errors.Is(nil, workflowtest.ErrHistoryFile))
}
