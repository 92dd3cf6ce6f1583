package codec

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
)

// TestReadEnvelopeV2: ReadEnvelope of a v2 payload returns the version and key-object
// reference without key id, data key or context; WithKeyObject fills them from a verified key
// object and refuses a corrupt one.
func TestReadEnvelopeV2(t *testing.T) {
	store := newMemObjectStore()
	c := v2Codec(t, newTestKeyring(t, "k1"), store, "payments", func(o *EncryptionOptions) {
		o.Context = map[string]string{"app": "orders"}
	})
	p := encodeOne(t, c, jsonPayload(`"hello"`))
	key, obj := store.only(t)

	env, err := ReadEnvelope(p)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := ReadKeyObjectRef(p)
	if err != nil {
		t.Fatal(err)
	}
	if env.Version != 2 || env.KeyObjectRef != ref || env.KeyID != "" || env.EncryptedDataKey != nil || env.Context != nil {
		t.Fatalf("v2 envelope reads as %+v", env)
	}
	if env.KeyObjectRefHex() != hex.EncodeToString(ref[:]) || KeyObjectKey(DefaultKeyObjectPrefix, env.KeyObjectRef) != key {
		t.Fatalf("reference %s, key object stored under %s", env.KeyObjectRefHex(), key)
	}

	// A corrupt key object (same size, other bytes) and a truncated one are refused and leave
	// the envelope unchanged.
	corrupt := bytes.Clone(obj)
	corrupt[len(corrupt)-1] ^= 0x01
	for _, bad := range [][]byte{corrupt, obj[:len(obj)-1], nil} {
		e := env
		if err := e.WithKeyObject(bad); !errors.Is(err, ErrKeyObject) {
			t.Fatalf("WithKeyObject of a bad key object: %v, want ErrKeyObject", err)
		}
		if e.KeyID != "" || e.Context != nil || e.EncryptedDataKey != nil {
			t.Fatalf("envelope changed by a failed WithKeyObject: %+v", e)
		}
	}

	if err := env.WithKeyObject(obj); err != nil {
		t.Fatal(err)
	}
	k, err := ReadKeyObject(ref, obj)
	if err != nil {
		t.Fatal(err)
	}
	if env.Version != 2 || env.KeyObjectRef != ref || env.KeyID != "k1" || !bytes.Equal(env.EncryptedDataKey, k.EncryptedDataKey) ||
		len(env.Context) != 2 || env.Context[ContextKeyNamespace] != "payments" || env.Context["app"] != "orders" {
		t.Fatalf("v2 envelope with its key object reads as %+v", env)
	}
	if k.Version != 2 || k.KeyObjectRef != ref {
		t.Fatalf("ReadKeyObject returns version %d reference %x", k.Version, k.KeyObjectRef)
	}

	// Too short for header and tag: malformed.
	short := &commonpb.Payload{Metadata: p.Metadata, Data: p.Data[:headerSizeV2]}
	if _, err := ReadEnvelope(short); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated v2 payload: %v, want ErrMalformed", err)
	}
}

// TestReadEnvelopeV1Version: v1 envelopes say version 1, have no key object, and refuse
// WithKeyObject.
func TestReadEnvelopeV1Version(t *testing.T) {
	c := newTestCodec(t, EncryptionOptions{Keys: newTestKeyring(t, "k1")})
	p := encodeOne(t, bindNS(c, "default"), jsonPayload(`1`))
	env, err := ReadEnvelope(p)
	if err != nil {
		t.Fatal(err)
	}
	if env.Version != 1 || env.KeyObjectRef != ([32]byte{}) || env.KeyObjectRefHex() != "" || env.KeyID != "k1" {
		t.Fatalf("v1 envelope reads as %+v", env)
	}
	if err := env.WithKeyObject([]byte("PKK\x02")); !errors.Is(err, ErrMalformed) || env.KeyID != "k1" {
		t.Fatalf("WithKeyObject on v1: %v, %+v", err, env)
	}
	if MaxKeyObjectSize != maxKeyObjectSize || MaxKeyObjectSize < MaxKeyIDLen+MaxEncryptedDataKeyLen+MaxContextBytes {
		t.Fatalf("MaxKeyObjectSize %d", MaxKeyObjectSize)
	}
}
