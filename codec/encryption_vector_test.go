package codec

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha512"
	"encoding/hex"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// Frozen test vector of envelope format v1 with a static-keyring data key. Inputs:
//
//	master key "vector-key" = 00 01 .. 1f
//	keyring randomness: data key 40 41 .. 5f, then wrap nonce 60 .. 6b
//	codec randomness: message id 80 81 .. 9f
//	encryption context {"app": "demo", "namespace": "default"}
//	inner payload: metadata encoding=json/plain, data "hello"
const (
	vectorDataHex = "504b4501" + // magic, version 1
		"000a" + "766563746f722d6b6579" + // key id "vector-key"
		"003d" + vectorEDKHex + // encrypted data key
		"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f" + // message id
		"6b6c8ea6c1587f7dd82908f69fb25eca18feafb925bcef87f8ada6e29b38bc56" + // key commitment
		"0002" + "0003617070" + "000464656d6f" + "00096e616d657370616365" + "000764656661756c74" + // context
		"ee1de6d33dfe13d9038c49698c5ce1227d4970889495889745c65fbeea7d8e7b264edb05acd5220cf77b951b13e1724ad1" // ciphertext, tag
	vectorEDKHex = "01" + "606162636465666768696a6b" + // wrap version, nonce
		"aa9ad916ff05c528345fb3603ec08f0c7624dbdad031648efbf8da3720afa957" + "4102e00afb6c0033017bc98a1934731b"
	vectorDataKeyHex = "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
)

func vectorKeyring(t testing.TB) *StaticKeyring {
	t.Helper()
	r, err := NewStaticKeyring("vector-key", map[string][]byte{"vector-key": testKey(0)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func vectorInner() *commonpb.Payload {
	return &commonpb.Payload{
		Metadata: map[string][]byte{converter.MetadataEncoding: []byte("json/plain")},
		Data:     []byte(`"hello"`),
	}
}

func vectorPayload(t testing.TB) *commonpb.Payload {
	t.Helper()
	data, err := hex.DecodeString(vectorDataHex)
	if err != nil {
		t.Fatal(err)
	}
	return &commonpb.Payload{
		Metadata: map[string][]byte{
			converter.MetadataEncoding: []byte(EncodingEncrypted),
			MetadataEncryptionCipher:   []byte(CipherAES256GCMCommitV1),
			MetadataEncryptionKeyID:    []byte("vector-key"),
		},
		Data: data,
	}
}

func TestEncryptionVectorEncode(t *testing.T) {
	keys := vectorKeyring(t)
	keys.rand = &counterReader{n: 0x40}
	c := newTestCodec(t, EncryptionOptions{Keys: keys, Context: map[string]string{"app": "demo"}})
	c.rand = &counterReader{n: 0x80}
	got := encodeOne(t, c.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "default"}), vectorInner())
	if !proto.Equal(got, vectorPayload(t)) {
		t.Fatalf("encoding changed: data %s, metadata %q", hex.EncodeToString(got.Data), got.Metadata)
	}
}

func TestEncryptionVectorDecode(t *testing.T) {
	c := newTestCodec(t, EncryptionOptions{Keys: vectorKeyring(t)}).
		WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "default"})
	got, err := decodeOne(c, vectorPayload(t))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, vectorInner()) {
		t.Fatalf("decoded %v", got)
	}
}

// TestEncryptionVectorDerivation recomputes the vector's key commitment and ciphertext from the
// documented construction with the one-shot HKDF API.
func TestEncryptionVectorDerivation(t *testing.T) {
	p := vectorPayload(t)
	h, ct, err := parseHeader(p.Data)
	if err != nil {
		t.Fatal(err)
	}
	dataKey, _ := hex.DecodeString(vectorDataKeyHex)
	commit, err := hkdf.Key(sha512.New, dataKey, h.messageID, "payloadkit/v1 COMMITKEY", 32)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(commit, h.commitment) {
		t.Fatalf("commitment %x, want %x", h.commitment, commit)
	}
	aesKey, err := hkdf.Key(sha512.New, dataKey, h.messageID, "payloadkit/v1 DERIVEKEY", 32)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := newGCM(aesKey)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := aead.Open(nil, make([]byte, 12), ct, p.Data[:len(p.Data)-len(ct)])
	if err != nil {
		t.Fatal(err)
	}
	want, _ := proto.Marshal(vectorInner())
	if !bytes.Equal(pt, want) {
		t.Fatalf("plaintext %x, want %x", pt, want)
	}
}

func TestKeyringVectorUnwrap(t *testing.T) {
	edk, _ := hex.DecodeString(vectorEDKHex)
	got, err := vectorKeyring(t).DecryptDataKey(context.Background(), "vector-key", edk,
		map[string]string{"namespace": "default", "app": "demo"})
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(got) != vectorDataKeyHex {
		t.Fatalf("data key %x, want %s", got, vectorDataKeyHex)
	}
}
