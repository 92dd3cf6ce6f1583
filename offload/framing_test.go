package offload

import (
	"bytes"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/internal/pbwire"
)

// framingPayloads are payloads of every shape the framing must reproduce byte for byte.
func framingPayloads(t *testing.T) map[string]*commonpb.Payload {
	t.Helper()
	r := mrand.New(mrand.NewPCG(7, 9))
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	many := map[string][]byte{}
	for i := range 200 {
		many[fmt.Sprintf("key-%03d-%x", i, randBytes(3))] = randBytes(r.IntN(300))
	}
	withUnknown := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: randBytes(1000)}
	var unknown []byte
	unknown = protowire.AppendTag(unknown, 99, protowire.BytesType)
	unknown = protowire.AppendBytes(unknown, []byte("from a newer schema"))
	unknown = protowire.AppendTag(unknown, 100, protowire.VarintType)
	unknown = protowire.AppendVarint(unknown, 1<<40)
	withUnknown.ProtoReflect().SetUnknown(unknown)
	ps := map[string]*commonpb.Payload{
		"empty":                   {},
		"empty data":              {Metadata: map[string][]byte{"encoding": []byte("binary/null")}},
		"empty data, no metadata": {Data: []byte{}},
		"data only":               {Data: randBytes(300)},
		"one entry":               {Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`{"a":1}`)},
		"empty key and value":     {Metadata: map[string][]byte{"": {}, "k": nil, "v": []byte("x")}, Data: randBytes(10)},
		"many entries":            {Metadata: many, Data: randBytes(70000)},
		"two-byte lengths":        {Metadata: map[string][]byte{"encoding": randBytes(200)}, Data: randBytes(128)},
		"large data":              {Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: randBytes(3 << 20)},
		"unknown fields":          withUnknown,
		"external payloads": {Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: randBytes(500),
			ExternalPayloads: []*commonpb.Payload_ExternalPayloadDetails{{SizeBytes: 12345}, {SizeBytes: 1}}},
	}
	for i := range 50 {
		md := map[string][]byte{}
		for j := range r.IntN(6) {
			md[fmt.Sprintf("k%d", j)] = randBytes(r.IntN(40))
		}
		ps[fmt.Sprintf("random %d", i)] = &commonpb.Payload{Metadata: md, Data: randBytes(r.IntN(5000))}
	}
	return ps
}

// The framing is byte-identical to the deterministic marshalling: keys (SHA-256 of the object)
// and the stored format do not change.
func TestObjectPartsEqualDeterministicMarshal(t *testing.T) {
	for name, p := range framingPayloads(t) {
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		parts, err := objectParts(p, proto.Size(p))
		if err != nil {
			t.Fatalf("%s: objectParts: %v", name, err)
		}
		if got := joinParts(parts); !bytes.Equal(got, want) {
			t.Fatalf("%s: framing differs from proto.Marshal (%d bytes, want %d)", name, len(got), len(want))
		}
		if sum, wantSum := partsSHA256(parts), sha256Hex(want); fmt.Sprintf("%x", sum) != wantSum {
			t.Fatalf("%s: parts SHA-256 differs from the object's", name)
		}
		if len(p.Data) > 0 && (len(parts) < 2 || &parts[1][0] != &p.Data[0]) {
			t.Fatalf("%s: the data part is not the payload's own Data slice", name)
		}
		// Parsing restores the payload, Data a sub-slice of the object rather than a copy.
		got, err := pbwire.Unmarshal(want)
		if err != nil {
			t.Fatalf("%s: pbwire.Unmarshal: %v", name, err)
		}
		if !proto.Equal(got, p) {
			t.Fatalf("%s: pbwire.Unmarshal does not restore the payload", name)
		}
		if len(p.Data) > 0 && len(p.ExternalPayloads) == 0 && len(p.ProtoReflect().GetUnknown()) == 0 {
			if !aliases(want, got.Data) {
				t.Fatalf("%s: parsed Data was copied", name)
			}
		}
	}
}

// aliases reports whether sub is a sub-slice of buf.
func aliases(buf, sub []byte) bool {
	if len(sub) == 0 {
		return false
	}
	for i := range buf {
		if &buf[i] == &sub[0] {
			return i+len(sub) <= len(buf)
		}
	}
	return false
}

// A payload changed between proto.Size and the framing is refused rather than stored under a
// key that does not match its bytes.
func TestObjectPartsRefusesSizeMismatch(t *testing.T) {
	p := &commonpb.Payload{Data: []byte("abc")}
	if _, err := objectParts(p, proto.Size(p)+1); err == nil {
		t.Fatal("objectParts accepted a size that is not the marshalled size")
	}
}

// The codec reports malformed framing in a correctly claimed object as ErrIntegrity.
func TestCodecRejectsMalformedFraming(t *testing.T) {
	store := NewMemoryStore()
	c, err := NewCodec(&Options{Store: store, Threshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range [][]byte{{0x12, 0x05, 'a'}, {0x80}, {0x0a, 0x04, 0x0a, 0x02, 0xff, 0xfe}} {
		sum := sha256Hex(obj)
		cl := Claim{Store: store.Name(), Key: CodecKey(DefaultPrefix, UnknownNamespace, sum), Size: int64(len(obj)), SHA256: sum}
		if err := store.Put(t.Context(), cl.Key, obj); err != nil {
			t.Fatal(err)
		}
		p, err := cl.Payload()
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Decode([]*commonpb.Payload{p})
		if !errors.Is(err, ErrIntegrity) {
			t.Fatalf("object %x: Decode err = %v, want ErrIntegrity", obj, err)
		}
	}
}
