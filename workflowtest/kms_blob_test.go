package workflowtest

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// kmsVector is a frozen ciphertext blob of the KMS test server: key
// 0b0c0d0e-0f10-4111-8213-141516171819 with two versions (0x00..0x1f and 0x40..0x5f), made under
// version 1 with nonce a0..ab, plaintext "payloadkit data key" and encryption context
// {namespace: default, app: orders}.
const kmsVector = "504b4b01" + // magic "PKK", format 1
	"24" + "30623063306430652d306631302d343131312d383231332d313431353136313731383139" + // key id
	"00000001" + // key version
	"a0a1a2a3a4a5a6a7a8a9aaab" + // nonce
	"a7ee7f538d8af846101b619ae8c851d684728c907e7ea8ee85e04b85a25249b8a717a9" // AES-GCM ciphertext and tag

func kmsVectorKey() *kmsKey {
	v0, v1 := make([]byte, 32), make([]byte, 32)
	for i := range v0 {
		v0[i], v1[i] = byte(i), byte(0x40+i)
	}
	return &kmsKey{id: "0b0c0d0e-0f10-4111-8213-141516171819", enabled: true, versions: [][]byte{v0, v1}}
}

func TestKMSBlobTestVector(t *testing.T) {
	key := kmsVectorKey()
	encCtx := map[string]string{"app": "orders", "namespace": "default"}
	nonce, _ := hex.DecodeString("a0a1a2a3a4a5a6a7a8a9aaab")
	if got := hex.EncodeToString(key.sealWithNonce([]byte("payloadkit data key"), encCtx, nonce)); got != kmsVector {
		t.Fatalf("the blob format changed:\n got %s\nwant %s", got, kmsVector)
	}

	k := &KMS{keys: map[string]*kmsKey{key.id: key}, aliases: map[string]string{}}
	blob, _ := hex.DecodeString(kmsVector)
	resp, kerr := k.dispatch(KMSDecrypt, &kmsRequest{CiphertextBlob: blob, EncryptionContext: encCtx})
	if kerr != nil {
		t.Fatalf("Decrypt of the frozen vector: %v", kerr)
	}
	if pt := resp.(map[string]any)["Plaintext"].([]byte); string(pt) != "payloadkit data key" {
		t.Fatalf("Decrypt of the frozen vector = %q", pt)
	}
	_, kerr = k.dispatch(KMSDecrypt, &kmsRequest{CiphertextBlob: blob, EncryptionContext: map[string]string{"namespace": "default"}})
	if kerr == nil || kerr.typ != "InvalidCiphertextException" {
		t.Fatalf("Decrypt with another context: %v, want InvalidCiphertextException", kerr)
	}
}

func TestKMSParseBlobRejectsHostileInput(t *testing.T) {
	valid, _ := hex.DecodeString(kmsVector)
	for name, b := range map[string][]byte{
		"empty":              nil,
		"magic only":         valid[:4],
		"wrong magic":        append([]byte("XKK\x01"), valid[4:]...),
		"key id length 0":    append(append([]byte(nil), valid[:4]...), append([]byte{0}, valid[5:]...)...),
		"key id length 255":  append(append([]byte(nil), valid[:4]...), append([]byte{255}, valid[5:]...)...),
		"key id past end":    append(append([]byte(nil), valid[:4]...), 0x40, 'a', 'b'),
		"no tag":             valid[:4+1+36+4+12+8],
		"key id not an id":   bytes.Replace(valid, []byte("0b0c0d0e"), []byte("../../..."), 1),
		"truncated at nonce": valid[:4+1+36+4+6],
	} {
		if _, ok := kmsParseBlob(b); ok {
			t.Errorf("%s: kmsParseBlob accepted %x", name, b)
		}
	}
	if blob, ok := kmsParseBlob(valid); !ok || blob.keyID != "0b0c0d0e-0f10-4111-8213-141516171819" || blob.version != 1 {
		t.Fatalf("kmsParseBlob(vector) = %+v, %v", blob, ok)
	}
}

func FuzzKMSParseBlob(f *testing.F) {
	valid, _ := hex.DecodeString(kmsVector)
	f.Add(valid)
	f.Add(valid[:20])
	f.Add([]byte("PKK\x01\xff"))
	f.Add([]byte{})
	key := kmsVectorKey()
	k := &KMS{keys: map[string]*kmsKey{key.id: key}, aliases: map[string]string{}}
	f.Fuzz(func(t *testing.T, b []byte) {
		blob, ok := kmsParseBlob(b)
		if !ok {
			return
		}
		if len(blob.nonce) != kmsNonceSize || len(blob.sealed) < kmsTagSize || len(blob.keyID) > kmsMaxKeyIDLen {
			t.Fatalf("kmsParseBlob accepted a blob with nonce %d, sealed %d, key id %d bytes",
				len(blob.nonce), len(blob.sealed), len(blob.keyID))
		}
		// Decrypt must answer with an AWS error or a plaintext, never panic.
		if len(b) <= kmsMaxCiphertext {
			_, _ = k.dispatch(KMSDecrypt, &kmsRequest{CiphertextBlob: b})
		}
	})
}
