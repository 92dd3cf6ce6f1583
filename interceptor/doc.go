// Package interceptor is payloadkit's OpenTelemetry instrumentation: traced codecs that record
// codec latency and payload sizes, payload-size interceptors for clients and workers, and metrics.
//
// A Telemetry is built from Options (TracerProvider and MeterProvider default to the
// OpenTelemetry globals; the instrumentation scope is ScopeName). The payloadkit Kit uses it
// this way:
//
//   - WrapCodec wraps each codec stage. Every Encode and Decode records a span
//     "payloadkit.<stage>.<encode|decode>" with the payload count and the bytes in and out (sums
//     of proto sizes), a payloadkit.codec.duration point and payloadkit.payload.size points
//     (position before and after the stage). Failures set the span status to Error with an
//     error.type attribute.
//   - DataConverter builds the Kit's converter: it behaves like converter.NewCodecDataConverter
//     and implements workflow.ContextAware and converter.DataConverterWithSerializationContext,
//     so codec spans become children of the Temporal SDK tracing interceptor's spans and the
//     serialization context reaches every codec. Nothing is recorded while a workflow replays.
//   - ClientInterceptors and WorkerInterceptors return the SDK's OpenTelemetry tracing
//     interceptor (go.temporal.io/sdk/contrib/opentelemetry), built with the same
//     TracerProvider, and payload-size interceptors. These record the encoded size of workflow
//     and activity inputs and results as span attributes (payloadkit.input.bytes,
//     payloadkit.result.bytes) and payloadkit.payload.size points (attributes kind, type,
//     direction, stage="interceptor"), warn (span event and slog line) above WarnSize, and, while
//     no offload stage is configured, fail early with ErrPayloadTooLarge above LimitSize.
//   - KeyEvent and ObjectEvent count key-provider calls, data-key cache lookups and offload
//     store operations (payloadkit.kms.requests, payloadkit.kms.cache,
//     payloadkit.offload.objects, payloadkit.offload.bytes).
//
// # Span tree
//
// With a client, a worker and one activity the spans nest like this (FormatSpanTree prints it):
//
//	StartWorkflow:Greet                 client, input.bytes
//	├─ payloadkit.compression.encode    workflow input
//	└─ RunWorkflow:Greet                input.bytes, result.bytes
//	   └─ StartActivity:Shout           input.bytes
//	      ├─ payloadkit.compression.encode  activity input, in the workflow
//	      ├─ RunActivity:Shout              input.bytes, result.bytes
//	      ├─ payloadkit.compression.decode  activity input, in the activity
//	      ├─ payloadkit.compression.encode  activity result, in the activity
//	      └─ payloadkit.compression.decode  activity result, in the workflow
//
// The SDK decodes an activity's input before, and encodes its result after, the RunActivity
// span, so those codec spans are children of StartActivity, read from the activity's header.
// Likewise a workflow's input and result are children of the client's StartWorkflow span.
//
// # Cost
//
// Codec telemetry costs a span and a few metric points per codec call (a few microseconds);
// with no-op providers it costs one Enabled check per instrument. Measuring the size of an input
// or result costs one extra encode of the value (payload converter, compression, encryption;
// never the offload stage, and without codec telemetry). It only happens when the current span
// is recording, the payloadkit.payload.size histogram is enabled, or the size-limit check is on
// (no offload stage). Turn it off entirely with Options.DisablePayloadSize.
package interceptor
