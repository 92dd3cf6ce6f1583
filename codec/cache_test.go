package codec

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// fakeClock is a manually advanced clock for cache-age tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func encodeN(t testing.TB, c converter.PayloadCodec, n int) []*commonpb.Payload {
	t.Helper()
	var out []*commonpb.Payload
	for i := range n {
		out = append(out, encodeOne(t, c, jsonPayload(fmt.Sprint(i))))
	}
	return out
}

func distinctDataKeys(t *testing.T, ps []*commonpb.Payload) int {
	t.Helper()
	seen := map[string]bool{}
	for _, p := range ps {
		h, _, err := parseHeader(p.Data)
		if err != nil {
			t.Fatal(err)
		}
		seen[string(h.edk)] = true
	}
	return len(seen)
}

func TestCacheOneProviderCallPerWindow(t *testing.T) {
	keys := &countingProvider{inner: newTestKeyring(t, "k1")}
	var mu sync.Mutex
	events := map[string]int{}
	enc := newTestCodec(t, EncryptionOptions{Keys: keys, OnKeyEvent: func(e KeyEvent) {
		mu.Lock()
		events[fmt.Sprintf("%s/%s/hit=%t", e.Kind, e.Operation, e.Hit)]++
		mu.Unlock()
	}}).WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "ns"})

	const goroutines, perG = 16, 625
	results := make([][]*commonpb.Payload, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perG {
				out, err := enc.Encode([]*commonpb.Payload{jsonPayload(fmt.Sprintf("%d-%d", g, i))})
				if err != nil {
					t.Error(err)
					return
				}
				results[g] = append(results[g], out...)
			}
		}()
	}
	wg.Wait()
	if got := keys.generates.Load(); got != 1 {
		t.Fatalf("GenerateDataKey calls = %d for %d payloads, want 1", got, goroutines*perG)
	}
	if got := events["kms/GenerateDataKey/hit=false"]; got != 1 {
		t.Errorf("kms GenerateDataKey events = %d, want 1 (events %v)", got, events)
	}
	if hits, misses := events["cache/GenerateDataKey/hit=true"], events["cache/GenerateDataKey/hit=false"]; hits+misses != goroutines*perG || misses < 1 {
		t.Errorf("cache events: %d hits, %d misses; want %d lookups", hits, misses, goroutines*perG)
	}

	var all []*commonpb.Payload
	for _, r := range results {
		all = append(all, r...)
	}
	// The encoding codec already holds the data key: decoding its own payloads calls nothing.
	if _, err := enc.Decode(all); err != nil {
		t.Fatal(err)
	}
	if got := keys.decrypts.Load(); got != 0 {
		t.Fatalf("DecryptDataKey calls on the encoding codec = %d, want 0", got)
	}
	// A fresh codec decrypts the one data key once, even with 16 concurrent decoders.
	dec := newTestCodec(t, EncryptionOptions{Keys: keys}).
		WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "ns"})
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, p := range results[g] {
				if _, err := decodeOne(dec, p); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := keys.decrypts.Load(); got != 1 {
		t.Fatalf("DecryptDataKey calls = %d for %d payloads, want 1", got, len(all))
	}
}

func TestCacheMaxMessagesRollover(t *testing.T) {
	keys := &countingProvider{inner: newTestKeyring(t, "k1")}
	c := newTestCodec(t, EncryptionOptions{Keys: keys, Cache: &CacheOptions{MaxMessages: 10}})
	out := encodeN(t, c, 25)
	if got := keys.generates.Load(); got != 3 {
		t.Fatalf("GenerateDataKey calls = %d for 25 payloads at 10 per key, want 3", got)
	}
	if got := distinctDataKeys(t, out); got != 3 {
		t.Fatalf("distinct data keys = %d, want 3", got)
	}
}

