// Package interceptor is payloadkit's OpenTelemetry instrumentation: the observer of the Kit's
// codec chain, payload-size interceptors for clients and workers, and metrics.
//
// The codec pipeline and its context-aware DataConverter are assembled by payloadkit.New and
// work without telemetry. A Telemetry, built from Options (TracerProvider and MeterProvider
// default to the OpenTelemetry globals; the instrumentation scope is ScopeName), decorates them:
//
//   - ObserveChain is the pipeline's one hook. Every encode or decode through the chain (one
//     ToPayloads or FromPayloads) records one span, SpanEncode ("payloadkit.encode") or
//     SpanDecode ("payloadkit.decode"), with the payload count, the chain's bytes in and out
//     (sums of proto sizes) and, for each stage in the order it ran,
//     "payloadkit.<stage>.duration_ms", "payloadkit.<stage>.bytes_in" and
//     "payloadkit.<stage>.bytes_out" (AttrStageDuration, AttrStageBytesIn, AttrStageBytesOut).
//     A failure sets the span status to Error with error.type, records the error, and names the
//     failing stage in payloadkit.stage (its bytes_out is absent). Every stage call still
//     records a payloadkit.codec.duration point and payloadkit.payload.size points (position
//     before and after the stage). Codec spans are children of the Temporal SDK tracing
//     interceptor's spans (see below). Nothing is recorded while a workflow replays. A Codec
//     Server's codecs (Kit.Codecs) run one stage each, so there each span has one stage. Codec
//     spans are ended in bursts, at most 20 ms or 64 spans after their chain run, keeping their
//     own start and end times, because a batching span processor wakes its goroutine for each
//     span ended alone; Telemetry.Flush ends the waiting ones, and
//     Options.EndSpansImmediately ends each at once.
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
//	StartWorkflow:Greet           client, input.bytes
//	├─ payloadkit.encode          workflow input
//	└─ RunWorkflow:Greet
//	   └─ StartActivity:Shout     input.bytes
//	      ├─ payloadkit.encode    activity input, in the workflow
//	      ├─ RunActivity:Shout
//	      ├─ payloadkit.decode    activity input, in the activity
//	      ├─ payloadkit.encode    activity result, in the activity
//	      └─ payloadkit.decode    activity result, in the workflow
//
// FormatSpanTree adds each codec span's stages in the order they ran, for example
// "payloadkit.encode 90µs 178B -> 495B (compression 21µs -> 178B, encryption 67µs -> 495B)".
//
// The SDK decodes an activity's input before, and encodes its result after, the RunActivity
// span, so those codec spans are children of StartActivity, read from the activity's header.
// Likewise a workflow's input and result are children of the client's StartWorkflow span.
//
// # Cost
//
// Codec telemetry costs one span per run of the chain and a few metric points per stage call
// (a few microseconds; most of a span's cost is the BatchSpanProcessor waking its goroutine);
// with no-op providers and DisableCodecTracing it costs one Enabled check per instrument and
// bound DataConverter. Measuring a size costs a context value and the proto size of the
// encoded Payloads; turn it off entirely with Options.DisablePayloadSize.
package interceptor
