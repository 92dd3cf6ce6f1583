package codec_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/codec"
)

var writtenEncodings = map[codec.Algorithm]string{
	codec.Zstd: codec.EncodingZstd,
	codec.S2:   codec.EncodingS2,
	codec.Gzip: codec.EncodingGzip,
}

func newCodec(tb testing.TB, opts *codec.CompressionOptions) converter.PayloadCodec {
	tb.Helper()
	c, err := codec.NewCompressionCodec(opts)
	require.NoError(tb, err)
	return c
}

func encodingOf(p *commonpb.Payload) string {
	return string(p.GetMetadata()[converter.MetadataEncoding])
}

func marshal(tb testing.TB, p *commonpb.Payload) []byte {
	tb.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
	require.NoError(tb, err)
	return b
}

func randomBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// sizeClasses are the payloads every algorithm must round-trip, and whether the codec is
// expected to compress them with the default MinSize.
func sizeClasses(tb testing.TB) []struct {
	name       string
	payload    *commonpb.Payload
	compressed bool
} {
	return []struct {
		name       string
		payload    *commonpb.Payload
		compressed bool
	}{
		{"empty", &commonpb.Payload{}, false},
		{"empty-data", &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/null")}}, false},
		{"100B", &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: bytes.Repeat([]byte("a"), 100)}, false},
		{"1KiB", orderPayload(tb, 1<<10), true},
		{"64KiB", orderPayload(tb, 64<<10), true},
		{"1MiB", orderPayload(tb, 1<<20), true},
		{"random-64KiB", &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: randomBytes(1, 64<<10)}, false},
	}
}

func TestCompressionRoundTrip(t *testing.T) {
	for alg, wantEnc := range writtenEncodings {
		for _, lvl := range []codec.CompressionLevel{"", codec.LevelFastest, codec.LevelDefault, codec.LevelBetter, codec.LevelBest} {
			c := newCodec(t, &codec.CompressionOptions{Algorithm: alg, Level: lvl})
			for _, sc := range sizeClasses(t) {
				if lvl == codec.LevelBest && sc.name == "1MiB" {
					continue // the slowest level is covered on the smaller classes
				}
				t.Run(fmt.Sprintf("%s/%s/%s", alg, lvl, sc.name), func(t *testing.T) {
					enc, err := c.Encode([]*commonpb.Payload{sc.payload})
					require.NoError(t, err)
					require.Len(t, enc, 1)
					if sc.compressed {
						require.Equal(t, wantEnc, encodingOf(enc[0]))
						require.Len(t, enc[0].Metadata, 1, "only the encoding is added")
						require.Less(t, len(enc[0].Data), proto.Size(sc.payload))
					} else {
						require.Same(t, sc.payload, enc[0], "small or incompressible payloads pass through")
					}
					dec, err := c.Decode(enc)
					require.NoError(t, err)
					require.True(t, proto.Equal(sc.payload, dec[0]), "round trip changed the payload")
				})
			}
		}
	}
}

func TestCompressionMinSize(t *testing.T) {
	for _, tc := range []struct {
		minSize, size int
		compressed    bool
	}{
		{0, codec.DefaultMinSize - 1, false},
		{0, codec.DefaultMinSize, true},
		{1, 64, true},
		{4096, 4095, false},
		{4096, 4096, true},
	} {
		t.Run(fmt.Sprintf("min=%d/size=%d", tc.minSize, tc.size), func(t *testing.T) {
			// A payload with only data marshals to a tag, a varint length and the data.
			n := tc.size - 2
			if n >= 128 {
				n = tc.size - 3
			}
			p := &commonpb.Payload{Data: bytes.Repeat([]byte("a"), n)}
			require.Equal(t, tc.size, proto.Size(p))
			c := newCodec(t, &codec.CompressionOptions{MinSize: tc.minSize})
			out, err := c.Encode([]*commonpb.Payload{p})
			require.NoError(t, err)
			if tc.compressed {
				require.Equal(t, codec.EncodingZstd, encodingOf(out[0]))
			} else {
				require.Same(t, p, out[0])
			}
		})
	}
}

func TestCompressionDecodePassesThroughForeignEncodings(t *testing.T) {
	c := newCodec(t, nil)
	in := []*commonpb.Payload{
		{},
		{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)},
		{Metadata: map[string][]byte{"encoding": []byte("binary/encrypted")}, Data: []byte{0x28, 0xb5, 0x2f, 0xfd}},
		{Metadata: map[string][]byte{"encoding": []byte("binary/claim-check")}, Data: []byte("key")},
		{Metadata: map[string][]byte{"encoding": []byte("binary/ZSTD")}, Data: []byte("not ours: encodings are case sensitive")},
		{Metadata: map[string][]byte{"other": []byte("binary/zstd")}, Data: []byte("only the encoding key counts")},
	}
	out, err := c.Decode(in)
	require.NoError(t, err)
	require.Len(t, out, len(in))
	for i := range in {
		require.Same(t, in[i], out[i], "payload %d", i)
	}
}

// snappyPayload encodes p like the Temporal samples' snappy codec: snappy.Encode (block
// format) of the marshalled payload.
func snappyPayload(tb testing.TB, p *commonpb.Payload) *commonpb.Payload {
	return &commonpb.Payload{
		Metadata: map[string][]byte{converter.MetadataEncoding: []byte(codec.EncodingSnappy)},
		Data:     snappy.Encode(nil, marshal(tb, p)),
	}
}

