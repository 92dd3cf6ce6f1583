package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/internal/pbwire"
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

// CompressionLevel trades compression speed for output size. Each algorithm maps it to its own levels.
type CompressionLevel string

// Compression levels understood by NewCompressionCodec.
const (
	// LevelFastest favours speed: zstd SpeedFastest, s2 Encode, gzip level 1.
	LevelFastest CompressionLevel = "fastest"
	// LevelDefault balances speed and size: s2 Encode, gzip level 6, and for zstd SpeedDefault
	// (about zstd level 3) below 1 MiB. Zstd inputs of 1 MiB or more are cut into frames of
	// 512 KiB to 1 MiB, compressed concurrently with SpeedBetterCompression (see zstdFrameSize).
	// The default.
	LevelDefault CompressionLevel = "default"
	// LevelBetter favours size: zstd SpeedBetterCompression, s2 EncodeBetter, gzip level 7.
	LevelBetter CompressionLevel = "better"
	// LevelBest gives the smallest output at a large CPU cost: zstd SpeedBestCompression,
	// s2 EncodeBest, gzip level 9.
	LevelBest CompressionLevel = "best"
)

// Payload encodings written or read by the compression codec.
//
// Wire format: metadata holds only `encoding`; data is the compressed form of the
// deterministically proto-marshalled input Payload (metadata included), with no extra header:
// one or more zstd frames (binary/zstd), an S2 block (binary/s2), a gzip stream (binary/gzip),
// a zlib stream (binary/zlib) or a Snappy block (binary/snappy).
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
	// DefaultMaxDecodedBatchFactor gives the default of MaxDecodedBatchSize: that many times
	// MaxDecodedSize (128 MiB with the defaults).
	DefaultMaxDecodedBatchFactor = 2
)

// Errors returned (wrapped) by the compression codec's Decode; test them with errors.Is.
var (
	// ErrDecodedTooLarge reports a compressed payload whose decoded size exceeds
	// CompressionOptions.MaxDecodedSize (for example a decompression bomb).
	ErrDecodedTooLarge = errors.New("payloadkit: compression: decoded size exceeds the limit")
	// ErrDecodeBudget reports a Decode call whose compressed payloads together decode to more
	// than CompressionOptions.MaxDecodedBatchSize: many small bombs in one batch. Errors
	// matching it also match ErrDecodedTooLarge.
	ErrDecodeBudget = errors.New("payloadkit: compression: decoded bytes of one Decode call exceed MaxDecodedBatchSize")
	// ErrCorrupt reports a compressed payload that cannot be decompressed or whose
	// decompressed bytes are not a marshalled Payload.
	ErrCorrupt = errors.New("payloadkit: compression: corrupt compressed payload")
)

// CompressionOptions configure the compression stage. The zero value is valid.
type CompressionOptions struct {
	// Algorithm to compress with. Defaults to Zstd. Decoding always accepts every supported encoding.
	Algorithm Algorithm
	// Level trades speed for size. Defaults to LevelDefault.
	Level CompressionLevel
	// MinSize is the marshalled payload size, in bytes, below which a payload is passed through.
	// Defaults to DefaultMinSize. Negative values are rejected.
	MinSize int
	// MaxDecodedSize bounds the decoded size, in bytes, of any compressed payload.
	// Defaults to DefaultMaxDecodedSize. Negative values are rejected.
	MaxDecodedSize int64
	// MaxDecodedBatchSize bounds the decoded bytes of all compressed payloads of one Decode
	// call together (a workflow's input arguments, a signal's, a Codec Server request's): each
	// payload is decoded with what is left of it as its limit, so a batch of small bombs stops
	// at this many bytes. Defaults to DefaultMaxDecodedBatchFactor times MaxDecodedSize.
	// Values below MaxDecodedSize are rejected.
	MaxDecodedBatchSize int64
}

