package interceptor

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/opentelemetry"
	sdkinterceptor "go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/payloadkit/payloadkit/internal/pbwire"
	"github.com/payloadkit/payloadkit/internal/pipeline"
)

// ErrPayloadTooLarge is returned (wrapped) when a workflow or activity input or result is
// larger than Options.LimitSize while the size limit is on (the Kit turns it off when an
// offload stage is configured). In workflows and activities it arrives as the cause of a
// non-retryable temporal.ApplicationError of type PayloadTooLargeErrorType.
var ErrPayloadTooLarge = errors.New("payloadkit: payload too large")

// PayloadTooLargeErrorType is the temporal.ApplicationError type of size-limit failures raised
// in workflows and activities.
const PayloadTooLargeErrorType = "PayloadTooLarge"

// Values of the "kind" and "direction" attributes of the payload-size measurements.
const (
	KindWorkflow     = "workflow"
	KindActivity     = "activity"
	DirectionInput   = "input"
	DirectionResult  = "result"
	StageInterceptor = "interceptor"
)

// sizeInterceptor records the encoded size of workflow and activity inputs and results.
//
// Sizes come from the real encode: the interceptor hands the Kit's DataConverter a probe
// (pipeline.Probe) with the context it passes on, or, for results, which the SDK encodes after
// every interceptor has returned, registers one for the context's cancellation scope. The
// DataConverter tells the probe the size of the Payloads it produced, and returns the probe's
// ErrPayloadTooLarge error instead of payloads over the limit, before anything reaches the
// server. No value is encoded a second time. With a DataConverter that is not a Kit's, nothing
// is measured. In a replaying workflow nothing is recorded, but the limit check still runs so
// that replays take the same path as the original run.
type sizeInterceptor struct {
	sdkinterceptor.InterceptorBase
	t *Telemetry
}

// InterceptClient implements interceptor.ClientInterceptor.
func (s *sizeInterceptor) InterceptClient(next sdkinterceptor.ClientOutboundInterceptor) sdkinterceptor.ClientOutboundInterceptor {
	return &sizeClientOutbound{ClientOutboundInterceptorBase: sdkinterceptor.ClientOutboundInterceptorBase{Next: next}, t: s.t}
}

// InterceptWorkflow implements interceptor.WorkerInterceptor.
func (s *sizeInterceptor) InterceptWorkflow(ctx workflow.Context, next sdkinterceptor.WorkflowInboundInterceptor) sdkinterceptor.WorkflowInboundInterceptor {
	return &sizeWorkflowInbound{WorkflowInboundInterceptorBase: sdkinterceptor.WorkflowInboundInterceptorBase{Next: next}, t: s.t}
}

// InterceptActivity implements interceptor.WorkerInterceptor.
func (s *sizeInterceptor) InterceptActivity(ctx context.Context, next sdkinterceptor.ActivityInboundInterceptor) sdkinterceptor.ActivityInboundInterceptor {
	return &sizeActivityInbound{ActivityInboundInterceptorBase: sdkinterceptor.ActivityInboundInterceptorBase{Next: next}, t: s.t}
}

// sizeOutboundInterceptor measures activity inputs in workflows. Outbound interceptors nest in
// the reverse order of the worker's interceptor list, so it is listed before the SDK tracing
// interceptor to run inside it, where the StartActivity span is current.
type sizeOutboundInterceptor struct {
	sdkinterceptor.WorkerInterceptorBase
	t *Telemetry
}

// InterceptWorkflow implements interceptor.WorkerInterceptor.
func (s *sizeOutboundInterceptor) InterceptWorkflow(ctx workflow.Context, next sdkinterceptor.WorkflowInboundInterceptor) sdkinterceptor.WorkflowInboundInterceptor {
	return &sizeWorkflowInit{WorkflowInboundInterceptorBase: sdkinterceptor.WorkflowInboundInterceptorBase{Next: next}, t: s.t}
}

type sizeWorkflowInit struct {
	sdkinterceptor.WorkflowInboundInterceptorBase
	t *Telemetry
}

func (w *sizeWorkflowInit) Init(outbound sdkinterceptor.WorkflowOutboundInterceptor) error {
	return w.Next.Init(&sizeWorkflowOutbound{WorkflowOutboundInterceptorBase: sdkinterceptor.WorkflowOutboundInterceptorBase{Next: outbound}, t: w.t})
}

