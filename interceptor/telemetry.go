package interceptor

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/contrib/opentelemetry"
	sdkinterceptor "go.temporal.io/sdk/interceptor"
)

// ScopeName is the OpenTelemetry instrumentation scope name of payloadkit: the name of its
// tracer and meter.
const ScopeName = "github.com/payloadkit/payloadkit"

// SDKTracerName is the tracer name given to the Temporal SDK's tracing interceptor, the name
// the SDK uses by default.
const SDKTracerName = "temporal-sdk-go"

// Defaults of Options.
const (
	// DefaultWarnSize is the encoded size, in bytes, of a workflow or activity input or result
	// above which a span event and a warning are recorded (512 KiB, the size at which the
	// Temporal server starts warning).
	DefaultWarnSize = 512 << 10
	// DefaultLimitSize is the encoded size, in bytes, above which an input or result fails
	// early unless Options.DisableSizeLimit (2 MiB, the Temporal server's default blob limit).
	DefaultLimitSize = 2 * 1024 * 1024
)

// Metric names.
const (
	MetricCodecDuration  = "payloadkit.codec.duration"
	MetricPayloadSize    = "payloadkit.payload.size"
	MetricKMSRequests    = "payloadkit.kms.requests"
	MetricKMSCache       = "payloadkit.kms.cache"
	MetricOffloadObjects = "payloadkit.offload.objects"
	MetricOffloadBytes   = "payloadkit.offload.bytes"
)

// Span attribute keys set by payloadkit. On codec spans AttrStage names the stage that failed;
// per-stage timings and sizes use AttrStageDuration, AttrStageBytesIn and AttrStageBytesOut.
const (
	AttrStage        = attribute.Key("payloadkit.stage")
	AttrOperation    = attribute.Key("payloadkit.operation")
	AttrPayloadCount = attribute.Key("payloadkit.payload.count")
	AttrBytesIn      = attribute.Key("payloadkit.bytes.in")
	AttrBytesOut     = attribute.Key("payloadkit.bytes.out")
	AttrOutcome      = attribute.Key("payloadkit.outcome")
	AttrInputBytes   = attribute.Key("payloadkit.input.bytes")
	AttrResultBytes  = attribute.Key("payloadkit.result.bytes")
	AttrErrorType    = attribute.Key("error.type")
)

// EventLargePayload is the name of the span event recorded when an input or result crosses
// Options.WarnSize.
const EventLargePayload = "payloadkit.payload.large"

// EventPayloadSize is the span event recording the size of an activity input measured inside
// the calling workflow's own span, when the activity's StartActivity span is not the current
// one (attributes kind, type, direction, bytes).
const EventPayloadSize = "payloadkit.payload.size"

// Options configure telemetry. A nil *Options and the zero value record with the OpenTelemetry
// global providers and every switch on.
type Options struct {
	// TracerProvider creates payloadkit's tracer (named ScopeName) and the tracer of the
	// Temporal SDK's tracing interceptor. Defaults to otel.GetTracerProvider(), read once by New
	// (the global provider delegates to a provider installed later).
	TracerProvider trace.TracerProvider
	// MeterProvider creates payloadkit's meter (named ScopeName). Defaults to otel.GetMeterProvider().
	MeterProvider metric.MeterProvider

	// DisableCodecTracing turns off the codec spans. Codec metrics are still recorded.
	DisableCodecTracing bool
	// EndSpansImmediately ends each codec span as its chain run returns. By default codec spans
	// are ended in bursts, at most 20 ms or 64 spans after their chain run (their start and end
	// times are unchanged), because a batching span processor wakes its goroutine for every span
	// ended alone, which cost more than the rest of telemetry together; Flush (and the Kit's
	// FlushSpans and Close) ends the waiting ones. Set it when reading spans synchronously, for
	// example from a tracetest.SpanRecorder right after a call (workflowtest's Kit does).
	EndSpansImmediately bool
	// DisableSDKTracing leaves out the Temporal SDK's OpenTelemetry tracing interceptor
	// (go.temporal.io/sdk/contrib/opentelemetry), which is otherwise the first of both
	// ClientInterceptors and WorkerInterceptors.
	DisableSDKTracing bool
	// DisablePayloadSize leaves out the payload-size interceptors: no input/result sizes, no
	// large-payload warnings and no early size-limit errors.
	DisablePayloadSize bool
	// DisableSizeLimit turns off the early size-limit errors only: sizes and warnings are still
	// recorded. The Kit sets it when an offload stage is configured, since offloading keeps
	// large payloads out of Temporal history.
	DisableSizeLimit bool

	// WarnSize is the encoded size, in bytes, of a workflow or activity input or result above
	// which a span event and a log line are recorded. Defaults to DefaultWarnSize.
	// Negative values are rejected.
	WarnSize int
	// LimitSize is the encoded size, in bytes, above which an input or result fails early with
	// ErrPayloadTooLarge (unless DisableSizeLimit), checked on the real encode, before the
	// payload reaches the server. Defaults to DefaultLimitSize. Negative values are rejected.
	LimitSize int

	// Logger receives the large-payload warnings (never payload contents). Defaults to slog.Default().
	Logger *slog.Logger
}

