package codec

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

var errTestNotFound = errors.New("test store: object not found")

// memObjectStore is an in-memory ObjectStore counting its calls; Put can be failed or delayed.
type memObjectStore struct {
	mu       sync.Mutex
	objects  map[string][]byte
	puts     atomic.Int64
	gets     atomic.Int64
	failPuts int // number of upcoming Puts that fail
	putDelay time.Duration
}

func newMemObjectStore() *memObjectStore {
	return &memObjectStore{objects: make(map[string][]byte)}
}

func (s *memObjectStore) Put(_ context.Context, key string, data []byte) error {
	s.puts.Add(1)
	s.mu.Lock()
	fail := s.failPuts > 0
	if fail {
		s.failPuts--
	}
	delay := s.putDelay
	s.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	if fail {
		return errors.New("test store: put failed")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.objects[key] = bytes.Clone(data)
	return nil
}

func (s *memObjectStore) Get(_ context.Context, key string) ([]byte, error) {
	s.gets.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	obj, ok := s.objects[key]
	if !ok {
		return nil, fmt.Errorf("%w: %s", errTestNotFound, key)
	}
	return bytes.Clone(obj), nil
}

func (s *memObjectStore) set(key string, obj []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if obj == nil {
		delete(s.objects, key)
		return
	}
	s.objects[key] = bytes.Clone(obj)
}

func (s *memObjectStore) only(t testing.TB) (string, []byte) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.objects) != 1 {
		t.Fatalf("store holds %d objects, want 1", len(s.objects))
	}
	for k, v := range s.objects {
		return k, bytes.Clone(v)
	}
	return "", nil
}

func (s *memObjectStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objects)
}

// fakeKMS is a KeyProvider shaped like AWS KMS: an ARN key id and 184-byte encrypted data keys
// (opaque blobs), checking the encryption context on decrypt.
type fakeKMS struct {
	mu        sync.Mutex
	blobs     map[string]fakeKMSEntry
	generates atomic.Int64
	decrypts  atomic.Int64
}

type fakeKMSEntry struct {
	key []byte
	ctx string
}

const fakeKMSKeyID = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

func newFakeKMS() *fakeKMS { return &fakeKMS{blobs: make(map[string]fakeKMSEntry)} }

func (k *fakeKMS) GenerateDataKey(_ context.Context, encCtx map[string]string) (DataKey, error) {
	k.generates.Add(1)
	ctx, err := canonicalContext(encCtx)
	if err != nil {
		return DataKey{}, err
	}
	blob := make([]byte, 184)
	rand.Read(blob)
	key := GenerateKey()
	k.mu.Lock()
	k.blobs[string(blob)] = fakeKMSEntry{key: bytes.Clone(key), ctx: string(ctx)}
	k.mu.Unlock()
	return DataKey{KeyID: fakeKMSKeyID, Plaintext: key, Encrypted: blob}, nil
}

func (k *fakeKMS) DecryptDataKey(_ context.Context, keyID string, edk []byte, encCtx map[string]string) ([]byte, error) {
	k.decrypts.Add(1)
	ctx, err := canonicalContext(encCtx)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	e, ok := k.blobs[string(edk)]
	k.mu.Unlock()
	if keyID != fakeKMSKeyID || !ok || e.ctx != string(ctx) {
		return nil, fmt.Errorf("%w: fake KMS: invalid ciphertext", ErrDecrypt)
	}
	return bytes.Clone(e.key), nil
}

func v2Codec(t testing.TB, keys KeyProvider, store ObjectStore, namespace string, mod ...func(*EncryptionOptions)) converter.PayloadCodec {
	t.Helper()
	opts := EncryptionOptions{Keys: keys, Format: FormatV2, KeyObjects: store}
	for _, m := range mod {
		m(&opts)
	}
	c := newTestCodec(t, opts)
	if namespace == "" {
		return c
	}
	return c.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: namespace})
}

func bindNS(c *Encryption, ns string) converter.PayloadCodec {
	return c.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: ns})
}

