package codec

import (
	"bytes"
	"errors"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

func TestReadEnvelope(t *testing.T) {
	ring := newTestKeyring(t, "k1")
	c := newTestCodec(t, EncryptionOptions{Keys: ring, Context: map[string]string{"app": "orders"}})
	bound := c.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "payments"})
	p := encodeOne(t, bound, jsonPayload(`"hello"`))

	env, err := ReadEnvelope(p)
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := parseHeader(p.Data)
	if err != nil {
		t.Fatal(err)
	}
	if env.KeyID != "k1" || !bytes.Equal(env.EncryptedDataKey, h.edk) {
		t.Fatalf("envelope key %q / data key %x, want k1 / %x", env.KeyID, env.EncryptedDataKey, h.edk)
	}
	if env.Context[ContextKeyNamespace] != "payments" || env.Context["app"] != "orders" || len(env.Context) != 2 {
		t.Fatalf("envelope context %v", env.Context)
	}
	// The returned data key is a copy: changing it leaves the payload intact.
	env.EncryptedDataKey[0] ^= 0xFF
	if _, err := bound.Decode([]*commonpb.Payload{p}); err != nil {
		t.Fatalf("payload changed by editing the envelope: %v", err)
	}

	if _, err := ReadEnvelope(jsonPayload(`"plain"`)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("plain payload: %v, want ErrMalformed", err)
	}
	truncated := encodeOne(t, bound, jsonPayload(`"hello"`))
	truncated.Data = truncated.Data[:10]
	if _, err := ReadEnvelope(truncated); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated header: %v, want ErrMalformed", err)
	}
}
