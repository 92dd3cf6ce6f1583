package interceptor

import (
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestFormatSpanTreeOrphansAndErrors(t *testing.T) {
	t0 := time.Unix(0, 0)
	sc := func(id byte) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9}, SpanID: trace.SpanID{id}})
	}
	a := tracetest.SpanStub{Name: "b-root", SpanContext: sc(1), StartTime: t0, EndTime: t0.Add(2 * time.Second)}
	// Parent 7 is not in the set: an orphan is printed as a root.
	b := tracetest.SpanStub{Name: "a-orphan", SpanContext: sc(2), Parent: sc(7), StartTime: t0, EndTime: t0.Add(time.Microsecond)}
	c := tracetest.SpanStub{Name: SpanEncode, SpanContext: sc(3), Parent: sc(1), StartTime: t0, EndTime: t0.Add(5 * time.Millisecond)}
	c.Attributes = append(c.Attributes, AttrStageDuration("encryption").Float64(4.5), AttrStageBytesIn("encryption").Int64(512), AttrBytesIn.Int64(512))
	d := tracetest.SpanStub{Name: "RunActivity:X", SpanContext: sc(4), Parent: sc(1), StartTime: t0.Add(time.Millisecond), EndTime: t0.Add(3 * time.Millisecond)}
	d.Attributes = append(d.Attributes, AttrResultBytes.Int64(3<<20))
	d.Events = []sdktrace.Event{{Name: EventLargePayload, Time: t0}}
	got := FormatSpanTree(tracetest.SpanStubs{d, c, b, a}.Snapshots())
	want := strings.Join([]string{
		"a-orphan 1µs",
		"b-root 2s",
		"├─ payloadkit.encode 5ms 512B -> error (encryption 4.5ms -> error)",
		"└─ RunActivity:X 2ms result=3.0MiB [large payload]",
		"",
	}, "\n")
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if FormatSpanTree(nil) != "" {
		t.Error("empty input must give an empty tree")
	}
}