// measurement is one input or result being measured: what its probe records and how it fails.
type measurement struct {
	t         *Telemetry
	ctx       context.Context  // metrics context; nil means context.Background()
	wctx      workflow.Context // the workflow measured in, or nil: nothing is recorded while it replays
	span      trace.Span       // the span to annotate, or nil
	asEvent   bool             // record the size as an EventPayloadSize event of span
	kind      string
	typ       string
	direction string
	// application wraps the limit error in a non-retryable temporal.ApplicationError, as
	// workflows and activities need to fail without retrying.
	application bool
	// refused is the error the probe returned, if any.
	refused error
}

// probe is the measurement's pipeline.Probe.
func (m *measurement) probe(size int64) error {
	if m.wctx == nil || !workflow.IsReplaying(m.wctx) {
		ctx := m.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		m.t.observeOn(ctx, m.span, m.kind, m.typ, m.direction, size, m.asEvent)
	}
	if m.t.opts.DisableSizeLimit || size <= int64(m.t.opts.LimitSize) {
		return nil
	}
	err := m.t.tooLarge(m.kind, m.typ, m.direction, size)
	if m.application {
		err = applicationError(err)
	}
	m.refused = err
	return err
}

// --- client ---

type sizeClientOutbound struct {
	sdkinterceptor.ClientOutboundInterceptorBase
	t *Telemetry
}

// ExecuteWorkflow measures the workflow's input: the SDK encodes it with the DataConverter bound
// to the context passed on (WithContext), before the start request is sent.
func (c *sizeClientOutbound) ExecuteWorkflow(ctx context.Context, in *sdkinterceptor.ClientExecuteWorkflowInput) (client.WorkflowRun, error) {
	m := &measurement{t: c.t, ctx: ctx, span: trace.SpanFromContext(ctx),
		kind: KindWorkflow, typ: in.WorkflowType, direction: DirectionInput}
	return c.Next.ExecuteWorkflow(pipeline.WithProbe(ctx, m.probe), in)
}

// --- workflow ---

// runSpanKey marks the workflow context passed on by sizeWorkflowInbound with the span ID of
// the workflow's own span (the SDK tracing interceptor's RunWorkflow span).
type runSpanKey struct{}

type sizeWorkflowInbound struct {
	sdkinterceptor.WorkflowInboundInterceptorBase
	t *Telemetry
}

// ExecuteWorkflow measures the workflow's result. The SDK encodes it after the interceptors
// return, with the DataConverter bound to the workflow's root context: the probe is registered
// for that context's cancellation scope.
func (w *sizeWorkflowInbound) ExecuteWorkflow(ctx workflow.Context, in *sdkinterceptor.ExecuteWorkflowInput) (any, error) {
	if span, ok := opentelemetry.SpanFromWorkflowContext(ctx); ok && span.SpanContext().IsValid() {
		ctx = workflow.WithValue(ctx, runSpanKey{}, span.SpanContext().SpanID())
	}
	ret, err := w.Next.ExecuteWorkflow(ctx, in)
	if err != nil || ret == nil {
		return ret, err
	}
	// The workflow's span ends when this returns, before the SDK encodes the result: the size
	// goes to the metric and the warning log only.
	m := &measurement{t: w.t, wctx: ctx, kind: KindWorkflow, typ: workflow.GetInfo(ctx).WorkflowType.Name,
		direction: DirectionResult, application: true}
	pipeline.ExpectWorkflowResult(ctx, m.probe)
	return ret, nil
}

type sizeWorkflowOutbound struct {
	sdkinterceptor.WorkflowOutboundInterceptorBase
	t *Telemetry
}

// ExecuteActivity measures the activity's input, which the SDK encodes with the DataConverter
// bound to the workflow context passed on (WithWorkflowContext). The SDK panics when that
// encode fails; an input over the limit is recovered here and returned as the future's error,
// before any command is made.
func (o *sizeWorkflowOutbound) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) (f workflow.Future) {
	span, _ := opentelemetry.SpanFromWorkflowContext(ctx)
	m := &measurement{t: o.t, wctx: ctx, span: span, kind: KindActivity, typ: activityType,
		direction: DirectionInput, application: true}
	// Depending on interceptor order the span here is the activity's StartActivity span or the
	// workflow's own RunWorkflow span; the latter keeps the workflow's size attribute.
	if id, ok := ctx.Value(runSpanKey{}).(trace.SpanID); ok && span != nil && span.SpanContext().SpanID() == id {
		m.asEvent = true
	}
	defer func() {
		if r := recover(); r != nil {
			if err, ok := r.(error); ok && m.refused != nil && err == m.refused {
				future, settable := workflow.NewFuture(ctx)
				settable.SetError(err)
				f = future
				return
			}
			panic(r)
		}
	}()
	return o.Next.ExecuteActivity(pipeline.WithWorkflowProbe(ctx, m.probe), activityType, args...)
}

