package codecserver_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/payloadkit/payloadkit/codecserver"
)

const (
	issuer   = "https://issuer.example"
	audience = "codec-server"
)

type jwtFixture struct {
	jwks  *jwksServer
	clock *fakeClock
	auth  *codecserver.JWTAuthenticator
	rs    signingKey
	es    signingKey
	es384 signingKey
	ed    signingKey
	ps    signingKey
}

func newJWTFixture(t testing.TB, mutate func(*codecserver.JWTConfig)) *jwtFixture {
	t.Helper()
	testKeys(t)
	f := &jwtFixture{
		clock: newFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)),
		rs:    signingKey{kid: "rsa-1", alg: "RS256", key: rsaKey},
		ps:    signingKey{kid: "rsa-1", alg: "PS256", key: rsaKey},
		es:    signingKey{kid: "ec-1", alg: "ES256", key: ec256Key},
		es384: signingKey{kid: "ec-2", alg: "ES384", key: ec384Key},
		ed:    signingKey{kid: "ed-1", alg: "EdDSA", key: edKey},
	}
	f.jwks = newJWKSServer(t, f.rs, f.es, f.es384, f.ed)
	cfg := codecserver.JWTConfig{
		JWKSURL:  f.jwks.URL,
		Issuer:   issuer,
		Audience: []string{audience},
		Now:      f.clock.Now,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := codecserver.NewJWTAuthenticator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.auth = a
	return f
}

// claims returns valid claims for subject, with extra claims merged in.
func (f *jwtFixture) claims(extra map[string]any) map[string]any {
	c := map[string]any{
		"iss":         issuer,
		"aud":         audience,
		"sub":         "alice",
		"iat":         f.clock.Unix(0),
		"exp":         f.clock.Unix(10 * time.Minute),
		"namespaces":  []string{"orders"},
		"permissions": []string{"decode"},
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func hs256(t testing.TB, kid string, secret []byte, claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "HS256", "kid": kid})
	c, _ := json.Marshal(claims)
	signed := b64(h) + "." + b64(c)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(signed))
	return signed + "." + b64(m.Sum(nil))
}

