package codecserver_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"go.temporal.io/sdk/converter"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/codecserver"
)

// A Codec Server for one namespace with a static bearer token, used through the Temporal SDK's
// remote codec, as the Temporal CLI does with --codec-endpoint and --codec-auth.
func Example() {
	compress, err := codec.NewCompressionCodec(nil) // or kit.Codecs() of a *payloadkit.Kit
	if err != nil {
		panic(err)
	}
	auth, err := codecserver.StaticTokens(map[string]codecserver.Principal{
		"s3cr3t-token-for-the-web-ui": {Subject: "web-ui", Namespaces: []string{"orders"}, CanDecode: true, CanEncode: true},
	})
	if err != nil {
		panic(err)
	}
	handler, err := codecserver.New(codecserver.Config{
		Namespaces:     map[string][]converter.PayloadCodec{"orders": {compress}},
		Auth:           auth,
		AllowedOrigins: []string{"http://localhost:8233"}, // the Temporal Web UI
		Logger:         slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(handler)
	defer srv.Close()

	client := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint: srv.URL,
		ModifyRequest: func(r *http.Request) error {
			r.Header.Set("Authorization", "Bearer s3cr3t-token-for-the-web-ui")
			r.Header.Set("X-Namespace", "orders")
			return nil
		},
	})
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), client)
	p, err := dc.ToPayload(strings.Repeat("line item; ", 100))
	if err != nil {
		panic(err)
	}
	fmt.Println("stored as:", string(p.Metadata["encoding"]))
	var back string
	if err := dc.FromPayload(p, &back); err != nil {
		panic(err)
	}
	fmt.Println("decoded:", back[:20])
	// Output:
	// stored as: binary/zstd
	// decoded: line item; line item
}
