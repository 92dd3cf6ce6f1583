package interceptor

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"
)

func greetWorkflow(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	var out string
	err := workflow.ExecuteActivity(ctx, "Shout", name).Get(ctx, &out)
	return out, err
}

type shoutActivity struct {
	calls  atomic.Int32
	repeat int // the result repeats the shout this many times (1 if 0)
}

func (a *shoutActivity) Shout(_ context.Context, s string) (string, error) {
	a.calls.Add(1)
	return strings.Repeat(strings.ToUpper(s)+"!", max(a.repeat, 1)), nil
}

type workflowRun struct {
	r      *recorder
	dc     converter.DataConverter
	env    *testsuite.TestWorkflowEnvironment
	act    *shoutActivity
	logs   *bytes.Buffer
	result string
	err    error
}

func runGreet(t *testing.T, opts Options, name string) *workflowRun {
	t.Helper()
	return runGreetWith(t, opts, &shoutActivity{}, name)
}

func runGreetWith(t *testing.T, opts Options, act *shoutActivity, name string) *workflowRun {
	t.Helper()
	w := &workflowRun{logs: &bytes.Buffer{}, act: act}
	opts.Logger = slog.New(slog.NewTextHandler(w.logs, nil))
	w.r = newRecorder(t, opts)
	w.dc = w.r.dataConverter(stage(stageCompression, newXorCodec()), stage(stageEncryption, newXorCodec()))
	var suite testsuite.WorkflowTestSuite
	w.env = suite.NewTestWorkflowEnvironment()
	w.env.SetDataConverter(w.dc)
	w.env.SetWorkerOptions(worker.Options{Interceptors: w.r.tel.WorkerInterceptors()})
	w.env.RegisterWorkflow(greetWorkflow)
	w.env.RegisterActivityWithOptions(w.act.Shout, activity.RegisterOptions{Name: "Shout"})
	w.env.ExecuteWorkflow(greetWorkflow, name)
	if !w.env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	w.err = w.env.GetWorkflowError()
	if w.err == nil {
		if err := w.env.GetWorkflowResult(&w.result); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w *workflowRun) encodedSize(t *testing.T, v any) int64 {
	t.Helper()
	ps, err := w.dc.ToPayloads(v)
	if err != nil {
		t.Fatal(err)
	}
	return int64(proto.Size(ps))
}

func one(t *testing.T, r *recorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	spans := r.ended(name)
	if len(spans) != 1 {
		t.Fatalf("%d spans named %s, want 1\n%s", len(spans), name, FormatSpanTree(r.all()))
	}
	return spans[0]
}

func TestWorkflowSpanTreeAndSizes(t *testing.T) {
	name := strings.Repeat("temporal ", 10)
	w := runGreet(t, Options{}, name)
	if w.err != nil {
		t.Fatal(w.err)
	}
	if w.result != strings.ToUpper(name)+"!" {
		t.Fatalf("result %q", w.result)
	}
	r := w.r
	tree := FormatSpanTree(r.all())
	t.Logf("span tree:\n%s", tree)

	run := one(t, r, "RunWorkflow:greetWorkflow")
	start := one(t, r, "StartActivity:Shout")
	runAct := one(t, r, "RunActivity:Shout")
	if start.Parent().SpanID() != run.SpanContext().SpanID() {
		t.Error("StartActivity is not a child of RunWorkflow")
	}
	if runAct.Parent().SpanID() != start.SpanContext().SpanID() {
		t.Error("RunActivity is not a child of StartActivity")
	}

	// Codec spans for the activity's input and result all hang under StartActivity: the
	// workflow encodes the input and decodes the result within it, the activity decodes its
	// input and encodes its result under the span carried in its header.
	var underStart int
	for _, s := range r.ended("") {
		if !strings.HasPrefix(s.Name(), "payloadkit.") {
			continue
		}
		if s.Parent().SpanID() == start.SpanContext().SpanID() {
			underStart++
			if s.SpanContext().TraceID() != run.SpanContext().TraceID() {
				t.Errorf("%s is in another trace", s.Name())
			}
		}
	}
	// One span per run of the 2-stage chain: workflow encode input, activity decode input,
	// activity encode result, workflow decode result.
	if underStart != 4 {
		t.Errorf("%d codec spans under StartActivity, want 4\n%s", underStart, tree)
	}

	// Sizes are taken where values are encoded: the activity's input in the workflow, inside
	// StartActivity. The workflow's and the activity's own spans end before the SDK encodes
	// their results, and inputs are not measured again where they are decoded.
	inSize, outSize := w.encodedSize(t, name), w.encodedSize(t, w.result)
	if got, _ := spanAttr(start, "payloadkit.input.bytes"); got != strconv.FormatInt(inSize, 10) {
		t.Errorf("%s input.bytes = %q, want %d", start.Name(), got, inSize)
	}
	for _, s := range []sdktrace.ReadOnlySpan{run, runAct} {
		for _, key := range []string{"payloadkit.input.bytes", "payloadkit.result.bytes"} {
			if got, ok := spanAttr(s, key); ok {
				t.Errorf("%s has %s = %s, want none", s.Name(), key, got)
			}
		}
	}

	m := r.metrics(t)
	for _, c := range []struct {
		kind, typ, dir string
		count          uint64
		want           int64
	}{
		{"workflow", "greetWorkflow", "result", 1, outSize},
		{"activity", "Shout", "input", 1, inSize},
		{"activity", "Shout", "result", 1, outSize},
	} {
		dps := histInt(t, m[MetricPayloadSize], map[string]string{"kind": c.kind, "type": c.typ, "direction": c.dir, "stage": "interceptor"})
		if len(dps) != 1 || dps[0].Count != c.count || dps[0].Sum != c.want {
			t.Errorf("payload.size %s/%s/%s = %+v, want %d points summing %d", c.kind, c.typ, c.dir, dps, c.count, c.want)
		}
	}
	// The test environment encodes the workflow's input without a client: nothing measures it.
	if dps := histInt(t, m[MetricPayloadSize], map[string]string{"kind": "workflow", "direction": "input"}); len(dps) != 0 {
		t.Errorf("workflow input measured without a client: %+v", dps)
	}
	if w.logs.Len() != 0 {
		t.Errorf("unexpected logs: %s", w.logs)
	}
}

func TestWorkflowWarnEvent(t *testing.T) {
	name := strings.Repeat("x", 400)
	w := runGreet(t, Options{WarnSize: 300}, name)
	if w.err != nil {
		t.Fatal(w.err)
	}
	start := one(t, w.r, "StartActivity:Shout")
	var ev bool
	for _, e := range start.Events() {
		if e.Name == EventLargePayload {
			ev = true
			for _, kv := range e.Attributes {
				if kv.Key == "bytes" && kv.Value.AsInt64() != w.encodedSize(t, name) {
					t.Errorf("event bytes %d, want %d", kv.Value.AsInt64(), w.encodedSize(t, name))
				}
			}
		}
	}
	if !ev {
		t.Errorf("no %s event on StartActivity", EventLargePayload)
	}
	logs := w.logs.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "type=Shout") || strings.Contains(logs, name) {
		t.Errorf("logs %q: want WARN lines naming Shout, without payload contents", logs)
	}
}