func TestJWT(t *testing.T) {
	f := newJWTFixture(t, nil)
	h := newHandler(t, codecserver.Config{Auth: f.auth})
	body := payloadsJSON(t, jsonPayload(t, "x"))

	unsigned := func(claims map[string]any) string {
		h, _ := json.Marshal(map[string]string{"alg": "none", "kid": "rsa-1"})
		c, _ := json.Marshal(claims)
		return b64(h) + "." + b64(c) + "."
	}
	tamper := func(tok string) string {
		parts := strings.Split(tok, ".")
		c, _ := json.Marshal(f.claims(map[string]any{"namespaces": []string{"orders", "billing"}}))
		return parts[0] + "." + b64(c) + "." + parts[2]
	}
	unknown := signingKey{kid: "rsa-unknown", alg: "ES256", key: ec384Key}
	unknown.key = ec256Key
	unknown.kid = "not-in-jwks"
	// The RSA public key bytes used as an HMAC secret: the classic algorithm-confusion attack.
	rsaPub := []byte(publicJWK(f.rs)["n"])

	for _, tc := range []struct {
		name   string
		token  string
		path   string
		ns     string
		status int
	}{
		{"RS256 valid", signJWT(t, f.rs, f.claims(nil)), "/decode", "orders", 200},
		{"PS256 valid", signJWT(t, f.ps, f.claims(nil)), "/decode", "orders", 200},
		{"ES256 valid", signJWT(t, f.es, f.claims(nil)), "/decode", "orders", 200},
		{"ES384 valid", signJWT(t, f.es384, f.claims(nil)), "/decode", "orders", 200},
		{"EdDSA valid", signJWT(t, f.ed, f.claims(nil)), "/decode", "orders", 200},
		{"audience list", signJWT(t, f.rs, f.claims(map[string]any{"aud": []string{"other", audience}})), "/decode", "orders", 200},
		{"expired within leeway", signJWT(t, f.rs, f.claims(map[string]any{"exp": f.clock.Unix(-10 * time.Second)})), "/decode", "orders", 200},
		{"expired", signJWT(t, f.rs, f.claims(map[string]any{"exp": f.clock.Unix(-time.Hour)})), "/decode", "orders", 401},
		{"no exp", signJWT(t, f.rs, f.claims(map[string]any{"exp": nil})), "/decode", "orders", 401},
		{"not yet valid", signJWT(t, f.es, f.claims(map[string]any{"nbf": f.clock.Unix(time.Hour)})), "/decode", "orders", 401},
		{"nbf within leeway", signJWT(t, f.es, f.claims(map[string]any{"nbf": f.clock.Unix(10 * time.Second)})), "/decode", "orders", 200},
		{"wrong audience", signJWT(t, f.rs, f.claims(map[string]any{"aud": "other"})), "/decode", "orders", 401},
		{"no audience", signJWT(t, f.rs, f.claims(map[string]any{"aud": nil})), "/decode", "orders", 401},
		{"wrong issuer", signJWT(t, f.rs, f.claims(map[string]any{"iss": "https://evil.example"})), "/decode", "orders", 401},
		{"wrong namespace", signJWT(t, f.rs, f.claims(nil)), "/decode", "billing", 403},
		{"missing right", signJWT(t, f.rs, f.claims(nil)), "/encode", "orders", 403},
		{"no permissions", signJWT(t, f.rs, f.claims(map[string]any{"permissions": nil})), "/decode", "orders", 403},
		{"cloud style read", signJWT(t, f.rs, f.claims(map[string]any{"namespaces": nil, "permissions": []string{"billing:read"}})), "/decode", "billing", 200},
		{"cloud style read cannot encode", signJWT(t, f.rs, f.claims(map[string]any{"namespaces": nil, "permissions": []string{"billing:read"}})), "/encode", "billing", 403},
		{"cloud style write encodes", signJWT(t, f.rs, f.claims(map[string]any{"namespaces": nil, "permissions": []string{"billing:write"}})), "/encode", "billing", 200},
		{"cloud style other namespace", signJWT(t, f.rs, f.claims(map[string]any{"namespaces": nil, "permissions": []string{"billing:admin"}})), "/decode", "orders", 403},
		{"wildcard namespace", signJWT(t, f.rs, f.claims(map[string]any{"namespaces": "*"})), "/decode", "billing", 200},
		{"alg none", unsigned(f.claims(nil)), "/decode", "orders", 401},
		{"HS256 with public key", hs256(t, "rsa-1", rsaPub, f.claims(nil)), "/decode", "orders", 401},
		{"bad signature", tamper(signJWT(t, f.rs, f.claims(nil))), "/decode", "orders", 401},
		{"bad EC signature", tamper(signJWT(t, f.es, f.claims(nil))), "/decode", "orders", 401},
		{"unknown kid", signJWT(t, unknown, f.claims(nil)), "/decode", "orders", 401},
		{"kid of another key type", signJWT(t, signingKey{kid: "rsa-1", alg: "ES256", key: ec256Key}, f.claims(nil)), "/decode", "orders", 401},
		{"garbage", "not.a.jwt", "/decode", "orders", 401},
		{"two parts", "abc.def", "/decode", "orders", 401},
		{"huge", strings.Repeat("a", 20000), "/decode", "orders", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, resp, _ := post(t, h, tc.path, body, map[string]string{"Authorization": "Bearer " + tc.token, "X-Namespace": tc.ns})
			if code != tc.status {
				t.Fatalf("status %d, want %d: %s", code, tc.status, resp)
			}
		})
	}
}

func TestJWTErrors(t *testing.T) {
	f := newJWTFixture(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		token string
		want  error
	}{
		{"expired", signJWT(t, f.rs, f.claims(map[string]any{"exp": f.clock.Unix(-time.Hour)})), codecserver.ErrTokenExpired},
		{"none", b64([]byte(`{"alg":"none"}`)) + "." + b64([]byte(`{}`)) + ".", codecserver.ErrUnsupportedAlgorithm},
		{"HS512", b64([]byte(`{"alg":"HS512"}`)) + "." + b64([]byte(`{}`)) + ".c2ln", codecserver.ErrUnsupportedAlgorithm},
		{"unknown kid", signJWT(t, signingKey{kid: "zzz", alg: "RS256", key: rsaKey}, f.claims(nil)), codecserver.ErrUnknownKeyID},
		{"wrong issuer", signJWT(t, f.rs, f.claims(map[string]any{"iss": "x"})), codecserver.ErrInvalidToken},
	} {
		_, err := f.auth.Verify(ctx, tc.token)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), tc.token) {
			t.Errorf("%s: error contains the token", tc.name)
		}
	}
	p, err := f.auth.Verify(ctx, signJWT(t, f.ed, f.claims(map[string]any{"permissions": []string{"encode", "decode", "billing:read"}})))
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "alice" || !p.CanDecode || !p.CanEncode || !p.Allows("billing", codecserver.OpDecode) || p.Allows("billing", codecserver.OpEncode) {
		t.Errorf("principal = %+v", p)
	}
}

