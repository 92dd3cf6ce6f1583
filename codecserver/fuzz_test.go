package codecserver_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

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

// FuzzJWTVerify feeds arbitrary bearer tokens to JWTAuthenticator.Verify against a JWKS served
// over HTTP. Verify must not panic, must classify every refusal with one of the sentinels
// without echoing the token, and may accept a token only if its signed part (header and
// claims, byte for byte) is one the issuer signed: a mutation there is never accepted.
func FuzzJWTVerify(f *testing.F) {
	fx := newJWTFixture(f, nil)
	ctx := context.Background()
	issued := map[string]string{} // signed part -> expected subject
	sign := func(k signingKey, claims map[string]any) string {
		tok := signJWT(f, k, fx.claims(claims))
		issued[tok[:strings.LastIndexByte(tok, '.')]] = fx.claims(claims)["sub"].(string)
		return tok
	}
	valid := []string{
		sign(fx.rs, nil),
		sign(fx.ps, map[string]any{"sub": "bob", "aud": []string{"other", audience}}),
		sign(fx.es, map[string]any{"permissions": []string{"orders:read"}}),
		sign(fx.es384, nil),
		sign(fx.ed, map[string]any{"namespaces": "*"}),
	}
	for _, tok := range valid {
		f.Add(tok)
		f.Add(tok[:len(tok)-1])
		f.Add(tok[:len(tok)/2])
		f.Add(tok[:strings.LastIndexByte(tok, '.')+1])
	}
	none := func(hdr string) string { return b64([]byte(hdr)) + "." + b64([]byte(mustJSON(fx.claims(nil)))) + "." }
	f.Add(none(`{"alg":"none"}`))
	f.Add(none(`{"alg":"none","kid":"rsa-1"}`))
	f.Add(none(`{"alg":"NONE","kid":"ed-1"}`))
	f.Add(none(`{"alg":"EdDSA","kid":"ed-1"}`))
	f.Add(hs256(f, "rsa-1", []byte(publicJWK(fx.rs)["n"]), fx.claims(nil)))
	f.Add(signJWTHeader(f, fx.es, map[string]any{"crit": []string{"exp"}}, fx.claims(nil)))
	f.Add(signJWT(f, fx.rs, fx.claims(map[string]any{"exp": fx.clock.Unix(-time.Hour)})))
	f.Add(signJWT(f, fx.rs, fx.claims(map[string]any{"iss": "https://evil.example"})))
	f.Add(signJWT(f, signingKey{kid: "nope", alg: "ES256", key: ec256Key}, fx.claims(nil)))
	for _, s := range []string{"", ".", "..", "...", "a.b.c", "e30.e30.", "e30.e30.e30", "not a token", "\x00\xff.\x00.\x00", `{"payload":"e30","signatures":[]}`} {
		f.Add(s)
	}
	sentinels := []error{codecserver.ErrInvalidToken, codecserver.ErrTokenExpired, codecserver.ErrUnsupportedAlgorithm,
		codecserver.ErrUnknownKeyID, codecserver.ErrJWKSFetch}
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := fx.auth.Verify(ctx, tok)
		if err != nil {
			if !slices.ContainsFunc(sentinels, func(s error) bool { return errors.Is(err, s) }) {
				t.Fatalf("unclassified error: %v", err)
			}
			if len(tok) >= 40 && strings.Contains(err.Error(), tok) {
				t.Fatalf("error contains the token: %v", err)
			}
			return
		}
		dot := strings.LastIndexByte(tok, '.')
		sub, ok := issued[tok[:max(dot, 0)]]
		if dot < 0 || !ok {
			t.Fatalf("accepted a token whose header and claims the issuer never signed: %q", tok)
		}
		if p.Subject != sub {
			t.Fatalf("subject %q, want %q", p.Subject, sub)
		}
	})
}
