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
