package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporaltest"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/interceptor"
)

// Knobs, from the environment (defaults in parentheses):
//
//	PAYLOADKIT_BENCH_ROUNDS          interleaved rounds per size (5)
//	PAYLOADKIT_BENCH_WORKFLOWS_8K    workflows per configuration per round at 8 KiB (48)
//	PAYLOADKIT_BENCH_WORKFLOWS_256K  workflows per configuration per round at 256 KiB (24)
//	PAYLOADKIT_BENCH_INFLIGHT        workflows in flight per configuration (32)
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// Activities of the benchmark's workflow: each takes the invoice, marks a step and returns it,
// so every activity input and result carries the whole document.
func validateInvoice(_ context.Context, inv Invoice) (Invoice, error) {
	inv.Status = "validated"
	inv.ProcessedBy = append(inv.ProcessedBy, "validate")
	return inv, nil
}

func priceInvoice(_ context.Context, inv Invoice) (Invoice, error) {
	inv.Status = "priced"
	inv.ProcessedBy = append(inv.ProcessedBy, "price")
	return inv, nil
}

func approveInvoice(_ context.Context, inv Invoice) (Invoice, error) {
	inv.Status = "approved"
	inv.ProcessedBy = append(inv.ProcessedBy, "approve")
	return inv, nil
}

// InvoiceWorkflow passes its input through the three activities and returns the result.
func InvoiceWorkflow(ctx workflow.Context, inv Invoice) (Invoice, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	for _, act := range []any{validateInvoice, priceInvoice, approveInvoice} {
		if err := workflow.ExecuteActivity(ctx, act, inv).Get(ctx, &inv); err != nil {
			return Invoice{}, err
		}
	}
	return inv, nil
}

// config is one alternative: a client with its own worker and task queue on the shared server.
type config struct {
	name   string // short name used in metric units
	label  string // table label
	client client.Client
	queue  string
}

// discardExporter drops every span: the tracer provider still records and batches them.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// setup starts the server and the four configurations; cleanup stops them.
func setup(b *testing.B) (configs []*config, cleanup func()) {
	ctx := context.Background()
	ts := temporaltest.NewServer()
	ns := ts.GetDefaultNamespace()
	logger := sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	var closers []func()
	var workers []worker.Worker

	zeroKit, err := payloadkit.New(ctx, payloadkit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	closers = append(closers, func() { _ = zeroKit.Close() })

	ring, err := codec.NewStaticKeyring("bench", map[string][]byte{"bench": codec.GenerateKey()})
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	closers = append(closers, func() { _ = tp.Shutdown(ctx); _ = mp.Shutdown(ctx) })
	fullKit, err := payloadkit.New(ctx, payloadkit.Options{
		Compression: &codec.CompressionOptions{},
		Encryption:  &codec.EncryptionOptions{Keys: ring},
		Telemetry:   &interceptor.Options{TracerProvider: tp, MeterProvider: mp},
	})
	if err != nil {
		b.Fatal(err)
	}
	closers = append(closers, func() { _ = fullKit.Close() })

	base := client.Options{Namespace: ns, Logger: logger}
	zlibOpts := base
	zlibOpts.DataConverter = converter.NewCodecDataConverter(converter.GetDefaultDataConverter(),
		converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true}))
	type alt struct {
		name, label string
		copts       client.Options
		wopts       worker.Options
	}
	alts := []alt{
		{"default", "SDK default converter", base, worker.Options{}},
		{"zlib", "SDK zlib codec", zlibOpts, worker.Options{}},
		{"kit-zero", "Kit, zero Options", zeroKit.ClientOptions(base), zeroKit.WorkerOptions(worker.Options{})},
		{"kit-full", "Kit, zstd+AES-GCM+OTel SDK", fullKit.ClientOptions(base), fullKit.WorkerOptions(worker.Options{})},
	}
	for _, a := range alts {
		c := ts.NewClientWithOptions(a.copts)
		queue := "bench-" + a.name
		w := worker.New(c, queue, a.wopts)
		w.RegisterWorkflow(InvoiceWorkflow)
		w.RegisterActivity(validateInvoice)
		w.RegisterActivity(priceInvoice)
		w.RegisterActivity(approveInvoice)
		if err := w.Start(); err != nil {
			b.Fatal(err)
		}
		workers = append(workers, w)
		configs = append(configs, &config{name: a.name, label: a.label, client: c, queue: queue})
	}
	return configs, func() {
		for _, w := range workers {
			w.Stop()
		}
		ts.Stop() // closes the clients
		for _, f := range slices.Backward(closers) {
			f()
		}
	}
}