func TestWorkflowActivityInputTooLarge(t *testing.T) {
	name := strings.Repeat("y", 3000)
	w := runGreet(t, Options{LimitSize: 2000}, name)
	if w.err == nil {
		t.Fatal("workflow succeeded with an input over the limit")
	}
	msg := w.err.Error()
	for _, want := range []string{`activity "Shout" input`, "over the limit of 2000 bytes", "enable the offload stage"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	var appErr *temporal.ApplicationError
	if !errors.As(w.err, &appErr) || appErr.Type() != PayloadTooLargeErrorType || !appErr.NonRetryable() {
		t.Errorf("error %v: want a non-retryable ApplicationError of type %s", w.err, PayloadTooLargeErrorType)
	}
	if n := w.act.calls.Load(); n != 0 {
		t.Errorf("activity ran %d times", n)
	}
}

func TestWorkflowActivityResultTooLarge(t *testing.T) {
	w := runGreetWith(t, Options{LimitSize: 2000}, &shoutActivity{repeat: 1000}, "hey")
	if w.err == nil {
		t.Fatal("workflow succeeded with an activity result over the limit")
	}
	for _, want := range []string{`activity "Shout" result`, "over the limit of 2000 bytes"} {
		if !strings.Contains(w.err.Error(), want) {
			t.Errorf("error %q does not contain %q", w.err, want)
		}
	}
	var appErr *temporal.ApplicationError
	if !errors.As(w.err, &appErr) || appErr.Type() != PayloadTooLargeErrorType || !appErr.NonRetryable() {
		t.Errorf("error %v: want a non-retryable ApplicationError of type %s", w.err, PayloadTooLargeErrorType)
	}
	if !errors.Is(w.err, ErrPayloadTooLarge) && !strings.Contains(w.err.Error(), ErrPayloadTooLarge.Error()) {
		t.Errorf("error %v does not carry ErrPayloadTooLarge", w.err)
	}
	if n := w.act.calls.Load(); n != 1 {
		t.Errorf("activity ran %d times, want 1 (the failure is not retryable)", n)
	}
}

func greetTwiceWorkflow(ctx workflow.Context, name string) (string, error) {
	out, err := greetWorkflow(ctx, name)
	return strings.Repeat(out, 1000), err
}

func TestWorkflowResultTooLarge(t *testing.T) {
	r := newRecorder(t, Options{LimitSize: 2000, Logger: slog.New(slog.DiscardHandler)})
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetDataConverter(r.dataConverter(stage(stageCompression, newXorCodec())))
	env.SetWorkerOptions(worker.Options{Interceptors: r.tel.WorkerInterceptors()})
	env.RegisterWorkflow(greetTwiceWorkflow)
	env.RegisterActivityWithOptions((&shoutActivity{}).Shout, activity.RegisterOptions{Name: "Shout"})
	env.ExecuteWorkflow(greetTwiceWorkflow, "hey")
	err := env.GetWorkflowError()
	if err == nil {
		t.Fatal("workflow succeeded with a result over the limit")
	}
	if !strings.Contains(err.Error(), `workflow "greetTwiceWorkflow" result`) {
		t.Errorf("error %q does not name the workflow's result", err)
	}
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != PayloadTooLargeErrorType || !appErr.NonRetryable() {
		t.Errorf("error %v: want a non-retryable ApplicationError of type %s", err, PayloadTooLargeErrorType)
	}
	dps := histInt(t, r.metrics(t)[MetricPayloadSize], map[string]string{"kind": "workflow", "direction": "result"})
	if len(dps) != 1 || dps[0].Count != 1 || dps[0].Sum <= 2000 {
		t.Errorf("workflow result size points %+v, want one over 2000 bytes", dps)
	}
}

func TestWorkflowOffloadDisablesLimit(t *testing.T) {
	// The same input passes when the size limit is off (the Kit turns it off with offload).
	name := strings.Repeat("y", 3000)
	r := newRecorder(t, Options{LimitSize: 2000, DisableSizeLimit: true, Logger: slog.New(slog.DiscardHandler)})
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetDataConverter(r.dataConverter(stage(stageCompression, newXorCodec())))
	env.SetWorkerOptions(worker.Options{Interceptors: r.tel.WorkerInterceptors()})
	env.RegisterWorkflow(greetWorkflow)
	env.RegisterActivityWithOptions((&shoutActivity{}).Shout, activity.RegisterOptions{Name: "Shout"})
	env.ExecuteWorkflow(greetWorkflow, name)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("with the limit off: %v", err)
	}
	dps := histInt(t, r.metrics(t)[MetricPayloadSize], map[string]string{"kind": "activity", "direction": "input"})
	if len(dps) != 1 || dps[0].Count != 1 || dps[0].Sum <= 2000 {
		t.Errorf("activity input size points %+v, want one over 2000 bytes", dps)
	}
}
