package codecserver_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/payloadkit/payloadkit/codecserver"
)

// TestJWTVerifiedTokenCache checks what a remembered token still has to pass: a token sent
// again is not verified by signature again, but its expiry is checked on every use, a key
// removed from the key set stops it once the key set is refreshed, callers cannot change what
// is remembered, and the cache is bounded and can be turned off.
func TestJWTVerifiedTokenCache(t *testing.T) {
	ctx := context.Background()

	t.Run("same token verified once", func(t *testing.T) {
		f := newJWTFixture(t, nil)
		tok := signJWT(t, f.es, f.claims(map[string]any{"namespaces": []string{"orders", "billing"}, "permissions": []string{"decode", "audit:read"}}))
		p1, err := f.auth.Verify(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		p1.Namespaces[0] = "changed by the caller"
		p1.NamespaceRights["injected"] = codecserver.Rights{Decode: true, Encode: true}
		for range 5 {
			p, err := f.auth.Verify(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Namespaces, []string{"orders", "billing"}) || len(p.NamespaceRights) != 1 || !p.NamespaceRights["audit"].Decode || p.Subject != "alice" || !p.CanDecode {
				t.Fatalf("remembered principal = %+v", p)
			}
		}
		if n := codecserver.Verifications(f.auth); n != 1 {
			t.Fatalf("signature verifications for 6 uses of one token = %d, want 1", n)
		}
		// Another token is verified.
		if _, err := f.auth.Verify(ctx, signJWT(t, f.ed, f.claims(nil))); err != nil {
			t.Fatal(err)
		}
		if n := codecserver.Verifications(f.auth); n != 2 {
			t.Fatalf("verifications = %d, want 2", n)
		}
	})

	t.Run("expiry checked on every use", func(t *testing.T) {
		f := newJWTFixture(t, nil)
		tok := signJWT(t, f.es, f.claims(map[string]any{"exp": f.clock.Unix(time.Minute)}))
		if _, err := f.auth.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Minute + codecserver.DefaultLeeway + time.Second)
		if _, err := f.auth.Verify(ctx, tok); !errors.Is(err, codecserver.ErrTokenExpired) {
			t.Fatalf("remembered token after exp: err = %v, want ErrTokenExpired", err)
		}
		if _, err := f.auth.Verify(ctx, tok); !errors.Is(err, codecserver.ErrTokenExpired) {
			t.Fatalf("again: err = %v, want ErrTokenExpired", err)
		}
	})

	t.Run("removed key", func(t *testing.T) {
		f := newJWTFixture(t, func(c *codecserver.JWTConfig) {
			c.CacheTTL = 10 * time.Minute
			c.MinRefreshInterval = time.Minute
		})
		tok := signJWT(t, f.es, f.claims(map[string]any{"exp": f.clock.Unix(time.Hour)}))
		if _, err := f.auth.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
		// The issuer drops the key. Until the key set is due for a refresh the token is
		// accepted, as any token signed by that key would be.
		f.jwks.set(f.rs, f.ed)
		f.clock.Advance(5 * time.Minute)
		if _, err := f.auth.Verify(ctx, tok); err != nil {
			t.Fatalf("within CacheTTL: %v", err)
		}
		f.clock.Advance(6 * time.Minute)
		if _, err := f.auth.Verify(ctx, tok); !errors.Is(err, codecserver.ErrUnknownKeyID) {
			t.Fatalf("after the refresh that dropped the key: err = %v, want ErrUnknownKeyID", err)
		}
		if n := f.jwks.fetches.Load(); n != 2 {
			t.Fatalf("JWKS fetches = %d, want 2", n)
		}
	})

	t.Run("bounded", func(t *testing.T) {
		f := newJWTFixture(t, func(c *codecserver.JWTConfig) { c.VerifiedTokens = 4 })
		for i := range 10 {
			if _, err := f.auth.Verify(ctx, signJWT(t, f.ed, f.claims(map[string]any{"sub": fmt.Sprint("user", i)}))); err != nil {
				t.Fatal(err)
			}
			if n := codecserver.RememberedTokens(f.auth); n != min(i+1, 4) {
				t.Fatalf("after %d tokens, %d remembered, want %d", i+1, n, min(i+1, 4))
			}
		}
	})

	t.Run("disabled", func(t *testing.T) {
		f := newJWTFixture(t, func(c *codecserver.JWTConfig) { c.VerifiedTokens = -1 })
		tok := signJWT(t, f.es, f.claims(nil))
		for range 3 {
			if _, err := f.auth.Verify(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		if n := codecserver.Verifications(f.auth); n != 3 {
			t.Fatalf("verifications with VerifiedTokens -1 = %d, want 3", n)
		}
	})

	t.Run("refused tokens are not remembered", func(t *testing.T) {
		f := newJWTFixture(t, nil)
		tok := signJWT(t, f.es, f.claims(map[string]any{"iss": "https://other.example"}))
		for range 3 {
			if _, err := f.auth.Verify(ctx, tok); !errors.Is(err, codecserver.ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
		}
		if n := codecserver.RememberedTokens(f.auth); n != 0 {
			t.Fatalf("%d refused tokens remembered", n)
		}
	})
}
