package codec

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// Frozen test vector of envelope format v2, with the inputs of the v1 vector
// (encryption_vector_test.go):
//
//	master key "vector-key" = 00 01 .. 1f
//	keyring randomness: data key 40 41 .. 5f, then wrap nonce 60 .. 6b
//	codec randomness: message id 80 81 .. 8d
//	encryption context {"app": "demo", "namespace": "default"}
//	inner payload: metadata encoding=json/plain, data "hello"
const (
	vectorV2KeyObjectHex = "504b4b02" + // magic "PKK", version 2
		"000a" + "766563746f722d6b6579" + // key id "vector-key"
		"003d" + vectorEDKHex + // encrypted data key (as in v1)
		"81d766f7d3476fdbd5671dbd6a42d9d15cf85ec51d03dc5a517e9eb0aa050725" + // data-key commitment
		"0002" + "0003617070" + "000464656d6f" + "00096e616d657370616365" + "000764656661756c74" // context

	// vectorV2RefHex is the SHA-256 of the key object.
	vectorV2RefHex = "4a2362660a35af6a9bd7b77040457a0208fc64df41410b01d6dcace6b10c6177"

	vectorV2DataHex = "02" + // version 2
		vectorV2RefHex + // key-object reference
		"808182838485868788898a8b8c8d" + // message id
		"c775850138fe0732907d6eea3e2f6f52f15b40555bcefda22c7669394a4676cab36eb772750bc4ec844899fb14cc978fe9" // ciphertext, tag
	vectorV2KeyObjectKey = "payloadkit/keys/" + vectorV2RefHex
	// With DeterministicMinSize 1 the message id is derived instead of read.
	vectorV2DeterministicDataHex = "02" + vectorV2RefHex + "4278e20ee00c22f4b005730eba25" +
		"e25ef89a44a72df0ea17614440eb0d986f4beffb1fd07a13d1a1289e63ff78490cb39a96b631d9ede21c32b3d84574658e"
)

func vectorV2Payload(t testing.TB, dataHex string) *commonpb.Payload {
	t.Helper()
	data, err := hex.DecodeString(dataHex)
	if err != nil {
		t.Fatal(err)
	}
	return &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(EncodingEncrypted)}, Data: data}
}

func vectorV2KeyObject(t testing.TB) []byte {
	t.Helper()
	obj, err := hex.DecodeString(vectorV2KeyObjectHex)
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

func vectorV2Encode(t *testing.T, deterministicMinSize int) (*commonpb.Payload, *memObjectStore) {
	keys := vectorKeyring(t)
	keys.rand = &counterReader{n: 0x40}
	store := newMemObjectStore()
	c := newTestCodec(t, EncryptionOptions{Keys: keys, Context: map[string]string{"app": "demo"},
		Format: FormatV2, KeyObjects: store, DeterministicMinSize: deterministicMinSize})
	c.rand = &counterReader{n: 0x80}
	return encodeOne(t, bindNS(c, "default"), vectorInner()), store
}

func TestV2VectorEncode(t *testing.T) {
	for _, tc := range []struct {
		minSize int
		dataHex string
	}{{0, vectorV2DataHex}, {1, vectorV2DeterministicDataHex}} {
		got, store := vectorV2Encode(t, tc.minSize)
		if !proto.Equal(got, vectorV2Payload(t, tc.dataHex)) {
			t.Fatalf("DeterministicMinSize %d: encoding changed: data %x, metadata %q", tc.minSize, got.Data, got.Metadata)
		}
		key, obj := store.only(t)
		if key != vectorV2KeyObjectKey || !bytes.Equal(obj, vectorV2KeyObject(t)) {
			t.Fatalf("key object changed: %s = %x", key, obj)
		}
	}
}

func TestV2VectorDecode(t *testing.T) {
	store := newMemObjectStore()
	store.set(vectorV2KeyObjectKey, vectorV2KeyObject(t))
	c := bindNS(newTestCodec(t, EncryptionOptions{Keys: vectorKeyring(t), KeyObjects: store}), "default")
	for _, dataHex := range []string{vectorV2DataHex, vectorV2DeterministicDataHex} {
		got, err := decodeOne(c, vectorV2Payload(t, dataHex))
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, vectorInner()) {
			t.Fatalf("decoded %v", got)
		}
	}
}

// TestV2VectorDerivation recomputes the vector's reference, data-key commitment, message key,
// ciphertext and deterministic message id from the documented construction, with the one-shot
// HKDF API.
func TestV2VectorDerivation(t *testing.T) {
	obj := vectorV2KeyObject(t)
	ref := sha256.Sum256(obj)
	if hex.EncodeToString(ref[:]) != vectorV2RefHex {
		t.Fatalf("reference %x, want %s", ref, vectorV2RefHex)
	}
	dataKey, _ := hex.DecodeString(vectorDataKeyHex)
	commit, err := hkdf.Key(sha512.New, dataKey, nil, "payloadkit/v2 COMMITKEY", 32)
	if err != nil {
		t.Fatal(err)
	}
	// The commitment follows magic, version, key id and encrypted data key.
	off := 4 + 2 + len("vector-key") + 2 + len(vectorEDKHex)/2
	if !bytes.Equal(commit, obj[off:off+32]) {
		t.Fatalf("commitment %x, want %x", obj[off:off+32], commit)
	}
	plain, _ := proto.MarshalOptions{Deterministic: true}.Marshal(vectorInner())
	for _, dataHex := range []string{vectorV2DataHex, vectorV2DeterministicDataHex} {
		data := vectorV2Payload(t, dataHex).Data
		header, ct := data[:47], data[47:]
		if header[0] != 0x02 || !bytes.Equal(header[1:33], ref[:]) {
			t.Fatalf("header %x", header)
		}
		messageID := header[33:47]
		aesKey, err := hkdf.Key(sha512.New, dataKey, messageID, "payloadkit/v2 MESSAGEKEY"+string(ref[:]), 32)
		if err != nil {
			t.Fatal(err)
		}
		aead, err := newGCM(aesKey)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := aead.Open(nil, make([]byte, 12), ct, header)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pt, plain) {
			t.Fatalf("plaintext %x, want %x", pt, plain)
		}
	}
	macKey, err := hkdf.Key(sha512.New, dataKey, nil, "payloadkit/v2 MESSAGEID", 32)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, macKey)
	m.Write(ref[:])
	m.Write(plain)
	if want, got := m.Sum(nil)[:14], vectorV2Payload(t, vectorV2DeterministicDataHex).Data[33:47]; !bytes.Equal(got, want) {
		t.Fatalf("deterministic message id %x, the construction gives %x", got, want)
	}
	env, err := ReadKeyObject(ref, obj)
	if err != nil {
		t.Fatal(err)
	}
	if env.KeyID != "vector-key" || hex.EncodeToString(env.EncryptedDataKey) != vectorEDKHex ||
		len(env.Context) != 2 || env.Context["app"] != "demo" || env.Context[ContextKeyNamespace] != "default" {
		t.Fatalf("key object reads as %+v", env)
	}
}
