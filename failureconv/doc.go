// Package failureconv is a Temporal FailureConverter that moves failure messages and stack traces
// into an encoded payload that passes through payloadkit's codecs, so history never shows them in plain text.
//
// New builds a Converter on a DataConverter (a payloadkit Kit does it with its own). For every
// failure in a cause chain, ErrorToFailure replaces the message with Options.PublicMessage and
// stores {"message":…,"stack_trace":…} in Failure.EncodedAttributes, the format every Temporal
// SDK and the Temporal UI (through a Codec Server) read. Error details, cancellation details and
// heartbeat details are converted by the SDK's default failure converter on the same
// DataConverter. The Converter implements converter.FailureConverterWithSerializationContext and
// passes the serialization context to its DataConverter, so the encryption codec binds encoded
// failures to their namespace.
//
// FailureToError restores messages and stack traces, and converts failures without encoded
// attributes (from other converters) as the SDK does. Attributes that cannot be decoded stay in
// place and the failure's message says why; Decode returns the reason as an error wrapping
// ErrNotDecoded.
//
// Stack traces can be kept, trimmed to Options.MaxStackTraceSize bytes at a line break, or dropped
// (Options.StackTraces).
package failureconv
