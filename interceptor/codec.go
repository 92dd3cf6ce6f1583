package interceptor

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/contrib/opentelemetry"
	sdkinterceptor "go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"

	"github.com/payloadkit/payloadkit/internal/pbwire"
	"github.com/payloadkit/payloadkit/internal/pipeline"
)

// CodecCall describes one call of a codec stage's Encode or Decode within a ChainCall: stage
// name, the payloads in and out, duration and error.
type CodecCall = pipeline.CodecCall

// ChainCall describes one run of the Kit's codec chain, as the pipeline reports it to
// ObserveChain: the operation, the payloads in and out, start time, duration, the call of each
// stage in the order they ran, and the error of the stage that failed.
type ChainCall = pipeline.ChainCall

var _ pipeline.Observer = (*Telemetry)(nil)

// Names of the codec spans: one per run of the chain.
const (
	SpanEncode = "payloadkit.encode"
	SpanDecode = "payloadkit.decode"
)

// AttrStageDuration returns the attribute key, on a codec span, of the time the stage took, in
// milliseconds: "payloadkit.<stage>.duration_ms".
func AttrStageDuration(stage string) attribute.Key {
	return attribute.Key("payloadkit." + stage + ".duration_ms")
}

// AttrStageBytesIn returns the attribute key, on a codec span, of the bytes the stage received
// (sum of proto sizes): "payloadkit.<stage>.bytes_in".
func AttrStageBytesIn(stage string) attribute.Key {
	return attribute.Key("payloadkit." + stage + ".bytes_in")
}

// AttrStageBytesOut returns the attribute key, on a codec span, of the bytes the stage returned
// (sum of proto sizes; absent when it failed): "payloadkit.<stage>.bytes_out".
func AttrStageBytesOut(stage string) attribute.Key {
	return attribute.Key("payloadkit." + stage + ".bytes_out")
}

const stageDurationSuffix = ".duration_ms"

// opAttrs holds the metric attribute sets of one stage and operation, each as a one-element
// option slice: passing a stored slice to Record allocates nothing, a fresh variadic would.
type opAttrs struct {
	durOK  []metric.RecordOption
	durErr []metric.RecordOption
	before []metric.RecordOption
	after  []metric.RecordOption
}

func recordOpts(kvs ...attribute.KeyValue) []metric.RecordOption {
	return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(kvs...))}
}

// stageAttrs holds the span attribute keys of one stage and its metric attribute sets by
// operation (encode, decode), built on first use.
type stageAttrs struct {
	duration, bytesIn, bytesOut attribute.Key
	ops                         [2]opAttrs
}

func (t *Telemetry) attrs(stage string) *stageAttrs {
	if v, ok := t.stageAttrs.Load(stage); ok {
		return v.(*stageAttrs)
	}
	a := &stageAttrs{duration: AttrStageDuration(stage), bytesIn: AttrStageBytesIn(stage), bytesOut: AttrStageBytesOut(stage)}
	for j, op := range [2]string{pipeline.OpEncode, pipeline.OpDecode} {
		a.ops[j] = opAttrs{
			durOK:  recordOpts(attribute.String("stage", stage), attribute.String("operation", op), attribute.String("outcome", "ok")),
			durErr: recordOpts(attribute.String("stage", stage), attribute.String("operation", op), attribute.String("outcome", "error")),
			before: recordOpts(attribute.String("stage", stage), attribute.String("operation", op), attribute.String("position", "before")),
			after:  recordOpts(attribute.String("stage", stage), attribute.String("operation", op), attribute.String("position", "after")),
		}
	}
	v, _ := t.stageAttrs.LoadOrStore(stage, a)
	return v.(*stageAttrs)
}

// Span start options by operation.
var (
	encodeStart = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(AttrOperation.String(pipeline.OpEncode))}
	decodeStart = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(AttrOperation.String(pipeline.OpDecode))}
)

// ObserveChain implements the Kit pipeline's observer hook: it returns the function that
// records one run of the codec chain made by a DataConverter bound to ctx and wctx (either may
// be nil). Each run records one span, SpanEncode or SpanDecode (unless
// Options.DisableCodecTracing), with the payload count, the bytes in and out of the whole chain
// and, for each stage that ran, its duration and bytes in and out (AttrStageDuration,
// AttrStageBytesIn, AttrStageBytesOut). Each stage call records a payloadkit.codec.duration
// point and payloadkit.payload.size points (position before and after the stage). A failure
// sets the span status to Error with error.type and the failing stage (payloadkit.stage).
// Spans are children of the span of the bound context (see the package documentation).
func (t *Telemetry) ObserveChain(ctx context.Context, wctx workflow.Context) func(*ChainCall) {
	parent := t.parentContext(ctx, wctx)
	durOn := t.codecDuration.Enabled(parent)
	sizeOn := t.payloadSize.Enabled(parent)
	tracing := !t.opts.DisableCodecTracing
	if !tracing && !durOn && !sizeOn {
		return nil
	}
	return func(c *ChainCall) { t.recordChain(parent, c, tracing, durOn, sizeOn) }
}