func TestV2RoundTripMixedWithV1(t *testing.T) {
	keys := newTestKeyring(t, "k1")
	store := newMemObjectStore()
	v1 := newTestCodec(t, EncryptionOptions{Keys: keys})
	v2 := v2Codec(t, keys, store, "orders")
	var in, enc []*commonpb.Payload
	for i := range 20 {
		p := jsonPayload(fmt.Sprintf(`{"n":%d}`, i))
		c := bindNS(v1, "orders")
		if i%2 == 1 {
			c = v2
		}
		e := encodeOne(t, c, p)
		if i%2 == 1 {
			if len(e.Metadata) != 1 || string(e.Metadata[converter.MetadataEncoding]) != EncodingEncrypted {
				t.Fatalf("v2 metadata %q, want only the encoding", e.Metadata)
			}
			if e.Data[0] != 0x02 || !IsEnvelopeV2(e) {
				t.Fatalf("v2 data starts with %x", e.Data[:4])
			}
		} else if IsEnvelopeV2(e) {
			t.Fatal("a v1 payload passes for v2")
		}
		in = append(in, p)
		enc = append(enc, e)
	}
	// Any codec with KeyObjects decodes both formats, whatever Format it writes.
	for name, dec := range map[string]converter.PayloadCodec{
		"v2 writer":  v2,
		"v1 writer":  bindNS(newTestCodec(t, EncryptionOptions{Keys: keys, KeyObjects: store}), "orders"),
		"no context": newTestCodec(t, EncryptionOptions{Keys: keys, KeyObjects: store}),
	} {
		out, err := dec.Decode(enc)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i := range in {
			if !proto.Equal(out[i], in[i]) {
				t.Fatalf("%s: payload %d changed", name, i)
			}
		}
	}
	// A codec without KeyObjects still decodes v1 but refuses v2 clearly.
	noStore := bindNS(newTestCodec(t, EncryptionOptions{Keys: keys}), "orders")
	if _, err := noStore.Decode(enc[:1]); err != nil {
		t.Fatal(err)
	}
	_, err := noStore.Decode(enc)
	if !errors.Is(err, ErrKeyObject) || !strings.Contains(err.Error(), "payload=1") || !strings.Contains(err.Error(), "KeyObjects") {
		t.Fatalf("v2 without KeyObjects: %v", err)
	}
}

func TestV2RoundTripSizes(t *testing.T) {
	c := v2Codec(t, newTestKeyring(t, "k1"), newMemObjectStore(), "")
	for _, size := range []int{0, 1, 15, 16, 17, 1000, 64 << 10, 1 << 20} {
		in := sizedPayload(size)
		enc := encodeOne(t, c, in)
		if size >= 16 && bytes.Contains(enc.Data, in.Data) {
			t.Fatal("ciphertext contains the plaintext")
		}
		out, err := decodeOne(c, enc)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(out, in) {
			t.Fatalf("size %d: round trip changed the payload", size)
		}
	}
}

// TestV2Overhead measures outer payload proto size minus plain payload proto size, for a
// 30-byte and a 1 KiB value, with the static keyring and with KMS-shaped data keys: v2 stays
// within 96 bytes and does not depend on the key id or encrypted data key.
func TestV2Overhead(t *testing.T) {
	values := map[string]*commonpb.Payload{
		"30 B": {Metadata: map[string][]byte{converter.MetadataEncoding: []byte("json/plain")}, Data: []byte(`"` + strings.Repeat("x", 28) + `"`)},
		"1 KiB": {Metadata: map[string][]byte{converter.MetadataEncoding: []byte("json/plain")},
			Data: []byte(`"` + strings.Repeat("y", 1022) + `"`)},
	}
	providers := map[string]func() KeyProvider{
		"static keyring": func() KeyProvider { return newTestKeyring(t, "k1") },
		"KMS-sized EDK":  func() KeyProvider { return newFakeKMS() },
	}
	for vname, p := range values {
		overhead := map[string]int{}
		for pname, newKeys := range providers {
			for _, format := range []EnvelopeFormat{FormatV1, FormatV2} {
				keys := newKeys()
				c := bindNS(newTestCodec(t, EncryptionOptions{Keys: keys, Format: format, KeyObjects: newMemObjectStore()}), "default")
				enc := encodeOne(t, c, p)
				o := proto.Size(enc) - proto.Size(p)
				t.Logf("%s value (payload %d B), %s, %v: overhead %d bytes", vname, proto.Size(p), pname, format, o)
				if format == FormatV2 {
					overhead[pname] = o
					if o > 96 {
						t.Errorf("%s, %s: v2 overhead %d bytes, budget 96", vname, pname, o)
					}
				}
			}
		}
		if overhead["static keyring"] != overhead["KMS-sized EDK"] {
			t.Errorf("%s: v2 overhead depends on the key provider: %v", vname, overhead)
		}
	}
	// The documented formula: 94 bytes plus the varint of the outer data length.
	for _, n := range []int{0, 30, 1 << 10, 16 << 10, 64 << 10, 1 << 20} {
		p := sizedPayload(n)
		enc := encodeOne(t, bindNS(newTestCodec(t, EncryptionOptions{Keys: newFakeKMS(), Format: FormatV2, KeyObjects: newMemObjectStore()}), "default"), p)
		want := 94 + protowire.SizeVarint(uint64(len(enc.Data)))
		if o := proto.Size(enc) - proto.Size(p); o != want {
			t.Errorf("%d-byte value: overhead %d, want %d", n, o, want)
		}
	}
}

