package payloadkit

import (
	"go.temporal.io/sdk/converter"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/failureconv"
	"github.com/payloadkit/payloadkit/interceptor"
	"github.com/payloadkit/payloadkit/offload"
)

// Options configure a Kit: one field per concern. A nil field means that concern's default,
// so the zero Options{} gives a Kit that compresses with zstd and records telemetry with the
// OpenTelemetry global providers.
type Options struct {
	// PayloadConverter turns values into payloads before the codec stages run, and payloads
	// back into values after them: it is the parent the codecs sit under, as in
	// converter.NewCodecDataConverter(parent, codecs...). Defaults to
	// converter.GetDefaultDataConverter() (the SDK's default payload converters: nil, bytes,
	// proto JSON, proto binary, JSON).
	//
	// Build it from payload converters with converter.NewCompositeDataConverter, which tries
	// them in order on encode and picks one by the payload's encoding on decode; for example
	// protobuf binary first, then a JSON converter of your own:
	//
	//	PayloadConverter: converter.NewCompositeDataConverter(
	//		converter.NewProtoPayloadConverter(), myJSONConverter{}),
	//
	// A single converter.PayloadConverter is given the same way, wrapped by
	// NewCompositeDataConverter. Any other converter.DataConverter works too; the Kit passes it
	// the SDK's serialization context (converter.DataConverterWithSerializationContext) and
	// workflow or Go context (workflow.ContextAware) when it accepts them. Give one that
	// applies no payload codecs (not a Kit's DataConverter, nor one made by
	// NewCodecDataConverter): its codecs would run beneath the Kit's stages, where a Codec
	// Server built from the Kit's codecs does not undo them.
	PayloadConverter converter.DataConverter

	// Compression configures the compression stage. Defaults to zstd for payloads of
	// codec.DefaultMinSize bytes or more. Set Algorithm to codec.None to turn it off.
	Compression *codec.CompressionOptions

	// Encryption configures AES-256-GCM envelope encryption. Defaults to off. Its envelope
	// format defaults to v2 (compact payloads, key objects in the offload store) when an
	// offload stage in codec mode uses a remote store such as S3, which every process can
	// read, and to v1 otherwise; set Encryption.Format to codec.FormatV1 to keep v1.
	Encryption *codec.EncryptionOptions

	// Offload configures the claim-check stage for large payloads. Defaults to off. With
	// Encryption and an offload stage in codec mode, the Kit's copy of the encryption options
	// gets DeterministicMinSize = Threshold/2 unless it is set: equal large values then encrypt
	// to equal bytes within one data key's lifetime, and the offload stage stores them once.
	// Set Encryption.DeterministicMinSize to -1 to keep every message id random.
	Offload *offload.Options

	// Telemetry configures OpenTelemetry tracing and metrics. Defaults to on, with the
	// OpenTelemetry global TracerProvider and MeterProvider. With an Offload stage the Kit
	// sets DisableSizeLimit on its own copy: large payloads leave history instead of failing.
	Telemetry *interceptor.Options

	// Failures configures the FailureConverter. Defaults to encoding failure messages and
	// stack traces whenever Encryption is set.
	Failures *failureconv.Options

	// AllowLocalKeyObjects lets Encryption.Format v2 keep its key objects in an
	// offload.MemoryStore. Without it the Kit refuses that setup: no other process (workers,
	// the Codec Server, the CLI) could decode the payloads. For tests only. With an Offload
	// stage and no Encryption.KeyObjects, the Kit uses the offload store (and its Prefix) for
	// key objects, so it also decodes v2 payloads written by other Kits.
	AllowLocalKeyObjects bool
}
