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

type shoutActivity struct{ calls atomic.Int32 }

func (a *shoutActivity) Shout(_ context.Context, s string) (string, error) {
	a.calls.Add(1)
	return strings.ToUpper(s) + "!", nil
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
	w := &workflowRun{logs: &bytes.Buffer{}, act: &shoutActivity{}}
	opts.Logger = slog.New(slog.NewTextHandler(w.logs, nil))
	w.r = newRecorder(t, opts)
	w.dc = w.r.tel.DataConverter(converter.GetDefaultDataConverter(), []converter.PayloadCodec{
		w.r.tel.WrapCodec(StageEncryption, newXorCodec()),
		w.r.tel.WrapCodec(StageCompression, newXorCodec()),
	})
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
		t.Fatalf("%d spans named %s, want 1\n%s", len(spans), name, FormatSpanTree(r.spans.Ended()))
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
	tree := FormatSpanTree(r.spans.Ended())
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
	// 2 stages x (workflow encode input, activity decode input, activity encode result,
	// workflow decode result).
	if underStart != 8 {
		t.Errorf("%d codec spans under StartActivity, want 8\n%s", underStart, tree)
	}

	inSize, outSize := w.encodedSize(t, name), w.encodedSize(t, w.result)
	checks := []struct {
		span sdktrace.ReadOnlySpan
		key  string
		want int64
	}{
		{run, "payloadkit.input.bytes", inSize},
		{run, "payloadkit.result.bytes", outSize},
		{start, "payloadkit.input.bytes", inSize},
		{runAct, "payloadkit.input.bytes", inSize},
		{runAct, "payloadkit.result.bytes", outSize},
	}
	for _, c := range checks {
		if got, _ := spanAttr(c.span, c.key); got != strconv.FormatInt(c.want, 10) {
			t.Errorf("%s %s = %q, want %d", c.span.Name(), c.key, got, c.want)
		}
	}

	m := r.metrics(t)
	for _, c := range []struct {
		kind, typ, dir string
		count          uint64
		want           int64
	}{
		{"workflow", "greetWorkflow", "input", 1, inSize},
		{"workflow", "greetWorkflow", "result", 1, outSize},
		{"activity", "Shout", "input", 2, 2 * inSize}, // measured by the workflow and by the activity
		{"activity", "Shout", "result", 1, outSize},
	} {
		dps := histInt(t, m[MetricPayloadSize], map[string]string{"kind": c.kind, "type": c.typ, "direction": c.dir, "stage": "interceptor"})
		if len(dps) != 1 || dps[0].Count != c.count || dps[0].Sum != c.want {
			t.Errorf("payload.size %s/%s/%s = %+v, want %d points summing %d", c.kind, c.typ, c.dir, dps, c.count, c.want)
		}
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

func TestWorkflowOffloadDisablesLimit(t *testing.T) {
	// The same input passes when the offload stage is on.
	name := strings.Repeat("y", 3000)
	w := &workflowRun{}
	r := newRecorder(t, Options{LimitSize: 2000, Logger: slog.New(slog.DiscardHandler)})
	r.tel.SetOffloadEnabled(true)
	w.dc = r.tel.DataConverter(converter.GetDefaultDataConverter(), []converter.PayloadCodec{r.tel.WrapCodec(StageCompression, newXorCodec())})
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetDataConverter(w.dc)
	env.SetWorkerOptions(worker.Options{Interceptors: r.tel.WorkerInterceptors()})
	env.RegisterWorkflow(greetWorkflow)
	env.RegisterActivityWithOptions((&shoutActivity{}).Shout, activity.RegisterOptions{Name: "Shout"})
	env.ExecuteWorkflow(greetWorkflow, name)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("with offload on: %v", err)
	}
}
