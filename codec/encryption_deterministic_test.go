package codec

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// Frozen test vector of a deterministic message id (EncryptionOptions.DeterministicMinSize):
// the inputs of the v1 vector, with the message id derived from context and plaintext instead
// of read from the codec's randomness.
const (
	vectorDeterministicIDHex   = "4bfda665f69f7d23fb24f45347a9aceffe134126f6560189a19c353f1179f8b5"
	vectorDeterministicDataHex = "504b4501000a766563746f722d6b6579003d01606162636465666768696a6baa9ad916ff05c528345fb3603ec08f0c7624dbdad031648efbf8da3720afa9574102e00afb6c0033017bc98a1934731b4bfda665f69f7d23fb24f45347a9aceffe134126f6560189a19c353f1179f8b550c603ee20872615c849034a77f8e237758e8d6edf495d645715e72aca83897200020003617070000464656d6f00096e616d657370616365000764656661756c74bcebc27f0c7c6ea4c31459d2e2046b24775733199fef98c3d25a650ea88b604190603338b1dba8be9ee663de7fdf123288"
)

func deterministicCodec(t testing.TB, minSize int, cache *CacheOptions) converter.PayloadCodec {
	t.Helper()
	c := newTestCodec(t, EncryptionOptions{Keys: newTestKeyring(t, "k1", "k1"), DeterministicMinSize: minSize, Cache: cache})
	return c.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "orders"})
}

// manyMetadata has enough metadata entries that map iteration order varies between marshals.
func manyMetadata(data []byte) *commonpb.Payload {
	p := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte("json/plain")}, Data: data}
	for i := range 12 {
		p.Metadata[fmt.Sprintf("m%02d", i)] = []byte{byte(i)}
	}
	return p
}

func TestEncryptionDeterministicEqualValues(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	c := deterministicCodec(t, 32<<10, nil)
	first := encodeOne(t, c, manyMetadata(big))
	for range 20 {
		again := encodeOne(t, c, manyMetadata(bytes.Clone(big)))
		if !bytes.Equal(again.Data, first.Data) {
			t.Fatal("an equal value above DeterministicMinSize gave another envelope")
		}
	}
	got, err := decodeOne(c, first)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, manyMetadata(big)) {
		t.Fatal("deterministic envelope does not decode to its value")
	}
	h, _, err := parseHeader(first.Data)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(first.Data, big[:64]) || bytes.Equal(h.messageID, make([]byte, messageIDSize)) {
		t.Fatal("envelope holds plaintext or an empty message id")
	}

	other := bytes.Clone(big)
	other[len(other)-1] ^= 1
	if bytes.Equal(encodeOne(t, c, manyMetadata(other)).Data, first.Data) {
		t.Fatal("different values gave one envelope")
	}
	// Another namespace: another context and data key, never the same envelope.
	ns := newTestCodec(t, EncryptionOptions{Keys: newTestKeyring(t, "k1", "k1"), DeterministicMinSize: 32 << 10}).
		WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "billing"})
	if bytes.Equal(encodeOne(t, ns, manyMetadata(big)).Data, first.Data) {
		t.Fatal("two namespaces gave one envelope")
	}
}

func TestEncryptionDeterministicOnlyAboveMinSize(t *testing.T) {
	c := deterministicCodec(t, 32<<10, nil)
	small := sizedPayload(32<<10 - 100)
	if bytes.Equal(encodeOne(t, c, small).Data, encodeOne(t, c, small).Data) {
		t.Fatal("a payload below DeterministicMinSize got a deterministic message id")
	}
	off := deterministicCodec(t, 0, nil)
	big := sizedPayload(1 << 20)
	if bytes.Equal(encodeOne(t, off, big).Data, encodeOne(t, off, big).Data) {
		t.Fatal("DeterministicMinSize 0 gave deterministic message ids")
	}
	neg := deterministicCodec(t, -1, nil)
	if bytes.Equal(encodeOne(t, neg, big).Data, encodeOne(t, neg, big).Data) {
		t.Fatal("a negative DeterministicMinSize gave deterministic message ids")
	}
}

// TestEncryptionDeterministicPerDataKey: a new data key (here: one per message) gives a new
// envelope for the same value, so equality shows only within one data key's lifetime.
func TestEncryptionDeterministicPerDataKey(t *testing.T) {
	c := deterministicCodec(t, 1, &CacheOptions{MaxMessages: 1})
	p := sizedPayload(4 << 10)
	if bytes.Equal(encodeOne(t, c, p).Data, encodeOne(t, c, p).Data) {
		t.Fatal("two data keys gave one envelope")
	}
}

// TestEncryptionDeterministicVector freezes the deterministic message id and envelope of the
// v1 vector's inputs, and recomputes the id from the documented construction.
func TestEncryptionDeterministicVector(t *testing.T) {
	keys := vectorKeyring(t)
	keys.rand = &counterReader{n: 0x40}
	c := newTestCodec(t, EncryptionOptions{Keys: keys, Context: map[string]string{"app": "demo"}, DeterministicMinSize: 1})
	c.rand = &counterReader{n: 0x80}
	got := encodeOne(t, c.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "default"}), vectorInner())
	h, _, err := parseHeader(got.Data)
	if err != nil {
		t.Fatal(err)
	}

	dataKey, _ := hex.DecodeString(vectorDataKeyHex)
	macKey, err := hkdf.Key(sha512.New, dataKey, nil, "payloadkit/v1 MESSAGEID", 32)
	if err != nil {
		t.Fatal(err)
	}
	ctx, _ := canonicalContext(map[string]string{"app": "demo", "namespace": "default"})
	plain, _ := proto.MarshalOptions{Deterministic: true}.Marshal(vectorInner())
	m := hmac.New(sha256.New, macKey)
	m.Write(binary.BigEndian.AppendUint32(nil, uint32(len(ctx))))
	m.Write(ctx)
	m.Write(plain)
	if want := m.Sum(nil); !bytes.Equal(h.messageID, want) {
		t.Fatalf("message id %x, the construction gives %x", h.messageID, want)
	}
	if hex.EncodeToString(h.messageID) != vectorDeterministicIDHex {
		t.Fatalf("message id changed: %x", h.messageID)
	}
	if hex.EncodeToString(got.Data) != vectorDeterministicDataHex {
		t.Fatalf("envelope changed: %x", got.Data)
	}
	dec := newTestCodec(t, EncryptionOptions{Keys: vectorKeyring(t)}).
		WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "default"})
	back, err := decodeOne(dec, got)
	if err != nil || !proto.Equal(back, vectorInner()) {
		t.Fatalf("decode: %v %v", back, err)
	}
}
