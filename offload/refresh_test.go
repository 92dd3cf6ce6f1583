package offload_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/offload"
)

// fakeClock is a settable clock.
type fakeClock struct{ t atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.set(t)
	return c
}
func (c *fakeClock) set(t time.Time)         { c.t.Store(t.UnixNano()) }
func (c *fakeClock) advance(d time.Duration) { c.t.Add(int64(d)) }
func (c *fakeClock) now() time.Time          { return time.Unix(0, c.t.Load()) }

// statStore wraps a MemoryStore, counting the calls of each method; it keeps Stat and PutParts.
type statStore struct {
	*offload.MemoryStore
	puts, partPuts, stats, exists atomic.Int64
}

func (s *statStore) Put(ctx context.Context, key string, data []byte) error {
	s.puts.Add(1)
	return s.MemoryStore.Put(ctx, key, data)
}

func (s *statStore) PutParts(ctx context.Context, key string, parts [][]byte, sum [32]byte) error {
	s.partPuts.Add(1)
	return s.MemoryStore.PutParts(ctx, key, parts, sum)
}

func (s *statStore) Stat(ctx context.Context, key string) (offload.ObjectInfo, error) {
	s.stats.Add(1)
	return s.MemoryStore.Stat(ctx, key)
}

func (s *statStore) Exists(ctx context.Context, key string) (bool, error) {
	s.exists.Add(1)
	return s.MemoryStore.Exists(ctx, key)
}

// newClockedStatStore returns a fake clock and a memory store that counts Stat and Exists
// calls and dates its objects by that clock.
func newClockedStatStore() (*fakeClock, *statStore) {
	clock := newFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	mem := offload.NewMemoryStore()
	offload.SetMemoryStoreClock(mem, clock.now)
	return clock, &statStore{MemoryStore: mem}
}

// An object written at most RefreshAge ago is deduplicated; an older one is written again, which
// resets its write time; each Encode makes one Stat call per object and never calls Exists.
func TestCodecRefreshAge(t *testing.T) {
	clock, store := newClockedStatStore()
	var ev events
	c := newCodec(t, &offload.Options{Store: store, Threshold: 100, RefreshAge: 2 * time.Hour, OnObject: ev.record})
	offload.SetCodecClock(c, clock.now)
	p := bigPayload(5000, 1)

	enc, err := c.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := offload.ParseClaim(enc[0])
	if err != nil {
		t.Fatal(err)
	}
	written := clock.now()
	encodeOnce := func(wantOp string) {
		t.Helper()
		before := ev.count(wantOp)
		stats := store.stats.Load()
		if _, err := c.Encode([]*commonpb.Payload{p}); err != nil {
			t.Fatal(err)
		}
		if ev.count(wantOp) != before+1 {
			t.Fatalf("at %v after the write: events %+v, want one more %q", clock.now().Sub(written), ev.all, wantOp)
		}
		if store.stats.Load() != stats+1 {
			t.Fatalf("Encode made %d Stat calls, want 1", store.stats.Load()-stats)
		}
	}

	clock.advance(2 * time.Hour) // exactly RefreshAge: still fresh
	encodeOnce(offload.OpDeduplicated)
	if store.partPuts.Load() != 1 {
		t.Fatalf("PutParts calls = %d, want 1 (the first Encode only)", store.partPuts.Load())
	}

	clock.advance(time.Second) // older than RefreshAge: written again
	encodeOnce(offload.OpPut)
	if store.partPuts.Load() != 2 {
		t.Fatalf("PutParts calls = %d, want 2", store.partPuts.Load())
	}
	info, err := store.MemoryStore.Stat(context.Background(), cl.Key)
	if err != nil || !info.Modified.Equal(clock.now()) || info.Size != cl.Size {
		t.Fatalf("after the refresh Stat = %+v, %v; want size %d written at %v", info, err, cl.Size, clock.now())
	}

	clock.advance(time.Hour) // the refreshed object is fresh again
	encodeOnce(offload.OpDeduplicated)
	if store.exists.Load() != 0 || store.puts.Load() != 0 {
		t.Fatalf("Exists/Put calls = %d/%d, want 0/0 (Stat and PutParts are used)", store.exists.Load(), store.puts.Load())
	}
	dec, err := c.Decode(enc)
	if err != nil || !proto.Equal(dec[0], p) {
		t.Fatalf("Decode after refreshes: %v", err)
	}
}

// The default RefreshAge is DefaultRefreshAge.
func TestCodecDefaultRefreshAge(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	mem := offload.NewMemoryStore()
	offload.SetMemoryStoreClock(mem, clock.now)
	var ev events
	c := newCodec(t, &offload.Options{Store: mem, Threshold: 100, OnObject: ev.record})
	offload.SetCodecClock(c, clock.now)
	p := bigPayload(5000, 2)
	for _, step := range []struct {
		advance time.Duration
		puts    int
	}{{0, 1}, {offload.DefaultRefreshAge, 1}, {time.Nanosecond, 2}} {
		clock.advance(step.advance)
		if _, err := c.Encode([]*commonpb.Payload{p}); err != nil {
			t.Fatal(err)
		}
		if got := ev.count(offload.OpPut); got != step.puts {
			t.Fatalf("after advancing %v: %d puts, want %d", step.advance, got, step.puts)
		}
	}
}

