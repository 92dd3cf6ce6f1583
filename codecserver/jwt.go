package codecserver

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults and bounds of JWTConfig.
const (
	// DefaultNamespacesClaim is the default claim listing the namespaces a token may use.
	DefaultNamespacesClaim = "namespaces"
	// DefaultPermissionsClaim is the default claim listing rights: "decode", "encode", or
	// "<namespace>:<role>" with role read, write, worker, admin, decode or encode.
	DefaultPermissionsClaim = "permissions"
	// DefaultSubjectClaim is the default claim naming the caller in audit logs.
	DefaultSubjectClaim = "sub"
	// DefaultLeeway is the default clock skew tolerated on exp and nbf.
	DefaultLeeway = 30 * time.Second
	// MaxLeeway is the largest Leeway accepted.
	MaxLeeway = 5 * time.Minute
	// DefaultFetchTimeout bounds each JWKS fetch.
	DefaultFetchTimeout = 10 * time.Second
	// DefaultCacheTTL is how long a fetched key set is used before it is fetched again.
	DefaultCacheTTL = time.Hour
	// DefaultMinRefreshInterval is the shortest interval between two JWKS fetches, so tokens
	// with unknown key ids cannot make the server hammer the JWKS endpoint.
	DefaultMinRefreshInterval = 30 * time.Second
	// DefaultMaxTokenBytes bounds the length of a bearer token.
	DefaultMaxTokenBytes = 16 << 10
	// MaxJWKSBytes bounds the size of a fetched JWKS document.
	MaxJWKSBytes = 1 << 20
	// MaxJWKSKeys bounds the number of keys in a JWKS document.
	MaxJWKSKeys = 100
	// minRSABits is the smallest RSA modulus accepted; maxRSABits the largest.
	minRSABits = 2048
	maxRSABits = 8192
)

// supportedAlgorithms are the JWS algorithms the verifier implements. Symmetric (HS*) and
// "none" are deliberately absent.
var supportedAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// JWTConfig configures the built-in JWT verifier. Tokens are checked for signature (RS*, PS*,
// ES* or EdDSA, with keys from JWKSURL), issuer, audience, exp and nbf, then mapped to a
// Principal from the namespaces and permissions claims.
type JWTConfig struct {
	// JWKSURL is the JSON Web Key Set endpoint of the issuer. Required; http or https.
	JWKSURL string
	// Issuer must equal the token's "iss" claim. Required.
	Issuer string
	// Audience lists accepted audiences: the token's "aud" (string or list) must contain one. Required.
	Audience []string
	// NamespacesClaim names the claim listing namespaces (a string or a list of strings; "*"
	// for every namespace) to which the global rights of PermissionsClaim apply.
	// Defaults to DefaultNamespacesClaim.
	NamespacesClaim string
	// PermissionsClaim names the claim listing rights (a string or a list of strings):
	// "decode" and "encode" grant that right on the namespaces of NamespacesClaim;
	// "<namespace>:<role>" grants rights on one namespace (Temporal Cloud style): role "read"
	// or "decode" grants decode, "encode" grants encode, "write", "worker" and "admin" grant both.
	// Other values are ignored. Defaults to DefaultPermissionsClaim.
	PermissionsClaim string
	// SubjectClaim names the claim used as Principal.Subject. Defaults to DefaultSubjectClaim.
	SubjectClaim string
	// Algorithms restricts the accepted algorithms. Defaults to all supported ones
	// (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA).
	Algorithms []string
	// Leeway is the clock skew tolerated on exp and nbf. Defaults to DefaultLeeway; at most MaxLeeway.
	Leeway time.Duration
	// HTTPClient fetches the JWKS. Defaults to a client without cookies or redirects beyond
	// http.DefaultClient's policy; each fetch is bounded by FetchTimeout either way.
	HTTPClient *http.Client
	// FetchTimeout bounds each JWKS fetch. Defaults to DefaultFetchTimeout.
	FetchTimeout time.Duration
	// CacheTTL is how long a fetched key set is used before it is refreshed.
	// Defaults to DefaultCacheTTL. A failed refresh keeps the previous keys.
	CacheTTL time.Duration
	// MinRefreshInterval is the shortest interval between two fetches, including the refresh
	// triggered by an unknown key id. Defaults to DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration
	// MaxTokenBytes bounds the bearer token length. Defaults to DefaultMaxTokenBytes.
	MaxTokenBytes int
	// Now returns the current time. Defaults to time.Now (tests set a fake clock).
	Now func() time.Time
}

