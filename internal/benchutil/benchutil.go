// Package benchutil runs alternatives side by side in benchmarks, so that their ratios do not
// depend on when each ran.
package benchutil

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// blockTarget is about how long one alternative runs in one round of Interleave: long enough
// that the garbage collections an alternative's allocations start mostly run within its own
// block (with 2 ms blocks, the SDK's zlib codec, which allocates a new compressor per call,
// left collections running into the next alternative's block and halved its measured speed at
// 1 MiB), short enough for a hundred rounds in two seconds.
const blockTarget = 10 * time.Millisecond

// Result is what Interleave measured.
type Result struct {
	// NsPerOp is, for each alternative in the order given to Interleave, the median over the
	// rounds of its time per operation in nanoseconds.
	NsPerOp []float64
	// Runs is, for each alternative, how many times it ran in all, warm-up included.
	Runs   []int
	rounds [][]float64 // per round, each alternative's time per operation
}

// Ratio returns the median over the rounds of alternative i's time per operation divided by
// alternative j's in the same round.
func (r Result) Ratio(i, j int) float64 {
	ratios := make([]float64, 0, len(r.rounds))
	for _, round := range r.rounds {
		ratios = append(ratios, round[i]/round[j])
	}
	return Median(ratios)
}

// RatioOfSums returns the median over the rounds of the summed times per operation of the
// alternatives num divided by the summed times of the alternatives den in the same round. With
// several instances of each configuration (num the instances of one, den of the other), it
// averages out what is particular to one instance: where its buffers and tables lie in memory
// and in the caches, which on this kind of machine moved one instance's time by up to 10%
// against an identical one.
func (r Result) RatioOfSums(num, den []int) float64 {
	ratios := make([]float64, 0, len(r.rounds))
	for _, round := range r.rounds {
		var n, d float64
		for _, i := range num {
			n += round[i]
		}
		for _, i := range den {
			d += round[i]
		}
		ratios = append(ratios, n/d)
	}
	return Median(ratios)
}

// Interleave runs the alternatives fns in rounds, one round per iteration of b.Loop: in each
// round every alternative runs a block of operations lasting about blockTarget (the same
// number of operations in every round, at least one), in an order drawn at random every round,
// so that load from other processes, and the garbage collections one alternative's allocations
// start, fall on all of them alike rather than on whichever runs next, whatever their period.
// What is particular to one instance of an alternative (where its tables lie in memory) is not
// averaged by rounds: see Result.RatioOfSums. Medians over the rounds
// make a few disturbed rounds irrelevant. Each alternative runs three times first, unmeasured,
// to warm up pools and encoders, and then a few times more to size its block.
func Interleave(b *testing.B, fns ...func()) Result {
	b.Helper()
	reps := make([]int, len(fns))
	for i, f := range fns {
		for range 3 {
			f()
		}
		start := time.Now()
		for range 3 {
			f()
		}
		per := max(time.Since(start)/3, time.Nanosecond)
		reps[i] = max(1, int(blockTarget/per))
	}
	var rounds [][]float64
	n := 0
	for b.Loop() {
		round := make([]float64, len(fns))
		for _, i := range rand.Perm(len(fns)) {
			start := time.Now()
			for range reps[i] {
				fns[i]()
			}
			round[i] = float64(time.Since(start).Nanoseconds()) / float64(reps[i])
		}
		rounds = append(rounds, round)
		n++
	}
	res := Result{NsPerOp: make([]float64, len(fns)), Runs: make([]int, len(fns)), rounds: rounds}
	for i := range fns {
		res.Runs[i] = 6 + n*reps[i]
		per := make([]float64, 0, len(rounds))
		for _, round := range rounds {
			per = append(per, round[i])
		}
		res.NsPerOp[i] = Median(per)
	}
	return res
}

// Median returns the median of xs (the mean of the two middle values for an even count), and
// 0 for none. xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 0 {
		return (s[m-1] + s[m]) / 2
	}
	return s[m]
}
