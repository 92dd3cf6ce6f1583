package interceptor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/internal/pipeline"
)

// Stage names of the test pipelines (the Kit defines its own in the payloadkit package).
const (
	stageCompression = "compression"
	stageEncryption  = "encryption"
	stageOffload     = "offload"
)

func mustPayloads(t *testing.T, values ...any) []*commonpb.Payload {
	t.Helper()
	ps, err := converter.GetDefaultDataConverter().ToPayloads(values...)
	if err != nil {
		t.Fatal(err)
	}
	return ps.Payloads
}

func TestTracedCodecRecordsSpanAndMetrics(t *testing.T) {
	r := newRecorder(t, Options{})
	inner := newXorCodec()
	c := r.codec(stageCompression, inner)

	in := mustPayloads(t, "hello", 42)
	inCopy := []*commonpb.Payload{proto.Clone(in[0]).(*commonpb.Payload), proto.Clone(in[1]).(*commonpb.Payload)}
	out, err := c.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if !proto.Equal(in[i], inCopy[i]) {
			t.Fatalf("input payload %d mutated", i)
		}
	}
	back, err := c.Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(back[0], in[0]) || !proto.Equal(back[1], in[1]) {
		t.Fatal("round trip changed payloads")
	}

	enc := r.ended(SpanEncode)
	dec := r.ended(SpanDecode)
	if len(enc) != 1 || len(dec) != 1 {
		t.Fatalf("spans: %d encode, %d decode, want 1 and 1", len(enc), len(dec))
	}
	inSize, outSize := payloadsSize(in), payloadsSize(out)
	if inSize == outSize {
		t.Fatal("test codec must change sizes")
	}
	for _, tc := range []struct {
		span    sdktrace.ReadOnlySpan
		op      string
		in, out int64
	}{{enc[0], "encode", inSize, outSize}, {dec[0], "decode", outSize, inSize}} {
		want := map[string]string{
			"payloadkit.operation":             tc.op,
			"payloadkit.payload.count":         "2",
			"payloadkit.bytes.in":              strconv.FormatInt(tc.in, 10),
			"payloadkit.bytes.out":             strconv.FormatInt(tc.out, 10),
			"payloadkit.compression.bytes_in":  strconv.FormatInt(tc.in, 10),
			"payloadkit.compression.bytes_out": strconv.FormatInt(tc.out, 10),
			"payloadkit.outcome":               "ok",
		}
		if _, ok := spanAttr(tc.span, string(AttrStageDuration(stageCompression))); !ok {
			t.Errorf("%s span has no %s", tc.op, AttrStageDuration(stageCompression))
		}
		if _, ok := spanAttr(tc.span, "payloadkit.stage"); ok {
			t.Errorf("%s span names a failing stage", tc.op)
		}
		for k, v := range want {
			if got, ok := spanAttr(tc.span, k); !ok || got != v {
				t.Errorf("%s span %s = %q, want %q", tc.op, k, got, v)
			}
		}
		if tc.span.Status().Code != codes.Unset {
			t.Errorf("%s span status %v, want Unset", tc.op, tc.span.Status())
		}
	}

	m := r.metrics(t)
	for _, op := range []string{"encode", "decode"} {
		dps := histFloat(t, m[MetricCodecDuration], map[string]string{"stage": "compression", "operation": op, "outcome": "ok"})
		if len(dps) != 1 || dps[0].Count != 1 {
			t.Errorf("%s duration points %+v, want one point with count 1", op, dps)
		}
	}
	for _, tc := range []struct {
		op, pos string
		want    int64
	}{
		{"encode", "before", inSize}, {"encode", "after", outSize},
		{"decode", "before", outSize}, {"decode", "after", inSize},
	} {
		dps := histInt(t, m[MetricPayloadSize], map[string]string{"stage": "compression", "operation": tc.op, "position": tc.pos})
		if len(dps) != 1 || dps[0].Count != 1 || dps[0].Sum != tc.want {
			t.Errorf("payload.size %s/%s = %+v, want one point summing %d", tc.op, tc.pos, dps, tc.want)
		}
	}
}

