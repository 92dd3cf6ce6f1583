package interceptor

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/internal/pipeline"
)

// benchCompression returns the compression stage the benchmark measures: payloadkit's own
// (zstd) when available, else the SDK's zlib codec as a stand-in.
func benchCompression(b *testing.B) (converter.PayloadCodec, string) {
	if c, err := codec.NewCompressionCodec(nil); err == nil {
		return c, "payloadkit zstd"
	}
	return converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true}), "SDK zlib (stand-in)"
}

// benchPayload is 64 KiB of log-like, compressible text.
func benchPayload() []byte {
	rng := rand.New(rand.NewSource(1))
	words := []string{"order", "customer", "shipped", "pending", "amount", "currency", "EUR", "item", "sku", "warehouse"}
	buf := make([]byte, 0, 64<<10)
	for len(buf) < 64<<10 {
		buf = fmt.Appendf(buf, `{"%s":%d,"%s":"%s"},`, words[rng.Intn(len(words))], rng.Intn(100000), words[rng.Intn(len(words))], words[rng.Intn(len(words))])
	}
	return buf[:64<<10]
}

// BenchmarkTelemetryOverhead runs one encode+decode round trip of a 64 KiB payload through the
// compression stage three ways, interleaved so that noise hits all alike:
//
//	baseline: converter.NewCodecDataConverter, no payloadkit telemetry code at all;
//	off:      Telemetry with no-op providers (telemetry off);
//	on:       Telemetry with an SDK tracer provider (AlwaysSample, batching to a no-op
//	          exporter) and a ManualReader meter provider, bound to a parent span.
//
// It reports ns/op of each and the on/off and on/baseline ratios (target: on/off <= 1.05).
func BenchmarkTelemetryOverhead(b *testing.B) {
	comp, compName := benchCompression(b)
	data := benchPayload()

	baseline := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), comp)

	offTel, err := New(&Options{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()})
	if err != nil {
		b.Fatal(err)
	}
	off := pipeline.New(pipeline.Options{Stages: []pipeline.Stage{stage(stageCompression, comp)}, Observer: offTel}).DataConverter()

	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	onTel, err := New(&Options{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		b.Fatal(err)
	}
	onDC := pipeline.New(pipeline.Options{Stages: []pipeline.Stage{stage(stageCompression, comp)}, Observer: onTel}).DataConverter()
	ctx, parent := tp.Tracer("bench").Start(context.Background(), "RunActivity:Bench")
	defer parent.End()

	roundTrip := func(dc converter.DataConverter) time.Duration {
		start := time.Now()
		p, err := dc.ToPayload(data)
		if err != nil {
			b.Fatal(err)
		}
		var out []byte
		if err := dc.FromPayload(p, &out); err != nil || len(out) != len(data) {
			b.Fatalf("round trip: %v", err)
		}
		return time.Since(start)
	}

	var tBase, tOff, tOn time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// The converters are bound per call, as the SDK binds them per task; the order rotates
		// so that no mode always runs right after another.
		for k := range 3 {
			switch (i + k) % 3 {
			case 0:
				tBase += roundTrip(baseline)
			case 1:
				tOff += roundTrip(off.(workflow.ContextAware).WithContext(context.Background()))
			case 2:
				tOn += roundTrip(onDC.(workflow.ContextAware).WithContext(ctx))
			}
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(tBase.Nanoseconds())/n, "baseline-ns/op")
	b.ReportMetric(float64(tOff.Nanoseconds())/n, "off-ns/op")
	b.ReportMetric(float64(tOn.Nanoseconds())/n, "on-ns/op")
	b.ReportMetric(float64(tOn)/float64(tOff), "on/off")
	b.ReportMetric(float64(tOn)/float64(tBase), "on/baseline")
	if b.N > 1 {
		fmt.Fprintf(os.Stderr, "\ncompression: %s, payload 64 KiB, %d round trips\n", compName, b.N)
		fmt.Fprintf(os.Stderr, "%-10s %12s %8s\n", "mode", "ns/op", "ratio")
		fmt.Fprintf(os.Stderr, "%-10s %12.0f %8.3f\n", "baseline", float64(tBase.Nanoseconds())/n, 1.0)
		fmt.Fprintf(os.Stderr, "%-10s %12.0f %8.3f\n", "off", float64(tOff.Nanoseconds())/n, float64(tOff)/float64(tBase))
		fmt.Fprintf(os.Stderr, "%-10s %12.0f %8.3f\n", "on", float64(tOn.Nanoseconds())/n, float64(tOn)/float64(tBase))
	}
}

// identityCodec returns its input: it isolates the cost of the telemetry wrapper.
type identityCodec struct{}

func (identityCodec) Encode(p []*commonpb.Payload) ([]*commonpb.Payload, error) { return p, nil }
func (identityCodec) Decode(p []*commonpb.Payload) ([]*commonpb.Payload, error) { return p, nil }

// BenchmarkCodecWrapper measures the absolute cost of one observed Encode around a codec that
// does nothing, side by side: the bare codec, telemetry off (no-op providers) and telemetry on
// (SDK providers as in BenchmarkTelemetryOverhead; codecs of pipeline.Codecs, bound to no
// context, so their spans are roots). Dividing the on-off difference by the
// cost of a real stage call gives the relative overhead with less noise than timing whole
// round trips.
func BenchmarkCodecWrapper(b *testing.B) {
	payloads := []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: benchPayload()}}
	offTel, err := New(&Options{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()})
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	onTel, err := New(&Options{TracerProvider: tp, MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))})
	if err != nil {
		b.Fatal(err)
	}
	observed := func(tel *Telemetry) converter.PayloadCodec {
		return pipeline.New(pipeline.Options{Stages: []pipeline.Stage{stage(stageCompression, identityCodec{})}, Observer: tel}).Codecs()[0]
	}
	modes := []struct {
		name  string
		codec converter.PayloadCodec
	}{
		{"bare", identityCodec{}},
		{"off", observed(offTel)},
		{"on", observed(onTel)},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.codec.Encode(payloads); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
