package interceptor

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// greetHistory is the history of a completed greetWorkflow run whose payloads were encoded by dc.
func greetHistory(t *testing.T, dc converter.DataConverter, name string) *historypb.History {
	t.Helper()
	enc := func(v any) *commonpb.Payloads {
		ps, err := dc.ToPayloads(v)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	result := strings.ToUpper(name) + "!"
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tq := &taskqueuepb.TaskQueue{Name: "q"}
	ev := func(id int64, typ enumspb.EventType, attrs func(*historypb.HistoryEvent)) *historypb.HistoryEvent {
		e := &historypb.HistoryEvent{EventId: id, EventType: typ, EventTime: timestamppb.New(now.Add(time.Duration(id) * time.Millisecond))}
		if attrs != nil {
			attrs(e)
		}
		return e
	}
	wft := func(first int64) []*historypb.HistoryEvent {
		return []*historypb.HistoryEvent{
			ev(first, enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, func(e *historypb.HistoryEvent) {
				e.Attributes = &historypb.HistoryEvent_WorkflowTaskScheduledEventAttributes{WorkflowTaskScheduledEventAttributes: &historypb.WorkflowTaskScheduledEventAttributes{TaskQueue: tq, StartToCloseTimeout: durationpb.New(10 * time.Second)}}
			}),
			ev(first+1, enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED, func(e *historypb.HistoryEvent) {
				e.Attributes = &historypb.HistoryEvent_WorkflowTaskStartedEventAttributes{WorkflowTaskStartedEventAttributes: &historypb.WorkflowTaskStartedEventAttributes{ScheduledEventId: first}}
			}),
			ev(first+2, enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, func(e *historypb.HistoryEvent) {
				e.Attributes = &historypb.HistoryEvent_WorkflowTaskCompletedEventAttributes{WorkflowTaskCompletedEventAttributes: &historypb.WorkflowTaskCompletedEventAttributes{ScheduledEventId: first, StartedEventId: first + 1}}
			}),
		}
	}
	var events []*historypb.HistoryEvent
	events = append(events, ev(1, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, func(e *historypb.HistoryEvent) {
		e.Attributes = &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
			WorkflowType:           &commonpb.WorkflowType{Name: "greetWorkflow"},
			TaskQueue:              tq,
			Input:                  enc(name),
			WorkflowRunTimeout:     durationpb.New(time.Hour),
			WorkflowTaskTimeout:    durationpb.New(10 * time.Second),
			OriginalExecutionRunId: "run-1",
			FirstExecutionRunId:    "run-1",
			Attempt:                1,
		}}
	}))
	events = append(events, wft(2)...)
	events = append(events,
		ev(5, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, func(e *historypb.HistoryEvent) {
			e.Attributes = &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{
				ActivityId: "5", ActivityType: &commonpb.ActivityType{Name: "Shout"}, TaskQueue: tq, Input: enc(name),
				StartToCloseTimeout: durationpb.New(time.Minute), WorkflowTaskCompletedEventId: 4,
			}}
		}),
		ev(6, enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED, func(e *historypb.HistoryEvent) {
			e.Attributes = &historypb.HistoryEvent_ActivityTaskStartedEventAttributes{ActivityTaskStartedEventAttributes: &historypb.ActivityTaskStartedEventAttributes{ScheduledEventId: 5, Attempt: 1}}
		}),
		ev(7, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, func(e *historypb.HistoryEvent) {
			e.Attributes = &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{ActivityTaskCompletedEventAttributes: &historypb.ActivityTaskCompletedEventAttributes{ScheduledEventId: 5, StartedEventId: 6, Result: enc(result)}}
		}),
	)
	events = append(events, wft(8)...)
	events = append(events, ev(11, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, func(e *historypb.HistoryEvent) {
		e.Attributes = &historypb.HistoryEvent_WorkflowExecutionCompletedEventAttributes{WorkflowExecutionCompletedEventAttributes: &historypb.WorkflowExecutionCompletedEventAttributes{Result: enc(result), WorkflowTaskCompletedEventId: 10}}
	}))
	return &historypb.History{Events: events}
}

func TestReplayRecordsNothing(t *testing.T) {
	r := newRecorder(t, Options{WarnSize: 1})
	inner := newXorCodec()
	dc := r.dataConverter(stage(stageCompression, inner))
	history := greetHistory(t, dc, "replayed")
	// Building the history encoded through the traced codec; start from a clean slate.
	r = newRecorder(t, Options{WarnSize: 1})
	dc = r.dataConverter(stage(stageCompression, inner))

	replayer, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
		DataConverter: dc,
		Interceptors:  r.tel.WorkerInterceptors(),
	})
	if err != nil {
		t.Fatal(err)
	}
	replayer.RegisterWorkflow(greetWorkflow)
	decodesBefore := len(inner.log.contexts())
	if err := replayer.ReplayWorkflowHistory(log.NewStructuredLogger(slog.New(slog.DiscardHandler)), history); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if len(inner.log.contexts()) == decodesBefore {
		t.Fatal("the replay did not run the codec")
	}
	for _, s := range r.all() {
		if strings.HasPrefix(s.Name(), "payloadkit.") {
			t.Errorf("codec span %s recorded during replay", s.Name())
		}
		for _, kv := range s.Attributes() {
			if strings.HasPrefix(string(kv.Key), "payloadkit.") {
				t.Errorf("span %s got %s during replay", s.Name(), kv.Key)
			}
		}
		if len(s.Events()) != 0 {
			t.Errorf("span %s got events during replay", s.Name())
		}
	}
	if m := r.metrics(t); m[MetricPayloadSize] != nil || m[MetricCodecDuration] != nil {
		t.Errorf("metrics recorded during replay: %v", m)
	}
}
