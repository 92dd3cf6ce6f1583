package offload_test

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/offload"
)

// countingStore wraps a Store, counting calls and the most calls in flight at once. When gate is
// non-nil every call waits for it to be closed, so tests can observe concurrency.
type countingStore struct {
	offload.Store
	puts, gets, exists atomic.Int64
	inFlight, maxIn    atomic.Int64
	gate               chan struct{}
}

func newCountingStore() *countingStore { return &countingStore{Store: offload.NewMemoryStore()} }

func (c *countingStore) enter() func() {
	n := c.inFlight.Add(1)
	for {
		m := c.maxIn.Load()
		if n <= m || c.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	if c.gate != nil {
		<-c.gate
	}
	return func() { c.inFlight.Add(-1) }
}

func (c *countingStore) Put(ctx context.Context, key string, data []byte) error {
	defer c.enter()()
	c.puts.Add(1)
	return c.Store.Put(ctx, key, data)
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	defer c.enter()()
	c.gets.Add(1)
	return c.Store.Get(ctx, key)
}

func (c *countingStore) Exists(ctx context.Context, key string) (bool, error) {
	defer c.enter()()
	c.exists.Add(1)
	return c.Store.Exists(ctx, key)
}

// events records ObjectEvents.
type events struct {
	mu  sync.Mutex
	all []offload.ObjectEvent
}

func (e *events) record(ev offload.ObjectEvent) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) count(op string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.all {
		if ev.Operation == op {
			n++
		}
	}
	return n
}

// bigPayload returns a JSON-like payload whose marshalled size is about n bytes, varied by seed.
func bigPayload(n int, seed byte) *commonpb.Payload {
	data := bytes.Repeat([]byte{'a' + seed%26}, n)
	data[0] = seed
	return &commonpb.Payload{
		Metadata: map[string][]byte{"encoding": []byte("json/plain"), "x-seed": {seed}},
		Data:     data,
	}
}

func clonePayloads(ps []*commonpb.Payload) []*commonpb.Payload {
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		out[i] = proto.Clone(p).(*commonpb.Payload)
	}
	return out
}

func assertUnchanged(t *testing.T, before, after []*commonpb.Payload) {
	t.Helper()
	for i := range before {
		if !proto.Equal(before[i], after[i]) {
			t.Fatalf("input payload %d was mutated", i)
		}
	}
}