// TestV2KeyObjectCacheBounds: the parsed key-object cache is bounded in entries and bytes.
func TestV2KeyObjectCacheBounds(t *testing.T) {
	c := newLRU[int](3, 100)
	for i := range 5 {
		c.put(fmt.Sprint(i), i, 10)
	}
	if c.l.Len() != 3 || c.bytes != 30 {
		t.Fatalf("%d entries, %d bytes; want 3, 30", c.l.Len(), c.bytes)
	}
	if _, ok := c.get("1"); ok {
		t.Fatal("the oldest entries were kept")
	}
	c.put("big", 0, 90) // evicts "2" and "3": 10 + 90 bytes fit
	if c.l.Len() != 2 || c.bytes != 100 {
		t.Fatalf("%d entries, %d bytes; want 2, 100", c.l.Len(), c.bytes)
	}
	c.put("big", 1, 50)
	if v, _ := c.get("big"); v != 1 || c.bytes != 60 || c.l.Len() != 2 {
		t.Fatal("replacing an entry")
	}
}

// TestV2ProviderAndStoreCalls: one GenerateDataKey and one key-object Put per data key however
// many payloads; one Decrypt and one Get per data key per decoding codec (process).
func TestV2ProviderAndStoreCalls(t *testing.T) {
	for name, mk := range map[string]func() (KeyProvider, func() (int64, int64)){
		"static keyring": func() (KeyProvider, func() (int64, int64)) {
			p := &countingProvider{inner: newTestKeyring(t, "k1")}
			return p, func() (int64, int64) { return p.generates.Load(), p.decrypts.Load() }
		},
		"KMS": func() (KeyProvider, func() (int64, int64)) {
			k := newFakeKMS()
			return k, func() (int64, int64) { return k.generates.Load(), k.decrypts.Load() }
		},
	} {
		t.Run(name, func(t *testing.T) {
			keys, counts := mk()
			store := newMemObjectStore()
			enc := v2Codec(t, keys, store, "default")
			var all []*commonpb.Payload
			for i := range 10 {
				var batch []*commonpb.Payload
				for j := range 20 {
					batch = append(batch, jsonPayload(fmt.Sprintf(`{"i":%d,"j":%d}`, i, j)))
				}
				out, err := enc.Encode(batch)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, out...)
			}
			if g, d := counts(); g != 1 || d != 0 {
				t.Fatalf("encoding 200 payloads: %d GenerateDataKey, %d Decrypt; want 1, 0", g, d)
			}
			if n := store.puts.Load(); n != 1 {
				t.Fatalf("encoding 200 payloads wrote %d key objects, want 1", n)
			}
			// The encoding codec decodes its own payloads with neither provider nor store call.
			if _, err := enc.Decode(all); err != nil {
				t.Fatal(err)
			}
			if _, d := counts(); d != 0 || store.gets.Load() != 0 {
				t.Fatalf("the writer's own decode: %d Decrypt, %d Get; want 0, 0", d, store.gets.Load())
			}
			for proc := 1; proc <= 2; proc++ {
				dec := v2Codec(t, keys, store, "default")
				var wg sync.WaitGroup
				for g := range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for k := g; k < len(all); k += 8 {
							if _, err := dec.Decode(all[k : k+1]); err != nil {
								t.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				if _, d := counts(); d != int64(proc) {
					t.Fatalf("decoder %d: %d Decrypt in all, want %d", proc, d, proc)
				}
				if n := store.gets.Load(); n != int64(proc) {
					t.Fatalf("decoder %d: %d key-object Gets in all, want %d", proc, n, proc)
				}
			}
		})
	}
}

// TestV2KeyObjectWrittenOncePerDataKey: concurrent encoders share one write per data key, and
// each data key (here a new one every 10 messages) gets its own key object before use.
func TestV2KeyObjectWrittenOncePerDataKey(t *testing.T) {
	keys := &countingProvider{inner: newTestKeyring(t, "k1")}
	store := newMemObjectStore()
	store.putDelay = 2 * time.Millisecond
	c := v2Codec(t, keys, store, "default", func(o *EncryptionOptions) { o.Cache = &CacheOptions{MaxMessages: 10} })
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		out []*commonpb.Payload
	)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				p := encodeOne(t, c, jsonPayload(fmt.Sprintf(`[%d,%d]`, g, i)))
				ref, err := ReadKeyObjectRef(p)
				if err != nil {
					t.Error(err)
					return
				}
				// The key object is stored before the payload exists.
				if _, err := store.Get(context.Background(), KeyObjectKey(DefaultKeyObjectPrefix, ref)); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				out = append(out, p)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	gens, puts := keys.generates.Load(), store.puts.Load()
	if gens < 40 || puts != gens || int64(store.len()) != gens {
		t.Fatalf("%d data keys, %d key-object writes, %d objects; want one write and object per data key", gens, puts, store.len())
	}
	dec := v2Codec(t, newTestKeyring(t, "k1"), store, "default")
	if _, err := dec.Decode(out); err != nil {
		t.Fatal(err)
	}
}

