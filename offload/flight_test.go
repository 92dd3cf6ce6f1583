package offload_test

import (
	"context"
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/payloadkit/payloadkit/offload"
)

// slowStore is a MemoryStore whose uploads wait on a gate and are counted.
type slowStore struct {
	*offload.MemoryStore
	gate chan struct{}
	puts atomic.Int32
}

func (s *slowStore) PutParts(ctx context.Context, key string, parts [][]byte, sum [sha256.Size]byte) error {
	s.puts.Add(1)
	<-s.gate
	return s.MemoryStore.PutParts(ctx, key, parts, sum)
}

// TestCodecConcurrentPutsShareOneUpload: concurrent encodes of one value (a late activity
// attempt returning alongside its retry) make one upload; the others wait for it and report
// deduplicated.
func TestCodecConcurrentPutsShareOneUpload(t *testing.T) {
	store := &slowStore{MemoryStore: offload.NewMemoryStore(), gate: make(chan struct{})}
	var mu sync.Mutex
	ops := map[string]int{}
	c, err := offload.NewCodec(&offload.Options{Store: store, Threshold: 16, OnObject: func(e offload.ObjectEvent) {
		mu.Lock()
		ops[e.Operation]++
		mu.Unlock()
		if e.Err != nil {
			t.Errorf("%s: %v", e.Operation, e.Err)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	p := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: make([]byte, 4096)}
	const n = 6
	var wg sync.WaitGroup
	keys := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := c.Encode([]*commonpb.Payload{p})
			if err != nil {
				t.Error(err)
				return
			}
			cl, err := offload.ParseClaim(out[0])
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = cl.Key
		}()
	}
	for store.puts.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the other encodes reach the shared upload
	close(store.gate)
	wg.Wait()
	if got := store.puts.Load(); got != 1 {
		t.Fatalf("%d uploads for one value encoded %d times concurrently, want 1", got, n)
	}
	if ops[offload.OpPut] != 1 || ops[offload.OpDeduplicated] != n-1 {
		t.Fatalf("events %v, want 1 put and %d deduplicated", ops, n-1)
	}
	for _, k := range keys {
		if k != keys[0] {
			t.Fatalf("claims name %s and %s", keys[0], k)
		}
	}
}