func TestCacheMaxBytesRollover(t *testing.T) {
	keys := &countingProvider{inner: newTestKeyring(t, "k1")}
	c := newTestCodec(t, EncryptionOptions{Keys: keys, Cache: &CacheOptions{MaxBytes: 2500}})
	// Each marshalled payload is a little over 1000 bytes: two fit under one key.
	for range 6 {
		encodeOne(t, c, sizedPayload(1000))
	}
	if got := keys.generates.Load(); got != 3 {
		t.Fatalf("GenerateDataKey calls = %d, want 3", got)
	}
	// A payload larger than MaxBytes gets a key of its own, and the next payload a new one.
	encodeOne(t, c, sizedPayload(5000))
	encodeOne(t, c, sizedPayload(10))
	if got := keys.generates.Load(); got != 5 {
		t.Fatalf("GenerateDataKey calls = %d, want 5", got)
	}
}

func TestCacheMaxAgeRollover(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	keys := &countingProvider{inner: newTestKeyring(t, "k1")}
	c := newTestCodec(t, EncryptionOptions{Keys: keys, Cache: &CacheOptions{MaxAge: time.Minute}})
	c.state.now = clock.Now

	first := encodeN(t, c, 3)
	clock.Advance(59 * time.Second)
	encodeN(t, c, 3)
	if got := keys.generates.Load(); got != 1 {
		t.Fatalf("GenerateDataKey calls within MaxAge = %d, want 1", got)
	}
	clock.Advance(time.Second)
	encodeN(t, c, 3)
	if got := keys.generates.Load(); got != 2 {
		t.Fatalf("GenerateDataKey calls after MaxAge = %d, want 2", got)
	}

	// Decryption entries expire after MaxAge too.
	dec := newTestCodec(t, EncryptionOptions{Keys: keys, Cache: &CacheOptions{MaxAge: time.Minute}})
	dec.state.now = clock.Now
	if _, err := dec.Decode(first); err != nil {
		t.Fatal(err)
	}
	clock.Advance(59 * time.Second)
	if _, err := dec.Decode(first); err != nil {
		t.Fatal(err)
	}
	if got := keys.decrypts.Load(); got != 1 {
		t.Fatalf("DecryptDataKey calls within MaxAge = %d, want 1", got)
	}
	clock.Advance(time.Second)
	if _, err := dec.Decode(first); err != nil {
		t.Fatal(err)
	}
	if got := keys.decrypts.Load(); got != 2 {
		t.Fatalf("DecryptDataKey calls after MaxAge = %d, want 2", got)
	}
}

func TestCacheDecryptLRUBounded(t *testing.T) {
	keys := &countingProvider{inner: newTestKeyring(t, "k1")}
	// One data key per payload on the encoding side.
	enc := newTestCodec(t, EncryptionOptions{Keys: keys, Cache: &CacheOptions{MaxMessages: 1}})
	ps := encodeN(t, enc, 3)
	dec := newTestCodec(t, EncryptionOptions{Keys: keys, Cache: &CacheOptions{MaxEntries: 2}})
	decode := func(i int) {
		t.Helper()
		if _, err := decodeOne(dec, ps[i]); err != nil {
			t.Fatal(err)
		}
	}
	decode(0)
	decode(1)
	decode(0) // hit; 0 becomes most recently used
	decode(2) // evicts 1
	if got := keys.decrypts.Load(); got != 3 {
		t.Fatalf("DecryptDataKey calls = %d, want 3", got)
	}
	decode(0) // still cached
	if got := keys.decrypts.Load(); got != 3 {
		t.Fatalf("DecryptDataKey calls = %d after a hit, want 3", got)
	}
	decode(1) // evicted before: a new call
	if got := keys.decrypts.Load(); got != 4 {
		t.Fatalf("DecryptDataKey calls = %d after an evicted entry, want 4", got)
	}
	if n := dec.state.decList.Len(); n != 2 {
		t.Fatalf("decryption cache holds %d entries, want 2", n)
	}
}