// NewCompressionCodec returns the compression stage for opts (nil means defaults). See
// Compression for what it encodes and decodes.
func NewCompressionCodec(opts *CompressionOptions) (*Compression, error) {
	var o CompressionOptions
	if opts != nil {
		o = *opts
	}
	if o.Algorithm == "" {
		o.Algorithm = Zstd
	}
	if o.Level == "" {
		o.Level = LevelDefault
	}
	if o.MinSize == 0 {
		o.MinSize = DefaultMinSize
	}
	if o.MaxDecodedSize == 0 {
		o.MaxDecodedSize = DefaultMaxDecodedSize
	}
	switch o.Algorithm {
	case Zstd, S2, Gzip, None:
	default:
		return nil, fmt.Errorf("Compression.Algorithm %q: allowed values are %q, %q, %q, %q",
			o.Algorithm, Zstd, S2, Gzip, None)
	}
	var lvl int
	switch o.Level {
	case LevelFastest:
		lvl = levelFastest
	case LevelDefault:
		lvl = levelDefault
	case LevelBetter:
		lvl = levelBetter
	case LevelBest:
		lvl = levelBest
	default:
		return nil, fmt.Errorf("Compression.Level %q: allowed values are %q, %q, %q, %q",
			o.Level, LevelFastest, LevelDefault, LevelBetter, LevelBest)
	}
	if o.MinSize < 0 {
		return nil, fmt.Errorf("Compression.MinSize %d: must be 0 (default %d) or a positive number of bytes",
			o.MinSize, DefaultMinSize)
	}
	if o.MaxDecodedSize < 0 {
		return nil, fmt.Errorf("Compression.MaxDecodedSize %d: must be 0 (default %d) or a positive number of bytes",
			o.MaxDecodedSize, int64(DefaultMaxDecodedSize))
	}
	if o.MaxDecodedBatchSize == 0 {
		o.MaxDecodedBatchSize = DefaultMaxDecodedBatchFactor * o.MaxDecodedSize
	}
	if o.MaxDecodedBatchSize < o.MaxDecodedSize {
		return nil, fmt.Errorf("Compression.MaxDecodedBatchSize %d: must be 0 (default %d times MaxDecodedSize) or at least MaxDecodedSize (%d)",
			o.MaxDecodedBatchSize, DefaultMaxDecodedBatchFactor, o.MaxDecodedSize)
	}

	c := &Compression{
		alg:        o.Algorithm,
		level:      lvl,
		minSize:    o.MinSize,
		maxDecoded: o.MaxDecodedSize,
		maxBatch:   o.MaxDecodedBatchSize,
	}
	switch o.Algorithm {
	case Zstd:
		c.encoding = EncodingZstd
		enc, err := sharedZstdPool(lvl)
		if err != nil {
			return nil, fmt.Errorf("zstd encoder: %w", err)
		}
		c.zenc = enc
		if lvl == levelDefault {
			if c.zencLarge, err = sharedZstdPool(levelBetter); err != nil {
				return nil, fmt.Errorf("zstd encoder: %w", err)
			}
		}
	case S2:
		c.encoding = EncodingS2
	case Gzip:
		c.encoding = EncodingGzip
	}
	window := uint64(o.MaxDecodedSize)
	window = max(window, zstd.MinWindowSize)
	window = min(window, zstd.MaxWindowSize)
	c.zdecOpts = []zstd.DOption{
		zstd.WithDecoderMaxMemory(uint64(o.MaxDecodedSize)),
		zstd.WithDecoderMaxWindow(window),
	}
	return c, nil
}

// Internal level indexes.
const (
	levelFastest = iota
	levelDefault
	levelBetter
	levelBest
	numLevels
)

var (
	zstdLevels = [numLevels]zstd.EncoderLevel{
		zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression, zstd.SpeedBestCompression,
	}
	gzipLevels = [numLevels]int{gzip.BestSpeed, 6, 7, gzip.BestCompression}

	// One pool of zstd encoders per level serves every codec.
	zstdEncoders [numLevels]zstdPool
	gzipWriters  [numLevels]sync.Pool // of *gzip.Writer
	gzipReaders  sync.Pool            // of *gzip.Reader
	zlibReaders  sync.Pool            // of io.ReadCloser implementing zlib.Resetter
	buffers      sync.Pool            // of *[]byte
)