func TestCompressionDecodeMixedBatch(t *testing.T) {
	small := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`{"a":1}`)}
	big := orderPayload(t, 8<<10)
	var originals, encoded []*commonpb.Payload
	add := func(orig, enc *commonpb.Payload) {
		originals = append(originals, orig)
		encoded = append(encoded, enc)
	}
	add(small, small)
	add(big, big)
	sdkZlib := converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true})
	for _, p := range []*commonpb.Payload{small, big} {
		z, err := sdkZlib.Encode([]*commonpb.Payload{p})
		require.NoError(t, err)
		require.Equal(t, codec.EncodingZlib, encodingOf(z[0]))
		add(p, z[0])
		add(p, snappyPayload(t, p))
	}
	for alg, enc := range writtenEncodings {
		out, err := newCodec(t, &codec.CompressionOptions{Algorithm: alg}).Encode([]*commonpb.Payload{big})
		require.NoError(t, err)
		require.Equal(t, enc, encodingOf(out[0]))
		add(big, out[0])
	}
	// Any configured algorithm, including None, reads every encoding.
	for _, alg := range []codec.Algorithm{codec.Zstd, codec.S2, codec.Gzip, codec.None} {
		t.Run(string(alg), func(t *testing.T) {
			dec, err := newCodec(t, &codec.CompressionOptions{Algorithm: alg}).Decode(encoded)
			require.NoError(t, err)
			require.Len(t, dec, len(originals))
			for i := range originals {
				require.True(t, proto.Equal(originals[i], dec[i]), "payload %d (%s)", i, encodingOf(encoded[i]))
			}
		})
	}
}

func TestCompressionSDKDecodesNothingOfOurs(t *testing.T) {
	// The SDK zlib codec passes our payloads through, and ours round-trip through a codec data
	// converter with a Go value.
	c := newCodec(t, nil)
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
	type value struct{ Names []string }
	in := value{Names: strings.Split(strings.Repeat("alpha beta gamma delta ", 40), " ")}
	p, err := dc.ToPayload(in)
	require.NoError(t, err)
	require.Equal(t, codec.EncodingZstd, encodingOf(p))
	var got value
	require.NoError(t, dc.FromPayload(p, &got))
	require.Equal(t, in, got)

	out, err := converter.NewZlibCodec(converter.ZlibCodecOptions{}).Decode([]*commonpb.Payload{p})
	require.NoError(t, err)
	require.Same(t, p, out[0])
}

func TestCompressionDoesNotMutateInputs(t *testing.T) {
	for alg := range writtenEncodings {
		t.Run(string(alg), func(t *testing.T) {
			c := newCodec(t, &codec.CompressionOptions{Algorithm: alg})
			var in []*commonpb.Payload
			for _, sc := range sizeClasses(t) {
				in = append(in, sc.payload)
			}
			in = append(in, snappyPayload(t, orderPayload(t, 2<<10)))
			before := make([]*commonpb.Payload, len(in))
			for i, p := range in {
				before[i] = proto.Clone(p).(*commonpb.Payload)
			}
			inSlice := append([]*commonpb.Payload(nil), in...)

			enc, err := c.Encode(in)
			require.NoError(t, err)
			encBefore := make([]*commonpb.Payload, len(enc))
			for i, p := range enc {
				encBefore[i] = proto.Clone(p).(*commonpb.Payload)
			}
			dec, err := c.Decode(enc)
			require.NoError(t, err)

			require.Equal(t, inSlice, in, "the input slice was modified")
			for i := range in {
				require.True(t, proto.Equal(before[i], in[i]), "Encode mutated payload %d", i)
				require.True(t, proto.Equal(encBefore[i], enc[i]), "Decode mutated payload %d", i)
			}
			// Outputs are independent of the inputs: changing a decoded payload leaves the input intact.
			for _, p := range dec {
				for k := range p.Metadata {
					p.Metadata[k] = []byte("changed")
				}
				clear(p.Data)
			}
			for i := range in {
				require.True(t, proto.Equal(before[i], in[i]) || dec[i] == in[i], "decoded payload %d aliases the input", i)
			}
		})
	}
}

func TestCompressionDecodedPayloadsDoNotShareBuffers(t *testing.T) {
	// Decoding reuses pooled buffers; decoded payloads must own their bytes.
	c := newCodec(t, nil)
	a, b := orderPayload(t, 4<<10), orderPayload(t, 5<<10)
	encA, err := c.Encode([]*commonpb.Payload{a})
	require.NoError(t, err)
	encB, err := c.Encode([]*commonpb.Payload{b})
	require.NoError(t, err)
	decA, err := c.Decode(encA)
	require.NoError(t, err)
	for range 10 {
		_, err = c.Decode(encB)
		require.NoError(t, err)
	}
	require.True(t, proto.Equal(a, decA[0]))
	// Encoded payloads must own their bytes too.
	for range 10 {
		_, err = c.Encode([]*commonpb.Payload{b})
		require.NoError(t, err)
	}
	again, err := c.Decode(encA)
	require.NoError(t, err)
	require.True(t, proto.Equal(a, again[0]))
}

