package codec_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/payloadkit/payloadkit/codec"
)

// fuzzLimit is the MaxDecodedSize of the fuzzed codec: small, so that bombs are cheap to find.
const fuzzLimit = 64 << 10

// fuzzDecode feeds data with the given encoding into Decode and checks the codec's promises:
// no panic, errors wrap one of the sentinels, and success implies the decompressed size was
// within the limit (checked with an independent decompression) and a payload came out.
func fuzzDecode(f *testing.F, encoding string, seeds [][]byte, decodedLen func(data []byte) (int64, error)) {
	for _, v := range decodeVectors {
		if v.encoding == encoding {
			b, err := hex.DecodeString(v.hex)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte("not compressed"))
	c, err := codec.NewCompressionCodec(&codec.CompressionOptions{MaxDecodedSize: fuzzLimit})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		in := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(encoding)}, Data: data}
		out, err := c.Decode([]*commonpb.Payload{in})
		if !bytes.Equal(orig, data) {
			t.Fatal("Decode modified its input")
		}
		if err != nil {
			if !errors.Is(err, codec.ErrCorrupt) && !errors.Is(err, codec.ErrDecodedTooLarge) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			if out != nil {
				t.Fatal("output on error")
			}
			return
		}
		if len(out) != 1 || out[0] == nil {
			t.Fatalf("Decode returned %v", out)
		}
		n, err := decodedLen(data)
		if err != nil {
			t.Fatalf("Decode accepted data the reference decoder rejects: %v", err)
		}
		if n > fuzzLimit {
			t.Fatalf("Decode accepted %d decoded bytes, limit %d", n, fuzzLimit)
		}
	})
}

// readLen decompresses r up to one byte past the limit and returns the length seen.
func readLen(r io.Reader) (int64, error) {
	return io.Copy(io.Discard, io.LimitReader(r, fuzzLimit+1))
}

func compressedSeeds(tb testing.TB, compress func([]byte) []byte) [][]byte {
	raw := marshal(tb, vectorPayload())
	bomb := compress(make([]byte, 4*fuzzLimit))
	valid := compress(raw)
	return [][]byte{valid, bomb, valid[:len(valid)/2], compress(raw[:len(raw)-1]), compress([]byte{0xff, 0xff})}
}

func FuzzDecodeZstd(f *testing.F) {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		f.Fatal(err)
	}
	seeds := compressedSeeds(f, func(b []byte) []byte { return enc.EncodeAll(b, nil) })
	// Several frames, as the codec writes for large inputs.
	raw := marshal(f, vectorPayload())
	seeds = append(seeds, enc.EncodeAll(raw[100:], enc.EncodeAll(raw[:100], nil)))
	fuzzDecode(f, codec.EncodingZstd, seeds,
		func(data []byte) (int64, error) {
			d, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1))
			if err != nil {
				return 0, err
			}
			defer d.Close()
			return readLen(d)
		})
}

func FuzzDecodeS2(f *testing.F) {
	seeds := compressedSeeds(f, func(b []byte) []byte { return s2.Encode(nil, b) })
	seeds = append(seeds, binary.AppendUvarint(nil, 1<<40), binary.AppendUvarint(nil, fuzzLimit+1))
	fuzzDecode(f, codec.EncodingS2, seeds, func(data []byte) (int64, error) {
		n, err := s2.DecodedLen(data)
		return int64(n), err
	})
}

func FuzzDecodeSnappy(f *testing.F) {
	seeds := compressedSeeds(f, func(b []byte) []byte { return s2.EncodeSnappy(nil, b) })
	seeds = append(seeds, binary.AppendUvarint(nil, 1<<31))
	fuzzDecode(f, codec.EncodingSnappy, seeds, func(data []byte) (int64, error) {
		n, err := s2.DecodedLen(data)
		return int64(n), err
	})
}

func FuzzDecodeGzip(f *testing.F) {
	fuzzDecode(f, codec.EncodingGzip, compressedSeeds(f, func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		_, _ = w.Write(b)
		_ = w.Close()
		return buf.Bytes()
	}), func(data []byte) (int64, error) {
		r, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return 0, err
		}
		return readLen(r)
	})
}

func FuzzDecodeZlib(f *testing.F) {
	fuzzDecode(f, codec.EncodingZlib, compressedSeeds(f, func(b []byte) []byte {
		var buf bytes.Buffer
		w := zlib.NewWriter(&buf)
		_, _ = w.Write(b)
		_ = w.Close()
		return buf.Bytes()
	}), func(data []byte) (int64, error) {
		r, err := zlib.NewReader(bytes.NewReader(data))
		if err != nil {
			return 0, err
		}
		return readLen(r)
	})
}
