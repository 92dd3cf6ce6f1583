package pbwire

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func randomPayload(r *rand.Rand) *commonpb.Payload {
	p := &commonpb.Payload{}
	if n := r.IntN(6); n > 0 || r.IntN(2) == 0 {
		p.Metadata = map[string][]byte{}
		for i := range n {
			k := strings.Repeat("k", r.IntN(3)) + fmt.Sprint(i)
			if r.IntN(5) == 0 {
				k = ""
			}
			p.Metadata[k] = bytes.Repeat([]byte{byte(i)}, r.IntN(300))
		}
	}
	switch r.IntN(4) {
	case 0: // no data
	case 1:
		p.Data = []byte{}
	default:
		p.Data = bytes.Repeat([]byte("d"), r.IntN(70000))
	}
	return p
}

// TestMatchesProto compares sizes and bytes with google.golang.org/protobuf on random payloads
// (empty keys, values and data, long lengths), on payloads with external payload details and
// unknown fields (handed to proto), and on nil.
func TestMatchesProto(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var cases []*commonpb.Payload
	for range 2000 {
		cases = append(cases, randomPayload(r))
	}
	ext := randomPayload(r)
	ext.ExternalPayloads = []*commonpb.Payload_ExternalPayloadDetails{{SizeBytes: 12}}
	unknown := randomPayload(r)
	unknown.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 7))
	cases = append(cases, ext, unknown, &commonpb.Payload{}, nil)
	var payloads []*commonpb.Payload
	for i, p := range cases {
		if got, want := Size(p), proto.Size(p); got != want {
			t.Fatalf("case %d: Size %d, proto.Size %d", i, got, want)
		}
		det, err := AppendMarshal([]byte("prefix"), p, true)
		if err != nil {
			t.Fatal(err)
		}
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(det[len("prefix"):], want) || string(det[:len("prefix")]) != "prefix" {
			t.Fatalf("case %d: deterministic marshal differs from proto", i)
		}
		plain, err := AppendMarshal(nil, p, false)
		if err != nil {
			t.Fatal(err)
		}
		back := &commonpb.Payload{}
		if err := proto.Unmarshal(plain, back); err != nil || len(plain) != len(want) || !proto.Equal(back, orEmpty(p)) {
			t.Fatalf("case %d: marshal does not round trip: %v", i, err)
		}
		if p != nil {
			payloads = append(payloads, p)
		}
	}
	if got, want := PayloadsSize(&commonpb.Payloads{Payloads: payloads}), proto.Size(&commonpb.Payloads{Payloads: payloads}); got != int64(want) {
		t.Fatalf("PayloadsSize %d, proto.Size %d", got, want)
	}
	var total int64
	for _, p := range payloads {
		total += int64(proto.Size(p))
	}
	if got := TotalSize(payloads); got != total {
		t.Fatalf("TotalSize %d, want %d", got, total)
	}
}

func orEmpty(p *commonpb.Payload) *commonpb.Payload {
	if p == nil {
		return &commonpb.Payload{}
	}
	return p
}

func TestNoAllocations(t *testing.T) {
	p := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain"), "a": []byte("b"), "c": nil}, Data: []byte("{}")}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { _ = Size(p) }); n != 0 {
		t.Errorf("Size allocates %.0f times", n)
	}
	for _, det := range []bool{false, true} {
		if n := testing.AllocsPerRun(100, func() { buf, _ = AppendMarshal(buf[:0], p, det) }); n != 0 {
			t.Errorf("AppendMarshal (deterministic %v) allocates %.0f times", det, n)
		}
	}
}

// Unmarshal accepts exactly what proto.Unmarshal accepts and gives the same payload: on
// well-formed objects, hand-made odd encodings, and thousands of truncated or corrupted ones.
func TestUnmarshalMatchesProto(t *testing.T) {
	var inputs [][]byte
	gen := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(randomPayload(gen))
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
	r := rand.New(rand.NewPCG(3, 4))
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
		got, err := Unmarshal(b)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("input %d (%x): Unmarshal err = %v, proto.Unmarshal err = %v", i, b[:min(len(b), 40)], err, wantErr)
		}
		if err != nil {
			failures++
			continue
		}
		if !proto.Equal(got, want) {
			t.Fatalf("input %d: Unmarshal = %v, proto.Unmarshal = %v", i, got, want)
		}
	}
	if failures == 0 || failures == len(inputs) {
		t.Fatalf("%d of %d inputs failed to parse: the corpus does not exercise both outcomes", failures, len(inputs))
	}
}

// Unmarshal does not copy: Data and the metadata values are sub-slices of the input whose
// capacity ends with them, so that appending to one cannot overwrite the bytes that follow.
func TestUnmarshalAliases(t *testing.T) {
	p := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain"), "x": []byte("y")}, Data: []byte(`{"a":1}`)}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b)
	if err != nil || !proto.Equal(got, p) {
		t.Fatalf("Unmarshal = %v, %v; want %v", got, err, p)
	}
	within := func(v []byte) bool {
		for k := range b {
			if len(v) > 0 && &b[k] == &v[0] {
				return cap(v) == len(v)
			}
		}
		return false
	}
	if !within(got.Data) || !within(got.Metadata["encoding"]) || !within(got.Metadata["x"]) {
		t.Fatal("Data or a metadata value is a copy, or its capacity goes past its end")
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = Unmarshal(b) }); n > 6 {
		t.Fatalf("Unmarshal allocates %.0f times, want at most 6 (payload, map, its entries and keys)", n)
	}
}

// FuzzUnmarshal checks Unmarshal against proto.Unmarshal on any input: both accept or both
// refuse, and what they accept is the same payload.
func FuzzUnmarshal(f *testing.F) {
	for _, p := range []*commonpb.Payload{
		{},
		{Data: []byte("x")},
		{Metadata: map[string][]byte{"encoding": []byte("binary/encrypted")}, Data: make([]byte, 300)},
		{Metadata: map[string][]byte{"a": nil, "b": []byte("c")}},
	} {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Unmarshal(b)
		want := &commonpb.Payload{}
		werr := proto.Unmarshal(b, want)
		switch {
		case (err == nil) != (werr == nil):
			t.Fatalf("Unmarshal error %v, proto.Unmarshal error %v", err, werr)
		case err == nil && !proto.Equal(got, want):
			t.Fatalf("Unmarshal gave %v, proto.Unmarshal %v", got, want)
		}
	})
}
