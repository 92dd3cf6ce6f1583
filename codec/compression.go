package codec

import (
	"fmt"

	"go.temporal.io/sdk/converter"
)

// Algorithm names a compression algorithm.
type Algorithm string

// Compression algorithms understood by NewCompressionCodec.
const (
	// Zstd is Zstandard (github.com/klauspost/compress/zstd). The default.
	Zstd Algorithm = "zstd"
	// S2 is the S2 extension of Snappy (github.com/klauspost/compress/s2): fastest, larger output.
	S2 Algorithm = "s2"
	// Gzip is RFC 1952 gzip, for interoperability with other tools.
	Gzip Algorithm = "gzip"
	// None turns compression off.
	None Algorithm = "none"
)

// Payload encodings written or read by the compression codec.
const (
	EncodingZstd   = "binary/zstd"
	EncodingS2     = "binary/s2"
	EncodingGzip   = "binary/gzip"
	EncodingZlib   = "binary/zlib"   // written by the Temporal SDK's converter.NewZlibCodec; decoded only
	EncodingSnappy = "binary/snappy" // written by the Temporal samples' snappy codec; decoded only
)

// Defaults of CompressionOptions.
const (
	// DefaultMinSize is the marshalled payload size, in bytes, below which payloads are left uncompressed.
	DefaultMinSize = 256
	// DefaultMaxDecodedSize is the largest decoded payload, in bytes, a decoder accepts (64 MiB).
	DefaultMaxDecodedSize = 64 << 20
)

// CompressionOptions configure the compression stage. The zero value is valid.
type CompressionOptions struct {
	// Algorithm to compress with. Defaults to Zstd. Decoding always accepts every supported encoding.
	Algorithm Algorithm
	// MinSize is the marshalled payload size, in bytes, below which a payload is passed through.
	// Defaults to DefaultMinSize. Negative values are rejected.
	MinSize int
	// MaxDecodedSize bounds the decoded size, in bytes, of any compressed payload.
	// Defaults to DefaultMaxDecodedSize. Negative values are rejected.
	MaxDecodedSize int64
}

// NewCompressionCodec returns the compression stage for opts (nil means defaults).
func NewCompressionCodec(opts *CompressionOptions) (converter.PayloadCodec, error) {
	return nil, fmt.Errorf("payloadkit: compression codec not implemented yet")
}