// An existing object whose size is not the claimed size (damaged) is written again.
func TestCodecRewritesObjectOfWrongSize(t *testing.T) {
	mem := offload.NewMemoryStore()
	var ev events
	c := newCodec(t, &offload.Options{Store: mem, Threshold: 100, OnObject: ev.record})
	p := bigPayload(5000, 3)
	enc, err := c.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := offload.ParseClaim(enc[0])
	if err := mem.Put(context.Background(), cl.Key, []byte("truncated")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Encode([]*commonpb.Payload{p}); err != nil {
		t.Fatal(err)
	}
	if ev.count(offload.OpPut) != 2 || ev.count(offload.OpDeduplicated) != 0 {
		t.Fatalf("events %+v: want the damaged object written again", ev.all)
	}
	dec, err := c.Decode(enc)
	if err != nil || !proto.Equal(dec[0], p) {
		t.Fatalf("Decode after the rewrite: %v", err)
	}
}

// A Stat failure fails the Encode, naming the operation and the key; no upload is attempted.
func TestCodecStatError(t *testing.T) {
	boom := errors.New("stat exploded")
	store := &failingStatStore{MemoryStore: offload.NewMemoryStore(), err: boom}
	c := newCodec(t, &offload.Options{Store: store, Threshold: 100})
	_, err := c.Encode([]*commonpb.Payload{bigPayload(5000, 4)})
	if !errors.Is(err, offload.ErrStore) || !errors.Is(err, boom) || !strings.Contains(err.Error(), "stat") || !strings.Contains(err.Error(), "/sha256/") {
		t.Fatalf("Encode with a failing Stat: err = %v, want ErrStore wrapping the cause, naming stat and the key", err)
	}
	if keys := store.Keys(); len(keys) != 0 {
		t.Fatalf("objects were written despite the Stat failure: %v", keys)
	}
}

type failingStatStore struct {
	*offload.MemoryStore
	err error
}

func (s *failingStatStore) Stat(context.Context, string) (offload.ObjectInfo, error) {
	return offload.ObjectInfo{}, s.err
}

func TestRefreshAgeValidation(t *testing.T) {
	_, err := offload.NewCodec(&offload.Options{Store: offload.NewMemoryStore(), RefreshAge: -time.Second})
	if err == nil || !strings.Contains(err.Error(), "RefreshAge must not be negative") {
		t.Fatalf("negative RefreshAge: err = %v", err)
	}
}

// The storage driver (ModeExternalStorage) deduplicates as the codec does: an object written at
// most RefreshAge ago is referenced again, an older one is written again, with one Stat call per
// object and never Exists; so that a lifecycle rule cannot expire an object a new reference
// needs.
func TestDriverRefreshAge(t *testing.T) {
	clock, store := newClockedStatStore()
	var ev events
	d, err := offload.NewStorageDriver(store, &offload.StorageDriverOptions{RefreshAge: 2 * time.Hour, OnObject: ev.record})
	if err != nil {
		t.Fatal(err)
	}
	offload.SetDriverClock(d, clock.now)
	p := bigPayload(5000, 3)
	ctx := converter.StorageDriverStoreContext{Context: context.Background()}
	for _, step := range []struct {
		advance            time.Duration
		puts, deduplicated int
	}{
		{0, 1, 0},
		{2 * time.Hour, 1, 1},   // exactly RefreshAge: still fresh
		{time.Second, 2, 1},     // older: written again
		{time.Hour, 2, 2},       // the rewritten object is fresh again
		{3 * time.Hour, 3, 2},   // and ages again
		{time.Nanosecond, 3, 3}, // fresh after its rewrite
	} {
		clock.advance(step.advance)
		claims, err := d.Store(ctx, []*commonpb.Payload{p})
		if err != nil {
			t.Fatal(err)
		}
		if got, dd := ev.count(offload.OpPut), ev.count(offload.OpDeduplicated); got != step.puts || dd != step.deduplicated {
			t.Fatalf("after advancing %v: %d puts, %d deduplicated; want %d, %d", step.advance, got, dd, step.puts, step.deduplicated)
		}
		got, err := d.Retrieve(converter.StorageDriverRetrieveContext{Context: context.Background()}, claims)
		if err != nil || !proto.Equal(got[0], p) {
			t.Fatalf("Retrieve: %v", err)
		}
	}
	if store.exists.Load() != 0 || store.stats.Load() != 6 {
		t.Fatalf("Exists/Stat calls = %d/%d, want 0/6", store.exists.Load(), store.stats.Load())
	}
	if _, err := offload.NewStorageDriver(store, &offload.StorageDriverOptions{RefreshAge: -time.Second}); err == nil || !strings.Contains(err.Error(), "RefreshAge") {
		t.Fatalf("negative RefreshAge: err = %v", err)
	}
}