// zstdFrameSize is the smallest piece, in bytes, in which LevelDefault cuts large zstd inputs.
// An input of less than two pieces is compressed as a single SpeedDefault frame. A larger input
// is cut into n = floor(len/zstdFrameSize) pieces of ceil(len/n) bytes (the last one shorter),
// each compressed as its own frame at SpeedBetterCompression, the frames running concurrently
// (at most GOMAXPROCS at a time) and concatenated in order.
//
// On JSON, a single SpeedDefault frame is about 5% larger than zlib level 6 output, while
// SpeedBetterCompression frames of 512 KiB are about 3.5% smaller (frames cannot refer to each
// other, which costs about 2% against a single SpeedBetterCompression frame). One after the
// other, they take about 1.1 times the CPU time of a single SpeedDefault frame; running them
// concurrently shortens the elapsed time when cores are free (and costs extra CPU time where
// the cores are shared, for example by hyperthreads). The cut depends only on the input
// length, so the output is the same on every machine. Decoders read concatenated frames as one
// stream, and the decoded size limit applies to their sum. The SpeedBetterCompression encoders
// (about 4.5 MB each, up to GOMAXPROCS of them) are allocated on first use.
const zstdFrameSize = 512 << 10

// zstdPool lends zstd encoders of one level (each with concurrency 1), most recently returned
// first, at most GOMAXPROCS (when first used) at a time: an encoder's tables, several MB at
// SpeedBetterCompression, are still in the CPU caches when it is used again soon. (A
// zstd.Encoder of concurrency n hands out its n encoders in turn instead, each call then
// finding cold tables: SpeedBetterCompression on 512 KiB took about 15% longer.)
type zstdPool struct {
	once  sync.Once
	level zstd.EncoderLevel
	slots chan struct{} // one per encoder lent
	mu    sync.Mutex
	free  []*zstd.Encoder // returned encoders; the last one is lent first
}

// sharedZstdPool returns the pool of level, after checking that its encoders can be built.
func sharedZstdPool(level int) (*zstdPool, error) {
	p := &zstdEncoders[level]
	p.once.Do(func() {
		p.level = zstdLevels[level]
		p.slots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	})
	e, err := p.get()
	if err != nil {
		return nil, err
	}
	p.put(e)
	return p, nil
}

func (p *zstdPool) get() (*zstd.Encoder, error) {
	p.slots <- struct{}{}
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		e := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return e, nil
	}
	p.mu.Unlock()
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(p.level), zstd.WithLowerEncoderMem(true), zstd.WithEncoderConcurrency(1))
	if err != nil {
		<-p.slots
		return nil, err
	}
	return e, nil
}

func (p *zstdPool) put(e *zstd.Encoder) {
	p.mu.Lock()
	p.free = append(p.free, e)
	p.mu.Unlock()
	<-p.slots
}

// encodeAll appends the zstd frame of src to dst, with an encoder of the pool.
func (p *zstdPool) encodeAll(src, dst []byte) ([]byte, error) {
	e, err := p.get()
	if err != nil {
		return nil, err
	}
	defer p.put(e)
	return e.EncodeAll(src, dst), nil
}

// maxPooledBuffer is the largest buffer capacity returned to the pool; larger buffers are
// left to the garbage collector so that one huge payload does not pin memory.
const maxPooledBuffer = 4 << 20

func getBuffer() *[]byte {
	if b, ok := buffers.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 16<<10)
	return &b
}

// putClearedBuffer zeroes b, all of its capacity, before it returns to the pool: for buffers
// that held plaintext (the encryption stage's), so that it does not linger in pooled memory.
func putClearedBuffer(b *[]byte) {
	clear((*b)[:cap(*b)])
	putBuffer(b)
}

func putBuffer(b *[]byte) {
	if cap(*b) > maxPooledBuffer {
		return
	}
	*b = (*b)[:0]
	buffers.Put(b)
}

