package codecserver_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/payloadkit/payloadkit/codecserver"
)

// BenchmarkDecodeHandler compares, on the same /decode request (10 zstd payloads of ~2 KiB),
// the SDK's bare converter.NewPayloadCodecHTTPHandler (no auth, no limits, no audit) with this
// server authenticating by static token and by ES256 JWT, and reports each alternative's cost
// relative to the SDK handler. The JWT is sent with every request, as the Web UI does: the
// default verifier checks its signature once and remembers it (JWTConfig.VerifiedTokens);
// codecserver-jwt-es256-unremembered verifies every request's signature.
func BenchmarkDecodeHandler(b *testing.B) {
	local := compression(b)
	var ps []*commonpb.Payload
	for range 10 {
		ps = append(ps, jsonPayload(b, largeValue()))
	}
	enc, err := local.Encode(ps)
	if err != nil {
		b.Fatal(err)
	}
	body := payloadsJSON(b, enc...)

	f := newJWTFixture(b, nil)
	jwtTok := signJWT(b, f.es, map[string]any{"iss": issuer, "aud": audience, "sub": "bench",
		"exp": 1 << 40, "namespaces": []string{"orders"}, "permissions": []string{"decode"}})
	quiet := slog.New(slog.DiscardHandler)
	ns := map[string][]converter.PayloadCodec{"orders": {local}}
	static, _ := codecserver.New(codecserver.Config{Namespaces: ns, Auth: staticAuth(b), Logger: quiet})
	withJWT, _ := codecserver.New(codecserver.Config{Namespaces: ns, Auth: f.auth, Logger: quiet})
	fNoCache := newJWTFixture(b, func(c *codecserver.JWTConfig) { c.VerifiedTokens = -1 })
	withJWTNoCache, _ := codecserver.New(codecserver.Config{Namespaces: ns, Auth: fNoCache.auth, Logger: quiet})
	jwtTokNoCache := signJWT(b, fNoCache.es, map[string]any{"iss": issuer, "aud": audience, "sub": "bench",
		"exp": 1 << 40, "namespaces": []string{"orders"}, "permissions": []string{"decode"}})

	alts := []struct {
		name  string
		h     http.Handler
		token string
	}{
		{"sdk-handler", converter.NewPayloadCodecHTTPHandler(local), ""},
		{"codecserver-static-token", static, testToken},
		{"codecserver-jwt-es256", withJWT, jwtTok},
		{"codecserver-jwt-es256-unremembered", withJWTNoCache, jwtTokNoCache},
	}
	serve := func(h http.Handler, token string) {
		req := httptest.NewRequest(http.MethodPost, "/decode", bytes.NewReader(body))
		req.Header.Set("X-Namespace", "orders")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	// The alternatives run interleaved in one loop, so machine noise hits them alike.
	spent := make([]time.Duration, len(alts))
	n := 0
	b.SetBytes(int64(len(body) * len(alts)))
	for b.Loop() {
		for i, alt := range alts {
			start := time.Now()
			serve(alt.h, alt.token)
			spent[i] += time.Since(start)
		}
		n++
	}
	fmt.Printf("%-36s %12s %8s\n", "alternative", "ns/request", "vs sdk")
	for i, alt := range alts {
		per := float64(spent[i].Nanoseconds()) / float64(n)
		ratio := float64(spent[i]) / float64(spent[0])
		fmt.Printf("%-36s %12.0f %7.2fx\n", alt.name, per, ratio)
		b.ReportMetric(per, alt.name+"-ns/req")
		if i > 0 {
			b.ReportMetric(ratio, alt.name+"-x")
		}
	}
}
