package offload_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/offload"
)

func newCodec(t *testing.T, opts *offload.Options) *offload.Codec {
	t.Helper()
	c, err := offload.NewCodec(opts)
	if err != nil {
		t.Fatalf("NewCodec: %v", err)
	}
	return c
}

func TestCodecRoundTripBelowAndAboveThreshold(t *testing.T) {
	store := newCountingStore()
	c := newCodec(t, &offload.Options{Store: store, Threshold: 1000})
	small := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"hi"`)}
	large := bigPayload(5000, 1)
	in := []*commonpb.Payload{small, large}
	before := clonePayloads(in)

	enc, err := c.Encode(in)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	assertUnchanged(t, before, in)
	if enc[0] != small {
		t.Errorf("a payload under the threshold was not passed through unchanged")
	}
	if !offload.IsClaim(enc[1]) {
		t.Fatalf("a payload above the threshold was not replaced by a claim: %v", enc[1].Metadata)
	}
	if n := proto.Size(enc[1]); n >= 1024 {
		t.Errorf("claim is %d bytes, want < 1 KiB", n)
	}
	if store.puts.Load() != 1 {
		t.Errorf("puts = %d, want 1", store.puts.Load())
	}

	encBefore := clonePayloads(enc)
	dec, err := c.Decode(enc)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	assertUnchanged(t, encBefore, enc)
	for i := range in {
		if !proto.Equal(dec[i], before[i]) {
			t.Errorf("payload %d did not round-trip", i)
		}
	}
}

func TestCodecThresholdBoundary(t *testing.T) {
	p := bigPayload(4000, 2)
	size := proto.Size(p)
	for _, tc := range []struct {
		threshold int
		offloaded bool
	}{{size, false}, {size + 1, false}, {size - 1, true}} {
		c := newCodec(t, &offload.Options{Store: offload.NewMemoryStore(), Threshold: tc.threshold})
		enc, err := c.Encode([]*commonpb.Payload{p})
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		if got := offload.IsClaim(enc[0]); got != tc.offloaded {
			t.Errorf("size %d, threshold %d: offloaded = %v, want %v", size, tc.threshold, got, tc.offloaded)
		}
	}
}

func TestCodecDefaultThreshold(t *testing.T) {
	c := newCodec(t, &offload.Options{Store: offload.NewMemoryStore()})
	under := bigPayload(offload.DefaultThreshold-100, 3)
	over := bigPayload(offload.DefaultThreshold+1, 4)
	enc, err := c.Encode([]*commonpb.Payload{under, over})
	if err != nil {
		t.Fatal(err)
	}
	if offload.IsClaim(enc[0]) || !offload.IsClaim(enc[1]) {
		t.Fatalf("default threshold not applied: claims = %v, %v", offload.IsClaim(enc[0]), offload.IsClaim(enc[1]))
	}
}

func TestCodecDeduplicates(t *testing.T) {
	store := newCountingStore()
	var ev events
	c := newCodec(t, &offload.Options{Store: store, Threshold: 100, OnObject: ev.record})
	p := bigPayload(1000, 5)
	first, err := c.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Encode([]*commonpb.Payload{proto.Clone(p).(*commonpb.Payload)})
	if err != nil {
		t.Fatal(err)
	}
	if store.exists.Load() != 2 || store.puts.Load() != 1 {
		t.Fatalf("two encodes of one payload: exists = %d, puts = %d; want 2 and 1", store.exists.Load(), store.puts.Load())
	}
	if ev.count(offload.OpPut) != 1 || ev.count(offload.OpDeduplicated) != 1 {
		t.Fatalf("events: put = %d, deduplicated = %d; want 1 and 1", ev.count(offload.OpPut), ev.count(offload.OpDeduplicated))
	}
	if !proto.Equal(first[0], second[0]) {
		t.Fatalf("the same payload gave different claims")
	}

	// Duplicates inside one batch cost one existence check and one upload.
	store2 := newCountingStore()
	c2 := newCodec(t, &offload.Options{Store: store2, Threshold: 100})
	enc, err := c2.Encode([]*commonpb.Payload{p, p, proto.Clone(p).(*commonpb.Payload)})
	if err != nil {
		t.Fatal(err)
	}
	if store2.exists.Load() != 1 || store2.puts.Load() != 1 {
		t.Fatalf("batch with 3 copies: exists = %d, puts = %d; want 1 and 1", store2.exists.Load(), store2.puts.Load())
	}
	if enc[0] == enc[1] {
		t.Fatalf("duplicate claims share one *Payload; each output must be its own value")
	}
	dec, err := c2.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if store2.gets.Load() != 1 {
		t.Fatalf("decoding 3 claims of one object: gets = %d, want 1", store2.gets.Load())
	}
	for i := range dec {
		if !proto.Equal(dec[i], p) {
			t.Fatalf("payload %d did not round-trip", i)
		}
	}
	if dec[0] == dec[1] {
		t.Fatalf("decoded duplicates share one *Payload")
	}
}

func TestCodecConcurrencyBounded(t *testing.T) {
	const limit, n = 3, 20
	store := newCountingStore()
	store.gate = make(chan struct{})
	c := newCodec(t, &offload.Options{Store: store, Threshold: 100, Concurrency: limit})
	in := make([]*commonpb.Payload, n)
	for i := range in {
		in[i] = bigPayload(500, byte(i))
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Encode(in)
		done <- err
	}()
	// Wait until the codec has filled its concurrency, then let everything through.
	deadline := time.Now().Add(30 * time.Second)
	for store.inFlight.Load() < limit && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := store.inFlight.Load(); got != limit {
		t.Fatalf("in flight = %d, want %d blocked calls", got, limit)
	}
	close(store.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := store.maxIn.Load(); got != limit {
		t.Fatalf("max store calls in flight = %d, want exactly Concurrency = %d", got, limit)
	}
	if store.puts.Load() != n {
		t.Fatalf("puts = %d, want %d", store.puts.Load(), n)
	}
}

func TestCodecIntegrityOverwrittenObject(t *testing.T) {
	mem := offload.NewMemoryStore()
	c := newCodec(t, &offload.Options{Store: mem, Threshold: 100})
	enc, err := c.Encode([]*commonpb.Payload{bigPayload(1000, 6)})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := offload.ParseClaim(enc[0])
	if err != nil {
		t.Fatal(err)
	}
	for name, other := range map[string][]byte{
		"same size": make([]byte, cl.Size),
		"shorter":   []byte("short"),
		"longer":    make([]byte, cl.Size+1),
	} {
		if err := mem.Put(context.Background(), cl.Key, other); err != nil {
			t.Fatal(err)
		}
		_, err := c.Decode(enc)
		if !errors.Is(err, offload.ErrIntegrity) {
			t.Fatalf("%s: Decode of an overwritten object: err = %v, want ErrIntegrity", name, err)
		}
		if !strings.Contains(err.Error(), cl.Key) {
			t.Fatalf("%s: error %q does not name the key %s", name, err, cl.Key)
		}
	}
}

func TestCodecMissingObject(t *testing.T) {
	mem := offload.NewMemoryStore()
	c := newCodec(t, &offload.Options{Store: mem, Threshold: 100})
	enc, err := c.Encode([]*commonpb.Payload{bigPayload(1000, 7)})
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := offload.ParseClaim(enc[0])
	mem.Delete(cl.Key)
	_, err = c.Decode(enc)
	if !errors.Is(err, offload.ErrNotFound) || !strings.Contains(err.Error(), cl.Key) {
		t.Fatalf("Decode of a missing object: err = %v, want ErrNotFound naming %s", err, cl.Key)
	}
	var oe *offload.Error
	if !errors.As(err, &oe) || oe.Key != cl.Key || oe.Store != "memory" {
		t.Fatalf("error is not an *offload.Error with the key and store: %#v", err)
	}
}

func TestCodecMaxPayloadSize(t *testing.T) {
	mem := offload.NewMemoryStore()
	c := newCodec(t, &offload.Options{Store: mem, Threshold: 100, MaxPayloadSize: 2000})
	p := bigPayload(3000, 8)
	_, err := c.Encode([]*commonpb.Payload{p})
	if !errors.Is(err, offload.ErrTooLarge) || !strings.Contains(err.Error(), "2000") {
		t.Fatalf("Encode above MaxPayloadSize: err = %v, want ErrTooLarge naming the limit", err)
	}
	if len(mem.Keys()) != 0 {
		t.Fatalf("a payload above MaxPayloadSize was stored")
	}

	// A claim above the decoder's limit is refused before any fetch.
	big := newCodec(t, &offload.Options{Store: mem, Threshold: 100})
	enc, err := big.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingStore{Store: mem}
	small := newCodec(t, &offload.Options{Store: counting, Threshold: 100, MaxPayloadSize: 2000})
	_, err = small.Decode(enc)
	if !errors.Is(err, offload.ErrTooLarge) {
		t.Fatalf("Decode of a claim above MaxPayloadSize: err = %v, want ErrTooLarge", err)
	}
	if counting.gets.Load() != 0 {
		t.Fatalf("the object was fetched although its claim exceeded MaxPayloadSize")
	}
}

func TestCodecNamespaceInKey(t *testing.T) {
	mem := offload.NewMemoryStore()
	base := newCodec(t, &offload.Options{Store: mem, Threshold: 100, Prefix: "pk"})
	p := bigPayload(1000, 9)
	cases := []struct {
		ctx  converter.SerializationContext
		want string
	}{
		{converter.WorkflowSerializationContext{Namespace: "orders", WorkflowID: "wf"}, "pk/orders/sha256/"},
		{converter.ActivitySerializationContext{Namespace: "billing.prod"}, "pk/billing.prod/sha256/"},
		{converter.NexusSerializationContext{Endpoint: "e"}, "pk/_/sha256/"},
		{converter.WorkflowSerializationContext{Namespace: "a/b c"}, "pk/a%2Fb%20c/sha256/"},
	}
	for _, tc := range cases {
		c := base.WithSerializationContext(tc.ctx)
		enc, err := c.Encode([]*commonpb.Payload{p})
		if err != nil {
			t.Fatal(err)
		}
		cl, err := offload.ParseClaim(enc[0])
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(cl.Key, tc.want) {
			t.Errorf("%T: key %s, want prefix %s", tc.ctx, cl.Key, tc.want)
		}
		// Any codec on the same store decodes it: the claim names the key.
		dec, err := base.Decode(enc)
		if err != nil || !proto.Equal(dec[0], p) {
			t.Errorf("%T: decode with another context: %v", tc.ctx, err)
		}
	}
	enc, err := base.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := offload.ParseClaim(enc[0])
	if !strings.HasPrefix(cl.Key, "pk/_/sha256/") {
		t.Errorf("without a serialization context: key %s, want pk/_/sha256/...", cl.Key)
	}
}

// Through a real SDK DataConverter the namespace reaches the key.
func TestCodecNamespaceThroughDataConverter(t *testing.T) {
	mem := offload.NewMemoryStore()
	c := newCodec(t, &offload.Options{Store: mem, Threshold: 100})
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
	dc = converter.WithDataConverterSerializationContext(dc, converter.WorkflowSerializationContext{Namespace: "ns1", WorkflowID: "w"})
	value := strings.Repeat("x", 5000)
	p, err := dc.ToPayload(value)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := offload.ParseClaim(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cl.Key, "payloadkit/ns1/sha256/") {
		t.Fatalf("key %s, want payloadkit/ns1/sha256/...", cl.Key)
	}
	var got string
	if err := dc.FromPayload(p, &got); err != nil || got != value {
		t.Fatalf("FromPayload: %v (equal: %v)", err, got == value)
	}
}

func TestCodecPassesThroughForeignPayloads(t *testing.T) {
	c := newCodec(t, &offload.Options{Store: offload.NewMemoryStore(), Threshold: 100})
	foreign := []*commonpb.Payload{
		{Metadata: map[string][]byte{"encoding": []byte("binary/encrypted")}, Data: make([]byte, 50)},
		{Metadata: map[string][]byte{"encoding": []byte("binary/zlib")}, Data: []byte{1, 2, 3}},
		{},
	}
	dec, err := c.Decode(foreign)
	if err != nil {
		t.Fatal(err)
	}
	for i := range foreign {
		if dec[i] != foreign[i] {
			t.Fatalf("payload %d was not passed through", i)
		}
	}
}

func TestCodecStoreMismatch(t *testing.T) {
	dir := t.TempDir()
	fs, err := offload.NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := newCodec(t, &offload.Options{Store: fs, Threshold: 100}).Encode([]*commonpb.Payload{bigPayload(500, 10)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = newCodec(t, &offload.Options{Store: offload.NewMemoryStore(), Threshold: 100}).Decode(enc)
	if !errors.Is(err, offload.ErrStore) || !strings.Contains(err.Error(), `"file"`) {
		t.Fatalf("decoding a claim of another store: err = %v, want ErrStore naming the store", err)
	}
}

func TestCodecStoreErrorsNameKey(t *testing.T) {
	failing := &failingStore{err: errors.New("disk on fire")}
	var ev events
	c := newCodec(t, &offload.Options{Store: failing, Threshold: 100, OnObject: ev.record})
	_, err := c.Encode([]*commonpb.Payload{bigPayload(500, 11)})
	if !errors.Is(err, offload.ErrStore) || !strings.Contains(err.Error(), "payloadkit/_/sha256/") || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Encode with a failing store: err = %v, want ErrStore naming the key and cause", err)
	}
	if errors.Is(err, offload.ErrRetryable) {
		t.Fatalf("an unclassified store error must not be retryable: %v", err)
	}
	if len(ev.all) != 1 || ev.all[0].Err == nil {
		t.Fatalf("events = %+v, want one failed put", ev.all)
	}
	// A store call running past Timeout fails retryably.
	slow := &failingStore{block: true}
	c = newCodec(t, &offload.Options{Store: slow, Threshold: 100, Timeout: 20 * time.Millisecond})
	_, err = c.Encode([]*commonpb.Payload{bigPayload(500, 12)})
	if !errors.Is(err, offload.ErrRetryable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Encode past Timeout: err = %v, want ErrRetryable and DeadlineExceeded", err)
	}
}

type failingStore struct {
	err   error
	block bool
}

func (f *failingStore) Name() string { return "failing" }
func (f *failingStore) wait(ctx context.Context) error {
	if f.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return f.err
}
func (f *failingStore) Put(ctx context.Context, _ string, _ []byte) error { return f.wait(ctx) }
func (f *failingStore) Get(ctx context.Context, _ string) ([]byte, error) {
	return nil, f.wait(ctx)
}
func (f *failingStore) Exists(ctx context.Context, _ string) (bool, error) {
	return false, f.wait(ctx)
}

func TestNewCodecValidation(t *testing.T) {
	mem := offload.NewMemoryStore()
	for name, opts := range map[string]*offload.Options{
		"nil options":        nil,
		"no store":           {},
		"negative threshold": {Store: mem, Threshold: -1},
		"negative max":       {Store: mem, MaxPayloadSize: -1},
		"negative conc":      {Store: mem, Concurrency: -1},
		"negative timeout":   {Store: mem, Timeout: -time.Second},
		"leading slash":      {Store: mem, Prefix: "/abs"},
		"dotdot prefix":      {Store: mem, Prefix: "a/../b"},
		"trailing slash":     {Store: mem, Prefix: "a/"},
	} {
		if _, err := offload.NewCodec(opts); err == nil {
			t.Errorf("%s: NewCodec accepted invalid options", name)
		}
	}
}

func TestCodecConcurrentUse(t *testing.T) {
	c := newCodec(t, &offload.Options{Store: offload.NewMemoryStore(), Threshold: 100})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := bigPayload(1000, byte(i%4))
			enc, err := c.Encode([]*commonpb.Payload{p})
			if err == nil {
				var dec []*commonpb.Payload
				dec, err = c.Decode(enc)
				if err == nil && !proto.Equal(dec[0], p) {
					err = errors.New("round trip mismatch")
				}
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// claimVectorHex is a frozen claim payload (deterministic protobuf of the Payload message). Any
// change to it is a wire-format change and must come with a new claim version.
const claimVectorHex = "0a2e0a09636c61696d2d6b657912217061796c6f61646b69742f6f72646572732f7368613235362f61626364656630310a500a0c636c61696d2d7368613235361240303132333435363738396162636465663031323334353637383961626364656630313233343536373839616263646566303132333435363738396162636465660a160a0a636c61696d2d73697a65120833303030303030300a130a0b636c61696d2d73746f72651204732f626b0a1e0a08656e636f64696e67121262696e6172792f636c61696d2d636865636b129c017b2276223a312c2273746f7265223a22732f626b222c226b6579223a227061796c6f61646b69742f6f72646572732f7368613235362f6162636465663031222c2273697a65223a33303030303030302c22736861323536223a2230313233343536373839616263646566303132333435363738396162636465663031323334353637383961626364656630313233343536373839616263646566227d"

func vectorClaim() offload.Claim {
	return offload.Claim{
		Store:  "s/bk",
		Key:    "payloadkit/orders/sha256/abcdef01",
		Size:   30000000,
		SHA256: strings.Repeat("0123456789abcdef", 4),
	}
}

func TestClaimTestVector(t *testing.T) {
	p, err := vectorClaim().Payload()
	if err != nil {
		t.Fatal(err)
	}
	got, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(got) != claimVectorHex {
		t.Fatalf("claim wire format changed:\n got %x\nwant %s", got, claimVectorHex)
	}
	raw, _ := hex.DecodeString(claimVectorHex)
	var frozen commonpb.Payload
	if err := proto.Unmarshal(raw, &frozen); err != nil {
		t.Fatal(err)
	}
	cl, err := offload.ParseClaim(&frozen)
	if err != nil {
		t.Fatalf("ParseClaim(vector): %v", err)
	}
	if cl != vectorClaim() {
		t.Fatalf("ParseClaim(vector) = %+v, want %+v", cl, vectorClaim())
	}
	want := `{"v":1,"store":"s/bk","key":"payloadkit/orders/sha256/abcdef01","size":30000000,"sha256":"` + vectorClaim().SHA256 + `"}`
	if string(frozen.Data) != want {
		t.Fatalf("claim data = %s, want %s", frozen.Data, want)
	}
}

// codecKeyVector freezes the key the codec derives for a known payload (deterministic marshalling
// plus SHA-256): a change would defeat deduplication against objects already stored.
func TestCodecKeyVector(t *testing.T) {
	p := &commonpb.Payload{
		Metadata: map[string][]byte{"encoding": []byte("json/plain"), "b": []byte("2"), "a": []byte("1")},
		Data:     []byte(strings.Repeat("payloadkit", 100)),
	}
	c := newCodec(t, &offload.Options{Store: offload.NewMemoryStore(), Threshold: 100})
	enc, err := c.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "default"}).Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := offload.ParseClaim(enc[0])
	if err != nil {
		t.Fatal(err)
	}
	const wantKey = "payloadkit/default/sha256/16d4563c6028e43a5c8999daef16b1c0478ebaba3eb286c0ed51f0c789b928dc"
	if cl.Key != wantKey {
		t.Fatalf("key = %s, want %s", cl.Key, wantKey)
	}
	if cl.Size != int64(proto.Size(p)) {
		t.Fatalf("size = %d, want %d", cl.Size, proto.Size(p))
	}
}

func TestParseClaimRejectsHostileClaims(t *testing.T) {
	good, err := vectorClaim().Payload()
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(p *commonpb.Payload)) *commonpb.Payload {
		p := proto.Clone(good).(*commonpb.Payload)
		f(p)
		return p
	}
	for name, p := range map[string]*commonpb.Payload{
		"huge data":         mutate(func(p *commonpb.Payload) { p.Data = make([]byte, 1<<20) }),
		"not json":          mutate(func(p *commonpb.Payload) { p.Data = []byte("{") }),
		"trailing":          mutate(func(p *commonpb.Payload) { p.Data = append(p.Data, []byte(" {}")...) }),
		"unknown field":     mutate(func(p *commonpb.Payload) { p.Data = []byte(`{"v":1,"x":1}`) }),
		"version 2":         mutate(func(p *commonpb.Payload) { p.Data = []byte(strings.Replace(string(p.Data), `"v":1`, `"v":2`, 1)) }),
		"negative size":     mutate(func(p *commonpb.Payload) { p.Data = []byte(strings.Replace(string(p.Data), `30000000`, `-1`, 1)) }),
		"size mismatch":     mutate(func(p *commonpb.Payload) { p.Metadata[offload.MetadataClaimSize] = []byte("1") }),
		"key mismatch":      mutate(func(p *commonpb.Payload) { p.Metadata[offload.MetadataClaimKey] = []byte("other") }),
		"store mismatch":    mutate(func(p *commonpb.Payload) { p.Metadata[offload.MetadataClaimStore] = []byte("other") }),
		"digest mismatch":   mutate(func(p *commonpb.Payload) { p.Metadata[offload.MetadataClaimSHA256] = []byte(strings.Repeat("f", 64)) }),
		"uppercase digest":  mutate(func(p *commonpb.Payload) { p.Data = []byte(strings.Replace(string(p.Data), "abcdef\"", "ABCDEF\"", 1)) }),
		"missing metadata":  mutate(func(p *commonpb.Payload) { delete(p.Metadata, offload.MetadataClaimKey) }),
		"wrong encoding":    mutate(func(p *commonpb.Payload) { p.Metadata["encoding"] = []byte("json/plain") }),
		"empty key in data": mutate(func(p *commonpb.Payload) { p.Data = []byte(strings.Replace(string(p.Data), vectorClaim().Key, "", 1)) }),
	} {
		if _, err := offload.ParseClaim(p); !errors.Is(err, offload.ErrIntegrity) {
			t.Errorf("%s: ParseClaim err = %v, want ErrIntegrity", name, err)
		}
	}
}

func FuzzDecodeClaim(f *testing.F) {
	raw, _ := hex.DecodeString(claimVectorHex)
	f.Add(raw)
	good, _ := offload.Claim{Store: "memory", Key: "payloadkit/_/sha256/" + strings.Repeat("a", 64), Size: 10, SHA256: strings.Repeat("a", 64)}.Payload()
	b, _ := proto.Marshal(good)
	f.Add(b)
	f.Add([]byte{})
	f.Add([]byte("\x0a\x1c\x0a\x08encoding\x12\x10binary/claim-check\x12\x02{}"))
	mem := offload.NewMemoryStore()
	_ = mem.Put(context.Background(), "payloadkit/_/sha256/"+strings.Repeat("a", 64), make([]byte, 10))
	c, err := offload.NewCodec(&offload.Options{Store: mem, MaxPayloadSize: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p commonpb.Payload
		if err := proto.Unmarshal(data, &p); err != nil {
			return
		}
		before := proto.Clone(&p)
		out, err := c.Decode([]*commonpb.Payload{&p})
		if !proto.Equal(before, &p) {
			t.Fatal("Decode mutated its input")
		}
		if err != nil {
			var oe *offload.Error
			if !errors.As(err, &oe) {
				t.Fatalf("error is not an *offload.Error: %v", err)
			}
			return
		}
		if len(out) != 1 {
			t.Fatalf("Decode returned %d payloads", len(out))
		}
		if !offload.IsClaim(&p) && out[0] != &p {
			t.Fatal("a non-claim was not passed through")
		}
	})
}

// TestCodecNamespaceBoundClaims is finding 2 of the security review: a codec bound to a
// namespace reads only the one key a claim may name in that namespace, and refuses any other
// claim before a store call.
func TestCodecNamespaceBoundClaims(t *testing.T) {
	counting := newCountingStore()
	base := newCodec(t, &offload.Options{Store: counting, Threshold: 100})
	orders := base.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "orders"})
	billing := base.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "billing"})
	p := bigPayload(1000, 21)
	enc, err := orders.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	if dec, err := orders.Decode(enc); err != nil || !proto.Equal(dec[0], p) {
		t.Fatalf("same namespace: %v", err)
	}
	cl, _ := offload.ParseClaim(enc[0])
	forged := func(key string) *commonpb.Payload {
		c := cl
		c.Key = key
		fp, err := c.Payload()
		if err != nil {
			t.Fatal(err)
		}
		return fp
	}
	gets := counting.gets.Load()
	for name, claim := range map[string]*commonpb.Payload{
		"other namespace":    enc[0],
		"traversal":          forged("payloadkit/billing/../orders/sha256/" + cl.SHA256),
		"other digest":       forged("payloadkit/billing/sha256/" + strings.Repeat("0", 64)),
		"no namespace":       forged("payloadkit/_/sha256/" + cl.SHA256),
		"foreign key layout": forged("secrets/billing/sha256/" + cl.SHA256),
	} {
		_, err := billing.Decode([]*commonpb.Payload{claim})
		if !errors.Is(err, offload.ErrNamespace) || !strings.Contains(err.Error(), `"billing"`) {
			t.Errorf("%s: err = %v, want ErrNamespace naming the namespace", name, err)
		}
	}
	if counting.gets.Load() != gets || counting.exists.Load() != 1 {
		t.Fatalf("refused claims reached the store: %d gets, %d exists", counting.gets.Load()-gets, counting.exists.Load())
	}
	// An unbound codec (no serialization context) still reads every claim of its store.
	if _, err := base.Decode(enc); err != nil {
		t.Fatal(err)
	}
}

// TestCodecBatchBudget: the claimed sizes of one Decode call are bounded together, before any fetch.
func TestCodecBatchBudget(t *testing.T) {
	counting := newCountingStore()
	c := newCodec(t, &offload.Options{Store: counting, Threshold: 100, MaxPayloadSize: 3000, MaxBatchSize: 5000})
	var claims []*commonpb.Payload
	for i := range 3 {
		enc, err := c.Encode([]*commonpb.Payload{bigPayload(2000, byte(30+i))})
		if err != nil {
			t.Fatal(err)
		}
		claims = append(claims, enc[0])
	}
	if _, err := c.Decode(claims[:2]); err != nil {
		t.Fatalf("two claims within the budget: %v", err)
	}
	gets := counting.gets.Load()
	_, err := c.Decode(claims)
	if !errors.Is(err, offload.ErrTooLarge) || !strings.Contains(err.Error(), "MaxBatchSize 5000") {
		t.Fatalf("err = %v, want ErrTooLarge naming MaxBatchSize", err)
	}
	if counting.gets.Load() != gets {
		t.Fatal("objects were fetched for a batch over the budget")
	}
	// The same claim twice is one object and counts once.
	if _, err := c.Decode([]*commonpb.Payload{claims[0], claims[0], claims[1]}); err != nil {
		t.Fatalf("repeated claim: %v", err)
	}
	if _, err := offload.NewCodec(&offload.Options{Store: counting, MaxPayloadSize: 3000, MaxBatchSize: 2000}); err == nil {
		t.Fatal("MaxBatchSize below MaxPayloadSize accepted")
	}
}

// TestCodecIntegrityErrorsRevealNothing is finding 3: integrity errors name the key and the
// claimed values, never the stored object's real size or digest.
func TestCodecIntegrityErrorsRevealNothing(t *testing.T) {
	mem := offload.NewMemoryStore()
	c := newCodec(t, &offload.Options{Store: mem, Threshold: 100})
	enc, err := c.Encode([]*commonpb.Payload{bigPayload(1000, 40)})
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := offload.ParseClaim(enc[0])
	secret := []byte("the store's other object, 41 bytes long!!")
	for _, other := range [][]byte{secret, append(make([]byte, cl.Size-1), 1)} {
		if err := mem.Put(context.Background(), cl.Key, other); err != nil {
			t.Fatal(err)
		}
		_, err := c.Decode(enc)
		if !errors.Is(err, offload.ErrIntegrity) {
			t.Fatalf("err = %v, want ErrIntegrity", err)
		}
		sum := sha256.Sum256(other)
		if strings.Contains(err.Error(), hex.EncodeToString(sum[:])) {
			t.Fatalf("error %q reveals the stored object's digest", err)
		}
		if int64(len(other)) != cl.Size && strings.Contains(err.Error(), fmt.Sprint(len(other))) {
			t.Fatalf("error %q reveals the stored object's size %d", err, len(other))
		}
	}
}

// TestCodecIntegrityRefusesValidSubstitute replaces a stored object with another valid,
// parseable payload of the same size: only the digest check stands between it and the caller.
// (Objects that fail to parse would be refused by the unmarshal alone.)
func TestCodecIntegrityRefusesValidSubstitute(t *testing.T) {
	mem := offload.NewMemoryStore()
	c := newCodec(t, &offload.Options{Store: mem, Threshold: 100})
	enc, err := c.Encode([]*commonpb.Payload{bigPayload(1000, 50)})
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := offload.ParseClaim(enc[0])
	substitute, err := proto.MarshalOptions{Deterministic: true}.Marshal(bigPayload(1000, 51))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(substitute)) != cl.Size {
		t.Fatalf("substitute has %d bytes, the object %d", len(substitute), cl.Size)
	}
	if err := proto.Unmarshal(substitute, &commonpb.Payload{}); err != nil {
		t.Fatalf("substitute does not parse: %v", err)
	}
	if err := mem.Put(context.Background(), cl.Key, substitute); err != nil {
		t.Fatal(err)
	}
	_, err = c.Decode(enc)
	if !errors.Is(err, offload.ErrIntegrity) || !strings.Contains(err.Error(), cl.Key) {
		t.Fatalf("Decode of a same-size valid substitute: err = %v, want ErrIntegrity naming %s", err, cl.Key)
	}
}