func TestJWTCustomClaims(t *testing.T) {
	f := newJWTFixture(t, func(c *codecserver.JWTConfig) {
		c.NamespacesClaim = "https://example.com/ns"
		c.PermissionsClaim = "roles"
		c.SubjectClaim = "email"
		c.Algorithms = []string{"ES256"}
	})
	p, err := f.auth.Verify(context.Background(), signJWT(t, f.es, f.claims(map[string]any{
		"https://example.com/ns": []string{"orders"}, "roles": []string{"decode"}, "email": "a@example.com"})))
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "a@example.com" || !p.Allows("orders", codecserver.OpDecode) {
		t.Errorf("principal = %+v", p)
	}
	if _, err := f.auth.Verify(context.Background(), signJWT(t, f.rs, f.claims(nil))); !errors.Is(err, codecserver.ErrUnsupportedAlgorithm) {
		t.Errorf("RS256 with Algorithms=[ES256]: err = %v", err)
	}
}

// TestJWKSRefresh checks key rotation (an unknown kid triggers one refresh), the refresh rate
// limit, and the cache TTL, by counting JWKS fetches.
func TestJWKSRefresh(t *testing.T) {
	f := newJWTFixture(t, func(c *codecserver.JWTConfig) {
		c.MinRefreshInterval = time.Minute
		c.CacheTTL = time.Hour
	})
	ctx := context.Background()
	if _, err := f.auth.Verify(ctx, signJWT(t, f.rs, f.claims(nil))); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := f.auth.Verify(ctx, signJWT(t, f.es, f.claims(nil))); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.jwks.fetches.Load(); n != 1 {
		t.Fatalf("fetches after 11 valid tokens = %d, want 1", n)
	}

	// A new key appears at the issuer: unknown kid, refresh allowed after MinRefreshInterval.
	rotated := signingKey{kid: "rsa-2", alg: "RS256", key: rsaKey}
	f.jwks.set(f.rs, rotated)
	tok := signJWT(t, rotated, f.claims(nil))
	for range 20 {
		if _, err := f.auth.Verify(ctx, tok); !errors.Is(err, codecserver.ErrUnknownKeyID) {
			t.Fatalf("within MinRefreshInterval: err = %v, want ErrUnknownKeyID", err)
		}
	}
	if n := f.jwks.fetches.Load(); n != 1 {
		t.Fatalf("unknown kids within MinRefreshInterval caused %d fetches, want none", n-1)
	}
	f.clock.Advance(2 * time.Minute)
	if _, err := f.auth.Verify(ctx, signJWT(t, rotated, f.claims(nil))); err != nil {
		t.Fatalf("rotated key after refresh: %v", err)
	}
	if n := f.jwks.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}

	// The removed key stops working once the cache expires; a failed refresh keeps old keys.
	f.clock.Advance(2 * time.Hour)
	f.jwks.mu.Lock()
	f.jwks.raw = []byte("not json")
	f.jwks.mu.Unlock()
	if _, err := f.auth.Verify(ctx, signJWT(t, rotated, f.claims(nil))); err != nil {
		t.Fatalf("stale keys after a failed refresh: %v", err)
	}
	if n := f.jwks.fetches.Load(); n != 3 {
		t.Fatalf("fetches = %d, want 3", n)
	}
}

func TestJWKSConcurrentUnknownKid(t *testing.T) {
	f := newJWTFixture(t, nil)
	tok := signJWT(t, signingKey{kid: "nope", alg: "ES256", key: ec256Key}, f.claims(nil))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if _, err := f.auth.Verify(context.Background(), tok); !errors.Is(err, codecserver.ErrUnknownKeyID) {
				t.Errorf("err = %v", err)
			}
		})
	}
	wg.Wait()
	if n := f.jwks.fetches.Load(); n != 1 {
		t.Errorf("16 concurrent unknown-kid tokens caused %d fetches, want 1", n)
	}
}

