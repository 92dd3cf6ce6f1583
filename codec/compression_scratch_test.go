package codec_test

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"
)

func threadCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(1, &ru) // RUSAGE_THREAD
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestScratchCPU(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	codecs := benchCodecs(t)
	for _, sz := range benchSizes {
		p := orderPayload(t, sz.size)
		in := []*commonpb.Payload{p}
		raw := proto.Size(p)
		cpu := make([]time.Duration, len(codecs))
		n := max(3, (4<<20)/raw)
		for round := 0; round < 5; round++ {
			for i, bc := range codecs {
				s := threadCPU()
				for range n {
					roundTrip(t, bc.codec, in)
				}
				cpu[i] += threadCPU() - s
			}
		}
		for i, bc := range codecs {
			fmt.Printf("%-6s %-16s %8.1f MB/s(cpu) %6.2fx\n", sz.name, bc.name, float64(raw*n*5)/cpu[i].Seconds()/1e6, float64(cpu[5])/float64(cpu[i]))
		}
	}
}