// Compression is the compression stage, a converter.PayloadCodec built by NewCompressionCodec.
//
// Encode compresses every payload whose marshalled size is at least MinSize and keeps the
// result only when it is smaller than the marshalled payload. Decode reads binary/zstd,
// binary/s2, binary/gzip, binary/zlib and binary/snappy payloads, whatever Algorithm is
// configured, and passes every other payload through unchanged. With Algorithm None, Encode
// passes everything through and Decode still reads compressed payloads. Inputs are never
// mutated.
//
// A Compression is safe for concurrent use. Encoders, decoders and buffers are pooled and
// left to the garbage collector: there is nothing to close.
type Compression struct {
	alg        Algorithm
	level      int
	encoding   string // written encoding; empty for None
	minSize    int
	maxDecoded int64
	maxBatch   int64

	zenc      *zstdPool
	zencLarge *zstdPool // LevelDefault inputs of at least 2*zstdFrameSize; nil otherwise

	zdecOnce sync.Once
	zdec     *zstd.Decoder // DecodeAll decoder for frames that declare their size
	zdecErr  error
	zdecOpts []zstd.DOption
	zstreams sync.Pool // of *zstd.Decoder (concurrency 1) for frames of unknown size
}

var _ converter.PayloadCodec = (*Compression)(nil)

// Encode implements converter.PayloadCodec.
func (c *Compression) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	if c.alg == None {
		copy(out, payloads)
		return out, nil
	}
	var raw, comp *[]byte
	defer func() {
		if raw != nil {
			putBuffer(raw)
			putBuffer(comp)
		}
	}()
	for i, p := range payloads {
		if raw == nil {
			raw, comp = getBuffer(), getBuffer()
		}
		// Marshalled deterministically (metadata keys sorted), so that equal payloads give equal
		// bytes, hence equal objects in a content-addressed offload store; straight away
		// rather than sized first: sizing costs about as much as
		// marshalling, and payloads under MinSize are cheap to marshal.
		var err error
		*raw, err = pbwire.AppendMarshal((*raw)[:0], p, true)
		if err != nil {
			if pbwire.Size(p) < c.minSize {
				out[i] = p // passed through, as it would be had it marshalled
				continue
			}
			return nil, fmt.Errorf("payloadkit: compression: encode [payload=%d]: marshal: %w", i, err)
		}
		if len(*raw) < c.minSize {
			out[i] = p
			continue
		}
		*comp, err = c.compress((*comp)[:0], *raw)
		if err != nil {
			return nil, fmt.Errorf("payloadkit: compression: encode [payload=%d, algorithm=%s]: %w", i, c.alg, err)
		}
		if len(*comp) >= len(*raw) {
			out[i] = p
			continue
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{converter.MetadataEncoding: []byte(c.encoding)},
			// An exact-size copy of the (smaller) compressed bytes, so that the pooled buffer
			// can be reused and the payload does not pin a larger allocation.
			Data: bytes.Clone(*comp),
		}
	}
	return out, nil
}

// compress appends the compressed form of src to dst.
func (c *Compression) compress(dst, src []byte) ([]byte, error) {
	switch c.alg {
	case Zstd:
		if c.zencLarge != nil && len(src) >= 2*zstdFrameSize {
			return encodeZstdFrames(c.zencLarge, dst, src)
		}
		return c.zenc.encodeAll(src, dst)
	case S2:
		n := s2.MaxEncodedLen(len(src))
		if n < 0 {
			return nil, s2.ErrTooLarge
		}
		if cap(dst) < n {
			dst = make([]byte, n)
		}
		dst = dst[:n]
		switch c.level {
		case levelBetter:
			return s2.EncodeBetter(dst, src), nil
		case levelBest:
			return s2.EncodeBest(dst, src), nil
		default:
			return s2.Encode(dst, src), nil
		}
	case Gzip:
		w := appendWriter{b: dst}
		zw, _ := gzipWriters[c.level].Get().(*gzip.Writer)
		if zw == nil {
			var err error
			if zw, err = gzip.NewWriterLevel(&w, gzipLevels[c.level]); err != nil {
				return nil, err
			}
		} else {
			zw.Reset(&w)
		}
		_, err := zw.Write(src)
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		zw.Reset(nil)
		gzipWriters[c.level].Put(zw)
		return w.b, err
	}
	return nil, fmt.Errorf("unsupported algorithm %q", c.alg)
}

