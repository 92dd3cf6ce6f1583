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
// JSON-like input, one caller at a time: pool-vs-shared-x is the pool's time over the shared
// encoder's (less is better).
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
			pool, err := sharedZstdPool(tc.level)
			if err != nil {
				b.Fatal(err)
			}
			shared, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstdLevels[tc.level]), zstd.WithLowerEncoderMem(true),
				zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
			if err != nil {
				b.Fatal(err)
			}
			src := input[:tc.size]
			var d1, d2 []byte
			res := benchutil.Interleave(b,
				func() {
					if d1, err = pool.encodeAll(src, d1[:0]); err != nil {
						b.Fatal(err)
					}
				},
				func() { d2 = shared.EncodeAll(src, d2[:0]) })
			if !bytes.Equal(d1, d2) {
				b.Fatal("the pool's and the shared encoder's outputs differ")
			}
			b.ReportMetric(res.NsPerOp[0], "pool-ns/op")
			b.ReportMetric(res.NsPerOp[1], "shared-ns/op")
			b.ReportMetric(res.Ratio(0, 1), "pool-vs-shared-x")
		})
	}
}