// runBatch runs n workflows on cfg, inflight at a time, and returns workflows per second.
func runBatch(b *testing.B, cfg *config, inv Invoice, n, inflight int, tag string) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			run, err := cfg.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
				ID:        fmt.Sprintf("%s-%s-%d", cfg.name, tag, i),
				TaskQueue: cfg.queue,
			}, InvoiceWorkflow, inv)
			var out Invoice
			if err == nil {
				err = run.Get(ctx, &out)
			}
			if err == nil && (out.Status != "approved" || len(out.Lines) != len(inv.Lines)) {
				err = fmt.Errorf("unexpected result: status %q, %d lines", out.Status, len(out.Lines))
			}
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", cfg.name, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	return float64(n) / elapsed.Seconds()
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkThroughput measures workflows per second for each configuration in interleaved rounds:
// every round runs a batch on each configuration, one after the other, starting with a different
// configuration each round. The ratio of a configuration to the default converter is the median
// over rounds of that round's ratio, so both sides of each ratio ran seconds apart. A warm-up
// batch per configuration is run first and not counted. Run with -benchtime 1x: one iteration
// is the whole measurement.
func BenchmarkThroughput(b *testing.B) {
	configs, cleanup := setup(b)
	defer cleanup()
	rounds := envInt("PAYLOADKIT_BENCH_ROUNDS", 5)
	inflight := envInt("PAYLOADKIT_BENCH_INFLIGHT", 32)
	sizes := []struct {
		name      string
		bytes     int
		workflows int
	}{
		{"8KiB", 8 << 10, envInt("PAYLOADKIT_BENCH_WORKFLOWS_8K", 48)},
		{"256KiB", 256 << 10, envInt("PAYLOADKIT_BENCH_WORKFLOWS_256K", 24)},
	}
	for _, size := range sizes {
		b.Run(size.name, func(b *testing.B) {
			inv := NewInvoice(42, size.bytes)
			for range b.N {
				for _, cfg := range configs {
					runBatch(b, cfg, inv, min(8, size.workflows), inflight, size.name+"-warmup")
				}
				rates := make([][]float64, len(configs)) // [config][round]
				for r := range rounds {
					for k := range configs {
						i := (r + k) % len(configs)
						tag := fmt.Sprintf("%s-r%d", size.name, r)
						rates[i] = append(rates[i], runBatch(b, configs[i], inv, size.workflows, inflight, tag))
					}
				}
				report(b, size.name, size.workflows, inflight, configs, rates)
			}
		})
	}
}

// report prints the table of one size and reports each configuration's median rate and ratio.
func report(b *testing.B, size string, workflows, inflight int, configs []*config, rates [][]float64) {
	rounds := len(rates[0])
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nThroughput at %s: workflows/s, %d workflows x 3 activities per configuration per round, %d in flight, GOMAXPROCS=%d\n",
		size, workflows, inflight, runtime.GOMAXPROCS(0))
	fmt.Fprintf(&sb, "%-28s", "configuration")
	for r := range rounds {
		fmt.Fprintf(&sb, " %7s", fmt.Sprintf("r%d", r+1))
	}
	fmt.Fprintf(&sb, " %7s %9s\n", "median", "vs default")
	for i, cfg := range configs {
		fmt.Fprintf(&sb, "%-28s", cfg.label)
		ratios := make([]float64, rounds)
		for r, v := range rates[i] {
			fmt.Fprintf(&sb, " %7.1f", v)
			ratios[r] = v / rates[0][r]
		}
		ratio := median(ratios)
		fmt.Fprintf(&sb, " %7.1f %9.2fx\n", median(rates[i]), ratio)
		b.ReportMetric(median(rates[i]), cfg.name+"-wf/s")
		if i > 0 {
			b.ReportMetric(ratio, cfg.name+"-vs-default-x")
		}
	}
	fmt.Fprint(os.Stdout, sb.String())
	b.ReportMetric(0, "ns/op")
}
