package failureconv

import (
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

// Options configure the failure converter.
type Options struct {
	// EncodeAttributes moves message and stack trace into an encoded payload.
	// Defaults to true when encryption is on.
	EncodeAttributes *bool
}

// New returns a FailureConverter on dc.
func New(dc converter.DataConverter, opts *Options, encryptionOn bool) converter.FailureConverter {
	enc := encryptionOn
	if opts != nil && opts.EncodeAttributes != nil {
		enc = *opts.EncodeAttributes
	}
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: dc, EncodeCommonAttributes: enc})
}
