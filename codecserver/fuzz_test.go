package codecserver_test

import (
	"log/slog"
	"net/http"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/codecserver"
)

// FuzzDecodeRequest feeds arbitrary bodies to /decode and /encode: the handler must not panic,
// must answer 200, 400 or 413, and a 200 must carry as many payloads as the request.
func FuzzDecodeRequest(f *testing.F) {
	h, err := codecserver.New(codecserver.Config{
		Insecure:          true,
		MaxBodyBytes:      64 << 10,
		MaxPayloads:       16,
		ClaimDisplayLimit: 100,
		Namespaces: map[string][]converter.PayloadCodec{
			"orders": {compression(f), tagCodec{}},
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}
	zstd := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(codec.EncodingZstd)}, Data: []byte("\x28\xb5\x2f\xfd garbage")}
	f.Add([]byte(`{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"IngiCg=="}]}`), false)
	f.Add(payloadsJSON(f, jsonPayload(f, largeValue())), true)
	f.Add(payloadsJSON(f, zstd), false)
	f.Add(payloadsJSON(f, claim("k", 5000), claim("k2", 1)), false)
	f.Add(payloadsJSON(f, &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("test/tag"), "ns": []byte("orders")}, Data: []byte{0x0a, 0xff}}), false)
	f.Add([]byte(`{"payloads":[]}`), false)
	f.Add([]byte(`{"payloads":[null]}`), true)
	f.Add([]byte(`{"payloads":[{"externalPayloads":[{"sizeBytes":"1"}]}]}`), false)
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[`), false)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, body []byte, encode bool) {
		path := "/orders/decode"
		if encode {
			path = "/orders/encode"
		}
		code, resp, _ := post(t, h, path, body, nil)
		switch code {
		case http.StatusOK:
			var in, out commonpb.Payloads
			if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, &in); err != nil {
				t.Fatalf("200 for a body the server should reject: %v", err)
			}
			if err := protojson.Unmarshal([]byte(resp), &out); err != nil {
				t.Fatalf("200 with an unparsable response: %v", err)
			}
			if len(in.Payloads) != len(out.Payloads) {
				t.Fatalf("%d payloads in, %d out", len(in.Payloads), len(out.Payloads))
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d: %s", code, resp)
		}
	})
}