var errTestKeyMissing = errors.New("test: key missing")

func TestTracedCodecErrorStatus(t *testing.T) {
	r := newRecorder(t, Options{})
	inner := newXorCodec()
	inner.fail = fmt.Errorf("encrypt [key=k1]: %w", errTestKeyMissing)
	c := r.codec(stageEncryption, inner)

	if _, err := c.Encode(mustPayloads(t, "x")); !errors.Is(err, errTestKeyMissing) {
		t.Fatalf("Encode error %v, want errTestKeyMissing", err)
	}
	spans := r.ended(SpanEncode)
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Status().Code != codes.Error || s.Status().Description != inner.fail.Error() {
		t.Errorf("status %+v, want Error with the error text", s.Status())
	}
	if got, _ := spanAttr(s, "error.type"); got != errTestKeyMissing.Error() {
		t.Errorf("error.type %q, want the sentinel %q", got, errTestKeyMissing.Error())
	}
	if got, _ := spanAttr(s, "payloadkit.outcome"); got != "error" {
		t.Errorf("outcome %q, want error", got)
	}
	if got, _ := spanAttr(s, "payloadkit.stage"); got != stageEncryption {
		t.Errorf("failing stage %q, want %s", got, stageEncryption)
	}
	if _, ok := spanAttr(s, "payloadkit.encryption.bytes_out"); ok {
		t.Error("failed stage has bytes out")
	}
	var exception bool
	for _, e := range s.Events() {
		exception = exception || e.Name == "exception"
	}
	if !exception {
		t.Error("RecordError event missing")
	}
	dps := histFloat(t, r.metrics(t)[MetricCodecDuration], map[string]string{"stage": "encryption", "operation": "encode", "outcome": "error"})
	if len(dps) != 1 || dps[0].Count != 1 {
		t.Errorf("error duration points %+v, want one", dps)
	}
}

type customErr struct{}

func (customErr) Error() string { return "custom" }

func TestErrorType(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errTestKeyMissing, "test: key missing"},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", errTestKeyMissing)), "test: key missing"},
		{fmt.Errorf("%w: %w", errTestKeyMissing, customErr{}), "test: key missing"},
		{fmt.Errorf("wrapped: %w", customErr{}), "interceptor.customErr"},
		{&fs.PathError{Op: "open", Path: "x", Err: fs.ErrNotExist}, "*fs.PathError"},
		{fmt.Errorf("no wrap %v", customErr{}), "*errors.errorString"},
	} {
		got := errorType(tc.err)
		if tc.want == "*errors.errorString" {
			// An unwrapped fmt.Errorf is an errors.errorString: its text is its name.
			tc.want = tc.err.Error()
		}
		if got != tc.want {
			t.Errorf("errorType(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestDataConverterMatchesCodecDataConverter(t *testing.T) {
	for _, name := range []string{"recording", "disabled"} {
		t.Run(name, func(t *testing.T) {
			opts := Options{}
			if name == "disabled" {
				opts.DisableCodecTracing = true
			}
			r := newRecorder(t, opts)
			a, b := newXorCodec(), newXorCodec()
			b.key = 0x33
			dc := r.dataConverter(stage(stageCompression, b), stage(stageEncryption, a))
			plain := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), a, b)

			// Every context-aware variant must encode exactly like the plain converter.
			variants := map[string]converter.DataConverter{
				"plain":      dc,
				"ctx":        dc.(workflow.ContextAware).WithContext(context.Background()),
				"sc":         dc.(converter.DataConverterWithSerializationContext).WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "ns"}),
				"ctx+sc":     dc.(workflow.ContextAware).WithContext(context.Background()).(converter.DataConverterWithSerializationContext).WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "ns"}),
				"sc+ctx":     dc.(converter.DataConverterWithSerializationContext).WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "ns"}).(workflow.ContextAware).WithContext(context.Background()),
				"dc-wrapped": workflow.DataConverterWithoutDeadlockDetection(dc).(workflow.ContextAware).WithContext(context.Background()),
			}
			want, err := plain.ToPayloads("v", 1, []byte{1, 2})
			if err != nil {
				t.Fatal(err)
			}
			for vname, v := range variants {
				got, err := v.ToPayloads("v", 1, []byte{1, 2})
				if err != nil {
					t.Fatalf("%s: %v", vname, err)
				}
				if !proto.Equal(got, want) {
					t.Errorf("%s: payloads differ from NewCodecDataConverter", vname)
				}
				var s string
				var n int
				var bs []byte
				if err := v.FromPayloads(got, &s, &n, &bs); err != nil || s != "v" || n != 1 || len(bs) != 2 {
					t.Errorf("%s: FromPayloads = %q %d %v, %v", vname, s, n, bs, err)
				}
				if str := v.ToString(got.Payloads[0]); str != `"v"` && str != "v" {
					t.Errorf("%s: ToString = %q", vname, str)
				}
			}
			spans := len(r.ended(""))
			if name == "disabled" && spans != 0 {
				t.Errorf("%d spans with DisableCodecTracing, want 0", spans)
			}
			if name == "recording" && spans == 0 {
				t.Error("no spans recorded")
			}
		})
	}
}

