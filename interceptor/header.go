package interceptor

import (
	"context"
	"encoding/json"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.temporal.io/api/common/v1"
)

// sdkTracingHeaderKey is the Temporal header field in which the SDK tracing interceptors carry
// the caller's span (their default HeaderKey).
const sdkTracingHeaderKey = "_tracer-data"

// maxTracingHeaderSize bounds the header payload parsed by headerSpanContext: a W3C traceparent
// and tracestate fit in far less.
const maxTracingHeaderSize = 8 << 10

// headerSpanContext returns the span context the SDK tracing interceptor wrote into a Temporal
// header (the caller's span), or an invalid span context when there is none or it is malformed.
// A workflow's start header carries the span of the client that started it, which becomes the
// parent of the codec spans made before the workflow's own span exists (decoding its input).
func headerSpanContext(header map[string]*commonpb.Payload) trace.SpanContext {
	p := header[sdkTracingHeaderKey]
	if p == nil || len(p.GetData()) == 0 || len(p.GetData()) > maxTracingHeaderSize {
		return trace.SpanContext{}
	}
	if enc := string(p.GetMetadata()["encoding"]); enc != "json/plain" {
		return trace.SpanContext{}
	}
	var carrier map[string]string
	if err := json.Unmarshal(p.GetData(), &carrier); err != nil {
		return trace.SpanContext{}
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier(carrier))
	return trace.SpanContextFromContext(ctx)
}