func TestCacheEncryptEntriesBounded(t *testing.T) {
	keys := &countingProvider{inner: newTestKeyring(t, "k1")}
	c := newTestCodec(t, EncryptionOptions{Keys: keys, Cache: &CacheOptions{MaxEntries: 2}})
	for i := range 5 {
		cc := c.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: fmt.Sprint("ns", i)})
		encodeOne(t, cc, jsonPayload("1"))
	}
	if n := len(c.state.enc); n != 2 {
		t.Fatalf("encryption cache holds %d entries, want 2", n)
	}
	if got := keys.generates.Load(); got != 5 {
		t.Fatalf("GenerateDataKey calls = %d for 5 namespaces, want 5", got)
	}
}

func TestCacheSeparatesContexts(t *testing.T) {
	keys := &countingProvider{inner: newTestKeyring(t, "k1")}
	c := newTestCodec(t, EncryptionOptions{Keys: keys})
	a := c.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "a"})
	b := c.WithSerializationContext(converter.ActivitySerializationContext{Namespace: "b"})
	pa := encodeN(t, a, 5)
	pb := encodeN(t, b, 5)
	encodeN(t, a, 5)
	if got := keys.generates.Load(); got != 2 {
		t.Fatalf("GenerateDataKey calls = %d for two namespaces, want 2", got)
	}
	if distinctDataKeys(t, append(pa, pb...)) != 2 {
		t.Fatal("namespaces share a data key")
	}
}

func TestCacheDisabled(t *testing.T) {
	keys := &countingProvider{inner: newTestKeyring(t, "k1")}
	var events int
	c := newTestCodec(t, EncryptionOptions{Keys: keys, Cache: &CacheOptions{Disabled: true}, OnKeyEvent: func(e KeyEvent) {
		if e.Kind == "cache" {
			events++
		}
	}})
	var batches [][]*commonpb.Payload
	for range 4 {
		out, err := c.Encode([]*commonpb.Payload{jsonPayload("1"), jsonPayload("2"), jsonPayload("3")})
		if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, out)
	}
	if got := keys.generates.Load(); got != 4 {
		t.Fatalf("GenerateDataKey calls = %d for 4 batches, want 4", got)
	}
	for _, b := range batches {
		if _, err := c.Decode(b); err != nil {
			t.Fatal(err)
		}
	}
	if got := keys.decrypts.Load(); got != 4 {
		t.Fatalf("DecryptDataKey calls = %d for 4 batches, want 4", got)
	}
	// A batch mixing two data keys decrypts each once.
	if _, err := c.Decode(append(append([]*commonpb.Payload{}, batches[0]...), batches[1]...)); err != nil {
		t.Fatal(err)
	}
	if got := keys.decrypts.Load(); got != 6 {
		t.Fatalf("DecryptDataKey calls = %d, want 6", got)
	}
	if events != 0 {
		t.Fatalf("%d cache events with caching disabled", events)
	}
	if len(c.state.enc) != 0 || c.state.decList.Len() != 0 {
		t.Fatal("disabled cache holds keys")
	}
}

func TestCacheConcurrentFirstCallersShareOneCall(t *testing.T) {
	const callers = 8
	keys := &countingProvider{inner: newTestKeyring(t, "k1"), gate: make(chan struct{}), entered: make(chan struct{}, callers)}
	c := newTestCodec(t, EncryptionOptions{Keys: keys})
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Encode([]*commonpb.Payload{jsonPayload("1")})
			errs <- err
		}()
	}
	<-keys.entered // the leader is inside GenerateDataKey
	// Give the others time to join the flight. Nothing here depends on how they interleave: a
	// caller that arrives after the flight ended finds the cached key, which is what is checked.
	time.Sleep(20 * time.Millisecond)
	close(keys.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := keys.generates.Load(); got != 1 {
		t.Fatalf("GenerateDataKey calls = %d for %d concurrent first callers, want 1", got, callers)
	}
	c.state.mu.Lock()
	used := c.state.enc[string(c.ctxBytes)].messages
	c.state.mu.Unlock()
	if used != callers {
		t.Fatalf("cached key counted %d messages, want %d", used, callers)
	}
}

