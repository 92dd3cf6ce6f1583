package codec

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

func TestEncryptionRoundTrip(t *testing.T) {
	c := newTestCodec(t, EncryptionOptions{Keys: newTestKeyring(t, "k1")})
	for _, size := range []int{0, 1, 15, 16, 17, 1000, 64 << 10, 1 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			in := sizedPayload(size)
			enc := encodeOne(t, c, in)
			md := enc.GetMetadata()
			if got := string(md[converter.MetadataEncoding]); got != EncodingEncrypted {
				t.Errorf("encoding = %q, want %q", got, EncodingEncrypted)
			}
			if got := string(md[MetadataEncryptionCipher]); got != CipherAES256GCMCommitV1 {
				t.Errorf("cipher = %q", got)
			}
			if got := string(md[MetadataEncryptionKeyID]); got != "k1" {
				t.Errorf("key id = %q, want k1", got)
			}
			if len(md) != 3 {
				t.Errorf("metadata has %d keys, want 3: %v", len(md), md)
			}
			if size >= 16 && bytes.Contains(enc.Data, in.Data) {
				t.Error("ciphertext contains the plaintext")
			}
			out, err := decodeOne(c, enc)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(out, in) {
				t.Fatal("round trip changed the payload")
			}
		})
	}
}

func TestEncryptionBatchRoundTrip(t *testing.T) {
	c := newTestCodec(t, EncryptionOptions{Keys: newTestKeyring(t, "k1")})
	var in []*commonpb.Payload
	for i := range 50 {
		in = append(in, jsonPayload(fmt.Sprintf(`{"n":%d}`, i)))
	}
	enc, err := c.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	// Each payload has its own message id, even under one cached data key.
	seen := map[string]bool{}
	for _, p := range enc {
		h, _, err := parseHeader(p.Data)
		if err != nil {
			t.Fatal(err)
		}
		if seen[string(h.messageID)] {
			t.Fatal("message id reused")
		}
		seen[string(h.messageID)] = true
	}
	out, err := c.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if !proto.Equal(in[i], out[i]) {
			t.Fatalf("payload %d differs", i)
		}
	}
	if out, err := c.Encode(nil); err != nil || len(out) != 0 {
		t.Fatalf("Encode(nil) = %v, %v", out, err)
	}
}

func TestEncryptionPassThrough(t *testing.T) {
	c := newTestCodec(t, EncryptionOptions{Keys: newTestKeyring(t, "k1")})
	plain := jsonPayload(`"plain"`)
	zlib := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte("binary/zlib")}, Data: []byte{1, 2}}
	noMeta := &commonpb.Payload{Data: []byte("x")}
	enc := encodeOne(t, c, jsonPayload(`"secret"`))
	out, err := c.Decode([]*commonpb.Payload{plain, enc, zlib, noMeta})
	if err != nil {
		t.Fatal(err)
	}
	if out[0] != plain || out[2] != zlib || out[3] != noMeta {
		t.Error("payloads with other encodings were not passed through unchanged")
	}
	if string(out[1].Data) != `"secret"` {
		t.Errorf("decoded %q", out[1].Data)
	}
}

func TestEncryptionCipherMetadataWithoutEncodingFails(t *testing.T) {
	c := newTestCodec(t, EncryptionOptions{Keys: newTestKeyring(t, "k1")})
	enc := encodeOne(t, c, jsonPayload(`1`))
	enc.Metadata[converter.MetadataEncoding] = []byte("json/plain")
	if _, err := decodeOne(c, enc); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
}

func TestEncryptionDoesNotMutateInputs(t *testing.T) {
	c := newTestCodec(t, EncryptionOptions{Keys: newTestKeyring(t, "k1")})
	in := []*commonpb.Payload{jsonPayload(`{"a":1}`), sizedPayload(5000)}
	before := []*commonpb.Payload{proto.Clone(in[0]).(*commonpb.Payload), proto.Clone(in[1]).(*commonpb.Payload)}
	enc, err := c.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if !proto.Equal(in[i], before[i]) {
			t.Fatalf("Encode mutated input %d", i)
		}
	}
	encBefore := []*commonpb.Payload{proto.Clone(enc[0]).(*commonpb.Payload), proto.Clone(enc[1]).(*commonpb.Payload)}
	if _, err := c.Decode(enc); err != nil {
		t.Fatal(err)
	}
	for i := range enc {
		if !proto.Equal(enc[i], encBefore[i]) {
			t.Fatalf("Decode mutated input %d", i)
		}
	}
}