func TestJWKSBounds(t *testing.T) {
	testKeys(t)
	for name, doc := range map[string]string{
		"oversized":    `{"keys":[],"pad":"` + strings.Repeat("x", codecserver.MaxJWKSBytes) + `"}`,
		"too many":     `{"keys":[` + strings.TrimSuffix(strings.Repeat(`{"kty":"OKP"},`, codecserver.MaxJWKSKeys+1), ",") + `]}`,
		"not json":     `<html>`,
		"weak rsa":     `{"keys":[{"kty":"RSA","kid":"w","n":"` + b64(make([]byte, 128)) + `","e":"AQAB"}]}`,
		"symmetric":    `{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}`,
		"enc key":      `{"keys":[` + mustJSON(withUse(publicJWK(signingKey{kid: "e", key: ec256Key}), "enc")) + `]}`,
		"bad EC point": `{"keys":[{"kty":"EC","crv":"P-256","kid":"p","x":"` + b64(make([]byte, 32)) + `","y":"` + b64(make([]byte, 32)) + `"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(doc))
			}))
			defer srv.Close()
			a, err := codecserver.NewJWTAuthenticator(codecserver.JWTConfig{JWKSURL: srv.URL, Issuer: issuer, Audience: []string{audience}})
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Refresh(context.Background()); !errors.Is(err, codecserver.ErrJWKSFetch) {
				t.Errorf("Refresh: err = %v, want ErrJWKSFetch", err)
			}
		})
	}

	// A JWKS endpoint that hangs is bounded by FetchTimeout.
	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(block)
	a, err := codecserver.NewJWTAuthenticator(codecserver.JWTConfig{JWKSURL: slow.URL, Issuer: issuer, Audience: []string{audience}, FetchTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Refresh(context.Background()); !errors.Is(err, codecserver.ErrJWKSFetch) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hanging JWKS: err = %v, want ErrJWKSFetch wrapping DeadlineExceeded", err)
	}
}

func withUse(m map[string]string, use string) map[string]string { m["use"] = use; return m }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestJWTConfigValidation(t *testing.T) {
	ok := codecserver.JWTConfig{JWKSURL: "https://issuer.example/jwks", Issuer: issuer, Audience: []string{audience}}
	if _, err := codecserver.NewJWTAuthenticator(ok); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, mut := range map[string]func(*codecserver.JWTConfig){
		"no url":         func(c *codecserver.JWTConfig) { c.JWKSURL = "" },
		"relative url":   func(c *codecserver.JWTConfig) { c.JWKSURL = "/jwks" },
		"file url":       func(c *codecserver.JWTConfig) { c.JWKSURL = "file:///etc/jwks" },
		"no issuer":      func(c *codecserver.JWTConfig) { c.Issuer = "" },
		"no audience":    func(c *codecserver.JWTConfig) { c.Audience = nil },
		"empty audience": func(c *codecserver.JWTConfig) { c.Audience = []string{""} },
		"HS256":          func(c *codecserver.JWTConfig) { c.Algorithms = []string{"HS256"} },
		"none":           func(c *codecserver.JWTConfig) { c.Algorithms = []string{"none"} },
		"huge leeway":    func(c *codecserver.JWTConfig) { c.Leeway = time.Hour },
		"negative ttl":   func(c *codecserver.JWTConfig) { c.CacheTTL = -1 },
	} {
		c := ok
		mut(&c)
		if _, err := codecserver.NewJWTAuthenticator(c); !errors.Is(err, codecserver.ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", name, err)
		}
	}
}

// TestJWTRemoteClient runs the SDK's remote codec with a JWT, as the CLI would.
func TestJWTRemoteClient(t *testing.T) {
	f := newJWTFixture(t, nil)
	srv := httptest.NewServer(newHandler(t, codecserver.Config{Auth: codecserver.AnyOf(staticAuth(t), f.auth)}))
	defer srv.Close()
	tok := signJWT(t, f.es, f.claims(map[string]any{"permissions": []string{"orders:write"}}))
	rc := remote(srv, tok, "orders")
	in := []*commonpb.Payload{jsonPayload(t, largeValue())}
	enc, err := rc.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := rc.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(dec[0], &s); err != nil || s != largeValue() {
		t.Fatalf("round trip: %v", err)
	}
	// The static token still works through AnyOf.
	if _, err := remote(srv, testToken, "orders").Decode(enc); err != nil {
		t.Fatalf("static token through AnyOf: %v", err)
	}
	if _, err := remote(srv, "wrong-token-0123456789", "orders").Decode(enc); err == nil || !strings.Contains(err.Error(), "Unauthorized") {
		t.Fatalf("wrong token: err = %v", err)
	}
}