func TestCompressionConcurrentUse(t *testing.T) {
	// 1 MiB: zstd compresses its frames concurrently, inside concurrent calls.
	payloads := []*commonpb.Payload{orderPayload(t, 1<<10), orderPayload(t, 16<<10), orderPayload(t, 200<<10), orderPayload(t, 1<<20)}
	for alg := range writtenEncodings {
		c := newCodec(t, &codec.CompressionOptions{Algorithm: alg})
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Go(func() {
				for i := range 20 {
					p := payloads[(g+i)%len(payloads)]
					enc, err := c.Encode([]*commonpb.Payload{p})
					if err != nil {
						errs <- err
						return
					}
					dec, err := c.Decode(enc)
					if err != nil {
						errs <- err
						return
					}
					if !proto.Equal(p, dec[0]) {
						errs <- fmt.Errorf("%s: round trip mismatch", alg)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}

func TestCompressionZstdFramesOfUnknownSize(t *testing.T) {
	// Frames written by streaming encoders do not declare their size; several frames may follow
	// each other. Both must decode.
	p := orderPayload(t, 20<<10)
	raw := marshal(t, p)
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf)
	require.NoError(t, err)
	_, err = w.Write(raw[:1000])
	require.NoError(t, err)
	require.NoError(t, w.Flush()) // writes the frame header before the size is known
	require.NoError(t, w.Close())
	w.Reset(&buf)
	_, err = w.Write(raw[1000:])
	require.NoError(t, err)
	require.NoError(t, w.Close())

	var h zstd.Header
	require.NoError(t, h.Decode(buf.Bytes()))
	require.False(t, h.HasFCS, "the test needs a frame of unknown size")

	c := newCodec(t, nil)
	in := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(codec.EncodingZstd)}, Data: buf.Bytes()}
	for range 3 { // pooled stream decoders are reused
		dec, err := c.Decode([]*commonpb.Payload{in})
		require.NoError(t, err)
		require.True(t, proto.Equal(p, dec[0]))
	}
}

func TestCompressionOptions(t *testing.T) {
	for _, tc := range []struct {
		opts *codec.CompressionOptions
		err  string
	}{
		{&codec.CompressionOptions{Algorithm: "lz4"}, `Compression.Algorithm "lz4": allowed values are "zstd", "s2", "gzip", "none"`},
		{&codec.CompressionOptions{Algorithm: "ZSTD"}, `Compression.Algorithm "ZSTD": allowed values are "zstd", "s2", "gzip", "none"`},
		{&codec.CompressionOptions{Level: "max"}, `Compression.Level "max": allowed values are "fastest", "default", "better", "best"`},
		{&codec.CompressionOptions{MinSize: -1}, `Compression.MinSize -1: must be 0 (default 256) or a positive number of bytes`},
		{&codec.CompressionOptions{MaxDecodedSize: -5}, `Compression.MaxDecodedSize -5: must be 0 (default 67108864) or a positive number of bytes`},
	} {
		c, err := codec.NewCompressionCodec(tc.opts)
		require.Nil(t, c)
		require.EqualError(t, err, tc.err)
	}
	for _, opts := range []*codec.CompressionOptions{nil, {}, {Algorithm: codec.None}, {MaxDecodedSize: 1}, {MinSize: 1}} {
		_, err := codec.NewCompressionCodec(opts)
		require.NoError(t, err, "%+v", opts)
	}
}

func TestCompressionNoneEncodesNothing(t *testing.T) {
	c := newCodec(t, &codec.CompressionOptions{Algorithm: codec.None})
	p := orderPayload(t, 4<<10)
	out, err := c.Encode([]*commonpb.Payload{p})
	require.NoError(t, err)
	require.Same(t, p, out[0])
}

// Decompression bombs: 1 GiB of zeros in every format, decoded with a 1 MiB limit.

const (
	bombSize  = 1 << 30
	bombLimit = 1 << 20
)

// writeZeros streams n zero bytes into w.
func writeZeros(tb testing.TB, w io.Writer, n int64) {
	tb.Helper()
	zeros := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(zeros)))
		_, err := w.Write(zeros[:k])
		require.NoError(tb, err)
		n -= k
	}
}

var (
	bombsOnce sync.Once
	bombs     []bomb
)

type bomb struct {
	name     string
	encoding string
	data     []byte
}