// encodeZstdFrames appends to dst the zstd frames of src cut as zstdFrameSize describes. The
// frames are compressed by up to GOMAXPROCS goroutines (the caller being one of them), each
// into a pooled buffer.
func encodeZstdFrames(pool *zstdPool, dst, src []byte) ([]byte, error) {
	n := len(src) / zstdFrameSize
	size := (len(src) + n - 1) / n
	frames := make([]*[]byte, n)
	err := inParallel(n, func(i int) error {
		b := getBuffer()
		// JSON shrinks to about a sixth: start with room for a quarter.
		out, err := pool.encodeAll(src[i*size:min(len(src), (i+1)*size)], slices.Grow((*b)[:0], size/4))
		if err != nil {
			putBuffer(b)
			return err
		}
		*b = out
		frames[i] = b
		return nil
	})
	for _, b := range frames {
		if b != nil {
			if err == nil {
				dst = append(dst, *b...)
			}
			putBuffer(b)
		}
	}
	return dst, err
}

// appendWriter is an io.Writer appending to a byte slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// Decode implements converter.PayloadCodec.
func (c *Compression) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	var buf *[]byte
	var used int64 // decoded bytes of this call, against maxBatch
	defer func() {
		if buf != nil {
			putBuffer(buf)
		}
	}()
	for i, p := range payloads {
		enc := p.GetMetadata()[converter.MetadataEncoding]
		switch string(enc) {
		case EncodingZstd, EncodingS2, EncodingGzip, EncodingZlib, EncodingSnappy:
		default:
			out[i] = p
			continue
		}
		limit := min(c.maxDecoded, c.maxBatch-used)
		// Zstd frames that declare their size and S2 blocks decode into a new buffer of exactly
		// that size, which the payload then keeps: its data is a slice of it, never copied.
		// Other formats decode into a pooled buffer that grows as it goes, and the payload
		// unmarshalled from it copies what it keeps.
		var decoded []byte
		var err error
		fresh := string(enc) == EncodingZstd || string(enc) == EncodingS2 || string(enc) == EncodingSnappy
		if fresh {
			decoded, err = c.decompress(string(enc), nil, p.GetData(), limit)
		} else {
			if buf == nil {
				buf = getBuffer()
			}
			if decoded, err = c.decompress(string(enc), (*buf)[:0], p.GetData(), limit); err == nil {
				*buf = decoded // keep a grown buffer for the next payloads
			}
		}
		if err == nil {
			used += int64(len(decoded))
			var np *commonpb.Payload
			var uerr error
			// A zstd frame of unknown size grew its buffer by doubling: copy rather than keep
			// the slack.
			if fresh && cap(decoded)-len(decoded) <= len(decoded)/8 {
				np, uerr = pbwire.Unmarshal(decoded)
			} else {
				np = &commonpb.Payload{}
				uerr = proto.Unmarshal(decoded, np)
			}
			if uerr != nil {
				err = fmt.Errorf("%w: unmarshal: %w", ErrCorrupt, uerr)
			} else {
				out[i] = np
				continue
			}
		}
		if errors.Is(err, ErrDecodedTooLarge) && limit < c.maxDecoded {
			return nil, fmt.Errorf("%w (%d bytes; %d decoded before this payload) [payload=%d, encoding=%s, size=%d]: %w",
				ErrDecodeBudget, c.maxBatch, used, i, enc, len(p.GetData()), ErrDecodedTooLarge)
		}
		if errors.Is(err, ErrDecodedTooLarge) {
			return nil, fmt.Errorf("%w (limit %d bytes) [payload=%d, encoding=%s, size=%d]",
				err, c.maxDecoded, i, enc, len(p.GetData()))
		}
		return nil, fmt.Errorf("%w [payload=%d, encoding=%s, size=%d]", err, i, enc, len(p.GetData()))
	}
	return out, nil
}

