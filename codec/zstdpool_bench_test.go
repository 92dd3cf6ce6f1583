package codec

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/payloadkit/payloadkit/internal/benchutil"
)

// BenchmarkZstdEncoderPool compares, interleaved, the encoder pool the compression stage uses
// (zstdPool: encoders of concurrency 1, the most recently returned lent first) with one
// zstd.Encoder of concurrency GOMAXPROCS, which hands out its encoders in turn, on the same
// JSON-like input, one caller at a time. Each side has three instances (two encoders built
// alike can differ by several percent, by where their tables lie in memory): pool-vs-shared-x
// is the median of the per-round ratios of their summed times (less is better), and aa-x
// compares two of the shared encoders.
func BenchmarkZstdEncoderPool(b *testing.B) {
	var line bytes.Buffer
	for i := 0; line.Len() < 1<<20; i++ {
		fmt.Fprintf(&line, `{"id":%d,"email":"user%d@example.com","sku":"SKU-%04d","cents":%d,"status":"shipped"},`, i, i%5000, i%300, i*7919%100000)
	}
	input := line.Bytes()
	for _, tc := range []struct {
		name  string
		level int
		size  int
	}{
		{"default-1KiB", levelDefault, 1 << 10},
		{"default-64KiB", levelDefault, 64 << 10},
		{"better-512KiB", levelBetter, zstdFrameSize},
	} {
		b.Run(tc.name, func(b *testing.B) {
			src := input[:tc.size]
			var fns []func()
			var outs []*[]byte
			for range 3 {
				pool := &zstdPool{level: zstdLevels[tc.level], slots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))}
				shared, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstdLevels[tc.level]), zstd.WithLowerEncoderMem(true),
					zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
				if err != nil {
					b.Fatal(err)
				}
				var d1, d2 []byte
				outs = append(outs, &d1, &d2)
				fns = append(fns,
					func() {
						if d1, err = pool.encodeAll(src, d1[:0]); err != nil {
							b.Fatal(err)
						}
					},
					func() { d2 = shared.EncodeAll(src, d2[:0]) })
			}
			res := benchutil.Interleave(b, fns...)
			for _, d := range outs[1:] {
				if !bytes.Equal(*d, *outs[0]) {
					b.Fatal("the pools' and the shared encoders' outputs differ")
				}
			}
			b.ReportMetric(res.RatioOfSums([]int{0, 2, 4}, []int{1, 3, 5}), "pool-vs-shared-x")
			b.ReportMetric(res.Ratio(1, 3), "aa-x")
		})
	}
}