func TestEncryptionRotation(t *testing.T) {
	k1, k2 := testKey(1), testKey(2)
	old, err := NewStaticKeyring("k1", map[string][]byte{"k1": k1})
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := NewStaticKeyring("k2", map[string][]byte{"k1": k1, "k2": k2})
	if err != nil {
		t.Fatal(err)
	}
	oldPayload := encodeOne(t, newTestCodec(t, EncryptionOptions{Keys: old}), jsonPayload(`"old"`))
	c := newTestCodec(t, EncryptionOptions{Keys: rotated})
	newPayload := encodeOne(t, c, jsonPayload(`"new"`))
	if got := string(newPayload.Metadata[MetadataEncryptionKeyID]); got != "k2" {
		t.Fatalf("new payload key id = %q, want k2", got)
	}
	for _, p := range []*commonpb.Payload{oldPayload, newPayload} {
		if _, err := decodeOne(c, p); err != nil {
			t.Fatalf("rotated keyring cannot decode %s payload: %v", p.Metadata[MetadataEncryptionKeyID], err)
		}
	}
	// The old keyring does not know k2.
	if _, err := decodeOne(newTestCodec(t, EncryptionOptions{Keys: old}), newPayload); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey", err)
	}
}

func TestEncryptionNamespaceContext(t *testing.T) {
	keys := &countingProvider{inner: newTestKeyring(t, "k1")}
	base := newTestCodec(t, EncryptionOptions{Keys: keys, Context: map[string]string{"app": "orders"}})
	ns1 := base.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "ns1", WorkflowID: "wf"})
	ns2 := base.WithSerializationContext(converter.ActivitySerializationContext{Namespace: "ns2"})
	nexus := base.WithSerializationContext(converter.NexusSerializationContext{Endpoint: "e"})

	enc := encodeOne(t, ns1, jsonPayload(`"x"`))
	h, _, err := parseHeader(enc.Data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"app": "orders", "namespace": "ns1"}
	if fmt.Sprint(h.context) != fmt.Sprint(want) {
		t.Fatalf("header context = %v, want %v", h.context, want)
	}
	if got := keys.contexts[0]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("provider saw context %v, want %v", got, want)
	}

	t.Run("match", func(t *testing.T) {
		if _, err := decodeOne(ns1, enc); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("mismatch", func(t *testing.T) {
		_, err := decodeOne(ns2, enc)
		if !errors.Is(err, ErrNamespaceMismatch) {
			t.Fatalf("err = %v, want ErrNamespaceMismatch", err)
		}
		if !strings.Contains(err.Error(), "ns1") || !strings.Contains(err.Error(), "ns2") {
			t.Errorf("error does not name both namespaces: %v", err)
		}
	})
	t.Run("relaxed", func(t *testing.T) {
		relaxed := newTestCodec(t, EncryptionOptions{Keys: keys, AllowNamespaceMismatch: true}).
			WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "ns2"})
		if _, err := decodeOne(relaxed, enc); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no context", func(t *testing.T) {
		for name, c := range map[string]converter.PayloadCodec{"base": base, "nexus": nexus} {
			if _, err := decodeOne(c, enc); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
	t.Run("empty context payload", func(t *testing.T) {
		bare := newTestCodec(t, EncryptionOptions{Keys: keys})
		p := encodeOne(t, bare, jsonPayload(`"bare"`))
		h, _, err := parseHeader(p.Data)
		if err != nil || len(h.context) != 0 {
			t.Fatalf("context = %v, err = %v; want empty", h.context, err)
		}
		// Finding 4 of the security review: a payload without a stored namespace used to decode
		// under any namespace. A bound codec now refuses it unless told otherwise.
		ns2 := bare.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "ns2"})
		if _, err := decodeOne(ns2, p); !errors.Is(err, ErrNamespaceMismatch) || !strings.Contains(err.Error(), "no namespace") {
			t.Fatalf("err = %v, want ErrNamespaceMismatch for a payload without namespace", err)
		}
		for name, opts := range map[string]EncryptionOptions{
			"AllowMissingNamespace":  {Keys: keys, AllowMissingNamespace: true},
			"AllowNamespaceMismatch": {Keys: keys, AllowNamespaceMismatch: true},
		} {
			c := newTestCodec(t, opts).WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "ns2"})
			if _, err := decodeOne(c, p); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		// An unbound codec has no namespace to compare with.
		if _, err := decodeOne(bare, p); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("static context must match on decode", func(t *testing.T) {
		// Finding 6: configured static pairs are required on decode, with the same value.
		other := newTestCodec(t, EncryptionOptions{Keys: keys, Context: map[string]string{"app": "billing"}}).
			WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "ns1"})
		if _, err := decodeOne(other, enc); !errors.Is(err, ErrContextMismatch) {
			t.Fatalf("other value: err = %v, want ErrContextMismatch", err)
		}
		extra := newTestCodec(t, EncryptionOptions{Keys: keys, Context: map[string]string{"app": "orders", "tier": "gold"}}).
			WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "ns1"})
		if _, err := decodeOne(extra, enc); !errors.Is(err, ErrContextMismatch) || !strings.Contains(err.Error(), `"tier"`) {
			t.Fatalf("missing pair: err = %v, want ErrContextMismatch naming the pair", err)
		}
		migrating := newTestCodec(t, EncryptionOptions{Keys: keys, Context: map[string]string{"app": "orders", "tier": "gold"}, AllowMissingContext: true}).
			WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "ns1"})
		if _, err := decodeOne(migrating, enc); err != nil {
			t.Fatalf("AllowMissingContext: %v", err)
		}
		migratingOther := newTestCodec(t, EncryptionOptions{Keys: keys, Context: map[string]string{"app": "billing"}, AllowMissingContext: true}).
			WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "ns1"})
		if _, err := decodeOne(migratingOther, enc); !errors.Is(err, ErrContextMismatch) {
			t.Fatalf("AllowMissingContext with another value: err = %v, want ErrContextMismatch", err)
		}
	})
	t.Run("same namespace returns the codec itself", func(t *testing.T) {
		if base.WithSerializationContext(converter.NexusSerializationContext{}) != converter.PayloadCodec(base) {
			t.Fatal("a context without namespace made a copy")
		}
	})
}