// Telemetry is the instrumentation built from Options: the observer of the Kit's codec chain
// (ObserveChain), interceptors, and recorders for key and offload events. It is safe for
// concurrent use.
type Telemetry struct {
	opts   Options
	tracer trace.Tracer
	logger *slog.Logger

	codecDuration metric.Float64Histogram
	payloadSize   metric.Int64Histogram
	kmsRequests   metric.Int64Counter
	kmsCache      metric.Int64Counter
	// cacheOpts holds the attribute sets of cache lookups of the key operations the codec
	// reports, by operation and hit, so that the hot path allocates nothing.
	cacheOpts      map[string]*[2][]metric.AddOption
	offloadObjects metric.Int64Counter
	offloadBytes   metric.Int64Counter

	sdkTracing sdkinterceptor.Interceptor // nil when DisableSDKTracing
	headerKey  string                     // Temporal header field of the SDK tracer's spans

	stageAttrs sync.Map // stage name -> *stageAttrs
	ender      spanEnder
}

// New builds Telemetry from opts (nil means defaults). It returns an error for invalid options.
func New(opts *Options) (*Telemetry, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.WarnSize < 0 {
		return nil, fmt.Errorf("WarnSize %d: must not be negative", o.WarnSize)
	}
	if o.LimitSize < 0 {
		return nil, fmt.Errorf("LimitSize %d: must not be negative", o.LimitSize)
	}
	if o.TracerProvider == nil {
		o.TracerProvider = otel.GetTracerProvider()
	}
	if o.MeterProvider == nil {
		o.MeterProvider = otel.GetMeterProvider()
	}
	if o.WarnSize == 0 {
		o.WarnSize = DefaultWarnSize
	}
	if o.LimitSize == 0 {
		o.LimitSize = DefaultLimitSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}

	t := &Telemetry{opts: o, logger: o.Logger, ender: spanEnder{immediate: o.EndSpansImmediately, delay: spanEndDelay}}
	t.tracer = o.TracerProvider.Tracer(ScopeName)
	meter := o.MeterProvider.Meter(ScopeName)
	var err error
	if t.codecDuration, err = meter.Float64Histogram(MetricCodecDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of one payload codec call.")); err != nil {
		return nil, fmt.Errorf("creating %s: %w", MetricCodecDuration, err)
	}
	if t.payloadSize, err = meter.Int64Histogram(MetricPayloadSize, metric.WithUnit("By"),
		metric.WithDescription("Encoded size of payloads, by codec stage or by workflow/activity input and result.")); err != nil {
		return nil, fmt.Errorf("creating %s: %w", MetricPayloadSize, err)
	}
	if t.kmsRequests, err = meter.Int64Counter(MetricKMSRequests, metric.WithUnit("{request}"),
		metric.WithDescription("Calls to the key provider.")); err != nil {
		return nil, fmt.Errorf("creating %s: %w", MetricKMSRequests, err)
	}
	if t.kmsCache, err = meter.Int64Counter(MetricKMSCache, metric.WithUnit("{lookup}"),
		metric.WithDescription("Data-key cache lookups.")); err != nil {
		return nil, fmt.Errorf("creating %s: %w", MetricKMSCache, err)
	}
	t.cacheOpts = map[string]*[2][]metric.AddOption{}
	for _, op := range []string{"GenerateDataKey", "Decrypt"} {
		t.cacheOpts[op] = &[2][]metric.AddOption{
			{metric.WithAttributeSet(attribute.NewSet(attribute.String("operation", op), attribute.String("result", "miss")))},
			{metric.WithAttributeSet(attribute.NewSet(attribute.String("operation", op), attribute.String("result", "hit")))},
		}
	}
	if t.offloadObjects, err = meter.Int64Counter(MetricOffloadObjects, metric.WithUnit("{object}"),
		metric.WithDescription("Offload store operations.")); err != nil {
		return nil, fmt.Errorf("creating %s: %w", MetricOffloadObjects, err)
	}
	if t.offloadBytes, err = meter.Int64Counter(MetricOffloadBytes, metric.WithUnit("By"),
		metric.WithDescription("Bytes written to or read from the offload store.")); err != nil {
		return nil, fmt.Errorf("creating %s: %w", MetricOffloadBytes, err)
	}
	sdkTracer, err := opentelemetry.NewTracer(opentelemetry.TracerOptions{
		Tracer: o.TracerProvider.Tracer(SDKTracerName),
	})
	if err != nil {
		return nil, fmt.Errorf("building the SDK tracer: %w", err)
	}
	t.headerKey = sdkTracer.Options().HeaderKey
	if !o.DisableSDKTracing {
		t.sdkTracing = sdkinterceptor.NewTracingInterceptor(sdkTracer)
	}
	return t, nil
}

