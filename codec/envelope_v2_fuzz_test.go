package codec

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// FuzzDecodeV2 feeds arbitrary v2 payload data and key-object bytes to Decode. The key object
// is stored under the reference the payload names; with fixRef the payload's reference is first
// replaced by the key object's SHA-256, so that the key-object parser and everything after it
// are reached. Decode must never panic, every error must carry a sentinel, and only genuine
// payloads (the frozen vectors) decode.
func FuzzDecodeV2(f *testing.F) {
	keys := vectorKeyring(f)
	obj := vectorV2KeyObject(f)
	valid := vectorV2Payload(f, vectorV2DataHex).Data
	genuine := map[string]bool{string(valid): true, string(vectorV2Payload(f, vectorV2DeterministicDataHex).Data): true}

	f.Add(valid, obj, false)
	f.Add(valid, obj, true)
	f.Add(vectorV2Payload(f, vectorV2DeterministicDataHex).Data, obj, true)
	f.Add(valid[:47], obj, true)
	f.Add(valid, obj[:40], true)
	f.Add(valid, append([]byte("PKK\x02"), u16(0xffff)...), true)
	f.Add(valid, append([]byte("PKK\x02"), hostileHeader(u16(10), []byte("vector-key"), u16(1), []byte{1}, make([]byte, 32), u16(0xffff))[4:]...), true)
	f.Add([]byte{0x02}, []byte{}, false)
	f.Add([]byte{}, []byte{}, false)

	f.Fuzz(func(t *testing.T, data, obj []byte, fixRef bool) {
		if len(data) > 1<<16 || len(obj) > 1<<16 {
			return
		}
		data = bytes.Clone(data) // the fuzz engine owns its inputs
		store := newMemObjectStore()
		if len(data) >= 1+keyObjectRefSize {
			if fixRef {
				ref := sha256.Sum256(obj)
				copy(data[1:], ref[:])
			}
			var ref [sha256.Size]byte
			copy(ref[:], data[1:])
			store.set(KeyObjectKey(DefaultKeyObjectPrefix, ref), obj)
		}
		dec := bindNS(newTestCodec(t, EncryptionOptions{Keys: keys, KeyObjects: store}), "default")
		p := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(EncodingEncrypted)}, Data: data}
		out, err := decodeOne(dec, p)
		if err == nil {
			if !genuine[string(data)] || out == nil {
				t.Fatalf("decoded a forged payload: %x with key object %x", data, obj)
			}
			return
		}
		for _, s := range []error{ErrMalformed, ErrDecrypt, ErrUnknownKey, ErrNamespaceMismatch, ErrKeyObject} {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("error without a sentinel: %v", err)
	})
}