func TestEncryptionOptionValidation(t *testing.T) {
	keys := newTestKeyring(t, "k1")
	for _, tc := range []struct {
		name string
		opts *EncryptionOptions
		want string
	}{
		{"nil options", nil, "Encryption.Keys"},
		{"nil keys", &EncryptionOptions{}, "Encryption.Keys"},
		{"negative timeout", &EncryptionOptions{Keys: keys, CallTimeout: -1}, "Encryption.CallTimeout"},
		{"namespace in context", &EncryptionOptions{Keys: keys, Context: map[string]string{"namespace": "x"}}, `"namespace"`},
		{"empty context key", &EncryptionOptions{Keys: keys, Context: map[string]string{"": "x"}}, "empty key"},
		{"huge context", &EncryptionOptions{Keys: keys, Context: map[string]string{"a": strings.Repeat("x", MaxContextBytes)}}, "Encryption.Context"},
		{"negative max age", &EncryptionOptions{Keys: keys, Cache: &CacheOptions{MaxAge: -1}}, "Encryption.Cache.MaxAge"},
		{"negative max messages", &EncryptionOptions{Keys: keys, Cache: &CacheOptions{MaxMessages: -1}}, "Encryption.Cache.MaxMessages"},
		{"negative max bytes", &EncryptionOptions{Keys: keys, Cache: &CacheOptions{MaxBytes: -1}}, "Encryption.Cache.MaxBytes"},
		{"negative max entries", &EncryptionOptions{Keys: keys, Cache: &CacheOptions{MaxEntries: -1}}, "Encryption.Cache.MaxEntries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewEncryptionCodec(tc.opts)
			if err == nil {
				t.Fatalf("no error, codec %v", c)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	c := newTestCodec(t, EncryptionOptions{Keys: keys})
	if c.state.timeout != DefaultCallTimeout || c.state.cache.MaxAge != DefaultCacheMaxAge ||
		c.state.cache.MaxMessages != DefaultCacheMaxMessages || c.state.cache.MaxBytes != DefaultCacheMaxBytes ||
		c.state.cache.MaxEntries != DefaultCacheMaxEntries {
		t.Fatalf("defaults not applied: timeout %s, cache %+v", c.state.timeout, c.state.cache)
	}
}

func TestEncryptionLongNamespaceRejectedOnEncode(t *testing.T) {
	c := newTestCodec(t, EncryptionOptions{Keys: newTestKeyring(t, "k1")}).
		WithSerializationContext(converter.WorkflowSerializationContext{Namespace: strings.Repeat("n", MaxContextBytes)})
	if _, err := c.Encode([]*commonpb.Payload{jsonPayload("1")}); err == nil {
		t.Fatal("encoded with an out-of-bounds encryption context")
	}
}

// TestEncryptionBitFlips flips every bit of a small encrypted payload's data and of each of its
// metadata values: every variant must fail to decode, none may panic or succeed.
func TestEncryptionBitFlips(t *testing.T) {
	keys := newTestKeyring(t, "k1")
	enc := newTestCodec(t, EncryptionOptions{Keys: keys}).
		WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "ns"})
	orig := encodeOne(t, enc, jsonPayload(`"hi"`))
	// One decoding codec serves every variant: its cache key covers key id, encrypted data key and
	// context, so a cached data key cannot mask a flipped bit.
	dec := newTestCodec(t, EncryptionOptions{Keys: keys, AllowNamespaceMismatch: true})
	if _, err := decodeOne(dec, orig); err != nil {
		t.Fatal(err)
	}
	tried := 0
	check := func(what string, p *commonpb.Payload) {
		tried++
		out, err := decodeOne(dec, p)
		if err == nil {
			t.Fatalf("%s: decoded without error to %v", what, out)
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("%s: error without a sentinel: %v", what, err)
		}
	}
	for i := range len(orig.Data) * 8 {
		p := proto.Clone(orig).(*commonpb.Payload)
		p.Data[i/8] ^= 1 << (i % 8)
		check(fmt.Sprintf("data bit %d", i), p)
	}
	for key, val := range orig.Metadata {
		for i := range len(val) * 8 {
			p := proto.Clone(orig).(*commonpb.Payload)
			p.Metadata[key][i/8] ^= 1 << (i % 8)
			check(fmt.Sprintf("metadata %s bit %d", key, i), p)
		}
	}
	t.Logf("%d single-bit variants rejected", tried)
}

func TestEncryptionWrongKey(t *testing.T) {
	c := newTestCodec(t, EncryptionOptions{Keys: newTestKeyring(t, "k1")})
	p := encodeOne(t, c, jsonPayload(`1`))
	impostor, err := NewStaticKeyring("k1", map[string][]byte{"k1": testKey(99)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = decodeOne(newTestCodec(t, EncryptionOptions{Keys: impostor}), p)
	if !errors.Is(err, ErrDecrypt) {
		t.Fatalf("err = %v, want ErrDecrypt", err)
	}
	if !strings.Contains(err.Error(), "key=k1") {
		t.Errorf("error does not name the key id: %v", err)
	}
}

// wrongKeyProvider returns a fixed data key regardless of the encrypted key: the key
// commitment must catch it before any decryption is attempted.
type wrongKeyProvider struct{ KeyProvider }

func (wrongKeyProvider) DecryptDataKey(context.Context, string, []byte, map[string]string) ([]byte, error) {
	return testKey(7), nil
}

func TestEncryptionCommitmentMismatch(t *testing.T) {
	keys := newTestKeyring(t, "k1")
	p := encodeOne(t, newTestCodec(t, EncryptionOptions{Keys: keys}), jsonPayload(`1`))
	_, err := decodeOne(newTestCodec(t, EncryptionOptions{Keys: wrongKeyProvider{keys}}), p)
	// Without the commitment check GCM would still fail, with ErrDecrypt but not ErrKeyCommitment.
	if !errors.Is(err, ErrKeyCommitment) || !errors.Is(err, ErrDecrypt) {
		t.Fatalf("err = %v, want ErrKeyCommitment (and ErrDecrypt)", err)
	}
}

// TestEncryptionCommitmentOnlyDefence builds a payload whose GCM ciphertext and tag are valid
// under a second data key (the attacker holds both keys and re-seals the plaintext under the
// second one while keeping the first key's commitment), served by a provider that returns
// the second key. GCM accepts it; only the key commitment refuses it.
func TestEncryptionCommitmentOnlyDefence(t *testing.T) {
	keys := newTestKeyring(t, "k1")
	c := newTestCodec(t, EncryptionOptions{Keys: keys})
	p := encodeOne(t, c, jsonPayload(`"committed"`))
	h, ct, err := parseHeader(p.Data)
	if err != nil {
		t.Fatal(err)
	}
	// Decrypt with the true data key, then seal the same plaintext under testKey(7) keeping
	// the header (hence the first key's commitment) as AAD.
	trueKey, err := keys.DecryptDataKey(context.Background(), h.keyID, h.edk, h.context)
	if err != nil {
		t.Fatal(err)
	}
	open := func(dataKey []byte) ([]byte, error) {
		aesKey, _, err := deriveKeys(dataKey, h.messageID)
		if err != nil {
			return nil, err
		}
		aead, err := newGCM(aesKey)
		if err != nil {
			return nil, err
		}
		return aead.Open(nil, zeroNonce[:], ct, h.raw)
	}
	plaintext, err := open(trueKey)
	if err != nil {
		t.Fatal(err)
	}
	aesKey2, _, err := deriveKeys(testKey(7), h.messageID)
	if err != nil {
		t.Fatal(err)
	}
	aead2, err := newGCM(aesKey2)
	if err != nil {
		t.Fatal(err)
	}
	forged := proto.Clone(p).(*commonpb.Payload)
	forged.Data = aead2.Seal(append([]byte(nil), h.raw...), zeroNonce[:], plaintext, h.raw)
	fh, fct, err := parseHeader(forged.Data)
	if err != nil {
		t.Fatal(err)
	}
	// GCM alone accepts the forgery under the second key.
	aead2Open, _ := newGCM(aesKey2)
	if _, err := aead2Open.Open(nil, zeroNonce[:], fct, fh.raw); err != nil {
		t.Fatalf("forged ciphertext does not authenticate under the second key: %v", err)
	}
	_, err = decodeOne(newTestCodec(t, EncryptionOptions{Keys: wrongKeyProvider{keys}}), forged)
	if !errors.Is(err, ErrKeyCommitment) {
		t.Fatalf("err = %v, want ErrKeyCommitment: only the commitment stands between GCM and the forgery", err)
	}
}

func TestEncryptionAllowedKeyIDs(t *testing.T) {
	keys, err := NewStaticKeyring("k1", map[string][]byte{"k1": testKey(1), "k2": testKey(2)})
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewStaticKeyring("k2", map[string][]byte{"k1": testKey(1), "k2": testKey(2)})
	if err != nil {
		t.Fatal(err)
	}
	underK2 := encodeOne(t, newTestCodec(t, EncryptionOptions{Keys: other}), jsonPayload(`"k2"`))
	underK1 := encodeOne(t, newTestCodec(t, EncryptionOptions{Keys: keys}), jsonPayload(`"k1"`))
	counting := &countingProvider{inner: keys}
	strict := newTestCodec(t, EncryptionOptions{Keys: counting, AllowedKeyIDs: []string{"k1"}})
	if _, err := decodeOne(strict, underK1); err != nil {
		t.Fatal(err)
	}
	before := counting.decrypts.Load()
	_, err = decodeOne(strict, underK2)
	if !errors.Is(err, ErrKeyNotAllowed) || !strings.Contains(err.Error(), "key=k2") {
		t.Fatalf("err = %v, want ErrKeyNotAllowed naming k2", err)
	}
	if counting.decrypts.Load() != before {
		t.Fatal("a key outside the allow-list reached the key provider")
	}
	// Without the list every key the provider knows is accepted.
	if _, err := decodeOne(newTestCodec(t, EncryptionOptions{Keys: keys}), underK2); err != nil {
		t.Fatal(err)
	}
}

func TestEncryptionRequireEncryption(t *testing.T) {
	keys := newTestKeyring(t, "k1")
	forged := jsonPayload(`{"amount":1000000}`)
	null := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte("binary/null")}}
	// Default: plaintext passes through (payloads written before encryption was turned on).
	if out, err := newTestCodec(t, EncryptionOptions{Keys: keys}).Decode([]*commonpb.Payload{forged}); err != nil || out[0] != forged {
		t.Fatalf("default: out = %v, err = %v; want pass-through", out, err)
	}
	strict := newTestCodec(t, EncryptionOptions{Keys: keys, RequireEncryption: true, PlaintextEncodings: []string{"binary/null"}})
	_, err := strict.Decode([]*commonpb.Payload{forged})
	if !errors.Is(err, ErrNotEncrypted) || !strings.Contains(err.Error(), "json/plain") {
		t.Fatalf("err = %v, want ErrNotEncrypted naming the encoding", err)
	}
	if _, err := strict.Decode([]*commonpb.Payload{null}); err != nil {
		t.Fatalf("listed plaintext encoding: %v", err)
	}
	if _, err := decodeOne(strict, encodeOne(t, strict, forged)); err != nil {
		t.Fatalf("encrypted payload: %v", err)
	}
	if _, err := NewEncryptionCodec(&EncryptionOptions{Keys: keys, PlaintextEncodings: []string{"binary/null"}}); err == nil {
		t.Fatal("PlaintextEncodings without RequireEncryption accepted")
	}
}

func TestEncryptionUnknownKey(t *testing.T) {
	p := encodeOne(t, newTestCodec(t, EncryptionOptions{Keys: newTestKeyring(t, "k1")}), jsonPayload(`1`))
	_, err := decodeOne(newTestCodec(t, EncryptionOptions{Keys: newTestKeyring(t, "other")}), p)
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey", err)
	}
}