func TestCacheErrorsNotCached(t *testing.T) {
	keys := &countingProvider{inner: newTestKeyring(t, "k1"), failNext: 1, failErr: fmt.Errorf("throttled: %w", ErrRetryable)}
	var kmsErrs int
	onEvent := func(e KeyEvent) {
		if e.Kind == "kms" && e.Err != nil {
			kmsErrs++
		}
	}
	c := newTestCodec(t, EncryptionOptions{Keys: keys, OnKeyEvent: onEvent})
	_, err := c.Encode([]*commonpb.Payload{jsonPayload("1")})
	if !errors.Is(err, ErrRetryable) {
		t.Fatalf("err = %v, want ErrRetryable", err)
	}
	p := encodeOne(t, c, jsonPayload("2"))
	if got := keys.generates.Load(); got != 2 {
		t.Fatalf("GenerateDataKey calls = %d, want 2 (the failure is not cached)", got)
	}

	dec := newTestCodec(t, EncryptionOptions{Keys: keys, OnKeyEvent: onEvent})
	keys.mu.Lock()
	keys.failNext = 1
	keys.mu.Unlock()
	if _, err := decodeOne(dec, p); !errors.Is(err, ErrRetryable) {
		t.Fatalf("err = %v, want ErrRetryable", err)
	}
	if _, err := decodeOne(dec, p); err != nil {
		t.Fatalf("decode after a transient failure: %v", err)
	}
	if got := keys.decrypts.Load(); got != 2 {
		t.Fatalf("DecryptDataKey calls = %d, want 2", got)
	}
	if kmsErrs != 2 {
		t.Fatalf("kms error events = %d, want 2", kmsErrs)
	}
}

// deadlineProvider blocks until its context ends and records whether it had a deadline.
type deadlineProvider struct {
	KeyProvider
	hadDeadline bool
}

func (d *deadlineProvider) GenerateDataKey(ctx context.Context, _ map[string]string) (DataKey, error) {
	_, d.hadDeadline = ctx.Deadline()
	<-ctx.Done()
	return DataKey{}, fmt.Errorf("kms: %w: %w", ErrRetryable, ctx.Err())
}

func TestCacheCallTimeout(t *testing.T) {
	keys := &deadlineProvider{}
	c := newTestCodec(t, EncryptionOptions{Keys: keys, CallTimeout: time.Millisecond})
	_, err := c.Encode([]*commonpb.Payload{jsonPayload("1")})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrRetryable) {
		t.Fatalf("err = %v, want a retryable deadline error", err)
	}
	if !keys.hadDeadline {
		t.Fatal("provider call had no deadline")
	}
}

func TestCacheCloseZeroesKeys(t *testing.T) {
	c := newTestCodec(t, EncryptionOptions{Keys: newTestKeyring(t, "k1")})
	encodeOne(t, c, jsonPayload("1"))
	c.state.mu.Lock()
	var held [][]byte
	for _, e := range c.state.enc {
		held = append(held, e.key.Plaintext)
	}
	for el := c.state.decList.Front(); el != nil; el = el.Next() {
		held = append(held, el.Value.(*decEntry).plaintext)
	}
	c.state.mu.Unlock()
	if len(held) != 2 {
		t.Fatalf("cache holds %d keys, want 2 (encryption and decryption)", len(held))
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, k := range held {
		for _, b := range k {
			if b != 0 {
				t.Fatal("a cached data key was not zeroed on Close")
			}
		}
	}
	// The codec stays usable.
	if _, err := decodeOne(c, encodeOne(t, c, jsonPayload("2"))); err != nil {
		t.Fatal(err)
	}
}
