package interceptor_test

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/interceptor"
	"github.com/payloadkit/payloadkit/internal/benchutil"
	"github.com/payloadkit/payloadkit/offload"
)

// BenchmarkPipelineTelemetry runs encode+decode round trips of a 64 KiB JSON payload through the
// Kit's whole pipeline (zstd compression, envelope encryption with a static keyring, offload
// stage with a memory store) with telemetry on (SDK tracer provider sampling everything into a
// no-op exporter, a ManualReader meter provider, a parent span in the context) and with
// telemetry off (no-op providers), interleaved in one run (benchutil.Interleave), and prints
// the on/off ratio: the median of the per-round ratios of the summed times of
// pipelineInstances Kits of each configuration (benchutil.Result.RatioOfSums). Two Kits built
// alike differ by up to 10% on this kind of machine (where their encoders' tables lie in
// memory), more than the effect measured, so one Kit of each would measure that luck. The
// A/A control, half the telemetry-off Kits against the other half, shows what is left of it.
const pipelineInstances = 4

func BenchmarkPipelineTelemetry(b *testing.B) {
	ring, err := codec.NewStaticKeyring("k1", map[string][]byte{"k1": codec.GenerateKey()})
	if err != nil {
		b.Fatal(err)
	}
	newDC := func(tel *interceptor.Options) converter.DataConverter {
		kit, err := payloadkit.New(context.Background(), payloadkit.Options{
			Encryption: &codec.EncryptionOptions{Keys: ring},
			Offload:    &offload.Options{Store: offload.NewMemoryStore()},
			Telemetry:  tel,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = kit.Close() })
		return kit.DataConverter()
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	ctx, parent := tp.Tracer("bench").Start(context.Background(), "RunActivity:Bench")
	defer parent.End()

	type rec struct {
		ID    int    `json:"id"`
		Email string `json:"email"`
		SKU   string `json:"sku"`
		Cents int    `json:"cents"`
	}
	rng := rand.New(rand.NewSource(1))
	var value []rec
	for size := 0; size < 64<<10; size += 70 {
		value = append(value, rec{ID: len(value), Email: fmt.Sprintf("user%d@example.com", rng.Intn(5000)), SKU: fmt.Sprintf("SKU-%04d", rng.Intn(300)), Cents: rng.Intn(100000)})
	}
	roundTrip := func(dc converter.DataConverter) func() {
		return func() {
			p, err := dc.ToPayload(value)
			if err != nil {
				b.Fatal(err)
			}
			var out []rec
			if err := dc.FromPayload(p, &out); err != nil || len(out) != len(value) {
				b.Fatalf("round trip: %v", err)
			}
		}
	}
	// Alternatives 2i are telemetry off, 2i+1 on.
	var fns []func()
	var offs, ons []int
	for i := range pipelineInstances {
		off := newDC(&interceptor.Options{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()})
		on := newDC(&interceptor.Options{TracerProvider: tp, MeterProvider: mp})
		fns = append(fns,
			roundTrip(off.(workflow.ContextAware).WithContext(context.Background())),
			roundTrip(on.(workflow.ContextAware).WithContext(ctx)))
		offs, ons = append(offs, 2*i), append(ons, 2*i+1)
	}
	res := benchutil.Interleave(b, fns...)
	mean := func(idx []int) float64 {
		var sum float64
		for _, i := range idx {
			sum += res.NsPerOp[i]
		}
		return sum / float64(len(idx))
	}
	onOff := res.RatioOfSums(ons, offs)
	half := len(offs) / 2
	aa := res.RatioOfSums(offs[:half], offs[half:])
	b.ReportMetric(mean(offs), "off-ns/op")
	b.ReportMetric(mean(ons), "on-ns/op")
	b.ReportMetric(onOff, "on/off")
	b.ReportMetric(aa, "aa-control")
	if b.N > 1 {
		fmt.Fprintf(os.Stderr, "\nfull pipeline, 64 KiB JSON, %d Kits of each, %d rounds: off %.0f ns, on %.0f ns, on/off %.3f (A/A control, off Kits against off Kits: %.3f)\n",
			pipelineInstances, b.N, mean(offs), mean(ons), onOff, aa)
	}
}