func (t *Telemetry) recordChain(parent context.Context, c *ChainCall, tracing, durOn, sizeOn bool) {
	var span trace.Span
	if tracing {
		name, opts := SpanEncode, encodeStart
		if c.Op == pipeline.OpDecode {
			name, opts = SpanDecode, decodeStart
		}
		_, span = t.tracer.Start(parent, name, append(opts[:len(opts):len(opts)], trace.WithTimestamp(c.Start))...)
		if !span.IsRecording() {
			span.End()
			span = nil
		}
	}
	op := 0
	if c.Op == pipeline.OpDecode {
		op = 1
	}
	measure := span != nil || sizeOn
	var attrs []attribute.KeyValue
	if span != nil {
		attrs = make([]attribute.KeyValue, 0, 6+3*len(c.Stages))
	}
	var size, chainIn int64
	if measure {
		size = totalSize(c.In)
		chainIn = size
	}
	for i := range c.Stages {
		s := &c.Stages[i]
		a := t.attrs(s.Stage)
		var outSize int64
		if measure && s.Err == nil {
			outSize = totalSize(s.Out)
		}
		if durOn {
			opt := a.ops[op].durOK
			if s.Err != nil {
				opt = a.ops[op].durErr
			}
			t.codecDuration.Record(parent, s.Duration.Seconds(), opt...)
		}
		if sizeOn {
			t.payloadSize.Record(parent, size, a.ops[op].before...)
			if s.Err == nil {
				t.payloadSize.Record(parent, outSize, a.ops[op].after...)
			}
		}
		if span != nil {
			attrs = append(attrs, a.duration.Float64(float64(s.Duration.Nanoseconds())/1e6), a.bytesIn.Int64(size))
			if s.Err == nil {
				attrs = append(attrs, a.bytesOut.Int64(outSize))
			}
		}
		size = outSize
	}
	if span == nil {
		return
	}
	attrs = append(attrs, AttrPayloadCount.Int(len(c.In)), AttrBytesIn.Int64(chainIn))
	end := c.Start.Add(c.Duration)
	if c.Err != nil {
		failed := ""
		if n := len(c.Stages); n > 0 {
			failed = c.Stages[n-1].Stage
		}
		attrs = append(attrs, AttrOutcome.String("error"), AttrStage.String(failed), AttrErrorType.String(errorType(c.Err)))
		span.SetAttributes(attrs...)
		span.RecordError(c.Err)
		span.SetStatus(codes.Error, c.Err.Error())
		t.ender.end(span, end)
		return
	}
	attrs = append(attrs, AttrBytesOut.Int64(size), AttrOutcome.String("ok"))
	span.SetAttributes(attrs...)
	t.ender.end(span, end)
}

func totalSize(payloads []*commonpb.Payload) int64 { return pbwire.TotalSize(payloads) }

// Types of the errors fmt.Errorf and errors.New make, taken from values those functions
// return: errorType sees through the wrappings and names a sentinel by its text.
var (
	fmtWrapType  = reflect.TypeOf(fmt.Errorf("%w", errors.ErrUnsupported))
	fmtWrapsType = reflect.TypeOf(fmt.Errorf("%w%w", errors.ErrUnsupported, errors.ErrUnsupported))
	sentinelType = reflect.TypeOf(errors.New(""))
)

// errorType names an error for the error.type attribute: the text of the sentinel (an
// errors.New value) at the bottom of a chain of fmt.Errorf wrappings, or else the Go type of
// the first error that is not such a wrapping.
func errorType(err error) string {
	for err != nil {
		switch reflect.TypeOf(err) {
		case fmtWrapType:
			if next := errors.Unwrap(err); next != nil {
				err = next
				continue
			}
		case fmtWrapsType:
			if errs := err.(interface{ Unwrap() []error }).Unwrap(); len(errs) > 0 {
				err = errs[0]
				continue
			}
		case sentinelType:
			return err.Error()
		}
		return fmt.Sprintf("%T", err)
	}
	return "unknown"
}

// parentContext picks the context whose span becomes the parent of the codec spans of a
// DataConverter bound to ctx and wctx; first found wins:
//
//  1. the span the SDK tracing interceptor stored in the workflow context (for example the
//     StartActivity span around the encoding of an activity's input);
//  2. the span of the Go context (for example the client's StartWorkflow span);
//  3. the caller's span carried in the Temporal header of the workflow or activity context.
//     An activity's input is decoded, and its result encoded, outside the RunActivity span, so
//     their codec spans are children of the workflow's StartActivity span; a workflow's input
//     is decoded before its RunWorkflow span starts, so those spans are children of the
//     client's StartWorkflow span.
func (t *Telemetry) parentContext(ctx context.Context, wctx workflow.Context) context.Context {
	base := ctx
	if base == nil {
		base = context.Background()
	}
	if wctx != nil {
		if span, ok := opentelemetry.SpanFromWorkflowContext(wctx); ok && span.SpanContext().IsValid() {
			return trace.ContextWithSpan(base, span)
		}
	}
	if trace.SpanContextFromContext(base).IsValid() {
		return base
	}
	if wctx != nil {
		if sc := t.headerSpanContext(sdkinterceptor.WorkflowHeader(wctx)); sc.IsValid() {
			return trace.ContextWithRemoteSpanContext(base, sc)
		}
	}
	if ctx != nil {
		if sc := t.headerSpanContext(sdkinterceptor.Header(ctx)); sc.IsValid() {
			return trace.ContextWithRemoteSpanContext(base, sc)
		}
	}
	return base
}