func makeBombs(tb testing.TB) []bomb {
	bombsOnce.Do(func() {
		var zs, zsSmall, zsFCS, gz, zl bytes.Buffer
		zw, err := zstd.NewWriter(&zs, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		require.NoError(tb, err)
		writeZeros(tb, zw, bombSize)
		require.NoError(tb, zw.Close())

		// A window smaller than the limit, so that the decoder must count the output.
		zsw, err := zstd.NewWriter(&zsSmall, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(64<<10))
		require.NoError(tb, err)
		writeZeros(tb, zsw, bombSize)
		require.NoError(tb, zsw.Close())

		zw.ResetContentSize(&zsFCS, bombSize) // the frame header declares 1 GiB
		writeZeros(tb, zw, bombSize)
		require.NoError(tb, zw.Close())

		gw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
		require.NoError(tb, err)
		writeZeros(tb, gw, bombSize)
		require.NoError(tb, gw.Close())

		lw, err := zlib.NewWriterLevel(&zl, zlib.BestSpeed)
		require.NoError(tb, err)
		writeZeros(tb, lw, bombSize)
		require.NoError(tb, lw.Close())

		// S2 and Snappy blocks declare their decoded length up front: a forged header claiming
		// 1 GiB followed by a real block body.
		forged := binary.AppendUvarint(nil, bombSize)
		forged = append(forged, s2.Encode(nil, make([]byte, 64<<10))[3:]...)

		// Many frames, each declaring a size within the limit, adding up to 1 GiB.
		frame := zw.EncodeAll(make([]byte, 512<<10), nil)
		frames := bytes.Repeat(frame, bombSize/(512<<10))

		bombs = []bomb{
			{"zstd-many-frames", codec.EncodingZstd, frames},
			{"zstd-stream", codec.EncodingZstd, zs.Bytes()},
			{"zstd-stream-small-window", codec.EncodingZstd, zsSmall.Bytes()},
			{"zstd-declared-size", codec.EncodingZstd, zsFCS.Bytes()},
			{"gzip", codec.EncodingGzip, gz.Bytes()},
			{"zlib", codec.EncodingZlib, zl.Bytes()},
			{"s2-forged-length", codec.EncodingS2, forged},
			{"snappy-forged-length", codec.EncodingSnappy, forged},
		}
	})
	return bombs
}

func TestCompressionBombsAreRejected(t *testing.T) {
	c := newCodec(t, &codec.CompressionOptions{MaxDecodedSize: bombLimit})
	for _, b := range makeBombs(t) {
		t.Run(b.name, func(t *testing.T) {
			in := []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte(b.encoding)}, Data: b.data}}
			_, _ = c.Decode(in) // warm up pools, so that only the decode itself is measured

			out, allocated, err := decodeAllocs(c, in)

			require.Nil(t, out)
			require.ErrorIs(t, err, codec.ErrDecodedTooLarge)
			require.NotErrorIs(t, err, codec.ErrCorrupt)
			require.Contains(t, err.Error(), "exceeds the limit")
			require.Contains(t, err.Error(), fmt.Sprintf("limit %d bytes", bombLimit))
			require.Contains(t, err.Error(), "encoding="+b.encoding)
			t.Logf("%s: %d compressed bytes, %d bytes allocated while rejecting", b.name, len(b.data), allocated)
			require.Less(t, allocated, uint64(2*bombLimit), "decoding allocated more than twice the limit")
		})
	}
}

func TestCompressionLimitIsInclusive(t *testing.T) {
	// A payload whose marshalled form is exactly the limit decodes; one byte more does not.
	p := &commonpb.Payload{Data: bytes.Repeat([]byte("z"), 10000)}
	limit := int64(proto.Size(p))
	for alg := range writtenEncodings {
		enc, err := newCodec(t, &codec.CompressionOptions{Algorithm: alg}).Encode([]*commonpb.Payload{p})
		require.NoError(t, err)
		_, err = newCodec(t, &codec.CompressionOptions{MaxDecodedSize: limit}).Decode(enc)
		require.NoError(t, err, "%s", alg)
		_, err = newCodec(t, &codec.CompressionOptions{MaxDecodedSize: limit - 1}).Decode(enc)
		require.ErrorIs(t, err, codec.ErrDecodedTooLarge, "%s", alg)
	}
	// The same for the formats written by other codecs.
	z, err := converter.NewZlibCodec(converter.ZlibCodecOptions{}).Encode([]*commonpb.Payload{p})
	require.NoError(t, err)
	for _, enc := range []*commonpb.Payload{z[0], snappyPayload(t, p)} {
		_, err = newCodec(t, &codec.CompressionOptions{MaxDecodedSize: limit}).Decode([]*commonpb.Payload{enc})
		require.NoError(t, err, "%s", encodingOf(enc))
		_, err = newCodec(t, &codec.CompressionOptions{MaxDecodedSize: limit - 1}).Decode([]*commonpb.Payload{enc})
		require.ErrorIs(t, err, codec.ErrDecodedTooLarge, "%s", encodingOf(enc))
	}
}

func TestCompressionCorruptData(t *testing.T) {
	c := newCodec(t, nil)
	valid := map[string][]byte{}
	p := orderPayload(t, 4<<10)
	for alg, enc := range writtenEncodings {
		out, err := newCodec(t, &codec.CompressionOptions{Algorithm: alg}).Encode([]*commonpb.Payload{p})
		require.NoError(t, err)
		valid[enc] = out[0].Data
	}
	z, err := converter.NewZlibCodec(converter.ZlibCodecOptions{}).Encode([]*commonpb.Payload{p})
	require.NoError(t, err)
	valid[codec.EncodingZlib] = z[0].Data
	valid[codec.EncodingSnappy] = snappyPayload(t, p).Data

	// Well-formed compressed data whose content is not a marshalled Payload.
	notProto := bytes.Repeat([]byte{0xff}, 300)
	var gz, zl bytes.Buffer
	gw := gzip.NewWriter(&gz)
	_, _ = gw.Write(notProto)
	require.NoError(t, gw.Close())
	lw := zlib.NewWriter(&zl)
	_, _ = lw.Write(notProto)
	require.NoError(t, lw.Close())
	zenc, err := zstd.NewWriter(nil)
	require.NoError(t, err)
	notPayload := map[string][]byte{
		codec.EncodingZstd:   zenc.EncodeAll(notProto, nil),
		codec.EncodingS2:     s2.Encode(nil, notProto),
		codec.EncodingSnappy: snappy.Encode(nil, notProto),
		codec.EncodingGzip:   gz.Bytes(),
		codec.EncodingZlib:   zl.Bytes(),
	}

	for enc, data := range valid {
		flipped := bytes.Clone(data)
		flipped[len(flipped)/2] ^= 0x55
		cases := map[string][]byte{
			"empty":       nil,
			"garbage":     []byte("this is not compressed data at all"),
			"truncated":   data[:len(data)/2],
			"last-byte":   data[:len(data)-1],
			"bit-flip":    flipped,
			"trailing":    append(bytes.Clone(data), 0x01, 0x02, 0x03),
			"not-payload": notPayload[enc],
		}
		for name, d := range cases {
			t.Run(enc+"/"+name, func(t *testing.T) {
				in := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(enc)}, Data: d}
				out, err := c.Decode([]*commonpb.Payload{in})
				if name == "bit-flip" && err == nil {
					// A flipped bit inside a literal may still decode (formats without a
					// checksum): then the result must differ from the original.
					require.False(t, proto.Equal(p, out[0]), "a corrupted payload decoded to the original")
					return
				}
				if name == "trailing" && err == nil {
					// zlib and zstd readers may stop at the end of the stream.
					require.True(t, proto.Equal(p, out[0]))
					return
				}
				require.Error(t, err)
				require.ErrorIs(t, err, codec.ErrCorrupt)
				require.Nil(t, out)
				require.Contains(t, err.Error(), "encoding="+enc)
				require.Contains(t, err.Error(), "payload=0")
			})
		}
	}
}

