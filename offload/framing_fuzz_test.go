package offload

import (
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzParseObject checks the stored-object parser against proto.Unmarshal on any input: both
// accept or both refuse, and what they accept is the same payload.
func FuzzParseObject(f *testing.F) {
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
		got, err := parseObject(b)
		want := &commonpb.Payload{}
		werr := proto.Unmarshal(b, want)
		switch {
		case (err == nil) != (werr == nil):
			t.Fatalf("parseObject error %v, proto.Unmarshal error %v", err, werr)
		case err == nil && !proto.Equal(got, want):
			t.Fatalf("parseObject gave %v, proto.Unmarshal %v", got, want)
		}
	})
}