// JWTAuthenticator verifies bearer JWTs against a JWKS. Create it with NewJWTAuthenticator.
// It is safe for concurrent use.
type JWTAuthenticator struct {
	cfg  JWTConfig
	algs map[string]bool
	keys *jwksCache
}

// NewJWTAuthenticator validates cfg and returns a JWT Authenticator. It does not fetch the key
// set: the first request does (call Refresh to fetch at start-up).
func NewJWTAuthenticator(cfg JWTConfig) (*JWTAuthenticator, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: JWT: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(cfg.JWKSURL)
	if cfg.JWKSURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, bad("JWKSURL %q must be an absolute http or https URL", cfg.JWKSURL)
	}
	if cfg.Issuer == "" {
		return nil, bad("Issuer is required")
	}
	if len(cfg.Audience) == 0 || slices.Contains(cfg.Audience, "") {
		return nil, bad("Audience is required and must not contain empty values")
	}
	if cfg.NamespacesClaim == "" {
		cfg.NamespacesClaim = DefaultNamespacesClaim
	}
	if cfg.PermissionsClaim == "" {
		cfg.PermissionsClaim = DefaultPermissionsClaim
	}
	if cfg.SubjectClaim == "" {
		cfg.SubjectClaim = DefaultSubjectClaim
	}
	algs := map[string]bool{}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = supportedAlgorithms
	}
	for _, a := range cfg.Algorithms {
		if !slices.Contains(supportedAlgorithms, a) {
			return nil, bad("algorithm %q is not supported (supported: %s)", a, strings.Join(supportedAlgorithms, ", "))
		}
		algs[a] = true
	}
	switch {
	case cfg.Leeway < 0 || cfg.Leeway > MaxLeeway:
		return nil, bad("Leeway %v must be between 0 and %v", cfg.Leeway, MaxLeeway)
	case cfg.Leeway == 0:
		cfg.Leeway = DefaultLeeway
	}
	if cfg.FetchTimeout < 0 || cfg.CacheTTL < 0 || cfg.MinRefreshInterval < 0 || cfg.MaxTokenBytes < 0 {
		return nil, bad("FetchTimeout, CacheTTL, MinRefreshInterval and MaxTokenBytes must not be negative")
	}
	if cfg.FetchTimeout == 0 {
		cfg.FetchTimeout = DefaultFetchTimeout
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.MinRefreshInterval == 0 {
		cfg.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if cfg.MaxTokenBytes == 0 {
		cfg.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: cfg.FetchTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &JWTAuthenticator{cfg: cfg, algs: algs, keys: &jwksCache{cfg: &cfg}}, nil
}

// Refresh fetches the key set now (subject to MinRefreshInterval), for example to fail fast at
// start-up when the JWKS endpoint is unreachable.
func (a *JWTAuthenticator) Refresh(ctx context.Context) error {
	return a.keys.refresh(ctx, true)
}

// Authenticate implements Authenticator.
func (a *JWTAuthenticator) Authenticate(r *http.Request) (Principal, error) {
	tok, err := BearerToken(r)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	p, err := a.Verify(r.Context(), tok)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	return p, nil
}

type jwtHeader struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Typ  string   `json:"typ"`
	Crit []string `json:"crit"`
}

// Verify checks token and maps its claims to a Principal. Errors wrap ErrInvalidToken,
// ErrTokenExpired, ErrUnsupportedAlgorithm, ErrUnknownKeyID or ErrJWKSFetch; they never
// contain the token.
func (a *JWTAuthenticator) Verify(ctx context.Context, token string) (Principal, error) {
	if len(token) > a.cfg.MaxTokenBytes {
		return Principal{}, fmt.Errorf("%w: token longer than %d bytes", ErrInvalidToken, a.cfg.MaxTokenBytes)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Principal{}, fmt.Errorf("%w: want 3 dot-separated parts, got %d", ErrInvalidToken, len(parts))
	}
	hb, err := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	if err != nil {
		return Principal{}, fmt.Errorf("%w: header is not base64url", ErrInvalidToken)
	}
	var h jwtHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return Principal{}, fmt.Errorf("%w: header is not a JSON object", ErrInvalidToken)
	}
	if !a.algs[h.Alg] {
		return Principal{}, fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, truncate(h.Alg, 16))
	}
	if len(h.Crit) > 0 {
		return Principal{}, fmt.Errorf("%w: critical header parameters are not supported", ErrInvalidToken)
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err != nil {
		return Principal{}, fmt.Errorf("%w: signature is not base64url", ErrInvalidToken)
	}
	key, err := a.keys.key(ctx, h.Kid, h.Alg)
	if err != nil {
		return Principal{}, err
	}
	signed := token[:len(parts[0])+1+len(parts[1])]
	if err := verifySignature(key, h.Alg, []byte(signed), sig); err != nil {
		return Principal{}, fmt.Errorf("%w: signature verification failed [kid=%s, alg=%s]", ErrInvalidToken, truncate(h.Kid, 64), h.Alg)
	}
	cb, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	if err != nil {
		return Principal{}, fmt.Errorf("%w: claims are not base64url", ErrInvalidToken)
	}
	dec := json.NewDecoder(bytes.NewReader(cb))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return Principal{}, fmt.Errorf("%w: claims are not a JSON object", ErrInvalidToken)
	}
	return a.checkClaims(claims)
}

