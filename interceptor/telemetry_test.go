package interceptor

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdkinterceptor "go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/internal/pipeline"
)

func TestNewDefaultsAndValidation(t *testing.T) {
	tel, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	o := tel.Options()
	if o.WarnSize != DefaultWarnSize || o.LimitSize != 2*1024*1024 || o.Logger != slog.Default() {
		t.Errorf("defaults not applied: %+v", o)
	}
	if o.TracerProvider != otel.GetTracerProvider() || o.MeterProvider != otel.GetMeterProvider() {
		t.Error("providers do not default to the globals")
	}
	if n := len(tel.ClientInterceptors()); n != 2 {
		t.Errorf("%d client interceptors, want SDK tracing + size", n)
	}
	if n := len(tel.WorkerInterceptors()); n != 3 {
		t.Errorf("%d worker interceptors, want size outbound + SDK tracing + size", n)
	}
	if _, ok := tel.ClientInterceptors()[1].(*sizeInterceptor); !ok {
		t.Error("the client size interceptor must come after (inside) the SDK tracing interceptor")
	}

	tel, err = New(&Options{DisableSDKTracing: true, DisablePayloadSize: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(tel.ClientInterceptors())+len(tel.WorkerInterceptors()) != 0 {
		t.Error("interceptors returned although both are disabled")
	}

	for _, bad := range []Options{{WarnSize: -1}, {LimitSize: -5}} {
		if _, err := New(&bad); err == nil {
			t.Errorf("New(%+v) accepted a negative size", bad)
		}
	}
}

func TestKeyAndObjectEvents(t *testing.T) {
	r := newRecorder(t, Options{})
	r.tel.RecordKeyEvent(KeyEvent{Kind: "kms", Operation: "GenerateDataKey"})
	r.tel.RecordKeyEvent(KeyEvent{Kind: "kms", Operation: "Decrypt", Err: errors.New("denied")})
	r.tel.RecordKeyEvent(KeyEvent{Kind: "cache", Operation: "Decrypt", Hit: true})
	r.tel.RecordKeyEvent(KeyEvent{Kind: "cache", Operation: "Decrypt", Hit: true})
	r.tel.RecordKeyEvent(KeyEvent{Kind: "cache", Operation: "Decrypt"})
	r.tel.RecordObjectEvent(ObjectEvent{Operation: "put", Bytes: 1000})
	r.tel.RecordObjectEvent(ObjectEvent{Operation: "deduplicated", Bytes: 1000})
	r.tel.RecordObjectEvent(ObjectEvent{Operation: "get", Bytes: 1000})
	r.tel.RecordObjectEvent(ObjectEvent{Operation: "get", Err: errors.New("missing")})

	m := r.metrics(t)
	checks := []struct {
		metric string
		attrs  map[string]string
		want   int64
	}{
		{MetricKMSRequests, map[string]string{"operation": "GenerateDataKey", "outcome": "ok"}, 1},
		{MetricKMSRequests, map[string]string{"operation": "Decrypt", "outcome": "error"}, 1},
		{MetricKMSCache, map[string]string{"operation": "Decrypt", "result": "hit"}, 2},
		{MetricKMSCache, map[string]string{"operation": "Decrypt", "result": "miss"}, 1},
		{MetricOffloadObjects, map[string]string{"operation": "put"}, 1},
		{MetricOffloadObjects, map[string]string{"operation": "deduplicated"}, 1},
		{MetricOffloadObjects, map[string]string{"operation": "get", "outcome": "ok"}, 1},
		{MetricOffloadObjects, map[string]string{"operation": "get", "outcome": "error"}, 1},
		{MetricOffloadBytes, map[string]string{"operation": "put"}, 1000},
		{MetricOffloadBytes, map[string]string{"operation": "get"}, 1000},
	}
	for _, c := range checks {
		if got := sumInt(t, m[c.metric], c.attrs); got != c.want {
			t.Errorf("%s%v = %d, want %d", c.metric, c.attrs, got, c.want)
		}
	}
}

// fakeClientOutbound stands for the SDK's client: it encodes the workflow's input with the
// DataConverter bound to the context it receives and the workflow's serialization context, as
// the SDK does, and counts the start requests that would reach the server.
type fakeClientOutbound struct {
	sdkinterceptor.ClientOutboundInterceptorBase
	dc    converter.DataConverter
	calls int
}

func (f *fakeClientOutbound) ExecuteWorkflow(ctx context.Context, in *sdkinterceptor.ClientExecuteWorkflowInput) (client.WorkflowRun, error) {
	dc := converter.WithDataConverterSerializationContext(f.dc.(workflow.ContextAware).WithContext(ctx),
		converter.WorkflowSerializationContext{Namespace: "default", WorkflowID: in.Options.ID})
	if _, err := dc.ToPayloads(in.Args...); err != nil {
		return nil, err
	}
	f.calls++
	return nil, nil
}

func TestClientExecuteWorkflowSize(t *testing.T) {
	var logs bytes.Buffer
	r := newRecorder(t, Options{WarnSize: 200, LimitSize: 1000, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	inner := newXorCodec()
	dc := r.dataConverter(stage(stageCompression, inner))
	next := &fakeClientOutbound{dc: dc}
	out := (&sizeInterceptor{t: r.tel}).InterceptClient(next)

	tr := r.tel.opts.TracerProvider.Tracer("test")
	run := func(out sdkinterceptor.ClientOutboundInterceptor, arg string) error {
		ctx, span := tr.Start(context.Background(), "StartWorkflow:Greet")
		defer span.End()
		_, err := out.ExecuteWorkflow(ctx, &sdkinterceptor.ClientExecuteWorkflowInput{
			Options: &client.StartWorkflowOptions{ID: "wf-1"}, WorkflowType: "Greet", Args: []any{arg},
		})
		return err
	}

	small := strings.Repeat("a", 20)
	if err := run(out, small); err != nil {
		t.Fatal(err)
	}
	// One encode per start: the size comes from it.
	if n := inner.log.encodes(); n != 1 {
		t.Errorf("%d encodes for one start, want 1", n)
	}
	want, _ := dc.ToPayloads(small) // the test's own encode, to compare
	spans := r.ended("StartWorkflow:Greet")
	if got, _ := spanAttr(spans[0], "payloadkit.input.bytes"); got != strconv.Itoa(proto.Size(want)) {
		t.Errorf("input.bytes %s, want %d", got, proto.Size(want))
	}
	if len(spans[0].Events()) != 0 || logs.Len() != 0 {
		t.Error("warning recorded for a small payload")
	}

	medium := strings.Repeat("b", 300)
	if err := run(out, medium); err != nil {
		t.Fatal(err)
	}
	spans = r.ended("StartWorkflow:Greet")
	if ev := spans[1].Events(); len(ev) != 1 || ev[0].Name != EventLargePayload {
		t.Errorf("events %v, want one %s", ev, EventLargePayload)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "type=Greet") || strings.Contains(logs.String(), medium) {
		t.Errorf("warning log %q: want a WARN naming the type, without the payload", logs.String())
	}

	big := strings.Repeat("c", 2000)
	err := run(out, big)
	if !errors.Is(err, ErrPayloadTooLarge) || !strings.Contains(err.Error(), `"Greet"`) || !strings.Contains(err.Error(), "offload") {
		t.Fatalf("error %v: want ErrPayloadTooLarge naming Greet and suggesting offload", err)
	}
	if next.calls != 2 {
		t.Errorf("start requests %d, want 2 (not for the too-large input)", next.calls)
	}

	// With the size limit off (the Kit turns it off when an offload stage is configured), the
	// same input passes and is still measured.
	noLimit, err := New(&Options{WarnSize: 200, LimitSize: 1000, DisableSizeLimit: true,
		TracerProvider: r.tel.opts.TracerProvider, MeterProvider: r.tel.opts.MeterProvider, Logger: r.tel.logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := run((&sizeInterceptor{t: noLimit}).InterceptClient(next), big); err != nil {
		t.Errorf("with the limit off: %v", err)
	}
	if n := inner.log.encodes(); n != 5 {
		t.Errorf("%d encodes for four starts and the test's own, want 5", n)
	}

	sizes := histInt(t, r.metrics(t)[MetricPayloadSize], map[string]string{"kind": "workflow", "type": "Greet", "direction": "input", "stage": "interceptor"})
	if len(sizes) != 1 || sizes[0].Count != 4 {
		t.Fatalf("payload.size points %+v, want 4 measurements", sizes)
	}
	if minV, _ := sizes[0].Min.Value(); minV != int64(proto.Size(want)) {
		t.Errorf("smallest size %d, want %d", minV, proto.Size(want))
	}
}

func TestClientSizeNeverEncodes(t *testing.T) {
	// The interceptor itself never encodes: with a next that does not encode, no codec runs.
	tel, err := New(&Options{DisableSDKTracing: true})
	if err != nil {
		t.Fatal(err)
	}
	inner := newXorCodec()
	pipeline.New(pipeline.Options{Stages: []pipeline.Stage{stage(stageCompression, inner)}, Observer: tel})
	next := &countingClientOutbound{}
	out := tel.ClientInterceptors()[0].InterceptClient(next)
	if _, err := out.ExecuteWorkflow(context.Background(), &sdkinterceptor.ClientExecuteWorkflowInput{
		Options: &client.StartWorkflowOptions{ID: "x"}, WorkflowType: "W", Args: []any{"v"},
	}); err != nil {
		t.Fatal(err)
	}
	if next.calls != 1 || inner.log.encodes() != 0 {
		t.Errorf("next calls %d, encodes %d; want 1 and 0", next.calls, inner.log.encodes())
	}
}

// countingClientOutbound counts ExecuteWorkflow calls and encodes nothing.
type countingClientOutbound struct {
	sdkinterceptor.ClientOutboundInterceptorBase
	calls int
}

func (f *countingClientOutbound) ExecuteWorkflow(context.Context, *sdkinterceptor.ClientExecuteWorkflowInput) (client.WorkflowRun, error) {
	f.calls++
	return nil, nil
}