func TestCompressionErrorNamesThePayload(t *testing.T) {
	c := newCodec(t, nil)
	ok, err := c.Encode([]*commonpb.Payload{orderPayload(t, 2<<10)})
	require.NoError(t, err)
	bad := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(codec.EncodingS2)}, Data: []byte{0xff}}
	_, err = c.Decode([]*commonpb.Payload{ok[0], ok[0], bad})
	require.ErrorIs(t, err, codec.ErrCorrupt)
	require.Contains(t, err.Error(), "[payload=2, encoding=binary/s2, size=1]")
}

// Frozen test vectors. The decode of each frozen hex must never change. The encode vectors pin
// the output of the current compression library versions: if a dependency upgrade changes
// them, regenerate encodeVectors (the decode vectors stay as they are).

// vectorPayload is the input of every vector.
func vectorPayload() *commonpb.Payload {
	var data strings.Builder
	data.WriteString("[")
	for i := range 4 {
		if i > 0 {
			data.WriteString(",")
		}
		fmt.Fprintf(&data, `{"id":"ORD-%08d","customer":{"name":"Ada Lovelace","email":"ada@example.com"},`+
			`"items":[{"sku":"SKU-%06d","name":"Analytical Engine manual","qty":%d,"price":19.99}],"status":"paid"}`,
			1000+i, 42+i, 1+i)
	}
	data.WriteString("]")
	return &commonpb.Payload{
		Metadata: map[string][]byte{"encoding": []byte("json/plain"), "messageType": []byte("orders")},
		Data:     []byte(data.String()),
	}
}

// decodeVectors are frozen: payloads written by this codec (and by the SDK zlib and samples
// snappy codecs) that must decode to vectorPayload forever.
var decodeVectors = []struct{ encoding, hex string }{
	{codec.EncodingZstd, "28b52ffd44001b025d0700e28e322d70091b00fcffffffffff1ffe7f53a40c19494a509272525a815abc908f3117e790" +
		"88d0b74f70af1e8e947abb1213cf81e33c4de3302b72f7583a3ba52a57fa3511812007c4b0777b93f4c5b057d5e2eb90" +
		"29c97169f922b9b0406eaf5690e57af3ecee36241820ce4e55d0431eec34767d5f91c7d91c0da5c8188dc08ecf0e1fc7" +
		"fe7a37867d311b16760967efc8f210f6a9e3ac946a5fdf5d6677b7a1f0e07076f70e79006428746a37cd00a5a52aa223" +
		"a6b4e3404290c8c75032909352244a249f9b4db6405290040b006094003a03130b382580cec0c4024e09d059cf2626f4" +
		"cc475154042920cea4ec"},
	{codec.EncodingS2, "9b06f0a10a160a08656e636f64696e67120a6a736f6e2f706c61696e0a150a0b6d6573736167655479706512066f7264" +
		"65727312e9055b7b226964223a224f52442d3030303031303030222c22637573746f6d6572223a7b226e616d65223a22" +
		"416461204c6f76656c616365222c22656d61696c223a22616461406578616d706c652e636f6d227d2c226974656d7322" +
		"3a5b7b22736b75223a22534b552d303030303432222c154ef0416e616c79746963616c20456e67696e65206d616e7561" +
		"6c222c22717479223a312c227072696365223a31392e39397d5d2c22737461747573223a2270616964227d2c46ba0000" +
		"311500510033150022003215002c00321500510034150022003315002c003315005100351500220034150019005d"},
	{codec.EncodingGzip, "1f8b080000096e8800ffb4cebb4af4401806e0eaff91d82d68bdbcf5b84e76d722532968a52078a8962d3e663ec2e81c" +
		"62662286900bf62e040b1b0bc3426ee0e1294e8b230e3a1a1bea45f19262386f1cd9509c14c79e53a29a9ffa8617ff63" +
		"6bb84d8bcf7fbb01d640e1fee1fa4c4a294b292504749772f4dc420d08e4190a57869677f19d1d6986007bb20e0a64e8" +
		"923fc8378e573a7a8c0236b34f50bb01e9b583c2e3edf3b7bd5d43fc68815c9fad26b7bc09b50dbcf4143a721078cb3d" +
		"5429d0b456335459adaa6adc0ba44cb94b5068c81a8ce2f7bc9c6dbe993e5f1f325fcf36df4e9f6f0e996f669b5f4c9f" +
		"6fff9cefbf0600084d8aed1b030000"},
	{codec.EncodingZlib, "789cb4cebb4af4401806e0eaff91d82d68bdbcf5b84e76d722532968a52078a8962d3e663ec2e81c62662286900bf62e" +
		"040b1b0bc3426ee0e1294e8b230e3a1a1bea45f19262386f1cd9509c14c79e53a29a9ffa8617ff636bb84d8bcf7fbb01" +
		"d640e1fee1fa4c4a294b292504749772f4dc420d08e4190a57869677f19d1d6986007bb20e0a64e8923fc8378e573a7a" +
		"8c0236b34f50bb01e9b583c2e3edf3b7bd5d43fc68815c9fad26b7bc09b50dbcf4143a721078cb3d5429d0b456335459" +
		"adaa6adc0ba44cb94b5068c81a8ce2f7bc9c6dbe993e5f1f325fcf36df4e9f6f0e996f669b5f4c9f6fff9cefbf020000" +
		"ffff0f29f64f"}, // converter.NewZlibCodec, Go 1.26 compress/zlib
	{codec.EncodingSnappy, "9b06f45e010a160a08656e636f64696e67120a6a736f6e2f706c61696e0a150a0b6d6573736167655479706512066f72" +
		"6465727312e9055b7b226964223a224f52442d3030303031303030222c22637573746f6d6572223a7b226e616d65223a" +
		"22416461204c6f76656c616365222c22656d61696c223a22616461406578616d706c652e636f6d227d2c226974656d73" +
		"223a5b7b22736b75223a22534b552d303030303432222c226e616d65223a22416e616c79746963616c20456e67696e65" +
		"206d616e75616c222c22717479223a312c227072696365223a31392e39397d5d2c22737461747573223a227061696422" +
		"7d2c7b226964223a224f52442d3030303031303031222c22637573746f6d6572223a7b226e616d65223a22416461204c" +
		"6f76656c616365222c22656d61696c223a22616461406578616d706c652e636f6d227d2c226974656d73223a5b7b2273" +
		"6b75223a22534b552d303030303433222c226e6192ba0018322c2270726963b6ba00043222fe74015e74010034a67401" +
		"0033ceba000033feba0062ba000035a6ba00003482ba00005d"}, // github.com/golang/snappy v1.0.0 snappy.Encode
}