func TestV2KeyObjectWriteFailureIsRetried(t *testing.T) {
	keys := &countingProvider{inner: newTestKeyring(t, "k1")}
	store := newMemObjectStore()
	store.failPuts = 1
	c := v2Codec(t, keys, store, "default")
	_, err := c.Encode([]*commonpb.Payload{jsonPayload(`1`)})
	if !errors.Is(err, ErrKeyObject) || !strings.Contains(err.Error(), DefaultKeyObjectPrefix+"/keys/") || !strings.Contains(err.Error(), "payload=0") {
		t.Fatalf("failed write: %v", err)
	}
	if store.len() != 0 {
		t.Fatal("a failed write left an object")
	}
	p := encodeOne(t, c, jsonPayload(`2`))
	if store.puts.Load() != 2 || store.len() != 1 || keys.generates.Load() != 1 {
		t.Fatalf("retry: %d puts, %d objects, %d data keys", store.puts.Load(), store.len(), keys.generates.Load())
	}
	if _, err := decodeOne(v2Codec(t, newTestKeyring(t, "k1"), store, "default"), p); err != nil {
		t.Fatal(err)
	}
}

func TestV2CacheDisabled(t *testing.T) {
	keys := &countingProvider{inner: newTestKeyring(t, "k1")}
	store := newMemObjectStore()
	c := v2Codec(t, keys, store, "default", func(o *EncryptionOptions) { o.Cache = &CacheOptions{Disabled: true} })
	var in []*commonpb.Payload
	for i := range 5 {
		in = append(in, jsonPayload(fmt.Sprint(i)))
	}
	a, err := c.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if keys.generates.Load() != 2 || store.len() != 2 {
		t.Fatalf("%d data keys, %d key objects; want 2, 2", keys.generates.Load(), store.len())
	}
	out, err := c.Decode(append(a, b...))
	if err != nil {
		t.Fatal(err)
	}
	if keys.decrypts.Load() != 2 || !proto.Equal(out[7], in[2]) {
		t.Fatalf("%d Decrypt, want 2 (one per data key per batch)", keys.decrypts.Load())
	}
}

