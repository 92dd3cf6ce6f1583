// Package interceptor is payloadkit's OpenTelemetry instrumentation: the observer of the Kit's
// codec stages, payload-size interceptors for clients and workers, and metrics.
//
// The codec pipeline and its context-aware DataConverter are assembled by payloadkit.New and
// work without telemetry. A Telemetry, built from Options (TracerProvider and MeterProvider
// default to the OpenTelemetry globals; the instrumentation scope is ScopeName), decorates them:
//
//   - ObserveCodec is the pipeline's one hook. Every Encode and Decode of a stage records a span
//     "payloadkit.<stage>.<encode|decode>" with the payload count and the bytes in and out (sums
//     of proto sizes), a payloadkit.codec.duration point and payloadkit.payload.size points
//     (position before and after the stage). Failures set the span status to Error with an
//     error.type attribute. Codec spans are children of the Temporal SDK tracing interceptor's
//     spans (see below). Nothing is recorded while a workflow replays.
//   - ClientInterceptors and WorkerInterceptors return the SDK's OpenTelemetry tracing
//     interceptor (go.temporal.io/sdk/contrib/opentelemetry), built with the same
//     TracerProvider, and payload-size interceptors. These record the encoded size of workflow
//     and activity inputs and results as payloadkit.payload.size points (attributes kind, type,
//     direction, stage="interceptor"), input sizes also as a span attribute
//     (payloadkit.input.bytes) of the span that encodes them, warn (span event and slog line)
//     above WarnSize, and, unless DisableSizeLimit (the Kit sets it when an offload stage is
//     configured), fail early with ErrPayloadTooLarge above LimitSize.
//   - RecordKeyEvent and RecordObjectEvent count key-provider calls, data-key cache lookups and
//     offload store operations (payloadkit.kms.requests, payloadkit.kms.cache,
//     payloadkit.offload.objects, payloadkit.offload.bytes).
//
// # Sizes come from the real encode
//
// No value is encoded a second time to be measured. The payload-size interceptors hand the
// Kit's DataConverter a probe: in the context they pass on for inputs (the client's workflow
// input, a workflow's activity input), or, for results, which the SDK encodes after every
// interceptor has returned, registered for the context's cancellation scope. The DataConverter
// tells the probe the size of the Payloads it produced, the bytes sent to the server, and fails
// the encode with the probe's ErrPayloadTooLarge error before anything reaches the server.
// Measured this way: workflow inputs in the client (ExecuteWorkflow), activity inputs in the
// workflow (ExecuteActivity), activity results and workflow results in the worker. Not
// measured: inputs where they are decoded (the sender measured those bytes), and workflow inputs
// encoded without a client (the SDK's test environment). With a DataConverter that is not a
// Kit's nothing is measured. The spans of a workflow and of an activity end before the SDK
// encodes their results, so result sizes go to the metric and the warning log only.
//
// # Span tree
//
// With a client, a worker and one activity the spans nest like this (FormatSpanTree prints it):
//
//	StartWorkflow:Greet                 client, input.bytes
//	├─ payloadkit.compression.encode    workflow input
//	└─ RunWorkflow:Greet
//	   └─ StartActivity:Shout           input.bytes
//	      ├─ payloadkit.compression.encode  activity input, in the workflow
//	      ├─ RunActivity:Shout
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
// with no-op providers and DisableCodecTracing it costs one Enabled check per instrument and
// bound DataConverter. Measuring a size costs a context value and the proto size of the
// encoded Payloads; turn it off entirely with Options.DisablePayloadSize.
package interceptor