// --- activity ---

type sizeActivityInbound struct {
	sdkinterceptor.ActivityInboundInterceptorBase
	t *Telemetry
}

// ExecuteActivity measures the activity's result. The SDK encodes it after the interceptors
// return, with the DataConverter bound to the activity's root context: the probe is registered
// for that context's cancellation scope. A result that is already a *commonpb.Payloads is sent
// as it is, and measured here.
func (a *sizeActivityInbound) ExecuteActivity(ctx context.Context, in *sdkinterceptor.ExecuteActivityInput) (any, error) {
	ret, err := a.Next.ExecuteActivity(ctx, in)
	if err != nil || ret == nil {
		return ret, err
	}
	m := &measurement{t: a.t, ctx: ctx, kind: KindActivity, typ: activity.GetInfo(ctx).ActivityType.Name,
		direction: DirectionResult, application: true}
	if p, ok := ret.(*commonpb.Payloads); ok {
		m.span = trace.SpanFromContext(ctx)
		if err := m.probe(pbwire.PayloadsSize(p)); err != nil {
			return nil, err
		}
		return ret, nil
	}
	// The activity's span ends when this returns, before the SDK encodes the result: the size
	// goes to the metric and the warning log only.
	pipeline.ExpectResult(ctx, m.probe)
	return ret, nil
}

// --- shared ---

// observeOn records one measured size: a span attribute (or, with asEvent, an EventPayloadSize
// span event: used when the span is not the measured call's own, such as an activity input
// measured inside the workflow's span, so that the workflow's attribute keeps the workflow's
// size), a payloadkit.payload.size point, and a span event and a warning when size crosses
// WarnSize. span may be nil.
func (t *Telemetry) observeOn(ctx context.Context, span trace.Span, kind, typ, direction string, size int64, asEvent bool) {
	if span != nil && span.IsRecording() && asEvent {
		span.AddEvent(EventPayloadSize, trace.WithAttributes(
			attribute.String("kind", kind),
			attribute.String("type", typ),
			attribute.String("direction", direction),
			attribute.Int64("bytes", size),
		))
	}
	if span != nil && span.IsRecording() && !asEvent {
		key := AttrInputBytes
		if direction == DirectionResult {
			key = AttrResultBytes
		}
		span.SetAttributes(key.Int64(size))
	}
	t.payloadSize.Record(ctx, size, metric.WithAttributes(
		attribute.String("kind", kind),
		attribute.String("type", typ),
		attribute.String("direction", direction),
		attribute.String("stage", StageInterceptor),
	))
	if size <= int64(t.opts.WarnSize) {
		return
	}
	if span != nil && span.IsRecording() {
		span.AddEvent(EventLargePayload, trace.WithAttributes(
			attribute.String("kind", kind),
			attribute.String("type", typ),
			attribute.String("direction", direction),
			attribute.Int64("bytes", size),
			attribute.Int("warn_size", t.opts.WarnSize),
		))
	}
	t.logger.Warn("payloadkit: large payload",
		"kind", kind, "type", typ, "direction", direction, "bytes", size, "warn_size", t.opts.WarnSize)
}

func (t *Telemetry) tooLarge(kind, typ, direction string, size int64) error {
	return fmt.Errorf("%w: %s %q %s is %d bytes encoded, over the limit of %d bytes; "+
		"enable the offload stage to keep large payloads out of Temporal history",
		ErrPayloadTooLarge, kind, typ, direction, size, t.opts.LimitSize)
}

// applicationError makes err a non-retryable application error that keeps its message and type
// across the wire: retrying cannot make the same value smaller.
func applicationError(err error) error {
	return temporal.NewNonRetryableApplicationError(err.Error(), PayloadTooLargeErrorType, err)
}