func TestSerializationContextForwarded(t *testing.T) {
	r := newRecorder(t, Options{})
	inner := newXorCodec()
	dc := r.dataConverter(stage(stageEncryption, inner))
	sc := converter.ActivitySerializationContext{Namespace: "ns", WorkflowID: "wf", ActivityType: "Act"}

	tr := r.tel.opts.TracerProvider.Tracer("test")
	ctx, parent := tr.Start(context.Background(), "parent")
	defer parent.End()

	orders := map[string]converter.DataConverter{
		"sc then ctx": dc.(converter.DataConverterWithSerializationContext).WithSerializationContext(sc).(workflow.ContextAware).WithContext(ctx),
		"ctx then sc": dc.(workflow.ContextAware).WithContext(ctx).(converter.DataConverterWithSerializationContext).WithSerializationContext(sc),
	}
	for name, v := range orders {
		before := len(inner.log.contexts())
		if _, err := v.ToPayload("x"); err != nil {
			t.Fatal(err)
		}
		seen := inner.log.contexts()[before:]
		if len(seen) != 1 || seen[0] != sc {
			t.Errorf("%s: codec saw %v, want %v", name, seen, sc)
		}
		spans := r.ended(SpanEncode)
		last := spans[len(spans)-1]
		if last.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("%s: codec span parent %v, want %v", name, last.Parent().SpanID(), parent.SpanContext().SpanID())
		}
	}
	// Unbound use stays context-free.
	before := len(inner.log.contexts())
	if _, err := dc.ToPayload("x"); err != nil {
		t.Fatal(err)
	}
	if seen := inner.log.contexts()[before:]; len(seen) != 1 || seen[0] != nil {
		t.Errorf("unbound converter passed %v, want no serialization context", seen)
	}
}