func TestEncryptionTruncated(t *testing.T) {
	c := newTestCodec(t, EncryptionOptions{Keys: newTestKeyring(t, "k1"), Context: map[string]string{"a": "b"}})
	p := encodeOne(t, c, jsonPayload(`"truncate me"`))
	h, _, err := parseHeader(p.Data)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(p.Data) {
		q := proto.Clone(p).(*commonpb.Payload)
		q.Data = q.Data[:n]
		_, err := decodeOne(c, q)
		want := ErrDecrypt
		if n < len(h.raw)+gcmTagSize {
			want = ErrMalformed
		}
		if !errors.Is(err, want) {
			t.Fatalf("data truncated to %d bytes (header %d): err = %v, want %v", n, len(h.raw), err, want)
		}
	}
}

// hostileHeader builds a header prefix with the given raw fields.
func hostileHeader(fields ...[]byte) []byte {
	b := append([]byte(formatMagic), formatVersionV1)
	for _, f := range fields {
		b = append(b, f...)
	}
	return b
}

func u16(n int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(n)) }

func TestEncryptionHostileLengths(t *testing.T) {
	c := newTestCodec(t, EncryptionOptions{Keys: newTestKeyring(t, "k1")})
	ids := append(u16(2), "k1"...)
	edk := append(u16(3), 1, 2, 3)
	fixed := make([]byte, messageIDSize+commitmentSize)
	tail := make([]byte, 64)
	for name, data := range map[string][]byte{
		"empty":               nil,
		"bad magic":           append([]byte("XYZ\x01"), tail...),
		"bad version":         append([]byte("PKE\x02"), tail...),
		"key id 0xffff":       hostileHeader(u16(0xffff), tail),
		"key id over limit":   hostileHeader(u16(MaxKeyIDLen+1), make([]byte, MaxKeyIDLen+1), tail),
		"empty key id":        hostileHeader(u16(0), tail),
		"edk 0xffff":          hostileHeader(ids, u16(0xffff), tail),
		"edk over limit":      hostileHeader(ids, u16(MaxEncryptedDataKeyLen+1), make([]byte, 2000)),
		"empty edk":           hostileHeader(ids, u16(0), tail),
		"short message id":    hostileHeader(ids, edk, make([]byte, 20)),
		"context pairs 0xfff": hostileHeader(ids, edk, fixed, u16(0xffff), tail),
		"context pairs 65":    hostileHeader(ids, edk, fixed, u16(MaxContextPairs+1), tail),
		"context key 0xffff":  hostileHeader(ids, edk, fixed, u16(1), u16(0xffff), tail),
		"context value huge":  hostileHeader(ids, edk, fixed, u16(1), u16(1), []byte("a"), u16(MaxContextBytes), make([]byte, MaxContextBytes+64)),
		"context unsorted":    hostileHeader(ids, edk, fixed, u16(2), u16(1), []byte("b"), u16(0), u16(1), []byte("a"), u16(0), tail),
		"context duplicate":   hostileHeader(ids, edk, fixed, u16(2), u16(1), []byte("a"), u16(0), u16(1), []byte("a"), u16(0), tail),
		"context empty key":   hostileHeader(ids, edk, fixed, u16(1), u16(0), u16(0), tail),
		"no ciphertext":       hostileHeader(ids, edk, fixed, u16(0)),
		"short tag":           hostileHeader(ids, edk, fixed, u16(0), make([]byte, gcmTagSize-1)),
	} {
		p := &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(EncodingEncrypted),
				MetadataEncryptionCipher:   []byte(CipherAES256GCMCommitV1),
				MetadataEncryptionKeyID:    []byte("k1"),
			},
			Data: data,
		}
		if _, err := decodeOne(c, p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	// Bounds are checked before allocating: parsing a header that declares 65535 context pairs
	// allocates only the error, not room for the pairs.
	hostile := hostileHeader(ids, edk, fixed, u16(0xffff), tail)
	const runs = 100
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		if _, _, err := parseHeader(hostile); err == nil {
			t.Fatal("hostile header parsed")
		}
	}
	runtime.ReadMemStats(&after)
	if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 1024 {
		t.Errorf("parsing a hostile header allocated %d bytes per run", perRun)
	}
}

