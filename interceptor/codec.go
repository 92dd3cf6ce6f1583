package interceptor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/converter"
	sdkinterceptor "go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"
)

const (
	opEncode = iota
	opDecode
)

var opNames = [2]string{"encode", "decode"}

// tracedCodec wraps one codec stage. Its binding, set by the context-aware DataConverter, gives
// the parent span and tells whether the workflow is replaying or sizes are being measured.
type tracedCodec struct {
	t     *Telemetry
	stage string
	next  converter.PayloadCodec
	b     *binding
	st    *stageAttrs
}

// stageAttrs holds the per-stage attribute sets, built once per WrapCodec.
type stageAttrs struct {
	spanName [2]string
	spanAttr [2][]attribute.KeyValue
	durOK    [2]metric.MeasurementOption
	durErr   [2]metric.MeasurementOption
	before   [2]metric.MeasurementOption
	after    [2]metric.MeasurementOption
}

var (
	_ converter.PayloadCodec                         = (*tracedCodec)(nil)
	_ converter.PayloadCodecWithSerializationContext = (*tracedCodec)(nil)
)

// WrapCodec returns c wrapped so that each Encode and Decode records a span
// "payloadkit.<stage>.<encode|decode>" (unless Options.DisableCodecTracing), the metrics
// payloadkit.codec.duration and payloadkit.payload.size, with payload counts and sizes (sums of
// proto sizes). The wrapper forwards WithSerializationContext to c. Spans are children of the
// span of the context bound by the DataConverter built with Telemetry.DataConverter.
func (t *Telemetry) WrapCodec(stage string, c converter.PayloadCodec) converter.PayloadCodec {
	st := &stageAttrs{}
	for op, name := range opNames {
		st.spanName[op] = "payloadkit." + stage + "." + name
		st.spanAttr[op] = []attribute.KeyValue{AttrStage.String(stage), AttrOperation.String(name)}
		st.durOK[op] = metric.WithAttributeSet(attribute.NewSet(
			attribute.String("stage", stage), attribute.String("operation", name), attribute.String("outcome", "ok")))
		st.durErr[op] = metric.WithAttributeSet(attribute.NewSet(
			attribute.String("stage", stage), attribute.String("operation", name), attribute.String("outcome", "error")))
		st.before[op] = metric.WithAttributeSet(attribute.NewSet(
			attribute.String("stage", stage), attribute.String("operation", name), attribute.String("position", "before")))
		st.after[op] = metric.WithAttributeSet(attribute.NewSet(
			attribute.String("stage", stage), attribute.String("operation", name), attribute.String("position", "after")))
	}
	return &tracedCodec{t: t, stage: stage, next: c, st: st}
}

// Encode implements converter.PayloadCodec.
func (c *tracedCodec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	return c.run(opEncode, payloads)
}

// Decode implements converter.PayloadCodec.
func (c *tracedCodec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	return c.run(opDecode, payloads)
}

// WithSerializationContext implements converter.PayloadCodecWithSerializationContext: it
// forwards sc to the wrapped codec and wraps the result again.
func (c *tracedCodec) WithSerializationContext(sc converter.SerializationContext) converter.PayloadCodec {
	n, ok := c.next.(converter.PayloadCodecWithSerializationContext)
	if !ok {
		return c
	}
	cp := *c
	cp.next = n.WithSerializationContext(sc)
	return &cp
}

func (c *tracedCodec) withBinding(b *binding) *tracedCodec {
	cp := *c
	cp.b = b
	return &cp
}

func (c *tracedCodec) call(op int, payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	if op == opEncode {
		return c.next.Encode(payloads)
	}
	return c.next.Decode(payloads)
}

