package codec_test

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"os"
	"testing"

	"github.com/klauspost/compress/zstd"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/internal/benchutil"
)

// BenchmarkPhysicalLimit compares the Kit's compression + encryption round trip (the
// compression stage and the encryption stage with a static keyring and the data-key cache on:
// Encode then Decode of one payload) with the raw primitives on the same bytes: zstd
// EncodeAll/DecodeAll at the default level with one reused encoder and decoder, then
// AES-256-GCM seal/open of the compressed bytes under one fixed key. kit/raw-x is the ratio of their times, measured
// interleaved in one run (benchutil.Interleave: the median of the per-round ratios), against
// two sets of raw primitives; raw-aa-x, the first set's time over the second's, is an A/A
// control.
func BenchmarkPhysicalLimit(b *testing.B) {
	ring, err := codec.NewStaticKeyring("k1", map[string][]byte{"k1": codec.GenerateKey()})
	if err != nil {
		b.Fatal(err)
	}
	comp, err := codec.NewCompressionCodec(nil)
	if err != nil {
		b.Fatal(err)
	}
	enc, err := codec.NewEncryptionCodec(&codec.EncryptionOptions{Keys: ring})
	if err != nil {
		b.Fatal(err)
	}
	// Concurrency 1: one encoder and one decoder, reused call after call with their tables
	// warm, the fastest setting for one caller (a zstd.Encoder of concurrency n hands out its n
	// encoders in turn, see BenchmarkZstdEncoderPool). Two such sets of raw primitives: two
	// encoders built alike differ by up to 6% on this kind of machine (where their tables lie in
	// memory), so the Kit is compared with both, and raw-aa-x, the one against the other, shows
	// how much of a ratio that luck can be.
	type rawSet struct {
		zenc *zstd.Encoder
		zdec *zstd.Decoder
		aead cipher.AEAD
	}
	newRaw := func() rawSet {
		zenc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		if err != nil {
			b.Fatal(err)
		}
		zdec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
		if err != nil {
			b.Fatal(err)
		}
		block, err := aes.NewCipher(codec.GenerateKey())
		if err != nil {
			b.Fatal(err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			b.Fatal(err)
		}
		return rawSet{zenc, zdec, aead}
	}
	raws := []rawSet{newRaw(), newRaw()}
	nonce := make([]byte, raws[0].aead.NonceSize())

	var table []string
	for _, sz := range benchSizes {
		p := orderPayload(b, sz.size)
		in := []*commonpb.Payload{p}
		raw, err := proto.Marshal(p)
		if err != nil {
			b.Fatal(err)
		}
		kit := func() {
			e1, err := comp.Encode(in)
			if err != nil {
				b.Fatal(err)
			}
			e2, err := enc.Encode(e1)
			if err != nil {
				b.Fatal(err)
			}
			d1, err := enc.Decode(e2)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := comp.Decode(d1); err != nil {
				b.Fatal(err)
			}
		}
		primitives := func(r rawSet) func() {
			var zbuf, sealed, opened, plain []byte
			return func() {
				zbuf = r.zenc.EncodeAll(raw, zbuf[:0])
				sealed = r.aead.Seal(sealed[:0], nonce, zbuf, nil)
				var err error
				if opened, err = r.aead.Open(opened[:0], nonce, sealed, nil); err != nil {
					b.Fatal(err)
				}
				if plain, err = r.zdec.DecodeAll(opened, plain[:0]); err != nil || len(plain) != len(raw) {
					b.Fatal(err)
				}
			}
		}
		b.Run("size="+sz.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			// The Kit twice, so that it runs as often as the raw primitives.
			res := benchutil.Interleave(b, kit, primitives(raws[0]), kit, primitives(raws[1]))
			ns := res.NsPerOp
			ratio, aa := res.RatioOfSums([]int{0, 2}, []int{1, 3}), res.Ratio(1, 3)
			b.ReportMetric((ns[0]+ns[2])/2, "kit-ns/op")
			b.ReportMetric((ns[1]+ns[3])/2, "raw-ns/op")
			b.ReportMetric(ratio, "kit/raw-x")
			b.ReportMetric(aa, "raw-aa-x")
			if b.N > 1 {
				table = append(table, fmt.Sprintf("%-6s %12.0f %12.0f %8.3f %8.3f", sz.name, (ns[0]+ns[2])/2, (ns[1]+ns[3])/2, ratio, aa))
			}
		})
	}
	if len(table) > 0 {
		fmt.Fprintf(os.Stderr, "\n%-6s %12s %12s %8s %8s\n", "size", "kit ns", "raw ns", "kit/raw", "raw A/A")
		for _, l := range table {
			fmt.Fprintln(os.Stderr, l)
		}
	}
}

// BenchmarkCompressionVsZlib compares the compression stage at its defaults with the Temporal
// SDK's zlib codec, round trip (Encode then Decode) on realistic JSON, interleaved in one run.
// speedup-x is zlib's time over payloadkit's; size-x is payloadkit's encoded size over zlib's.
func BenchmarkCompressionVsZlib(b *testing.B) {
	kit, err := codec.NewCompressionCodec(nil)
	if err != nil {
		b.Fatal(err)
	}
	zlib := converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true})
	var table []string
	for _, sz := range benchSizes {
		p := orderPayload(b, sz.size)
		in := []*commonpb.Payload{p}
		var kitSize, zlibSize int
		b.Run("size="+sz.name, func(b *testing.B) {
			b.SetBytes(int64(proto.Size(p)))
			res := benchutil.Interleave(b,
				func() { kitSize = roundTrip(b, kit, in) },
				func() { zlibSize = roundTrip(b, zlib, in) })
			ns, speedup := res.NsPerOp, res.Ratio(1, 0)
			sizeRatio := float64(kitSize) / float64(zlibSize)
			b.ReportMetric(speedup, "speedup-x")
			b.ReportMetric(sizeRatio, "size-x")
			if b.N > 1 {
				table = append(table, fmt.Sprintf("%-6s %12.0f %12.0f %9.2f %9d %9d %7.3f",
					sz.name, ns[0], ns[1], speedup, kitSize, zlibSize, sizeRatio))
			}
		})
	}
	if len(table) > 0 {
		fmt.Fprintf(os.Stderr, "\n%-6s %12s %12s %9s %9s %9s %7s\n", "size", "kit ns", "zlib ns", "speedup", "kit B", "zlib B", "size")
		for _, l := range table {
			fmt.Fprintln(os.Stderr, l)
		}
	}
}
