package interceptor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/converter"
	sdkinterceptor "go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"
)

// ErrPayloadTooLarge is returned (wrapped) when a workflow or activity input or result is
// larger than Options.LimitSize while the offload stage is off. In workflows and activities it
// arrives as the cause of a non-retryable temporal.ApplicationError of type
// PayloadTooLargeErrorType.
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

// sizeInterceptor measures the encoded size of workflow and activity inputs and results.
//
// Measuring costs one extra encode of the values with the measuring DataConverter (see
// Telemetry.SetDataConverter): the payload converter and every codec stage but offload run a
// second time, without telemetry. It happens only when the current span is recording, the
// payloadkit.payload.size histogram is enabled, or the size-limit check is on (offload off);
// otherwise the interceptor only forwards calls. In a replaying workflow nothing is recorded,
// but the limit check still runs so that replays take the same path as the original run.
type sizeInterceptor struct {
	sdkinterceptor.InterceptorBase
	t *Telemetry
	// namespace of the client, when known: client-side measuring then encodes with the same
	// serialization context as the real encode, so encryption reuses the same cached data key.
	namespace string
}

// InterceptClient implements interceptor.ClientInterceptor.
func (s *sizeInterceptor) InterceptClient(next sdkinterceptor.ClientOutboundInterceptor) sdkinterceptor.ClientOutboundInterceptor {
	return &sizeClientOutbound{ClientOutboundInterceptorBase: sdkinterceptor.ClientOutboundInterceptorBase{Next: next}, t: s.t, namespace: s.namespace}
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

// --- client ---

type sizeClientOutbound struct {
	sdkinterceptor.ClientOutboundInterceptorBase
	t         *Telemetry
	namespace string
}

func (c *sizeClientOutbound) ExecuteWorkflow(ctx context.Context, in *sdkinterceptor.ClientExecuteWorkflowInput) (client.WorkflowRun, error) {
	t := c.t
	span := trace.SpanFromContext(ctx)
	record := t.recording(ctx, span)
	limit := t.limitOn()
	if record || limit {
		// Without a known namespace no serialization context is applied (the encryption stage
		// then uses a data key of its own for the measurement).
		var sc converter.SerializationContext
		if c.namespace != "" {
			wc := converter.WorkflowSerializationContext{Namespace: c.namespace}
			if in.Options != nil {
				wc.WorkflowID = in.Options.ID
			}
			sc = wc
		}
		if size, ok := t.measure(ctx, nil, sc, in.Args); ok {
			if record {
				t.observe(ctx, span, KindWorkflow, in.WorkflowType, DirectionInput, size)
			}
			if limit && size > int64(t.opts.LimitSize) {
				return nil, t.tooLarge(KindWorkflow, in.WorkflowType, DirectionInput, size)
			}
		}
	}
	return c.Next.ExecuteWorkflow(ctx, in)
}

// --- workflow ---

type sizeWorkflowInbound struct {
	sdkinterceptor.WorkflowInboundInterceptorBase
	t *Telemetry
}

func (w *sizeWorkflowInbound) ExecuteWorkflow(ctx workflow.Context, in *sdkinterceptor.ExecuteWorkflowInput) (any, error) {
	t := w.t
	info := workflow.GetInfo(ctx)
	typ := info.WorkflowType.Name
	span, _ := opentelemetry.SpanFromWorkflowContext(ctx)
	sc := converter.WorkflowSerializationContext{Namespace: info.Namespace, WorkflowID: info.WorkflowExecution.ID}

	if !workflow.IsReplaying(ctx) && t.recording(context.Background(), span) {
		if size, ok := t.measure(nil, ctx, sc, in.Args); ok {
			t.observe(context.Background(), span, KindWorkflow, typ, DirectionInput, size)
		}
	}

	ret, err := w.Next.ExecuteWorkflow(ctx, in)
	if err != nil || ret == nil {
		return ret, err
	}
	record := !workflow.IsReplaying(ctx) && t.recording(context.Background(), span)
	limit := t.limitOn()
	if record || limit {
		if size, ok := t.measure(nil, ctx, sc, []any{ret}); ok {
			if record {
				t.observe(context.Background(), span, KindWorkflow, typ, DirectionResult, size)
			}
			if limit && size > int64(t.opts.LimitSize) {
				return nil, applicationError(t.tooLarge(KindWorkflow, typ, DirectionResult, size))
			}
		}
	}
	return ret, nil
}

type sizeWorkflowOutbound struct {
	sdkinterceptor.WorkflowOutboundInterceptorBase
	t *Telemetry
}

func (o *sizeWorkflowOutbound) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	t := o.t
	span, _ := opentelemetry.SpanFromWorkflowContext(ctx)
	record := !workflow.IsReplaying(ctx) && t.recording(context.Background(), span)
	limit := t.limitOn()
	if record || limit {
		info := workflow.GetInfo(ctx)
		sc := converter.ActivitySerializationContext{
			Namespace:    info.Namespace,
			WorkflowID:   info.WorkflowExecution.ID,
			WorkflowType: info.WorkflowType.Name,
			ActivityType: activityType,
			TaskQueue:    cmp.Or(workflow.GetActivityOptions(ctx).TaskQueue, info.TaskQueueName),
		}
		if size, ok := t.measure(nil, ctx, sc, args); ok {
			if record {
				// Depending on interceptor order the span here is the activity's StartActivity span
				// or the workflow's own RunWorkflow span; the latter keeps the workflow's size.
				t.observeOn(context.Background(), span, KindActivity, activityType, DirectionInput, size, isWorkflowSpan(span))
			}
			if limit && size > int64(t.opts.LimitSize) {
				f, set := workflow.NewFuture(ctx)
				set.SetError(applicationError(t.tooLarge(KindActivity, activityType, DirectionInput, size)))
				return f
			}
		}
	}
	return o.Next.ExecuteActivity(ctx, activityType, args...)
}

