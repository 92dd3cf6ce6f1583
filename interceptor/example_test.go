package interceptor_test

import (
	"fmt"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/payloadkit/payloadkit/interceptor"
)

func ExampleFormatSpanTree() {
	tid := trace.TraceID{1}
	sc := func(id byte) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: trace.SpanID{id}})
	}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	stub := func(id, parent byte, name string, start, dur time.Duration) tracetest.SpanStub {
		s := tracetest.SpanStub{Name: name, SpanContext: sc(id), StartTime: t0.Add(start), EndTime: t0.Add(start + dur)}
		if parent != 0 {
			s.Parent = sc(parent)
		}
		return s
	}
	run := stub(1, 0, "RunWorkflow:Greet", 0, 3*time.Millisecond)
	start := stub(2, 1, "StartActivity:Shout", time.Millisecond, time.Millisecond)
	start.Attributes = append(start.Attributes, interceptor.AttrInputBytes.Int64(1234))
	enc := stub(3, 2, interceptor.SpanEncode, time.Millisecond, 140*time.Microsecond)
	enc.Attributes = append(enc.Attributes,
		interceptor.AttrStageDuration("compression").Float64(0.12),
		interceptor.AttrStageBytesIn("compression").Int64(65536),
		interceptor.AttrStageBytesOut("compression").Int64(2048),
		interceptor.AttrStageDuration("encryption").Float64(0.015),
		interceptor.AttrStageBytesIn("encryption").Int64(2048),
		interceptor.AttrStageBytesOut("encryption").Int64(2136),
		interceptor.AttrBytesIn.Int64(65536), interceptor.AttrBytesOut.Int64(2136))
	act := stub(4, 2, "RunActivity:Shout", 1500*time.Microsecond, 400*time.Microsecond)

	spans := tracetest.SpanStubs{act, enc, start, run}.Snapshots()
	fmt.Print(interceptor.FormatSpanTree(spans))
	// Output:
	// RunWorkflow:Greet 3ms
	// └─ StartActivity:Shout 1ms input=1.2KiB
	//    ├─ payloadkit.encode 140µs 64.0KiB -> 2.1KiB (compression 120µs -> 2.0KiB, encryption 15µs -> 2.1KiB)
	//    └─ RunActivity:Shout 400µs
}
