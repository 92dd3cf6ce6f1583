package codecserver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
	"github.com/lestrrat-go/jwx/v3/jwt"
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
	// DefaultLeeway is the default clock skew tolerated on exp, nbf and iat.
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
	// DefaultVerifiedTokens is the default of JWTConfig.VerifiedTokens.
	DefaultVerifiedTokens = 1024
	// MaxJWKSBytes bounds the size of a fetched JWKS document.
	MaxJWKSBytes = 1 << 20
	// MaxJWKSKeys bounds the number of keys in a JWKS document.
	MaxJWKSKeys = 100
	// minRSABits is the smallest RSA modulus accepted; maxRSABits the largest.
	minRSABits = 2048
	maxRSABits = 8192
)

// supportedAlgorithms are the JWS algorithms the verifier accepts. Symmetric (HS*) and
// "none" are deliberately absent.
var supportedAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// JWTConfig configures the built-in JWT verifier. Tokens are checked for signature (RS*, PS*,
// ES* or EdDSA, with keys from JWKSURL), issuer, audience, exp and nbf, then mapped to a
// Principal from the namespaces and permissions claims. JWS, JWK and claim parsing, signature
// verification and the time, issuer and audience checks are done by
// github.com/lestrrat-go/jwx/v3; this package adds the bounds, the key cache and the mapping
// of claims to rights.
type JWTConfig struct {
	// JWKSURL is the JSON Web Key Set endpoint of the issuer. Required; http or https.
	JWKSURL string
	// Issuer must equal the token's "iss" claim. Required.
	Issuer string
	// Audience lists accepted audiences: the token's "aud" (string or list) must contain one. Required.
	Audience []string
	// NamespacesClaim names the claim listing namespaces (a string or a list of strings; "*"
	// for every namespace, see AllowWildcardNamespaces) to which the global rights of
	// PermissionsClaim apply. Defaults to DefaultNamespacesClaim.
	NamespacesClaim string
	// PermissionsClaim names the claim listing rights (a string or a list of strings):
	// "decode" and "encode" grant that right on the namespaces of NamespacesClaim;
	// "<namespace>:<role>" grants rights on one namespace (Temporal Cloud style): role "read"
	// or "decode" grants decode, "encode" grants encode, "write", "worker" and "admin" grant both.
	// Other values are ignored. Defaults to DefaultPermissionsClaim.
	PermissionsClaim string
	// SubjectClaim names the claim used as Principal.Subject. Defaults to DefaultSubjectClaim.
	SubjectClaim string
	// AllowWildcardNamespaces is required to let a token's namespaces claim "*" or a
	// permission "*:<role>" grant rights on every namespace. Defaults to false: such grants
	// are ignored.
	AllowWildcardNamespaces bool
	// Algorithms restricts the accepted algorithms. Defaults to all supported ones
	// (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA).
	Algorithms []string
	// Leeway is the clock skew tolerated on exp, nbf and iat. Defaults to DefaultLeeway; at most MaxLeeway.
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
	// VerifiedTokens bounds how many verified tokens Verify remembers, by the SHA-256 of the
	// token string, so that a token sent again (the Web UI sends the same token with every
	// request) skips signature verification. A remembered token's exp, nbf and iat are checked
	// again on every use, and it is verified afresh once the key set is due for a refresh
	// (CacheTTL) or no longer holds the key that verified it. Defaults to
	// DefaultVerifiedTokens; negative values disable it.
	VerifiedTokens int
	// Now returns the current time. Defaults to time.Now (tests set a fake clock).
	Now func() time.Time
}