func TestV2Config(t *testing.T) {
	keys := newTestKeyring(t, "k1")
	for name, opts := range map[string]EncryptionOptions{
		"v2 without store":       {Keys: keys, Format: FormatV2},
		"MaxMessages above 2^32": {Keys: keys, Format: FormatV2, KeyObjects: newMemObjectStore(), Cache: &CacheOptions{MaxMessages: 1<<32 + 1}},
		"unknown format":         {Keys: keys, Format: EnvelopeFormat(7)},
		"prefix with slash":      {Keys: keys, Format: FormatV2, KeyObjects: newMemObjectStore(), KeyObjectPrefix: "a/"},
	} {
		if _, err := NewEncryptionCodec(&opts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	ok := EncryptionOptions{Keys: keys, Format: FormatV2, KeyObjects: newMemObjectStore(), Cache: &CacheOptions{MaxMessages: 1 << 32}, KeyObjectPrefix: "a/b"}
	if _, err := NewEncryptionCodec(&ok); err != nil {
		t.Error(err)
	}
	if FormatV2.String() != "v2" || FormatDefault.String() != "default" {
		t.Error("EnvelopeFormat.String")
	}
}

func TestV2KeyObjectPrefix(t *testing.T) {
	store := newMemObjectStore()
	c := v2Codec(t, newTestKeyring(t, "k1"), store, "default", func(o *EncryptionOptions) { o.KeyObjectPrefix = "tenant/a" })
	p := encodeOne(t, c, jsonPayload(`1`))
	key, obj := store.only(t)
	ref, err := ReadKeyObjectRef(p)
	if err != nil {
		t.Fatal(err)
	}
	if key != KeyObjectKey("tenant/a", ref) || !strings.HasPrefix(key, "tenant/a/keys/") || ref != sha256.Sum256(obj) {
		t.Fatalf("key object stored under %q", key)
	}
	env, err := ReadKeyObject(ref, obj)
	if err != nil || env.KeyID != "k1" || env.Context[ContextKeyNamespace] != "default" {
		t.Fatalf("ReadKeyObject: %+v %v", env, err)
	}
	if _, err := ReadKeyObject(ref, obj[1:]); !errors.Is(err, ErrKeyObject) {
		t.Fatalf("ReadKeyObject of a corrupt object: %v", err)
	}
}

// TestV2NamespaceMismatch: the namespace is bound through the key object and checked with the
// same error as v1, before any key-provider call.
func TestV2NamespaceMismatch(t *testing.T) {
	keys := newTestKeyring(t, "k1")
	store := newMemObjectStore()
	p2 := encodeOne(t, v2Codec(t, keys, store, "orders"), jsonPayload(`1`))
	p1 := encodeOne(t, bindNS(newTestCodec(t, EncryptionOptions{Keys: keys}), "orders"), jsonPayload(`1`))
	counting := &countingProvider{inner: keys}
	dec := bindNS(newTestCodec(t, EncryptionOptions{Keys: counting, KeyObjects: store}), "billing")
	_, err1 := decodeOne(dec, p1)
	_, err2 := decodeOne(dec, p2)
	if !errors.Is(err2, ErrNamespaceMismatch) || !errors.Is(err1, ErrNamespaceMismatch) {
		t.Fatalf("v1: %v; v2: %v", err1, err2)
	}
	_, m1, _ := strings.Cut(err1.Error(), "]: ")
	_, m2, _ := strings.Cut(err2.Error(), "]: ")
	if m1 != m2 || m2 == "" {
		t.Fatalf("v2 message %q differs from v1's %q", m2, m1)
	}
	if counting.decrypts.Load() != 0 {
		t.Fatal("the key provider was called for a payload of another namespace")
	}
	// The policy options behave as in v1.
	lax := bindNS(newTestCodec(t, EncryptionOptions{Keys: keys, KeyObjects: store, AllowNamespaceMismatch: true}), "billing")
	if _, err := decodeOne(lax, p2); err != nil {
		t.Fatal(err)
	}
	strictKeys := bindNS(newTestCodec(t, EncryptionOptions{Keys: keys, KeyObjects: store, AllowedKeyIDs: []string{"other"}}), "orders")
	if _, err := decodeOne(strictKeys, p2); !errors.Is(err, ErrKeyNotAllowed) {
		t.Fatalf("AllowedKeyIDs: %v", err)
	}
	ctxCodec := bindNS(newTestCodec(t, EncryptionOptions{Keys: keys, KeyObjects: store, Context: map[string]string{"app": "x"}}), "orders")
	if _, err := decodeOne(ctxCodec, p2); !errors.Is(err, ErrContextMismatch) {
		t.Fatalf("Context: %v", err)
	}
}

func TestV2MissingAndCorruptKeyObject(t *testing.T) {
	keys := newTestKeyring(t, "k1")
	store := newMemObjectStore()
	enc := v2Codec(t, keys, store, "default")
	good := encodeOne(t, enc, jsonPayload(`1`))
	key, obj := store.only(t)

	other := newMemObjectStore()
	bad := encodeOne(t, v2Codec(t, keys, other, "default"), jsonPayload(`2`))
	badKey, badObj := other.only(t)

	check := func(what string, wantIs error) {
		t.Helper()
		dec := v2Codec(t, keys, store, "default")
		_, err := dec.Decode([]*commonpb.Payload{good, bad})
		if !errors.Is(err, ErrKeyObject) || !errors.Is(err, wantIs) {
			t.Fatalf("%s: %v", what, err)
		}
		if !strings.Contains(err.Error(), "payload=1") || !strings.Contains(err.Error(), "key object="+badKey) {
			t.Fatalf("%s: error does not name the payload and key object: %v", what, err)
		}
		t.Logf("%s: %v", what, err)
	}
	check("missing", errTestNotFound)
	store.set(badKey, obj) // another key object under this reference
	check("hash mismatch", ErrKeyObject)
	// A self-consistent but unparsable object cannot be stored under its own reference without
	// a SHA-256 preimage; ReadKeyObject and the fuzz target cover the parser. Here: truncated.
	store.set(badKey, badObj[:len(badObj)-1])
	check("truncated", ErrKeyObject)

	store.set(badKey, badObj)
	dec := v2Codec(t, keys, store, "default")
	if _, err := dec.Decode([]*commonpb.Payload{good, bad}); err != nil {
		t.Fatal(err)
	}
	// Cached forever: the decoder no longer needs the store.
	store.set(badKey, nil)
	store.set(key, nil)
	if _, err := dec.Decode([]*commonpb.Payload{good, bad}); err != nil {
		t.Fatal(err)
	}
}

// TestV2BitFlips flips every bit of a v2 payload's data, and every bit of its key object (both
// stored under the old reference, and re-referenced with the payload's reference updated).
func TestV2BitFlips(t *testing.T) {
	keys := newTestKeyring(t, "k1")
	store := newMemObjectStore()
	p := encodeOne(t, v2Codec(t, keys, store, "default"), jsonPayload(`"v"`))
	key, obj := store.only(t)
	dec := v2Codec(t, keys, store, "default")
	if _, err := decodeOne(dec, p); err != nil {
		t.Fatal(err)
	}
	refuse := func(what string, c converter.PayloadCodec, q *commonpb.Payload) {
		t.Helper()
		if _, err := decodeOne(c, q); err == nil {
			t.Fatalf("%s: accepted", what)
		} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrKeyObject) &&
			!errors.Is(err, ErrNamespaceMismatch) && !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("%s: error without a sentinel: %v", what, err)
		}
	}
	tried := 0
	for i := range len(p.Data) * 8 {
		q := proto.Clone(p).(*commonpb.Payload)
		q.Data[i/8] ^= 1 << (i % 8)
		refuse(fmt.Sprintf("data bit %d", i), dec, q)
		tried++
	}
	for i := range len(obj) * 8 {
		flipped := bytes.Clone(obj)
		flipped[i/8] ^= 1 << (i % 8)
		s := newMemObjectStore()
		s.set(key, flipped)
		refuse(fmt.Sprintf("key object bit %d under the old reference", i), v2Codec(t, keys, s, "default"), p)

		ref := sha256.Sum256(flipped)
		s.set(KeyObjectKey(DefaultKeyObjectPrefix, ref), flipped)
		q := proto.Clone(p).(*commonpb.Payload)
		copy(q.Data[1:], ref[:])
		refuse(fmt.Sprintf("key object bit %d, re-referenced", i), v2Codec(t, keys, s, "default"), q)
		tried += 2
	}
	t.Logf("%d single-bit variants refused", tried)
}