func (c *tracedCodec) run(op int, in []*commonpb.Payload) ([]*commonpb.Payload, error) {
	b := c.b
	if b != nil {
		if b.measuring {
			if c.stage == StageOffload && op == opEncode {
				return in, nil // measuring: sizes before offload, never a store write
			}
			return c.call(op, in)
		}
		if b.replaying() {
			return c.call(op, in)
		}
	}
	t := c.t
	ctx := b.context()
	durOn := t.codecDuration.Enabled(ctx)
	sizeOn := t.payloadSize.Enabled(ctx)
	var span trace.Span
	if !t.opts.DisableCodecTracing {
		ctx, span = t.tracer.Start(ctx, c.st.spanName[op], trace.WithSpanKind(trace.SpanKindInternal))
		if !span.IsRecording() {
			span.End()
			span = nil
		}
	}
	if span == nil && !durOn && !sizeOn {
		return c.call(op, in)
	}

	var inSize int64
	if span != nil || sizeOn {
		inSize = totalSize(in)
	}
	start := time.Now()
	out, err := c.call(op, in)
	elapsed := time.Since(start).Seconds()

	if err != nil {
		if durOn {
			t.codecDuration.Record(ctx, elapsed, c.st.durErr[op])
		}
		if sizeOn {
			t.payloadSize.Record(ctx, inSize, c.st.before[op])
		}
		if span != nil {
			span.SetAttributes(append(c.st.spanAttr[op][:2:2],
				AttrPayloadCount.Int(len(in)),
				AttrBytesIn.Int64(inSize),
				AttrOutcome.String("error"),
				AttrErrorType.String(errorType(err)),
			)...)
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			span.End()
		}
		return out, err
	}
	var outSize int64
	if span != nil || sizeOn {
		outSize = totalSize(out)
	}
	if durOn {
		t.codecDuration.Record(ctx, elapsed, c.st.durOK[op])
	}
	if sizeOn {
		t.payloadSize.Record(ctx, inSize, c.st.before[op])
		t.payloadSize.Record(ctx, outSize, c.st.after[op])
	}
	if span != nil {
		span.SetAttributes(append(c.st.spanAttr[op][:2:2],
			AttrPayloadCount.Int(len(in)),
			AttrBytesIn.Int64(inSize),
			AttrBytesOut.Int64(outSize),
			AttrOutcome.String("ok"),
		)...)
		span.End()
	}
	return out, nil
}

func totalSize(payloads []*commonpb.Payload) int64 {
	var n int64
	for _, p := range payloads {
		n += int64(proto.Size(p))
	}
	return n
}

// errorType names an error for the error.type attribute: the message of the sentinel at the
// bottom of a chain of fmt.Errorf wrappings, or else the Go type of the first error that is
// not such a wrapping.
func errorType(err error) string {
	for err != nil {
		name := fmt.Sprintf("%T", err)
		switch name {
		case "*fmt.wrapError":
			if next := errors.Unwrap(err); next != nil {
				err = next
				continue
			}
		case "*fmt.wrapErrors":
			if errs := err.(interface{ Unwrap() []error }).Unwrap(); len(errs) > 0 {
				err = errs[0]
				continue
			}
		case "*errors.errorString":
			return err.Error()
		}
		return name
	}
	return "unknown"
}

// measuringKey marks a context whose conversions only measure sizes.
type measuringKey struct{}

// binding is the context a DataConverter was bound to with WithContext and WithWorkflowContext.
type binding struct {
	ctx       context.Context
	wctx      workflow.Context
	measuring bool

	once   sync.Once
	parent context.Context
}

func newBinding(ctx context.Context, wctx workflow.Context) *binding {
	b := &binding{ctx: ctx, wctx: wctx}
	if ctx != nil {
		b.measuring = ctx.Value(measuringKey{}) != nil
	}
	return b
}

// replaying reports whether the bound workflow is replaying: then nothing is recorded.
func (b *binding) replaying() bool {
	return b.wctx != nil && workflow.IsReplaying(b.wctx)
}

// context returns the context codec spans start from (its span is their parent).
func (b *binding) context() context.Context {
	if b == nil {
		return context.Background()
	}
	b.once.Do(func() { b.parent = b.resolve() })
	return b.parent
}

// resolve picks the parent of codec spans, first found wins:
//
//  1. the span the SDK tracing interceptor stored in the workflow context (for example the
//     StartActivity span around the encoding of an activity's input);
//  2. the span of the Go context (for example the client's StartWorkflow span);
//  3. the caller's span carried in the Temporal header of the workflow or activity context.
//     An activity's input is decoded, and its result encoded, outside the RunActivity span, so
//     their codec spans are children of the workflow's StartActivity span; a workflow's input
//     is decoded before its RunWorkflow span starts, so those spans are children of the
//     client's StartWorkflow span.
func (b *binding) resolve() context.Context {
	base := b.ctx
	if base == nil {
		base = context.Background()
	}
	if b.wctx != nil {
		if span, ok := opentelemetry.SpanFromWorkflowContext(b.wctx); ok && span.SpanContext().IsValid() {
			return trace.ContextWithSpan(base, span)
		}
	}
	if trace.SpanContextFromContext(base).IsValid() {
		return base
	}
	if b.wctx != nil {
		if sc := headerSpanContext(sdkinterceptor.WorkflowHeader(b.wctx)); sc.IsValid() {
			return trace.ContextWithRemoteSpanContext(base, sc)
		}
	}
	if b.ctx != nil {
		if sc := headerSpanContext(sdkinterceptor.Header(b.ctx)); sc.IsValid() {
			return trace.ContextWithRemoteSpanContext(base, sc)
		}
	}
	return base
}