func TestEncryptionUnsupportedCipher(t *testing.T) {
	c := newTestCodec(t, EncryptionOptions{Keys: newTestKeyring(t, "k1")})
	p := encodeOne(t, c, jsonPayload(`1`))
	for _, name := range []string{"", "AES256GCM-HKDF-SHA512-COMMIT/v2", "AES256GCM"} {
		q := proto.Clone(p).(*commonpb.Payload)
		q.Metadata[MetadataEncryptionCipher] = []byte(name)
		if _, err := decodeOne(c, q); !errors.Is(err, ErrMalformed) {
			t.Errorf("cipher %q: err = %v, want ErrMalformed", name, err)
		}
	}
	q := proto.Clone(p).(*commonpb.Payload)
	delete(q.Metadata, MetadataEncryptionKeyID)
	if _, err := decodeOne(c, q); !errors.Is(err, ErrDecrypt) {
		t.Errorf("missing key id metadata: err = %v, want ErrDecrypt", err)
	}
}

// badProvider returns data keys that break the provider contract.
type badProvider struct{ dk DataKey }

func (b badProvider) GenerateDataKey(context.Context, map[string]string) (DataKey, error) {
	return b.dk, nil
}

func (b badProvider) DecryptDataKey(context.Context, string, []byte, map[string]string) ([]byte, error) {
	return b.dk.Plaintext, nil
}

