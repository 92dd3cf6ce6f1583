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
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/internal/pipeline"
)

// CodecCall describes one call of a codec stage's Encode or Decode, as the Kit's pipeline
// reports it to ObserveCodec: stage name, operation ("encode" or "decode"), the payloads in and
// out, start time, duration and error.
type CodecCall = pipeline.CodecCall

var _ pipeline.Observer = (*Telemetry)(nil)

// opAttrs holds the attribute sets of one stage and operation.
type opAttrs struct {
	spanName string
	spanAttr []attribute.KeyValue
	durOK    metric.MeasurementOption
	durErr   metric.MeasurementOption
	before   metric.MeasurementOption
	after    metric.MeasurementOption
}

// stageAttrs holds the attribute sets of one stage, by operation (encode, decode), built on
// first use.
type stageAttrs [2]opAttrs

func (t *Telemetry) attrs(stage, op string) *opAttrs {
	i := 0
	if op == pipeline.OpDecode {
		i = 1
	}
	if v, ok := t.stageAttrs.Load(stage); ok {
		return &v.(*stageAttrs)[i]
	}
	var a stageAttrs
	for j, op := range [2]string{pipeline.OpEncode, pipeline.OpDecode} {
		a[j] = opAttrs{
			spanName: "payloadkit." + stage + "." + op,
			spanAttr: []attribute.KeyValue{AttrStage.String(stage), AttrOperation.String(op)},
			durOK: metric.WithAttributeSet(attribute.NewSet(
				attribute.String("stage", stage), attribute.String("operation", op), attribute.String("outcome", "ok"))),
			durErr: metric.WithAttributeSet(attribute.NewSet(
				attribute.String("stage", stage), attribute.String("operation", op), attribute.String("outcome", "error"))),
			before: metric.WithAttributeSet(attribute.NewSet(
				attribute.String("stage", stage), attribute.String("operation", op), attribute.String("position", "before"))),
			after: metric.WithAttributeSet(attribute.NewSet(
				attribute.String("stage", stage), attribute.String("operation", op), attribute.String("position", "after"))),
		}
	}
	v, _ := t.stageAttrs.LoadOrStore(stage, &a)
	return &v.(*stageAttrs)[i]
}

// ObserveCodec implements the Kit pipeline's observer hook: it returns the function that
// records one codec stage call made by a DataConverter bound to ctx and wctx (either may be
// nil). Each call records a span "payloadkit.<stage>.<encode|decode>" (unless
// Options.DisableCodecTracing) with the payload count and the bytes in and out (sums of proto
// sizes), a payloadkit.codec.duration point and payloadkit.payload.size points (position before
// and after the stage). Failures set the span status to Error with an error.type attribute.
// Spans are children of the span of the bound context (see the package documentation).
func (t *Telemetry) ObserveCodec(ctx context.Context, wctx workflow.Context) func(CodecCall) {
	parent := t.parentContext(ctx, wctx)
	durOn := t.codecDuration.Enabled(parent)
	sizeOn := t.payloadSize.Enabled(parent)
	tracing := !t.opts.DisableCodecTracing
	if !tracing && !durOn && !sizeOn {
		return nil
	}
	return func(c CodecCall) {
		a := t.attrs(c.Stage, c.Op)
		var span trace.Span
		if tracing {
			_, span = t.tracer.Start(parent, a.spanName, trace.WithSpanKind(trace.SpanKindInternal), trace.WithTimestamp(c.Start))
			if !span.IsRecording() {
				span.End()
				span = nil
			}
		}
		var inSize, outSize int64
		if span != nil || sizeOn {
			inSize = totalSize(c.In)
			if c.Err == nil {
				outSize = totalSize(c.Out)
			}
		}
		if durOn {
			opt := a.durOK
			if c.Err != nil {
				opt = a.durErr
			}
			t.codecDuration.Record(parent, c.Duration.Seconds(), opt)
		}
		if sizeOn {
			t.payloadSize.Record(parent, inSize, a.before)
			if c.Err == nil {
				t.payloadSize.Record(parent, outSize, a.after)
			}
		}
		if span == nil {
			return
		}
		end := trace.WithTimestamp(c.Start.Add(c.Duration))
		if c.Err != nil {
			span.SetAttributes(append(a.spanAttr[:2:2],
				AttrPayloadCount.Int(len(c.In)),
				AttrBytesIn.Int64(inSize),
				AttrOutcome.String("error"),
				AttrErrorType.String(errorType(c.Err)),
			)...)
			span.RecordError(c.Err)
			span.SetStatus(codes.Error, c.Err.Error())
			span.End(end)
			return
		}
		span.SetAttributes(append(a.spanAttr[:2:2],
			AttrPayloadCount.Int(len(c.In)),
			AttrBytesIn.Int64(inSize),
			AttrBytesOut.Int64(outSize),
			AttrOutcome.String("ok"),
		)...)
		span.End(end)
	}
}

func totalSize(payloads []*commonpb.Payload) int64 {
	var n int64
	for _, p := range payloads {
		n += int64(proto.Size(p))
	}
	return n
}

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