func TestV2Truncated(t *testing.T) {
	keys := newTestKeyring(t, "k1")
	store := newMemObjectStore()
	p := encodeOne(t, v2Codec(t, keys, store, "default"), jsonPayload(`"truncate me"`))
	key, obj := store.only(t)
	dec := v2Codec(t, keys, store, "default")
	for n := range len(p.Data) {
		q := &commonpb.Payload{Metadata: p.Metadata, Data: p.Data[:n]}
		if _, err := decodeOne(dec, q); err == nil {
			t.Fatalf("data truncated to %d bytes: accepted", n)
		}
	}
	for n := range len(obj) {
		s := newMemObjectStore()
		s.set(key, obj[:n])
		if _, err := decodeOne(v2Codec(t, keys, s, "default"), p); !errors.Is(err, ErrKeyObject) {
			t.Fatalf("key object truncated to %d bytes: %v", n, err)
		}
		ref := sha256.Sum256(obj[:n])
		s.set(KeyObjectKey(DefaultKeyObjectPrefix, ref), obj[:n])
		q := proto.Clone(p).(*commonpb.Payload)
		copy(q.Data[1:], ref[:])
		if _, err := decodeOne(v2Codec(t, keys, s, "default"), q); !errors.Is(err, ErrKeyObject) || !errors.Is(err, ErrMalformed) {
			t.Fatalf("key object truncated to %d bytes, re-referenced: %v", n, err)
		}
	}
	// Trailing bytes after the context are refused too.
	long := append(bytes.Clone(obj), 0)
	ref := sha256.Sum256(long)
	store.set(KeyObjectKey(DefaultKeyObjectPrefix, ref), long)
	q := proto.Clone(p).(*commonpb.Payload)
	copy(q.Data[1:], ref[:])
	if _, err := decodeOne(dec, q); !errors.Is(err, ErrMalformed) {
		t.Fatalf("key object with a trailing byte: %v", err)
	}
}