// decompress appends the decoded form of src to dst. Its errors wrap ErrDecodedTooLarge or ErrCorrupt.
// At most limit bytes are decoded.
func (c *Compression) decompress(encoding string, dst, src []byte, limit int64) ([]byte, error) {
	switch encoding {
	case EncodingZstd:
		return c.decodeZstd(dst, src, limit)
	case EncodingS2, EncodingSnappy:
		// The S2 block decoder also reads Snappy blocks.
		n, err := s2.DecodedLen(src)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if int64(n) > limit {
			return nil, fmt.Errorf("%w: block declares %d bytes", ErrDecodedTooLarge, n)
		}
		out, err := s2.Decode(dst[:0], src)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return out, nil
	case EncodingGzip:
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(bytes.NewReader(src))
		} else {
			err = zr.Reset(bytes.NewReader(src))
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		dst, err = readLimited(zr, dst, limit)
		gzipReaders.Put(zr)
		return dst, err
	case EncodingZlib:
		zr, _ := zlibReaders.Get().(io.ReadCloser)
		var err error
		if zr == nil {
			zr, err = zlib.NewReader(bytes.NewReader(src))
		} else {
			err = zr.(zlib.Resetter).Reset(bytes.NewReader(src), nil)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		dst, err = readLimited(zr, dst, limit)
		zlibReaders.Put(zr)
		return dst, err
	}
	return nil, fmt.Errorf("%w: unsupported encoding %q", ErrCorrupt, encoding)
}

func (c *Compression) decodeZstd(dst, src []byte, limit int64) ([]byte, error) {
	var h zstd.Header
	if err := h.Decode(src); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if h.HasFCS && h.FrameContentSize > uint64(limit) {
		return nil, fmt.Errorf("%w: frame declares %d bytes", ErrDecodedTooLarge, h.FrameContentSize)
	}
	if !h.HasFCS {
		// A frame of unknown size (written by a streaming encoder): stream it into a buffer that
		// grows up to the limit instead of letting the block decoder grow its output freely.
		d, _ := c.zstreams.Get().(*zstd.Decoder)
		if d == nil {
			var err error
			d, err = zstd.NewReader(nil, append([]zstd.DOption{zstd.WithDecoderConcurrency(1)}, c.zdecOpts...)...)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
			}
		}
		if err := d.Reset(bytes.NewReader(src)); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		dst, err := readLimited(d, dst, limit)
		_ = d.Reset(nil) // drop the reference to src
		c.zstreams.Put(d)
		return dst, err
	}
	c.zdecOnce.Do(func() {
		c.zdec, c.zdecErr = zstd.NewReader(nil, append([]zstd.DOption{zstd.WithDecoderConcurrency(0)}, c.zdecOpts...)...)
	})
	if c.zdecErr != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, c.zdecErr)
	}
	// Every frame declares its size (payloadkit writes large payloads as several frames):
	// check the sum against the limit before decoding anything, and give DecodeAll room for
	// all of it, since it grows its output to exactly one more frame at a time, which copies
	// the output once per frame. Several frames are decoded in parallel, each into its place.
	var fbuf [4]zstdFrame
	if frames, total, ok := zstdFrames(src, fbuf[:0]); ok {
		if total > uint64(limit) {
			return nil, fmt.Errorf("%w: frames declare %d bytes", ErrDecodedTooLarge, total)
		}
		if uint64(cap(dst)) < total {
			dst = make([]byte, 0, total)
		}
		if len(frames) > 1 && runtime.GOMAXPROCS(0) > 1 {
			out := dst[:total]
			if err := c.decodeZstdFrames(frames, out); err != nil {
				return nil, err
			}
			return out, nil
		}
	}
	out, err := c.zdec.DecodeAll(src, dst[:0])
	if err != nil {
		return nil, zstdError(err)
	}
	if int64(len(out)) > limit {
		// Later frames of a multi-frame payload went past what is left of the batch budget.
		return nil, fmt.Errorf("%w: frames decode to %d bytes", ErrDecodedTooLarge, len(out))
	}
	return out, nil
}

// zstdFrame locates one frame of a zstd stream: its bytes and its declared content size.
type zstdFrame struct {
	src  []byte
	size uint64
}