// encodeVectors pin the current encoder output (default level) for vectorPayload.
var encodeVectors = map[codec.Algorithm]string{
	codec.Zstd: "28b52ffd44001b025d0700e28e322d70091b00fcffffffffff1ffe7f53a40c19494a509272525a815abc908f3117e790" +
		"88d0b74f70af1e8e947abb1213cf81e33c4de3302b72f7583a3ba52a57fa3511812007c4b0777b93f4c5b057d5e2eb90" +
		"29c97169f922b9b0406eaf5690e57af3ecee36241820ce4e55d0431eec34767d5f91c7d91c0da5c8188dc08ecf0e1fc7" +
		"fe7a37867d311b16760967efc8f210f6a9e3ac946a5fdf5d6677b7a1f0e07076f70e79006428746a37cd00a5a52aa223" +
		"a6b4e3404290c8c75032909352244a249f9b4db6405290040b006094003a03130b382580cec0c4024e09d059cf2626f4" +
		"cc475154042920cea4ec",
	codec.S2: "9b06f0a10a160a08656e636f64696e67120a6a736f6e2f706c61696e0a150a0b6d6573736167655479706512066f7264" +
		"65727312e9055b7b226964223a224f52442d3030303031303030222c22637573746f6d6572223a7b226e616d65223a22" +
		"416461204c6f76656c616365222c22656d61696c223a22616461406578616d706c652e636f6d227d2c226974656d7322" +
		"3a5b7b22736b75223a22534b552d303030303432222c154ef0416e616c79746963616c20456e67696e65206d616e7561" +
		"6c222c22717479223a312c227072696365223a31392e39397d5d2c22737461747573223a2270616964227d2c46ba0000" +
		"311500510033150022003215002c00321500510034150022003315002c003315005100351500220034150019005d",
	codec.Gzip: "1f8b080000096e8800ffb4cebb4af4401806e0eaff91d82d68bdbcf5b84e76d722532968a52078a8962d3e663ec2e81c" +
		"62662286900bf62e040b1b0bc3426ee0e1294e8b230e3a1a1bea45f19262386f1cd9509c14c79e53a29a9ffa8617ff63" +
		"6bb84d8bcf7fbb01d640e1fee1fa4c4a294b292504749772f4dc420d08e4190a57869677f19d1d6986007bb20e0a64e8" +
		"923fc8378e573a7a8c0236b34f50bb01e9b583c2e3edf3b7bd5d43fc68815c9fad26b7bc09b50dbcf4143a721078cb3d" +
		"5429d0b456335459adaa6adc0ba44cb94b5068c81a8ce2f7bc9c6dbe993e5f1f325fcf36df4e9f6f0e996f669b5f4c9f" +
		"6fff9cefbf0600084d8aed1b030000",
}

func TestCompressionDecodeVectors(t *testing.T) {
	c := newCodec(t, nil)
	want := vectorPayload()
	for _, v := range decodeVectors {
		t.Run(v.encoding, func(t *testing.T) {
			data, err := hex.DecodeString(v.hex)
			require.NoError(t, err)
			in := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(v.encoding)}, Data: data}
			out, err := c.Decode([]*commonpb.Payload{in})
			require.NoError(t, err)
			require.True(t, proto.Equal(want, out[0]), "got %v", out[0])
		})
	}
}