func TestV2Deterministic(t *testing.T) {
	keys := newTestKeyring(t, "k1")
	store := newMemObjectStore()
	c := v2Codec(t, keys, store, "orders", func(o *EncryptionOptions) { o.DeterministicMinSize = 1 << 10 })
	big := manyMetadata(bytes.Repeat([]byte("0123456789abcdef"), 256))
	first := encodeOne(t, c, big)
	for range 10 {
		if again := encodeOne(t, c, proto.Clone(big).(*commonpb.Payload)); !bytes.Equal(again.Data, first.Data) {
			t.Fatal("an equal value above DeterministicMinSize gave another v2 envelope")
		}
	}
	if bytes.Equal(first.Data[1+keyObjectRefSize:headerSizeV2], make([]byte, messageIDSizeV2)) {
		t.Fatal("empty message id")
	}
	small := jsonPayload(`1`)
	if bytes.Equal(encodeOne(t, c, small).Data, encodeOne(t, c, small).Data) {
		t.Fatal("a value below DeterministicMinSize got a deterministic message id")
	}
	other := proto.Clone(big).(*commonpb.Payload)
	other.Data[0] ^= 1
	if bytes.Equal(encodeOne(t, c, other).Data, first.Data) {
		t.Fatal("different values gave one envelope")
	}
	ns := v2Codec(t, keys, store, "billing", func(o *EncryptionOptions) { o.DeterministicMinSize = 1 << 10 })
	if bytes.Equal(encodeOne(t, ns, big).Data, first.Data) {
		t.Fatal("two namespaces gave one envelope")
	}
	got, err := decodeOne(v2Codec(t, keys, store, "orders"), first)
	if err != nil || !proto.Equal(got, big) {
		t.Fatalf("decode: %v", err)
	}
}

// TestV2InputsNotMutated: Encode and Decode leave their inputs alone, and outputs do not share
// metadata slices.
func TestV2InputsNotMutated(t *testing.T) {
	c := v2Codec(t, newTestKeyring(t, "k1"), newMemObjectStore(), "default")
	in := jsonPayload(`{"a":1}`)
	keep := proto.Clone(in)
	out, err := c.Encode([]*commonpb.Payload{in, in})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, keep) {
		t.Fatal("Encode mutated its input")
	}
	out[0].Metadata[converter.MetadataEncoding][0] = 'X'
	if string(out[1].Metadata[converter.MetadataEncoding]) != EncodingEncrypted {
		t.Fatal("outputs share metadata")
	}
	encKeep := proto.Clone(out[1])
	if _, err := decodeOne(c, out[1]); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(out[1], encKeep) {
		t.Fatal("Decode mutated its input")
	}
}
