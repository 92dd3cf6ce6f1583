// Package benchutil runs alternatives side by side in benchmarks, so that their ratios do not
// depend on when each ran.
package benchutil

import (
	"testing"
	"time"
)

// Interleave runs the alternatives fns once per iteration of b.Loop, in an order that rotates
// every iteration, so that load from other processes falls on all of them alike, and returns
// their mean durations in nanoseconds, in the order of fns. Each alternative runs three times
// first, unmeasured, to warm up pools and encoders.
func Interleave(b *testing.B, fns ...func()) []float64 {
	b.Helper()
	for _, f := range fns {
		for range 3 {
			f()
		}
	}
	total := make([]time.Duration, len(fns))
	n := 0
	for b.Loop() {
		for j := range fns {
			i := (n + j) % len(fns)
			start := time.Now()
			fns[i]()
			total[i] += time.Since(start)
		}
		n++
	}
	out := make([]float64, len(fns))
	for i, t := range total {
		out[i] = float64(t.Nanoseconds()) / float64(max(n, 1))
	}
	return out
}
