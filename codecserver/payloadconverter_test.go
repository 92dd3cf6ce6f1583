package codecserver_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/codecserver"
	"github.com/payloadkit/payloadkit/offload"
)

// teamJSON is a team's own JSON payload converter, with its own encoding name.
type teamJSON struct{}

const encodingTeamJSON = "json/custom"

func (teamJSON) Encoding() string { return encodingTeamJSON }

func (teamJSON) ToPayload(v any) (*commonpb.Payload, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", encodingTeamJSON, err)
	}
	return &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(encodingTeamJSON)}, Data: b}, nil
}

func (teamJSON) FromPayload(p *commonpb.Payload, valuePtr any) error {
	return json.Unmarshal(p.GetData(), valuePtr)
}

func (teamJSON) ToString(p *commonpb.Payload) string { return string(p.GetData()) }

type teamOrder struct {
	ID    string `json:"id"`
	Notes string `json:"notes"`
}

// TestKitWithOwnPayloadConverter decodes through the Codec Server what a worker whose Kit sits
// on a composite payload converter (protobuf binary, then a custom JSON converter) wrote:
// encrypted payloads and offloaded claims come back in the converter's own encodings,
// binary/protobuf and json/custom, and the worker's converter reads them.
func TestKitWithOwnPayloadConverter(t *testing.T) {
	keys, err := codec.NewStaticKeyring("k1", map[string][]byte{"k1": codec.GenerateKey()})
	if err != nil {
		t.Fatal(err)
	}
	pc := converter.NewCompositeDataConverter(converter.NewProtoPayloadConverter(), teamJSON{})
	kit, err := payloadkit.New(context.Background(), payloadkit.Options{
		PayloadConverter: pc,
		Encryption:       &codec.EncryptionOptions{Keys: keys},
		Offload:          &offload.Options{Store: offload.NewMemoryStore(), Threshold: 1024},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kit.Close() })

	const secret = "customer Quillfeather"
	noise := hex.EncodeToString(pseudoRandom(8000)) // about 8 KB after compression: offloaded
	values := []any{
		&commonpb.WorkflowType{Name: secret},
		wrapperspb.String(secret + " " + noise),
		teamOrder{ID: "o-1", Notes: secret},
		teamOrder{ID: "o-2", Notes: secret + " " + noise},
	}
	written := workerPayloads(t, kit, "orders", values...)
	for i, p := range written {
		wantClaim := i%2 == 1
		if offload.IsClaim(p) != wantClaim {
			t.Errorf("payload %d: claim = %v, want %v", i, offload.IsClaim(p), wantClaim)
		}
		if b, _ := proto.Marshal(p); strings.Contains(string(b), secret) {
			t.Errorf("payload %d holds plaintext", i)
		}
	}

	srv := httptest.NewServer(newHandler(t, codecserver.Config{Namespaces: codecserver.FromKit(kit, "orders"), Insecure: true}))
	defer srv.Close()
	dec, err := remote(srv, "", "orders").Decode(written)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"binary/protobuf", "binary/protobuf", encodingTeamJSON, encodingTeamJSON}
	for i, p := range dec {
		if enc := string(p.Metadata[converter.MetadataEncoding]); enc != want[i] {
			t.Errorf("decoded payload %d: encoding %q, want %q", i, enc, want[i])
		}
	}
	var smallProto *commonpb.WorkflowType
	var largeProto *wrapperspb.StringValue
	var smallOrder, largeOrder teamOrder
	if err := pc.FromPayloads(&commonpb.Payloads{Payloads: dec}, &smallProto, &largeProto, &smallOrder, &largeOrder); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(smallProto, values[0].(proto.Message)) || !proto.Equal(largeProto, values[1].(proto.Message)) ||
		smallOrder != values[2] || largeOrder != values[3] {
		t.Errorf("decoded values differ from those written: %v, %+v", smallProto, smallOrder)
	}
}