// zstdFrames walks the frames of src by their headers and block headers, without decoding,
// and returns its frames (skippable frames left out) and the sum of their declared content
// sizes. ok is false when a frame declares no size or src is not a well-formed sequence of
// frames (DecodeAll then reports it). frames is appended to buf.
func zstdFrames(src []byte, buf []zstdFrame) (frames []zstdFrame, total uint64, ok bool) {
	frames = buf[:0]
	for len(src) > 0 {
		var h zstd.Header
		if err := h.Decode(src); err != nil {
			return nil, 0, false
		}
		if h.Skippable {
			n := uint64(h.HeaderSize) + uint64(h.SkippableSize)
			if n > uint64(len(src)) {
				return nil, 0, false
			}
			src = src[n:]
			continue
		}
		if !h.HasFCS || h.HeaderSize <= 0 || h.HeaderSize > len(src) {
			return nil, 0, false
		}
		frame := src
		src = src[h.HeaderSize:]
		for last := false; !last; {
			if len(src) < 3 {
				return nil, 0, false
			}
			bh := uint32(src[0]) | uint32(src[1])<<8 | uint32(src[2])<<16
			src = src[3:]
			last = bh&1 == 1
			size := int(bh >> 3)
			switch (bh >> 1) & 3 {
			case 1: // RLE: one byte repeated size times
				size = 1
			case 3: // reserved
				return nil, 0, false
			}
			if size > len(src) {
				return nil, 0, false
			}
			src = src[size:]
		}
		if h.HasCheckSum {
			if len(src) < 4 {
				return nil, 0, false
			}
			src = src[4:]
		}
		if total+h.FrameContentSize < total {
			return nil, 0, false
		}
		total += h.FrameContentSize
		frames = append(frames, zstdFrame{src: frame[:len(frame)-len(src)], size: h.FrameContentSize})
	}
	return frames, total, true
}

// decodeZstdFrames decodes frames, whose declared sizes add up to len(out), each into its own
// section of out, with up to GOMAXPROCS goroutines (the caller being one of them): the frames
// of a large payload (see zstdFrameSize) are independent. A frame that does not decode to
// exactly its declared size is corrupt.
func (c *Compression) decodeZstdFrames(frames []zstdFrame, out []byte) error {
	offs := make([]int, len(frames)+1)
	for i, f := range frames {
		offs[i+1] = offs[i] + int(f.size)
	}
	return inParallel(len(frames), func(i int) error {
		// Capacity capped at the section: the frame cannot write into the next one.
		section := out[offs[i]:offs[i]:offs[i+1]]
		got, err := c.zdec.DecodeAll(frames[i].src, section)
		switch {
		case err != nil:
			return zstdError(err)
		case len(got) != int(frames[i].size) || len(got) > 0 && &got[0] != &out[offs[i]]:
			return fmt.Errorf("%w: frame %d decodes to %d bytes, declares %d", ErrCorrupt, i, len(got), frames[i].size)
		}
		return nil
	})
}

// inParallel calls do(i) for every i in [0, n) from up to GOMAXPROCS goroutines, the caller
// being one of them, and returns the first error; a goroutine whose call fails takes no more
// items (so with an error, some may not have run).
func inParallel(n int, do func(i int) error) error {
	var next atomic.Int64
	var mu sync.Mutex
	var firstErr error
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			if err := do(i); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
		}
	}
	var wg sync.WaitGroup
	for range min(n, runtime.GOMAXPROCS(0)) - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	return firstErr
}

func zstdError(err error) error {
	if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
		return fmt.Errorf("%w: %w", ErrDecodedTooLarge, err)
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, err)
}

// readLimited appends everything r yields to dst, failing with ErrDecodedTooLarge as soon as
// more than limit bytes arrive. The buffer grows by doubling but never beyond limit+1 bytes, so
// rejecting a bomb allocates about 1.5 times the limit.
func readLimited(r io.Reader, dst []byte, limit int64) ([]byte, error) {
	dst = dst[:0]
	for {
		if len(dst) == cap(dst) {
			if int64(len(dst)) > limit {
				return nil, ErrDecodedTooLarge
			}
			n := int64(max(2*cap(dst), 4<<10))
			if n >= limit/2 {
				// Go straight to the limit: doubling to it and then past it by one byte
				// would allocate three times the limit for a bomb. This way all the
				// buffers of one read add up to less than 1.5 times the limit.
				n = limit + 1
			}
			grown := make([]byte, len(dst), n)
			copy(grown, dst)
			dst = grown
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if int64(len(dst)) > limit {
			return nil, ErrDecodedTooLarge
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
				return nil, fmt.Errorf("%w: %w", ErrDecodedTooLarge, err)
			}
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	}
}
