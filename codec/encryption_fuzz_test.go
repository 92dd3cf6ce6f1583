package codec

import (
	"errors"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// FuzzDecodeEncrypted feeds arbitrary data and key ids, labelled binary/encrypted, to Decode:
// it must never panic, every error must carry a sentinel, and only genuine ciphertexts decode.
func FuzzDecodeEncrypted(f *testing.F) {
	keys, err := NewStaticKeyring("k1", map[string][]byte{"k1": testKey(1), "vector-key": testKey(0)})
	if err != nil {
		f.Fatal(err)
	}
	// The seed is deterministic: fuzzing workers rebuild it and must recognise it as genuine.
	seedKeys, err := NewStaticKeyring("k1", map[string][]byte{"k1": testKey(1)})
	if err != nil {
		f.Fatal(err)
	}
	seedKeys.rand = &counterReader{}
	enc := newTestCodec(f, EncryptionOptions{Keys: seedKeys, Context: map[string]string{"app": "fuzz"}})
	enc.rand = &counterReader{n: 0x80}
	valid := encodeOne(f, enc.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "default"}), vectorInner()) // one metadata entry: marshalled deterministically
	vector := vectorPayload(f)
	genuine := map[string]bool{string(valid.Data): true, string(vector.Data): true}

	f.Add(valid.Data, "k1")
	f.Add(vector.Data, "vector-key")
	f.Add(valid.Data[:40], "k1")
	f.Add([]byte("PKE\x01"), "k1")
	f.Add(hostileHeader(u16(2), []byte("k1"), u16(0xffff)), "k1")
	f.Add(hostileHeader(u16(2), []byte("k1"), u16(1), []byte{1}, make([]byte, 64), u16(0xffff)), "k1")
	f.Add([]byte{}, "")

	dec := newTestCodec(f, EncryptionOptions{Keys: keys}).
		WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "default"})
	f.Fuzz(func(t *testing.T, data []byte, keyID string) {
		p := &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(EncodingEncrypted),
				MetadataEncryptionCipher:   []byte(CipherAES256GCMCommitV1),
				MetadataEncryptionKeyID:    []byte(keyID),
			},
			Data: data,
		}
		out, err := decodeOne(dec, p)
		if err == nil {
			if !genuine[string(data)] || out == nil {
				t.Fatalf("decoded a forged payload: %x", data)
			}
			return
		}
		for _, s := range []error{ErrMalformed, ErrDecrypt, ErrUnknownKey, ErrNamespaceMismatch} {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("error without a sentinel: %v", err)
	})
}
