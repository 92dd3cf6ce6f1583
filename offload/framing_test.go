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
		got, err := parseObject(want)
		if err != nil {
			t.Fatalf("%s: parseObject: %v", name, err)
		}
		if !proto.Equal(got, p) {
			t.Fatalf("%s: parseObject does not restore the payload", name)
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

// parseObject accepts exactly what proto.Unmarshal accepts and gives the same payload: on
// well-formed objects, hand-made odd encodings, and thousands of truncated or corrupted ones.
func TestParseObjectMatchesProtoUnmarshal(t *testing.T) {
	var inputs [][]byte
	for _, p := range framingPayloads(t) {
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(p)
		if len(b) < 20000 {
			inputs = append(inputs, b)
		}
	}
	entry := func(fields ...[]byte) []byte { return bytes.Join(fields, nil) }
	field := func(num protowire.Number, v []byte) []byte {
		b := protowire.AppendTag(nil, num, protowire.BytesType)
		return protowire.AppendBytes(b, v)
	}
	odd := [][]byte{
		// Repeated data fields: the last wins.
		append(field(2, []byte("first")), field(2, []byte("second"))...),
		// Repeated metadata keys, value before key, missing value, missing key.
		bytes.Join([][]byte{
			field(1, entry(field(1, []byte("k")), field(2, []byte("v1")))),
			field(1, entry(field(2, []byte("v2")), field(1, []byte("k")))),
			field(1, field(1, []byte("novalue"))),
			field(1, field(2, []byte("nokey"))),
		}, nil),
		// Invalid UTF-8 in a key: proto.Unmarshal refuses it.
		field(1, entry(field(1, []byte{0xff, 0xfe}), field(2, []byte("v")))),
		// Data with the wrong wire type, an unknown field inside an entry.
		protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 7),
		field(1, entry(field(1, []byte("k")), field(3, []byte("extra")))),
		// Truncated tag, length and value; a group tag; a zero field number.
		{0x80}, {0x12, 0x80}, {0x12, 0x05, 'a'}, {0x0b}, {0x02, 0x00},
		// A length beyond the input.
		protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.BytesType), 1<<62),
	}
	inputs = append(inputs, odd...)
	r := mrand.New(mrand.NewPCG(3, 4))
	base := len(inputs)
	for i := range 5000 {
		src := inputs[r.IntN(base)]
		if len(src) == 0 {
			continue
		}
		b := append([]byte(nil), src...)
		switch i % 3 {
		case 0:
			b = b[:r.IntN(len(b))]
		case 1:
			for range 1 + r.IntN(3) {
				b[r.IntN(len(b))] = byte(r.Uint32())
			}
		case 2:
			b = append(b, byte(r.Uint32()), byte(r.Uint32()))
		}
		inputs = append(inputs, b)
	}
	failures := 0
	for i, b := range inputs {
		want := &commonpb.Payload{}
		wantErr := proto.Unmarshal(b, want)
		got, err := parseObject(b)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("input %d (%x): parseObject err = %v, proto.Unmarshal err = %v", i, b[:min(len(b), 40)], err, wantErr)
		}
		if err != nil {
			failures++
			continue
		}
		if !proto.Equal(got, want) {
			t.Fatalf("input %d: parseObject = %v, proto.Unmarshal = %v", i, got, want)
		}
	}
	if failures == 0 || failures == len(inputs) {
		t.Fatalf("%d of %d inputs failed to parse: the corpus does not exercise both outcomes", failures, len(inputs))
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
