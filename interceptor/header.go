package interceptor

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/converter"
)

// maxTracingHeaderSize bounds the header payload parsed by headerSpanContext: a W3C traceparent
// and tracestate fit in far less.
const maxTracingHeaderSize = 8 << 10

// headerSpanContext returns the span context the SDK tracing interceptor wrote into a Temporal
// header (the caller's span), or an invalid span context when there is none or it is malformed.
// A workflow's start header carries the span of the client that started it, which becomes the
// parent of the codec spans made before the workflow's own span exists (decoding its input).
//
// The header field is the one the SDK tracer reports (TracerOptions.HeaderKey of the tracer
// built by New), read the way the SDK writes it: a map decoded by the SDK's default data
// converter, holding fields of opentelemetry.DefaultTextMapPropagator.
func (t *Telemetry) headerSpanContext(header map[string]*commonpb.Payload) trace.SpanContext {
	return headerSpanContext(header, t.headerKey)
}

func headerSpanContext(header map[string]*commonpb.Payload, key string) trace.SpanContext {
	p := header[key]
	if p == nil || len(p.GetData()) == 0 || len(p.GetData()) > maxTracingHeaderSize {
		return trace.SpanContext{}
	}
	var carrier map[string]string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &carrier); err != nil {
		return trace.SpanContext{}
	}
	ctx := opentelemetry.DefaultTextMapPropagator.Extract(context.Background(), propagation.MapCarrier(carrier))
	return trace.SpanContextFromContext(ctx)
}
