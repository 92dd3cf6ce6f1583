package payloadkit

import (
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/failureconv"
	"github.com/payloadkit/payloadkit/interceptor"
	"github.com/payloadkit/payloadkit/offload"
)

// Options configure a Kit: one field per concern. A nil field means that concern's default,
// so the zero Options{} gives a Kit that compresses with zstd and records telemetry with the
// OpenTelemetry global providers.
type Options struct {
	// Compression configures the compression stage. Defaults to zstd for payloads of
	// codec.DefaultMinSize bytes or more. Set Algorithm to codec.None to turn it off.
	Compression *codec.CompressionOptions

	// Encryption configures AES-256-GCM envelope encryption. Defaults to off.
	Encryption *codec.EncryptionOptions

	// Offload configures the claim-check stage for large payloads. Defaults to off.
	Offload *offload.Options

	// Telemetry configures OpenTelemetry tracing and metrics. Defaults to on, with the
	// OpenTelemetry global TracerProvider and MeterProvider. With an Offload stage the Kit
	// sets DisableSizeLimit on its own copy: large payloads leave history instead of failing.
	Telemetry *interceptor.Options

	// Failures configures the FailureConverter. Defaults to encoding failure messages and
	// stack traces whenever Encryption is set.
	Failures *failureconv.Options
}