// Flush ends the codec spans still waiting to be ended (see Options.EndSpansImmediately), so
// that span processors and recorders receive them now. Call it before reading spans
// synchronously, and before shutting down the tracer provider.
func (t *Telemetry) Flush() { t.ender.flush() }

// Options returns the options in effect, defaults applied.
func (t *Telemetry) Options() Options { return t.opts }

// KeyEvent reports one key-provider call or one data-key cache lookup to RecordKeyEvent.
type KeyEvent struct {
	// Kind is "kms" for a key-provider call, "cache" for a data-key cache lookup.
	Kind string
	// Operation is "GenerateDataKey" or "Decrypt".
	Operation string
	// Hit reports a cache hit (Kind "cache").
	Hit bool
	// Err is the call's error, if any (Kind "kms").
	Err error
}

// RecordKeyEvent records a key-provider call (payloadkit.kms.requests) or a data-key cache
// lookup (payloadkit.kms.cache). The Kit calls it from the encryption stage's key events.
func (t *Telemetry) RecordKeyEvent(e KeyEvent) {
	ctx := context.Background()
	switch e.Kind {
	case "kms":
		t.kmsRequests.Add(ctx, 1, metric.WithAttributes(
			attribute.String("operation", e.Operation), attribute.String("outcome", outcome(e.Err))))
	case "cache":
		if opts := t.cacheOpts[e.Operation]; opts != nil {
			hit := 0
			if e.Hit {
				hit = 1
			}
			t.kmsCache.Add(ctx, 1, opts[hit]...)
			return
		}
		result := "miss"
		if e.Hit {
			result = "hit"
		}
		t.kmsCache.Add(ctx, 1, metric.WithAttributes(
			attribute.String("operation", e.Operation), attribute.String("result", result)))
	}
}

// ObjectEvent reports one offload store operation to RecordObjectEvent.
type ObjectEvent struct {
	// Operation is "put", "get" or "deduplicated" (a put skipped because the object existed).
	Operation string
	// Bytes is the object size.
	Bytes int64
	// Err is the operation's error, if any.
	Err error
}

// RecordObjectEvent records an offload store operation (payloadkit.offload.objects and
// payloadkit.offload.bytes). Failed operations count as objects with outcome "error" and add no
// bytes. The Kit calls it from the offload stage's object events.
func (t *Telemetry) RecordObjectEvent(e ObjectEvent) {
	ctx := context.Background()
	attrs := metric.WithAttributes(attribute.String("operation", e.Operation), attribute.String("outcome", outcome(e.Err)))
	t.offloadObjects.Add(ctx, 1, attrs)
	if e.Err == nil && e.Bytes > 0 {
		t.offloadBytes.Add(ctx, e.Bytes, attrs)
	}
}

// ClientInterceptors returns the client interceptors telemetry adds, outermost first: the
// Temporal SDK's tracing interceptor (unless Options.DisableSDKTracing), then the payload-size
// interceptor (unless Options.DisablePayloadSize).
func (t *Telemetry) ClientInterceptors() []sdkinterceptor.ClientInterceptor {
	var out []sdkinterceptor.ClientInterceptor
	if t.sdkTracing != nil {
		out = append(out, t.sdkTracing)
	}
	if !t.opts.DisablePayloadSize {
		out = append(out, &sizeInterceptor{t: t})
	}
	return out
}

// WorkerInterceptors returns the worker interceptors telemetry adds. Unless
// Options.DisablePayloadSize, the payload-size interceptors surround the Temporal SDK's tracing
// interceptor (unless Options.DisableSDKTracing) so that they run inside its spans both ways:
// the first measures activity inputs in workflows (outbound calls nest in reverse list order),
// the last workflow and activity results.
func (t *Telemetry) WorkerInterceptors() []sdkinterceptor.WorkerInterceptor {
	var out []sdkinterceptor.WorkerInterceptor
	if !t.opts.DisablePayloadSize {
		out = append(out, &sizeOutboundInterceptor{t: t})
	}
	if t.sdkTracing != nil {
		out = append(out, t.sdkTracing)
	}
	if !t.opts.DisablePayloadSize {
		out = append(out, &sizeInterceptor{t: t})
	}
	return out
}

func outcome(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}
