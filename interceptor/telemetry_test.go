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
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/offload"
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
	r.tel.KeyEvent(codec.KeyEvent{Kind: "kms", Operation: "GenerateDataKey"})
	r.tel.KeyEvent(codec.KeyEvent{Kind: "kms", Operation: "Decrypt", Err: errors.New("denied")})
	r.tel.KeyEvent(codec.KeyEvent{Kind: "cache", Operation: "Decrypt", Hit: true})
	r.tel.KeyEvent(codec.KeyEvent{Kind: "cache", Operation: "Decrypt", Hit: true})
	r.tel.KeyEvent(codec.KeyEvent{Kind: "cache", Operation: "Decrypt"})
	r.tel.ObjectEvent(offload.ObjectEvent{Operation: "put", Key: "k1", Bytes: 1000})
	r.tel.ObjectEvent(offload.ObjectEvent{Operation: "deduplicated", Key: "k1", Bytes: 1000})
	r.tel.ObjectEvent(offload.ObjectEvent{Operation: "get", Key: "k1", Bytes: 1000})
	r.tel.ObjectEvent(offload.ObjectEvent{Operation: "get", Key: "k2", Err: errors.New("missing")})

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

// fakeClientOutbound records whether ExecuteWorkflow reached it.
type fakeClientOutbound struct {
	sdkinterceptor.ClientOutboundInterceptorBase
	calls int
}

func (f *fakeClientOutbound) ExecuteWorkflow(context.Context, *sdkinterceptor.ClientExecuteWorkflowInput) (client.WorkflowRun, error) {
	f.calls++
	return nil, nil
}

func TestClientExecuteWorkflowSize(t *testing.T) {
	var logs bytes.Buffer
	r := newRecorder(t, Options{WarnSize: 200, LimitSize: 1000, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	inner := newXorCodec()
	dc := r.tel.DataConverter(converter.GetDefaultDataConverter(), []converter.PayloadCodec{r.tel.WrapCodec(StageCompression, inner)})
	next := &fakeClientOutbound{}
	out := (&sizeInterceptor{t: r.tel}).InterceptClient(next)

	tr := r.tel.opts.TracerProvider.Tracer("test")
	run := func(arg string) error {
		ctx, span := tr.Start(context.Background(), "StartWorkflow:Greet")
		defer span.End()
		_, err := out.ExecuteWorkflow(ctx, &sdkinterceptor.ClientExecuteWorkflowInput{
			Options: &client.StartWorkflowOptions{ID: "wf-1"}, WorkflowType: "Greet", Args: []any{arg},
		})
		return err
	}

	small := strings.Repeat("a", 20)
	if err := run(small); err != nil {
		t.Fatal(err)
	}
	want, _ := dc.ToPayloads(small)
	spans := r.ended("StartWorkflow:Greet")
	if got, _ := spanAttr(spans[0], "payloadkit.input.bytes"); got != strconv.Itoa(proto.Size(want)) {
		t.Errorf("input.bytes %s, want %d", got, proto.Size(want))
	}
	if len(spans[0].Events()) != 0 || logs.Len() != 0 {
		t.Error("warning recorded for a small payload")
	}

	medium := strings.Repeat("b", 300)
	if err := run(medium); err != nil {
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
	err := run(big)
	if !errors.Is(err, ErrPayloadTooLarge) || !strings.Contains(err.Error(), `"Greet"`) || !strings.Contains(err.Error(), "offload") {
		t.Fatalf("error %v: want ErrPayloadTooLarge naming Greet and suggesting offload", err)
	}
	if next.calls != 2 {
		t.Errorf("next called %d times, want 2 (not for the too-large input)", next.calls)
	}

	r.tel.SetOffloadEnabled(true)
	if err := run(big); err != nil {
		t.Errorf("with offload on: %v", err)
	}

	sizes := histInt(t, r.metrics(t)[MetricPayloadSize], map[string]string{"kind": "workflow", "type": "Greet", "direction": "input", "stage": "interceptor"})
	if len(sizes) != 1 || sizes[0].Count != 4 {
		t.Fatalf("payload.size points %+v, want 4 measurements", sizes)
	}
	if minV, _ := sizes[0].Min.Value(); minV != int64(proto.Size(want)) {
		t.Errorf("smallest size %d, want %d", minV, proto.Size(want))
	}
}

func TestClientSizeOffWhenNothingRecords(t *testing.T) {
	// No recording span, metrics off (noop provider), offload on: no measuring encode at all.
	tel, err := New(&Options{DisableSDKTracing: true})
	if err != nil {
		t.Fatal(err)
	}
	tel.SetOffloadEnabled(true)
	inner := newXorCodec()
	tel.DataConverter(converter.GetDefaultDataConverter(), []converter.PayloadCodec{tel.WrapCodec(StageCompression, inner)})
	next := &fakeClientOutbound{}
	out := tel.ClientInterceptors()[0].InterceptClient(next)
	if _, err := out.ExecuteWorkflow(context.Background(), &sdkinterceptor.ClientExecuteWorkflowInput{
		Options: &client.StartWorkflowOptions{ID: "x"}, WorkflowType: "W", Args: []any{"v"},
	}); err != nil {
		t.Fatal(err)
	}
	if next.calls != 1 || inner.log.encodes() != 0 {
		t.Errorf("next calls %d, measuring encodes %d; want 1 and 0", next.calls, inner.log.encodes())
	}
}