func (a *JWTAuthenticator) checkClaims(claims map[string]any) (Principal, error) {
	if iss, _ := claims["iss"].(string); iss != a.cfg.Issuer {
		return Principal{}, fmt.Errorf("%w: issuer %q not accepted", ErrInvalidToken, truncate(iss, 128))
	}
	auds, ok := stringList(claims["aud"])
	if !ok || !slices.ContainsFunc(auds, func(s string) bool { return slices.Contains(a.cfg.Audience, s) }) {
		return Principal{}, fmt.Errorf("%w: audience not accepted", ErrInvalidToken)
	}
	now := a.cfg.Now()
	exp, ok := numericDate(claims["exp"])
	if !ok {
		return Principal{}, fmt.Errorf("%w: exp claim missing or not a number", ErrInvalidToken)
	}
	if now.After(exp.Add(a.cfg.Leeway)) {
		return Principal{}, fmt.Errorf("%w: expired at %s", ErrTokenExpired, exp.UTC().Format(time.RFC3339))
	}
	if v, present := claims["nbf"]; present {
		nbf, ok := numericDate(v)
		if !ok {
			return Principal{}, fmt.Errorf("%w: nbf claim not a number", ErrInvalidToken)
		}
		if now.Add(a.cfg.Leeway).Before(nbf) {
			return Principal{}, fmt.Errorf("%w: not valid before %s", ErrTokenExpired, nbf.UTC().Format(time.RFC3339))
		}
	}
	sub, _ := claims[a.cfg.SubjectClaim].(string)
	if sub == "" {
		sub = "unknown"
	}
	p := Principal{Subject: truncate(sub, 256)}
	p.Namespaces, _ = stringList(claims[a.cfg.NamespacesClaim])
	perms, _ := stringList(claims[a.cfg.PermissionsClaim])
	for _, perm := range perms {
		ns, role, scoped := cutLast(perm, ":")
		if !scoped {
			switch perm {
			case "decode":
				p.CanDecode = true
			case "encode":
				p.CanEncode = true
			}
			continue
		}
		var r Rights
		switch role {
		case "read", "decode":
			r.Decode = true
		case "encode":
			r.Encode = true
		case "write", "worker", "admin":
			r = Rights{Decode: true, Encode: true}
		default:
			continue
		}
		if ns == "" {
			continue
		}
		if p.NamespaceRights == nil {
			p.NamespaceRights = map[string]Rights{}
		}
		old := p.NamespaceRights[ns]
		p.NamespaceRights[ns] = Rights{Decode: old.Decode || r.Decode, Encode: old.Encode || r.Encode}
	}
	return p, nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// stringList accepts a JSON string or a list of strings.
func stringList(v any) ([]string, bool) {
	switch t := v.(type) {
	case string:
		return []string{t}, true
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// numericDate reads a JWT NumericDate (seconds since the epoch, possibly fractional).
func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	if i, err := n.Int64(); err == nil {
		if i < 0 || i > 1<<40 {
			return time.Time{}, false
		}
		return time.Unix(i, 0), true
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func verifySignature(key crypto.PublicKey, alg string, signed, sig []byte) error {
	hashFor := func(bits int) (crypto.Hash, []byte) {
		switch bits {
		case 384:
			h := sha512.Sum384(signed)
			return crypto.SHA384, h[:]
		case 512:
			h := sha512.Sum512(signed)
			return crypto.SHA512, h[:]
		default:
			h := sha256.Sum256(signed)
			return crypto.SHA256, h[:]
		}
	}
	bits := 0
	if len(alg) == 5 {
		bits = map[string]int{"256": 256, "384": 384, "512": 512}[alg[2:]]
	}
	switch {
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		pub, ok := key.(*rsa.PublicKey)
		if !ok {
			return errors.New("key is not an RSA key")
		}
		h, digest := hashFor(bits)
		if alg[0] == 'P' {
			return rsa.VerifyPSS(pub, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.VerifyPKCS1v15(pub, h, digest, sig)
	case strings.HasPrefix(alg, "ES"):
		pub, ok := key.(*ecdsa.PublicKey)
		if !ok {
			return errors.New("key is not an EC key")
		}
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		if pub.Curve != want {
			return errors.New("curve does not match algorithm")
		}
		size := (want.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return errors.New("bad ECDSA signature length")
		}
		_, digest := hashFor(bits)
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(pub, digest, r, s) {
			return errors.New("bad ECDSA signature")
		}
		return nil
	case alg == "EdDSA":
		pub, ok := key.(ed25519.PublicKey)
		if !ok {
			return errors.New("key is not an Ed25519 key")
		}
		if !ed25519.Verify(pub, signed, sig) {
			return errors.New("bad Ed25519 signature")
		}
		return nil
	}
	return fmt.Errorf("unsupported algorithm %q", alg)
}

// jwk is one parsed key of a JWKS.
type jwk struct {
	kid string
	alg string // empty when the JWK does not restrict it
	key crypto.PublicKey
}

// algFits reports whether the key may verify alg.
func (k *jwk) algFits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch k.key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return strings.HasPrefix(alg, "ES")
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

type rawJWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS parses a JWKS document, skipping keys it cannot use (encryption keys, symmetric
// keys, unsupported curves, weak RSA keys).
func parseJWKS(b []byte) ([]*jwk, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not a JWKS document: %w", err)
	}
	if len(doc.Keys) > MaxJWKSKeys {
		return nil, fmt.Errorf("%d keys, more than the limit of %d", len(doc.Keys), MaxJWKSKeys)
	}
	var out []*jwk
	for _, raw := range doc.Keys {
		var r rawJWK
		if json.Unmarshal(raw, &r) != nil || (r.Use != "" && r.Use != "sig") {
			continue
		}
		if r.Alg != "" && !slices.Contains(supportedAlgorithms, r.Alg) {
			continue
		}
		if k, err := parseJWK(r); err == nil {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no usable signing keys")
	}
	return out, nil
}

func parseJWK(r rawJWK) (*jwk, error) {
	b64 := func(s string) ([]byte, error) { return base64.RawURLEncoding.Strict().DecodeString(s) }
	k := &jwk{kid: r.Kid, alg: r.Alg}
	switch r.Kty {
	case "RSA":
		n, err := b64(r.N)
		if err != nil || len(n) > maxRSABits/8 {
			return nil, errors.New("bad RSA modulus")
		}
		e, err := b64(r.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad RSA exponent")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < minRSABits || pub.E < 3 || pub.E%2 == 0 {
			return nil, errors.New("weak RSA key")
		}
		k.key = pub
	case "EC":
		var curve elliptic.Curve
		switch r.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, errors.New("unsupported curve")
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err1 := b64(r.X)
		y, err2 := b64(r.Y)
		if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
			return nil, errors.New("bad EC point")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, err
		}
		k.key = pub
	case "OKP":
		x, err := b64(r.X)
		if r.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad OKP key")
		}
		k.key = ed25519.PublicKey(x)
	default:
		return nil, errors.New("unsupported key type")
	}
	return k, nil
}

// jwksCache holds the fetched keys. Fetches are serialised and rate limited.
type jwksCache struct {
	cfg *JWTConfig

	fetchMu sync.Mutex // serialises fetches

	mu          sync.Mutex
	keys        []*jwk
	fetchedAt   time.Time // last successful fetch
	attemptedAt time.Time // last fetch attempt
	lastErr     error
}

func (c *jwksCache) lookup(kid, alg string) (*jwk, bool) {
	var match *jwk
	n := 0
	for _, k := range c.keys {
		if (kid == "" || k.kid == kid) && k.algFits(alg) {
			match = k
			n++
		}
	}
	// Without a kid, the key must be unambiguous.
	return match, n == 1 || (kid != "" && n > 0)
}

// due reports whether a fetch is allowed and useful. c.mu must be held.
func (c *jwksCache) due(found, force bool) bool {
	now := c.cfg.Now()
	if !c.attemptedAt.IsZero() && now.Sub(c.attemptedAt) < c.cfg.MinRefreshInterval {
		return false
	}
	return force || !found || c.fetchedAt.IsZero() || now.Sub(c.fetchedAt) > c.cfg.CacheTTL
}

func (c *jwksCache) key(ctx context.Context, kid, alg string) (crypto.PublicKey, error) {
	c.mu.Lock()
	k, found := c.lookup(kid, alg)
	due := c.due(found, false)
	c.mu.Unlock()
	var fetchErr error
	if due {
		fetchErr = c.refresh(ctx, false)
		c.mu.Lock()
		k, found = c.lookup(kid, alg)
		c.mu.Unlock()
	}
	if found {
		return k.key, nil
	}
	if fetchErr == nil {
		c.mu.Lock()
		if c.fetchedAt.IsZero() {
			fetchErr = c.lastErr
		}
		c.mu.Unlock()
	}
	if fetchErr != nil {
		return nil, fmt.Errorf("%w [kid=%s, alg=%s]: %w", ErrUnknownKeyID, truncate(kid, 64), alg, fetchErr)
	}
	return nil, fmt.Errorf("%w [kid=%s, alg=%s]", ErrUnknownKeyID, truncate(kid, 64), alg)
}

// refresh fetches the key set if due (or force), keeping the old keys on failure.
func (c *jwksCache) refresh(ctx context.Context, force bool) error {
	c.fetchMu.Lock()
	defer c.fetchMu.Unlock()
	c.mu.Lock()
	// Another caller may have fetched while this one waited.
	if !c.due(false, force) {
		c.mu.Unlock()
		return nil
	}
	c.attemptedAt = c.cfg.Now()
	c.mu.Unlock()

	keys, err := c.fetch(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.lastErr = err
		return err
	}
	c.keys, c.fetchedAt, c.lastErr = keys, c.cfg.Now(), nil
	return nil
}

func (c *jwksCache) fetch(ctx context.Context) ([]*jwk, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.JWKSURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%w [url=%s]: %w", ErrJWKSFetch, c.cfg.JWKSURL, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w [url=%s]: %w", ErrJWKSFetch, c.cfg.JWKSURL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w [url=%s]: HTTP status %d", ErrJWKSFetch, c.cfg.JWKSURL, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w [url=%s]: %w", ErrJWKSFetch, c.cfg.JWKSURL, err)
	}
	if len(b) > MaxJWKSBytes {
		return nil, fmt.Errorf("%w [url=%s]: document larger than %d bytes", ErrJWKSFetch, c.cfg.JWKSURL, MaxJWKSBytes)
	}
	keys, err := parseJWKS(b)
	if err != nil {
		return nil, fmt.Errorf("%w [url=%s]: %w", ErrJWKSFetch, c.cfg.JWKSURL, err)
	}
	return keys, nil
}