func TestCompressionEncodeVectors(t *testing.T) {
	in := vectorPayload()
	for alg, wantHex := range encodeVectors {
		t.Run(string(alg), func(t *testing.T) {
			out, err := newCodec(t, &codec.CompressionOptions{Algorithm: alg}).Encode([]*commonpb.Payload{in})
			require.NoError(t, err)
			require.Equal(t, map[string][]byte{"encoding": []byte(writtenEncodings[alg])}, out[0].Metadata)
			require.Equal(t, wantHex, hex.EncodeToString(out[0].Data))
			// The same input always gives the same bytes (deterministic marshalling).
			again, err := newCodec(t, &codec.CompressionOptions{Algorithm: alg}).Encode([]*commonpb.Payload{proto.Clone(in).(*commonpb.Payload)})
			require.NoError(t, err)
			require.Equal(t, out[0].Data, again[0].Data)
		})
	}
}

// zstdFrameContentSizes walks the zstd frames of data and returns the content size each
// declares.
func zstdFrameContentSizes(tb testing.TB, data []byte) []uint64 {
	tb.Helper()
	var sizes []uint64
	for len(data) > 0 {
		var h zstd.Header
		require.NoError(tb, h.Decode(data))
		require.True(tb, h.HasFCS)
		sizes = append(sizes, h.FrameContentSize)
		data = data[h.HeaderSize:]
		for last := false; !last; {
			require.GreaterOrEqual(tb, len(data), 3)
			bh := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16
			last = bh&1 == 1
			n := int(bh >> 3)
			if (bh>>1)&3 == 1 { // RLE block: one byte repeated
				n = 1
			}
			require.GreaterOrEqual(tb, len(data), 3+n)
			data = data[3+n:]
		}
		if h.HasCheckSum {
			require.GreaterOrEqual(tb, len(data), 4)
			data = data[4:]
		}
	}
	return sizes
}

func TestCompressionZstdLargeInputsAreCutIntoFrames(t *testing.T) {
	zlib := converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true})
	for _, tc := range []struct {
		size   int
		frames []uint64 // content sizes of the frames written at LevelDefault
	}{
		{900 << 10, []uint64{921779}},                  // below 1 MiB: one frame
		{1 << 20, []uint64{524495, 524494}},            // two pieces of about 512 KiB
		{1600 << 10, []uint64{546256, 546256, 546256}}, // three pieces of about 533 KiB
	} {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			p := orderPayload(t, tc.size)
			raw := marshal(t, p)
			enc, err := newCodec(t, nil).Encode([]*commonpb.Payload{p})
			require.NoError(t, err)
			require.Equal(t, codec.EncodingZstd, encodingOf(enc[0]))
			data := enc[0].Data
			require.Equal(t, tc.frames, zstdFrameContentSizes(t, data))

			// Any zstd decoder reads the frames as one stream.
			d, err := zstd.NewReader(nil)
			require.NoError(t, err)
			defer d.Close()
			got, err := d.DecodeAll(data, nil)
			require.NoError(t, err)
			require.Equal(t, raw, got)

			// The output depends only on the input.
			again, err := newCodec(t, nil).Encode([]*commonpb.Payload{proto.Clone(p).(*commonpb.Payload)})
			require.NoError(t, err)
			require.Equal(t, data, again[0].Data)

			// The size limit applies to the sum of the frames, and includes it.
			dec, err := newCodec(t, &codec.CompressionOptions{MaxDecodedSize: int64(len(raw))}).Decode(enc)
			require.NoError(t, err)
			require.True(t, proto.Equal(p, dec[0]))
			_, err = newCodec(t, &codec.CompressionOptions{MaxDecodedSize: int64(len(raw) - 1)}).Decode(enc)
			require.ErrorIs(t, err, codec.ErrDecodedTooLarge)

			if len(tc.frames) > 1 {
				// Frames of better compression: smaller than the SDK's zlib codec writes.
				z, err := zlib.Encode([]*commonpb.Payload{p})
				require.NoError(t, err)
				require.Less(t, len(data), len(z[0].Data))
			}
		})
	}
}

// Payloads of several frames decode their frames in parallel, each into its place: frames of
// other encoders (of unequal sizes) round trip, on one core as on several; a frame that
// declares one byte more or less than it holds, or a corrupt later frame, fails with
// ErrCorrupt whatever GOMAXPROCS is.
func TestCompressionZstdFramesDecodedInParallel(t *testing.T) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	require.NoError(t, err)
	defer enc.Close()
	raw := marshal(t, orderPayload(t, 1600<<10))
	cuts := []int{0, 100 << 10, 700 << 10, 701 << 10, len(raw)} // unequal frames, one of 1 KiB
	var data []byte
	var headers []int // offset of each frame
	for i := range len(cuts) - 1 {
		headers = append(headers, len(data))
		data = enc.EncodeAll(raw[cuts[i]:cuts[i+1]], data)
	}
	payload := func(b []byte) []*commonpb.Payload {
		return []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte(codec.EncodingZstd)}, Data: b}}
	}
	// fcs returns the offset and width of the content size field of the frame at off.
	fcs := func(off int) (int, int) {
		var h zstd.Header
		require.NoError(t, h.Decode(data[off:]))
		w := map[byte]int{0: 1, 1: 2, 2: 4, 3: 8}[data[off+4]>>6]
		if w == 1 && data[off+4]&0x20 == 0 {
			t.Fatal("frame without a content size")
		}
		return off + h.HeaderSize - w, w
	}
	for _, procs := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("GOMAXPROCS=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			c := newCodec(t, nil)
			dec, err := c.Decode(payload(data))
			require.NoError(t, err)
			require.Equal(t, raw, marshal(t, dec[0]))

			for _, delta := range []int{-1, +1} {
				bad := bytes.Clone(data)
				off, w := fcs(headers[1])
				require.Equal(t, 4, w)
				binary.LittleEndian.PutUint32(bad[off:], uint32(int(binary.LittleEndian.Uint32(bad[off:]))+delta))
				_, err := c.Decode(payload(bad))
				require.ErrorIs(t, err, codec.ErrCorrupt, "frame 1 declaring %+d byte", delta)
			}
			bad := bytes.Clone(data)
			for i := headers[3] + 20; i < headers[3]+60; i++ {
				bad[i] ^= 0x5a
			}
			_, err = c.Decode(payload(bad))
			require.ErrorIs(t, err, codec.ErrCorrupt)
		})
	}
}