// JWTAuthenticator verifies bearer JWTs against a JWKS. Create it with NewJWTAuthenticator.
// It is safe for concurrent use.
type JWTAuthenticator struct {
	cfg      JWTConfig
	algs     map[string]jwa.SignatureAlgorithm
	validate []jwt.ValidateOption
	keys     *jwksCache
	verified *tokenCache // nil when JWTConfig.VerifiedTokens is negative

	verifications atomic.Int64 // signature verifications, for tests
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
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = supportedAlgorithms
	}
	algs := map[string]jwa.SignatureAlgorithm{}
	for _, a := range cfg.Algorithms {
		alg, known := jwa.LookupSignatureAlgorithm(a)
		if !slices.Contains(supportedAlgorithms, a) || !known {
			return nil, bad("algorithm %q is not supported (supported: %s)", a, strings.Join(supportedAlgorithms, ", "))
		}
		algs[a] = alg
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
	if cfg.VerifiedTokens == 0 {
		cfg.VerifiedTokens = DefaultVerifiedTokens
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: cfg.FetchTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	audiences := slices.Clone(cfg.Audience)
	validate := []jwt.ValidateOption{
		jwt.WithClock(jwt.ClockFunc(cfg.Now)),
		jwt.WithAcceptableSkew(cfg.Leeway),
		jwt.WithTruncation(0), // exact times, whatever jwt.Settings says elsewhere in the process
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithIssuer(cfg.Issuer),
		// jwt.WithAudience requires every audience given; the token needs only one of ours.
		jwt.WithValidator(jwt.ValidatorFunc(func(ctx context.Context, t jwt.Token) error {
			for _, aud := range audiences {
				if jwt.ClaimContainsString(jwt.AudienceKey, aud).Validate(ctx, t) == nil {
					return nil
				}
			}
			return errors.New(`"aud" contains none of the accepted audiences`)
		})),
	}
	a := &JWTAuthenticator{cfg: cfg, algs: algs, validate: validate, keys: &jwksCache{cfg: &cfg}}
	if cfg.VerifiedTokens > 0 {
		a.verified = &tokenCache{max: cfg.VerifiedTokens, m: make(map[[sha256.Size]byte]*verifiedToken)}
	}
	return a, nil
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

// Verify checks token and maps its claims to a Principal. Errors wrap ErrInvalidToken,
// ErrTokenExpired, ErrUnsupportedAlgorithm, ErrUnknownKeyID or ErrJWKSFetch; they never
// contain the token.
//
// The token must be a JWS in compact serialization, each part in unpadded base64url with no
// stray bits, so one signed content has one spelling up to the signature. ECDSA signatures
// are checked by crypto/ecdsa, which accepts both s and its negation n-s ("high-S"): whoever
// holds a valid ES* token can derive a second valid signature for the same header and claims.
// That is malleability, not a forgery (nothing that was not signed is accepted), but the token
// string is therefore not a unique identifier of a token; use its claims (such as "jti")
// instead.
func (a *JWTAuthenticator) Verify(ctx context.Context, token string) (Principal, error) {
	if len(token) > a.cfg.MaxTokenBytes {
		return Principal{}, fmt.Errorf("%w: token longer than %d bytes", ErrInvalidToken, a.cfg.MaxTokenBytes)
	}
	raw := []byte(token)
	var sum [sha256.Size]byte
	if a.verified != nil {
		sum = sha256.Sum256(raw)
		if p, ok := a.remembered(sum); ok {
			return p, nil
		}
	}
	if err := checkCompact(raw); err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	sel := &keySelector{a: a}
	a.verifications.Add(1)
	payload, err := jws.Verify(raw,
		jws.WithCompact(),
		jws.WithKeyProvider(sel),
		jws.WithCritValidation(true), // no "crit" extension is understood: refuse any
		jws.WithAlgorithmMatch(true),
		jws.WithContext(ctx),
	)
	switch {
	case sel.err != nil:
		return Principal{}, sel.err
	case err != nil && sel.alg == "":
		// jwx refuses algorithm names it does not know while parsing the header, before the
		// key selector sees them; report those as unsupported too.
		if alg, ok := headerAlg(token); ok {
			if _, allowed := a.algs[alg]; !allowed {
				return Principal{}, fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, truncate(alg, 16))
			}
		}
		return Principal{}, fmt.Errorf("%w: malformed JWS: %s", ErrInvalidToken, truncate(err.Error(), 200))
	case err != nil:
		return Principal{}, fmt.Errorf("%w: signature verification failed [kid=%s, alg=%s]", ErrInvalidToken, truncate(sel.kid, 64), sel.alg)
	}
	// The signed payload must be a JWT claims set (not, say, a nested JWS).
	tok := jwt.New()
	if err := json.Unmarshal(payload, tok); err != nil {
		return Principal{}, fmt.Errorf("%w: claims are not a JWT claims set: %s", ErrInvalidToken, truncate(err.Error(), 200))
	}
	if err := jwt.Validate(tok, a.validate...); err != nil {
		if errors.Is(err, jwt.TokenExpiredError()) || errors.Is(err, jwt.TokenNotYetValidError()) || errors.Is(err, jwt.InvalidIssuedAtError()) {
			return Principal{}, fmt.Errorf("%w: %s", ErrTokenExpired, truncate(err.Error(), 200))
		}
		return Principal{}, fmt.Errorf("%w: %s", ErrInvalidToken, truncate(err.Error(), 200))
	}
	p := a.principal(tok)
	if a.verified != nil {
		a.verified.add(sum, &verifiedToken{tok: tok, key: sel.key, kid: sel.kid, alg: sel.alg, principal: p.clone()})
	}
	return p, nil
}

// tokenCache remembers verified tokens by the SHA-256 of the token string, at most max of
// them (a full cache forgets one at random for each new token).
type tokenCache struct {
	max int
	mu  sync.Mutex
	m   map[[sha256.Size]byte]*verifiedToken
}

// verifiedToken is what one successful Verify established.
type verifiedToken struct {
	tok       jwt.Token        // the validated claims, validated again on every use
	key       *verificationKey // the key that verified the signature
	kid, alg  string           // the header's key id and algorithm
	principal Principal        // never handed out: callers get clones
}

func (c *tokenCache) add(sum [sha256.Size]byte, v *verifiedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[sum]; !ok && len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[sum] = v
}

func (c *tokenCache) get(sum [sha256.Size]byte) *verifiedToken {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[sum]
}

func (c *tokenCache) forget(sum [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, sum)
}

// remembered returns the principal of a token verified before, when its key is still the one
// the current key set holds for its kid and alg, the key set is not due for a refresh, and
// its claims are still valid now. Otherwise it forgets the token, and Verify checks it afresh
// (and reports why it fails, if it does).
func (a *JWTAuthenticator) remembered(sum [sha256.Size]byte) (Principal, bool) {
	v := a.verified.get(sum)
	if v == nil {
		return Principal{}, false
	}
	if k, ok := a.keys.current(v.kid, v.alg); !ok || k != v.key || jwt.Validate(v.tok, a.validate...) != nil {
		a.verified.forget(sum)
		return Principal{}, false
	}
	return v.principal.clone(), true
}

// checkCompact reports whether token has the three parts of a compact JWS, each in strict
// unpadded base64url (RFC 7515 section 2). jwx decodes leniently (padding, the standard
// alphabet) and verifies the signature over a re-encoding, so without this check one signed
// token could be spelled several ways.
func checkCompact(token []byte) error {
	if n := bytes.Count(token, []byte(".")) + 1; n != 3 {
		return fmt.Errorf("want 3 dot-separated parts, got %d", n)
	}
	enc := base64.RawURLEncoding.Strict()
	var buf [512]byte
	rest := token
	for i := 1; i <= 3; i++ {
		part, after, _ := bytes.Cut(rest, []byte("."))
		dst := buf[:0]
		if n := enc.DecodedLen(len(part)); n > len(buf) {
			dst = make([]byte, 0, n)
		}
		if _, err := enc.AppendDecode(dst, part); err != nil {
			return fmt.Errorf("part %d is not unpadded base64url", i)
		}
		rest = after
	}
	return nil
}

// headerAlg returns the "alg" of a compact JWS's protected header, read with jwx's header
// reader.
func headerAlg(token string) (string, bool) {
	hdr, _, _, err := jwsbb.SplitCompactString(token)
	if err != nil {
		return "", false
	}
	alg, err := jwsbb.HeaderGetString(jwsbb.HeaderParseCompact(hdr), jws.AlgorithmKey)
	return alg, err == nil
}

// keySelector is the jws.KeyProvider of one Verify call: it refuses algorithms outside the
// configured set and picks the key for the header's kid and alg from the cache, refreshing it
// for an unknown kid. It remembers why it failed, so Verify can return the sentinel.
type keySelector struct {
	a        *JWTAuthenticator
	alg, kid string
	key      *verificationKey // the key handed to jwx
	err      error
}

// FetchKeys implements jws.KeyProvider.
func (s *keySelector) FetchKeys(ctx context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
	h := sig.ProtectedHeaders()
	alg, _ := h.Algorithm()
	s.kid, _ = h.KeyID()
	s.alg = alg.String()
	jalg, ok := s.a.algs[s.alg]
	if !ok {
		s.err = fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, truncate(s.alg, 16))
		return s.err
	}
	key, err := s.a.keys.key(ctx, s.kid, s.alg)
	if err != nil {
		s.err = err
		return err
	}
	s.key = key
	sink.Key(jalg, key.key)
	return nil
}