func TestCodecSpanIsChildOfContextSpan(t *testing.T) {
	r := newRecorder(t, Options{})
	dc := r.dataConverter(stage(stageCompression, newXorCodec()), stage(stageEncryption, newXorCodec()))
	ctx, parent := r.tel.opts.TracerProvider.Tracer("test").Start(context.Background(), "RunActivity:Act")
	p, err := dc.(workflow.ContextAware).WithContext(ctx).ToPayload("x")
	if err != nil {
		t.Fatal(err)
	}
	if err := dc.(workflow.ContextAware).WithContext(ctx).FromPayload(p, new(string)); err != nil {
		t.Fatal(err)
	}
	parent.End()
	// One span per run of the chain, with every stage's timings and sizes in the order they ran.
	for _, tc := range []struct {
		name   string
		stages []string
	}{
		{SpanEncode, []string{stageCompression, stageEncryption}},
		{SpanDecode, []string{stageEncryption, stageCompression}},
	} {
		spans := r.ended(tc.name)
		if len(spans) != 1 {
			t.Fatalf("%s: %d spans, want 1", tc.name, len(spans))
		}
		if spans[0].Parent().SpanID() != parent.SpanContext().SpanID() || spans[0].SpanContext().TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("%s is not a child of the context span", tc.name)
		}
		var order []string
		for _, kv := range spans[0].Attributes() {
			for _, st := range tc.stages {
				if kv.Key == AttrStageDuration(st) {
					order = append(order, st)
				}
			}
		}
		if fmt.Sprint(order) != fmt.Sprint(tc.stages) {
			t.Errorf("%s: stage attributes in order %v, want %v", tc.name, order, tc.stages)
		}
		// Stage sizes chain: each stage receives what the previous one returned.
		in, _ := spanAttr(spans[0], "payloadkit.bytes.in")
		first, _ := spanAttr(spans[0], string(AttrStageBytesIn(tc.stages[0])))
		mid, _ := spanAttr(spans[0], string(AttrStageBytesOut(tc.stages[0])))
		next, _ := spanAttr(spans[0], string(AttrStageBytesIn(tc.stages[1])))
		last, _ := spanAttr(spans[0], string(AttrStageBytesOut(tc.stages[1])))
		out, _ := spanAttr(spans[0], "payloadkit.bytes.out")
		if in != first || mid != next || last != out || in == "" || out == "" {
			t.Errorf("%s: sizes in %s, stages %s->%s, %s->%s, out %s", tc.name, in, first, mid, next, last, out)
		}
	}
	// Without a bound context, codec spans are roots.
	if _, err := dc.ToPayload("y"); err != nil {
		t.Fatal(err)
	}
	spans := r.ended(SpanEncode)
	if spans[len(spans)-1].Parent().IsValid() {
		t.Error("unbound codec span has a parent")
	}
}

func TestProbeLearnsSizeFromTheRealEncode(t *testing.T) {
	r := newRecorder(t, Options{})
	comp, off := newXorCodec(), newXorCodec()
	off.key = 0x11
	dc := r.dataConverter(stage(stageCompression, comp), stage(stageOffload, off))
	var sizes []int64
	ctx := pipeline.WithProbe(context.Background(), func(size int64) error {
		sizes = append(sizes, size)
		return nil
	})
	got, err := dc.(workflow.ContextAware).WithContext(ctx).ToPayloads("abc")
	if err != nil {
		t.Fatal(err)
	}
	// One encode per stage, every stage (offload included), and the size of what was produced.
	if comp.log.encodes() != 1 || off.log.encodes() != 1 {
		t.Errorf("stage encodes: compression %d, offload %d; want 1 and 1", comp.log.encodes(), off.log.encodes())
	}
	if len(sizes) != 1 || sizes[0] != int64(proto.Size(got)) {
		t.Errorf("probe saw %v, want [%d] (the Payloads produced)", sizes, proto.Size(got))
	}
	// A probe reports once.
	if _, err := dc.(workflow.ContextAware).WithContext(ctx).ToPayloads("again"); err != nil || len(sizes) != 1 {
		t.Errorf("second encode under the same probe: %v, sizes %v", err, sizes)
	}
	// A probe's error replaces the payloads.
	refuse := errors.New("too big")
	ctx = pipeline.WithProbe(context.Background(), func(int64) error { return refuse })
	if ps, err := dc.(workflow.ContextAware).WithContext(ctx).ToPayloads("abc"); !errors.Is(err, refuse) || ps != nil {
		t.Errorf("ToPayloads = %v, %v; want nil and the probe's error", ps, err)
	}
}