// --- activity ---

type sizeActivityInbound struct {
	sdkinterceptor.ActivityInboundInterceptorBase
	t *Telemetry
}

func (a *sizeActivityInbound) ExecuteActivity(ctx context.Context, in *sdkinterceptor.ExecuteActivityInput) (any, error) {
	t := a.t
	info := activity.GetInfo(ctx)
	typ := info.ActivityType.Name
	span := trace.SpanFromContext(ctx)
	var wfType string
	if info.WorkflowType != nil {
		wfType = info.WorkflowType.Name
	}
	sc := converter.ActivitySerializationContext{
		Namespace:    cmp.Or(info.WorkflowNamespace, info.Namespace),
		WorkflowID:   info.WorkflowExecution.ID,
		WorkflowType: wfType,
		ActivityType: typ,
		TaskQueue:    info.TaskQueue,
		IsLocal:      info.IsLocalActivity,
	}
	// Local activity inputs are passed as values, never encoded.
	if !info.IsLocalActivity && t.recording(ctx, span) {
		if size, ok := t.measure(ctx, nil, sc, in.Args); ok {
			t.observe(ctx, span, KindActivity, typ, DirectionInput, size)
		}
	}

	ret, err := a.Next.ExecuteActivity(ctx, in)
	if err != nil || ret == nil {
		return ret, err
	}
	record := t.recording(ctx, span)
	limit := t.limitOn()
	if record || limit {
		var size int64
		var ok bool
		if p, isPayloads := ret.(*commonpb.Payloads); isPayloads {
			size, ok = int64(proto.Size(p)), true // returned as is by the SDK
		} else {
			size, ok = t.measure(ctx, nil, sc, []any{ret})
		}
		if ok {
			if record {
				t.observe(ctx, span, KindActivity, typ, DirectionResult, size)
			}
			if limit && size > int64(t.opts.LimitSize) {
				return nil, applicationError(t.tooLarge(KindActivity, typ, DirectionResult, size))
			}
		}
	}
	return ret, nil
}

// --- shared ---

// recording reports whether measurements would be kept: span is recording or the size
// histogram is enabled.
func (t *Telemetry) recording(ctx context.Context, span trace.Span) bool {
	return (span != nil && span.IsRecording()) || t.payloadSize.Enabled(ctx)
}

// limitOn reports whether the size-limit check is on: the offload stage is off.
func (t *Telemetry) limitOn() bool { return !t.offloadEnabled.Load() }

// measure returns the encoded size of values (the proto size of the Payloads message the
// measuring DataConverter makes of them). Exactly one of ctx (client, activity) and wctx
// (workflow) is set. ok is false when the values cannot be encoded: the real encode that
// follows reports that error.
func (t *Telemetry) measure(ctx context.Context, wctx workflow.Context, sc converter.SerializationContext, values []any) (size int64, ok bool) {
	var dc converter.DataConverter
	if p := t.measureDC.Load(); p != nil {
		dc = *p
	} else {
		dc = converter.GetDefaultDataConverter()
	}
	if sc != nil {
		dc = converter.WithDataConverterSerializationContext(dc, sc)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if wctx != nil {
		dc = workflow.DataConverterWithoutDeadlockDetection(dc).(workflow.ContextAware).WithWorkflowContext(wctx)
	}
	if ca, isCA := dc.(workflow.ContextAware); isCA {
		dc = ca.WithContext(context.WithValue(ctx, measuringKey{}, true))
	}
	payloads, err := dc.ToPayloads(values...)
	if err != nil {
		return 0, false
	}
	return int64(proto.Size(payloads)), true
}

// observe records one measured size: a span attribute, a payloadkit.payload.size point, and a
// span event and a warning when size crosses WarnSize.
func (t *Telemetry) observe(ctx context.Context, span trace.Span, kind, typ, direction string, size int64) {
	t.observeOn(ctx, span, kind, typ, direction, size, false)
}

// observeOn is observe; with asEvent the size goes into a span event (EventPayloadSize) instead
// of the span's own size attribute: used when the span is not the measured call's own (an
// activity input measured inside the workflow's span), so that the workflow's attribute keeps
// the workflow's size.
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

// isWorkflowSpan reports whether span is the SDK tracing interceptor's RunWorkflow span.
func isWorkflowSpan(span trace.Span) bool {
	named, ok := span.(interface{ Name() string })
	return ok && strings.HasPrefix(named.Name(), "RunWorkflow:")
}