func TestEncryptionRejectsBadProviderKeys(t *testing.T) {
	for name, dk := range map[string]DataKey{
		"short plaintext": {KeyID: "k", Plaintext: make([]byte, 16), Encrypted: []byte{1}},
		"empty key id":    {Plaintext: make([]byte, 32), Encrypted: []byte{1}},
		"long key id":     {KeyID: strings.Repeat("k", MaxKeyIDLen+1), Plaintext: make([]byte, 32), Encrypted: []byte{1}},
		"empty edk":       {KeyID: "k", Plaintext: make([]byte, 32)},
		"huge edk":        {KeyID: "k", Plaintext: make([]byte, 32), Encrypted: make([]byte, MaxEncryptedDataKeyLen+1)},
	} {
		c := newTestCodec(t, EncryptionOptions{Keys: badProvider{dk}})
		if _, err := c.Encode([]*commonpb.Payload{jsonPayload("1")}); err == nil {
			t.Errorf("%s: encoded with a bad data key", name)
		}
	}
	// A provider returning a short key on decrypt fails with ErrDecrypt.
	keys := newTestKeyring(t, "k1")
	p := encodeOne(t, newTestCodec(t, EncryptionOptions{Keys: keys}), jsonPayload("1"))
	c := newTestCodec(t, EncryptionOptions{Keys: badProvider{DataKey{Plaintext: make([]byte, 16)}}})
	if _, err := decodeOne(c, p); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("err = %v, want ErrDecrypt", err)
	}
}
