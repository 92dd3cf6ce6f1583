package codecserver_test

import (
	"context"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
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
		{"wildcard namespace ignored by default", signJWT(t, f.rs, f.claims(map[string]any{"namespaces": "*"})), "/decode", "billing", 403},
		{"wildcard permission ignored by default", signJWT(t, f.rs, f.claims(map[string]any{"namespaces": nil, "permissions": []string{"*:admin"}})), "/decode", "billing", 403},
		{"wildcard ignored, other namespaces kept", signJWT(t, f.rs, f.claims(map[string]any{"namespaces": []string{"*", "orders"}})), "/decode", "orders", 200},
		{"alg none", unsigned(f.claims(nil)), "/decode", "orders", 401},
		{"HS256 with public key", hs256(t, "rsa-1", rsaPub, f.claims(nil)), "/decode", "orders", 401},
		{"bad signature", tamper(signJWT(t, f.rs, f.claims(nil))), "/decode", "orders", 401},
		{"bad EC signature", tamper(signJWT(t, f.es, f.claims(nil))), "/decode", "orders", 401},
		{"unknown kid", signJWT(t, unknown, f.claims(nil)), "/decode", "orders", 401},
		{"kid of another key type", signJWT(t, signingKey{kid: "rsa-1", alg: "ES256", key: ec256Key}, f.claims(nil)), "/decode", "orders", 401},
		{"unknown crit header", signJWTHeader(t, f.rs, map[string]any{"crit": []string{"x-policy"}, "x-policy": "p"}, f.claims(nil)), "/decode", "orders", 401},
		{"padded signature", signJWT(t, f.ed, f.claims(nil)) + "==", "/decode", "orders", 401},
		{"issued in the future", signJWT(t, f.rs, f.claims(map[string]any{"iat": f.clock.Unix(time.Hour)})), "/decode", "orders", 401},
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
		{"unknown algorithm", b64([]byte(`{"alg":"XS256"}`)) + "." + b64([]byte(`{}`)) + ".c2ln", codecserver.ErrUnsupportedAlgorithm},
		{"unknown kid", signJWT(t, signingKey{kid: "zzz", alg: "RS256", key: rsaKey}, f.claims(nil)), codecserver.ErrUnknownKeyID},
		{"not yet valid", signJWT(t, f.es, f.claims(map[string]any{"nbf": f.clock.Unix(time.Hour)})), codecserver.ErrTokenExpired},
		{"crit header", signJWTHeader(t, f.es, map[string]any{"crit": []string{"x-policy"}, "x-policy": "p"}, f.claims(nil)), codecserver.ErrInvalidToken},
		{"claims not an object", signJWTHeader(t, f.es, nil, nil), codecserver.ErrInvalidToken},
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
		"oversized":             `{"keys":[],"pad":"` + strings.Repeat("x", codecserver.MaxJWKSBytes) + `"}`,
		"too many":              `{"keys":[` + strings.TrimSuffix(strings.Repeat(`{"kty":"OKP"},`, codecserver.MaxJWKSKeys+1), ",") + `]}`,
		"too many valid":        `{"keys":[` + strings.TrimSuffix(strings.Repeat(mustJSON(publicJWK(signingKey{kid: "e", key: ec256Key}))+",", codecserver.MaxJWKSKeys+1), ",") + `]}`,
		"not json":              `<html>`,
		"verify not in key_ops": `{"keys":[` + mustJSON(withKeyOps(publicJWK(signingKey{kid: "s", key: edKey}), "sign")) + `]}`,
		"weak rsa":              `{"keys":[{"kty":"RSA","kid":"w","n":"` + b64(make([]byte, 128)) + `","e":"AQAB"}]}`,
		"symmetric":             `{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}`,
		"enc key":               `{"keys":[` + mustJSON(withUse(publicJWK(signingKey{kid: "e", key: ec256Key}), "enc")) + `]}`,
		"bad EC point":          `{"keys":[{"kty":"EC","crv":"P-256","kid":"p","x":"` + b64(make([]byte, 32)) + `","y":"` + b64(make([]byte, 32)) + `"}]}`,
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

// withKeyOps returns the JWK m with "key_ops" set to ops.
func withKeyOps(m map[string]string, ops ...string) map[string]any {
	out := map[string]any{"key_ops": ops}
	for k, v := range m {
		out[k] = v
	}
	return out
}

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

// TestJWTAllowWildcardNamespaces runs the wildcard rows of the auth matrix with
// AllowWildcardNamespaces off (the default) and on: only with it on does a token's "*" grant
// rights on every namespace.
func TestJWTAllowWildcardNamespaces(t *testing.T) {
	body := payloadsJSON(t, jsonPayload(t, "x"))
	for _, allow := range []bool{false, true} {
		f := newJWTFixture(t, func(c *codecserver.JWTConfig) { c.AllowWildcardNamespaces = allow })
		h := newHandler(t, codecserver.Config{Auth: f.auth})
		// wild is the status with AllowWildcardNamespaces; without it, a wildcard grants nothing.
		for _, tc := range []struct {
			name       string
			claims     map[string]any
			path, ns   string
			tame, wild int
		}{
			{"namespaces claim *", map[string]any{"namespaces": "*"}, "/decode", "billing", 403, 200},
			{"namespaces claim [*]", map[string]any{"namespaces": []string{"*"}}, "/decode", "orders", 403, 200},
			{"namespaces claim * without the right", map[string]any{"namespaces": "*"}, "/encode", "billing", 403, 403},
			{"permission *:admin", map[string]any{"namespaces": nil, "permissions": []string{"*:admin"}}, "/encode", "billing", 403, 200},
			{"permission *:read", map[string]any{"namespaces": nil, "permissions": []string{"*:read"}}, "/decode", "billing", 403, 200},
			{"permission *:read cannot encode", map[string]any{"namespaces": nil, "permissions": []string{"*:read"}}, "/encode", "billing", 403, 403},
			{"named namespace unaffected", map[string]any{"namespaces": nil, "permissions": []string{"*:admin", "orders:read"}}, "/decode", "orders", 200, 200},
		} {
			want := tc.tame
			if allow {
				want = tc.wild
			}
			t.Run(fmt.Sprintf("%s/allow=%v", tc.name, allow), func(t *testing.T) {
				tok := signJWT(t, f.rs, f.claims(tc.claims))
				code, resp, _ := post(t, h, tc.path, body, map[string]string{"Authorization": "Bearer " + tok, "X-Namespace": tc.ns})
				if code != want {
					t.Fatalf("status %d, want %d: %s", code, want, resp)
				}
			})
		}
		p, err := f.auth.Verify(context.Background(), signJWT(t, f.rs, f.claims(map[string]any{
			"namespaces": []string{"*", "orders"}, "permissions": []string{"decode", "*:write"}})))
		if err != nil {
			t.Fatal(err)
		}
		hasWildcard := slices.Contains(p.Namespaces, codecserver.AllNamespaces)
		_, hasWildcardRights := p.NamespaceRights[codecserver.AllNamespaces]
		if hasWildcard != allow || hasWildcardRights != allow || !slices.Contains(p.Namespaces, "orders") {
			t.Errorf("allow=%v: principal = %+v", allow, p)
		}
	}
}

// TestJWKSKeyConstraints checks that a JWK's "alg", "use" and "key_ops", and its key type and
// curve, restrict which tokens it verifies.
func TestJWKSKeyConstraints(t *testing.T) {
	testKeys(t)
	psOnly := publicJWK(signingKey{kid: "rsa-ps", key: rsaKey})
	psOnly["alg"] = "PS256"
	doc := `{"keys":[` + strings.Join([]string{
		mustJSON(psOnly),
		mustJSON(withUse(publicJWK(signingKey{kid: "ec-enc", key: ec256Key}), "enc")),
		mustJSON(withKeyOps(publicJWK(signingKey{kid: "ed-sign-only", key: edKey}), "sign")),
		mustJSON(withKeyOps(publicJWK(signingKey{kid: "ed-verify", key: edKey}), "verify")),
		mustJSON(publicJWK(signingKey{kid: "ec-384", key: ec384Key})),
	}, ",") + `]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(doc)) }))
	defer srv.Close()
	clock := newFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	a, err := codecserver.NewJWTAuthenticator(codecserver.JWTConfig{JWKSURL: srv.URL, Issuer: issuer, Audience: []string{audience}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{"iss": issuer, "aud": audience, "sub": "alice", "exp": clock.Unix(time.Minute)}
	for _, tc := range []struct {
		name string
		key  signingKey
		want error
	}{
		{"PS256 with a PS256 key", signingKey{kid: "rsa-ps", alg: "PS256", key: rsaKey}, nil},
		{"RS256 with a PS256 key", signingKey{kid: "rsa-ps", alg: "RS256", key: rsaKey}, codecserver.ErrUnknownKeyID},
		{"encryption key", signingKey{kid: "ec-enc", alg: "ES256", key: ec256Key}, codecserver.ErrUnknownKeyID},
		{"key_ops without verify", signingKey{kid: "ed-sign-only", alg: "EdDSA", key: edKey}, codecserver.ErrUnknownKeyID},
		{"key_ops with verify", signingKey{kid: "ed-verify", alg: "EdDSA", key: edKey}, nil},
		{"ES384 with a P-384 key", signingKey{kid: "ec-384", alg: "ES384", key: ec384Key}, nil},
		{"ES256 with a P-384 key", signingKey{kid: "ec-384", alg: "ES256", key: ec256Key}, codecserver.ErrUnknownKeyID},
		{"ES256 with an RSA key", signingKey{kid: "rsa-ps", alg: "ES256", key: ec256Key}, codecserver.ErrUnknownKeyID},
	} {
		_, err := a.Verify(context.Background(), signJWT(t, tc.key, claims))
		if (tc.want == nil && err != nil) || !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestJWTHighSES256 documents that an ES256 signature (r, s) is also accepted as (r, n-s):
// jwx verifies with crypto/ecdsa, which does not require the low-S form. This is signature
// malleability, not a forgery: the header and claims are exactly those the issuer signed, and
// making the second form needs the first. Any other change to s is refused.
func TestJWTHighSES256(t *testing.T) {
	f := newJWTFixture(t, nil)
	tok := signJWT(t, f.es, f.claims(nil))
	parts := strings.Split(tok, ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		t.Fatalf("signature: %d bytes, %v", len(sig), err)
	}
	n := elliptic.P256().Params().N
	s := new(big.Int).SetBytes(sig[32:])
	withS := func(v *big.Int) string {
		out := slices.Clone(sig)
		v.FillBytes(out[32:])
		return parts[0] + "." + parts[1] + "." + b64(out)
	}
	negated := withS(new(big.Int).Sub(n, s))
	if negated == tok {
		t.Fatal("n-s equals s")
	}
	p, err := f.auth.Verify(context.Background(), negated)
	if err != nil {
		t.Fatalf("(r, n-s) refused: %v; update the note on high-S in the doc comment of Verify", err)
	}
	if p.Subject != "alice" || !p.Allows("orders", codecserver.OpDecode) {
		t.Errorf("principal = %+v", p)
	}
	for name, v := range map[string]*big.Int{
		"s+1":   new(big.Int).Add(s, big.NewInt(1)),
		"n-s+1": new(big.Int).Add(new(big.Int).Sub(n, s), big.NewInt(1)),
		"zero":  new(big.Int),
	} {
		if _, err := f.auth.Verify(context.Background(), withS(v)); !errors.Is(err, codecserver.ErrInvalidToken) {
			t.Errorf("%s: err = %v, want ErrInvalidToken", name, err)
		}
	}
}

// BenchmarkJWTVerify measures Verify on a valid token per algorithm, with the key set cached:
// checking the signature every time (VerifiedTokens -1), and for ES256 also remembering the
// verified token (the default).
func BenchmarkJWTVerify(b *testing.B) {
	remembered := newJWTFixture(b, nil)
	tok := signJWT(b, remembered.es, remembered.claims(nil))
	b.Run("ES256-remembered", func(b *testing.B) {
		ctx := context.Background()
		for b.Loop() {
			if _, err := remembered.auth.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	f := newJWTFixture(b, func(c *codecserver.JWTConfig) { c.VerifiedTokens = -1 })
	for _, k := range []signingKey{f.rs, f.ps, f.es, f.ed} {
		tok := signJWT(b, k, f.claims(nil))
		b.Run(k.alg, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				if _, err := f.auth.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