// principal maps the claims of a verified, validated token to rights: the project's own
// policy, on top of jwx's checks.
func (a *JWTAuthenticator) principal(tok jwt.Token) Principal {
	claim := func(name string) any {
		var v any
		if tok.Get(name, &v) != nil {
			return nil
		}
		return v
	}
	sub, _ := claim(a.cfg.SubjectClaim).(string)
	if sub == "" {
		sub = "unknown"
	}
	p := Principal{Subject: truncate(sub, 256)}
	namespaces, _ := stringList(claim(a.cfg.NamespacesClaim))
	for _, ns := range namespaces {
		if ns == AllNamespaces && !a.cfg.AllowWildcardNamespaces {
			continue
		}
		p.Namespaces = append(p.Namespaces, ns)
	}
	perms, _ := stringList(claim(a.cfg.PermissionsClaim))
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
		if ns == "" || (ns == AllNamespaces && !a.cfg.AllowWildcardNamespaces) {
			continue
		}
		if p.NamespaceRights == nil {
			p.NamespaceRights = map[string]Rights{}
		}
		old := p.NamespaceRights[ns]
		p.NamespaceRights[ns] = Rights{Decode: old.Decode || r.Decode, Encode: old.Encode || r.Encode}
	}
	return p
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// stringList accepts a claim that is a string or a list of strings.
func stringList(v any) ([]string, bool) {
	switch t := v.(type) {
	case string:
		return []string{t}, true
	case []string:
		return t, true
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// verificationKey is one usable key of the JWKS.
type verificationKey struct {
	kid string
	alg string // empty when the JWK does not restrict it
	key any    // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// fits reports whether the key may verify alg.
func (k *verificationKey) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch pub := k.key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pub.Curve == elliptic.P256()
		case "ES384":
			return pub.Curve == elliptic.P384()
		case "ES512":
			return pub.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// parseJWKS parses a JWKS document with jwk.Parse and keeps the keys it may use: signing keys
// ("use" absent or "sig", "key_ops" absent or containing "verify", "alg" absent or supported)
// of RSA (2048 to 8192 bits), P-256, P-384, P-521 or Ed25519. Keys of other types, symmetric
// keys and entries jwx cannot parse are skipped; a document without any usable key is an error.
func parseJWKS(b []byte) ([]*verificationKey, error) {
	set, err := jwk.Parse(b, jwk.WithMaxKeys(MaxJWKSKeys), jwk.WithStrictKeySetParsing(false))
	if err != nil {
		return nil, fmt.Errorf("not a usable JWKS document (at most %d keys): %w", MaxJWKSKeys, err)
	}
	var out []*verificationKey
	for i := range set.Len() {
		k, _ := set.Key(i)
		if k == nil || jwk.IsUnsupportedKey(k) || k.Validate() != nil {
			continue
		}
		if use, ok := k.KeyUsage(); ok && use != "" && use != jwk.ForSignature.String() {
			continue
		}
		if ops, ok := k.KeyOps(); ok && !slices.Contains(ops, jwk.KeyOpVerify) {
			continue
		}
		vk := &verificationKey{}
		if alg, ok := k.Algorithm(); ok {
			if vk.alg = alg.String(); !slices.Contains(supportedAlgorithms, vk.alg) {
				continue
			}
		}
		vk.kid, _ = k.KeyID()
		if vk.key, err = jwk.PublicRawKeyOf(k); err != nil || !strongKey(vk.key) {
			continue
		}
		out = append(out, vk)
	}
	if len(out) == 0 {
		return nil, errors.New("no usable signing keys")
	}
	return out, nil
}

// strongKey reports whether pub is a public key of a type and size the verifier accepts.
func strongKey(pub any) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		return bits >= minRSABits && bits <= maxRSABits && k.E >= 3 && k.E%2 == 1
	case *ecdsa.PublicKey:
		return k.Curve == elliptic.P256() || k.Curve == elliptic.P384() || k.Curve == elliptic.P521()
	case ed25519.PublicKey:
		return len(k) == ed25519.PublicKeySize
	}
	return false
}

// jwksCache holds the fetched keys. Fetches are serialised and rate limited.
type jwksCache struct {
	cfg *JWTConfig

	fetchMu sync.Mutex // serialises fetches

	mu          sync.Mutex
	keys        []*verificationKey
	fetchedAt   time.Time // last successful fetch
	attemptedAt time.Time // last fetch attempt
	lastErr     error
}

func (c *jwksCache) lookup(kid, alg string) (*verificationKey, bool) {
	var match *verificationKey
	n := 0
	for _, k := range c.keys {
		if (kid == "" || k.kid == kid) && k.fits(alg) {
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

// current returns the key for kid and alg when the key set was fetched and is not due for a
// refresh by CacheTTL.
func (c *jwksCache) current(kid, alg string) (*verificationKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fetchedAt.IsZero() || c.cfg.Now().Sub(c.fetchedAt) > c.cfg.CacheTTL {
		return nil, false
	}
	return c.lookup(kid, alg)
}

func (c *jwksCache) key(ctx context.Context, kid, alg string) (*verificationKey, error) {
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
		return k, nil
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

// fetch GETs the JWKS, bounded by FetchTimeout and MaxJWKSBytes, and parses it.
func (c *jwksCache) fetch(ctx context.Context) ([]*verificationKey, error) {
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