// TestCompressionBatchBudget is finding 1 of the security review: the per-payload limit alone
// let a batch of small bombs (a 59-byte S2 block decodes to 64 MiB) retain many times the
// limit. Each payload below decodes to just under the per-payload limit; together they far
// exceed the batch budget, for every written format.
func TestCompressionBatchBudget(t *testing.T) {
	const perPayload = 60 << 20
	bomb := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: make([]byte, perPayload)}
	const n = 8
	for alg := range writtenEncodings {
		t.Run(string(alg), func(t *testing.T) {
			enc, err := newCodec(t, &codec.CompressionOptions{Algorithm: alg}).Encode([]*commonpb.Payload{bomb})
			require.NoError(t, err)
			batch := make([]*commonpb.Payload, n)
			wire := 0
			for i := range batch {
				batch[i] = enc[0]
				wire += proto.Size(enc[0])
			}
			c := newCodec(t, nil) // defaults: 64 MiB per payload, 128 MiB per Decode call
			_, _ = c.Decode(batch[:1])

			out, allocated, err := decodeAllocs(c, batch)

			require.Nil(t, out)
			require.ErrorIs(t, err, codec.ErrDecodeBudget)
			require.ErrorIs(t, err, codec.ErrDecodedTooLarge)
			require.Contains(t, err.Error(), "MaxDecodedBatchSize")
			require.Contains(t, err.Error(), fmt.Sprint(codec.DefaultMaxDecodedBatchFactor*codec.DefaultMaxDecodedSize))
			require.Contains(t, err.Error(), "payload=2", "the third payload crosses the 128 MiB budget")
			t.Logf("%s: %d payloads in %d wire bytes would decode to %d MiB; %d MiB allocated before the budget refused the batch",
				alg, n, wire, n*perPayload>>20, allocated>>20)
			// Two payloads fit the budget: each is decoded into a pooled buffer, then unmarshalled
			// into its own copy. Without the budget all eight were (about 960 MiB).
			require.Less(t, allocated, uint64(3*codec.DefaultMaxDecodedBatchFactor*codec.DefaultMaxDecodedSize))

			// Within the budget the same payloads decode.
			ok, err := c.Decode(batch[:2])
			require.NoError(t, err)
			require.Len(t, ok[1].Data, perPayload)
		})
	}
}

func TestCompressionBatchBudgetOption(t *testing.T) {
	_, err := codec.NewCompressionCodec(&codec.CompressionOptions{MaxDecodedSize: 100, MaxDecodedBatchSize: 99})
	require.ErrorContains(t, err, "MaxDecodedBatchSize")
	p := &commonpb.Payload{Data: bytes.Repeat([]byte("z"), 10000)}
	enc, err := newCodec(t, nil).Encode([]*commonpb.Payload{p})
	require.NoError(t, err)
	size := int64(proto.Size(p))
	c := newCodec(t, &codec.CompressionOptions{MaxDecodedSize: size, MaxDecodedBatchSize: 2 * size})
	_, err = c.Decode([]*commonpb.Payload{enc[0], enc[0]})
	require.NoError(t, err, "two payloads fit a budget of exactly their size")
	_, err = c.Decode([]*commonpb.Payload{enc[0], enc[0], enc[0]})
	require.ErrorIs(t, err, codec.ErrDecodeBudget)
}

// TestCompressionZstdLargeDecodeAllocatesOnce guards the decoder of multi-frame zstd payloads
// (LevelDefault cuts large inputs into frames): the output is sized from the frames' declared
// sizes, where growing it one frame at a time copied it once per frame (a 60 MiB payload
// allocated 3.6 GiB).
func TestCompressionZstdLargeDecodeAllocatesOnce(t *testing.T) {
	const size = 32 << 20
	p := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: make([]byte, size)}
	c := newCodec(t, nil)
	enc, err := c.Encode([]*commonpb.Payload{p})
	require.NoError(t, err)
	_, _ = c.Decode(enc)
	out, allocated, err := decodeAllocs(c, enc)
	require.NoError(t, err)
	require.Len(t, out[0].Data, size)
	t.Logf("decoding %d MiB from %d bytes allocated %d MiB", size>>20, len(enc[0].Data), allocated>>20)
	// The decoded bytes once, and the unmarshalled payload's copy.
	require.Less(t, allocated, uint64(3*size))
}

// decodeAllocs decodes payloads with c and returns what Decode returned and the bytes it
// allocated (after a GC, so that only the decode itself is counted).
func decodeAllocs(c converter.PayloadCodec, payloads []*commonpb.Payload) ([]*commonpb.Payload, uint64, error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	out, err := c.Decode(payloads)
	runtime.ReadMemStats(&after)
	return out, after.TotalAlloc - before.TotalAlloc, err
}
