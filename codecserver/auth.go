package codecserver

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// Sentinel errors of authentication. Authenticators return errors wrapping ErrUnauthenticated
// (answered with 401); the more specific sentinels below are wrapped as well where they apply.
var (
	// ErrUnauthenticated reports a request without valid credentials.
	ErrUnauthenticated = errors.New("codecserver: unauthenticated")
	// ErrMissingToken reports a request without an "Authorization: Bearer" header.
	ErrMissingToken = errors.New("codecserver: missing bearer token")
	// ErrInvalidToken reports a malformed token, a bad signature, or a wrong issuer or audience.
	ErrInvalidToken = errors.New("codecserver: invalid token")
	// ErrTokenExpired reports a token past its exp claim, or before its nbf or iat claim.
	ErrTokenExpired = errors.New("codecserver: token expired or not yet valid")
	// ErrUnsupportedAlgorithm reports a token signed with an algorithm the verifier refuses
	// (for example "none" or HS256).
	ErrUnsupportedAlgorithm = errors.New("codecserver: unsupported token algorithm")
	// ErrUnknownKeyID reports a token whose key id is not in the key set, even after a refresh.
	ErrUnknownKeyID = errors.New("codecserver: unknown key id")
	// ErrJWKSFetch reports a failure to fetch or parse the JSON Web Key Set.
	ErrJWKSFetch = errors.New("codecserver: fetching JWKS failed")
)

// Operation is what a request asks the server to do with payloads.
type Operation string

// Operations of the Codec Server.
const (
	OpEncode Operation = "encode"
	OpDecode Operation = "decode"
)

// AllNamespaces, in Principal.Namespaces or as a key of Principal.NamespaceRights, stands for
// every namespace. StaticTokens keep it as the operator configured it; a JWTAuthenticator
// takes it from a token's claims only when JWTConfig.AllowWildcardNamespaces is set.
const AllNamespaces = "*"

// Rights are the operations allowed on one namespace.
type Rights struct {
	Decode bool
	Encode bool
}

// Principal is an authenticated caller and what it may do.
type Principal struct {
	// Subject identifies the caller in audit logs (a JWT "sub", or a static token's name).
	Subject string
	// Namespaces the caller may use with the rights CanDecode and CanEncode.
	// AllNamespaces ("*") stands for every namespace.
	Namespaces []string
	// CanDecode allows /decode on Namespaces.
	CanDecode bool
	// CanEncode allows /encode on Namespaces.
	CanEncode bool
	// NamespaceRights grants rights per namespace, in addition to the above (JWT permissions
	// such as "ns1:read" end up here). The key AllNamespaces applies to every namespace.
	NamespaceRights map[string]Rights
}

// Allows reports whether p may perform op on namespace.
func (p Principal) Allows(namespace string, op Operation) bool {
	allowed := func(r Rights) bool {
		switch op {
		case OpDecode:
			return r.Decode
		case OpEncode:
			return r.Encode
		}
		return false
	}
	if slices.Contains(p.Namespaces, namespace) || slices.Contains(p.Namespaces, AllNamespaces) {
		if allowed(Rights{Decode: p.CanDecode, Encode: p.CanEncode}) {
			return true
		}
	}
	for _, key := range []string{namespace, AllNamespaces} {
		if r, ok := p.NamespaceRights[key]; ok && allowed(r) {
			return true
		}
	}
	return false
}

// Authenticator authenticates a request. It returns an error wrapping ErrUnauthenticated when
// the request carries no valid credentials; the server then answers 401. Whether the Principal
// may use the requested namespace and operation is checked afterwards (403 when not).
type Authenticator interface {
	Authenticate(r *http.Request) (Principal, error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(r *http.Request) (Principal, error)

// Authenticate calls f(r).
func (f AuthenticatorFunc) Authenticate(r *http.Request) (Principal, error) { return f(r) }

// BearerToken returns the token of an "Authorization: Bearer <token>" header, or ErrMissingToken.
func BearerToken(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrMissingToken
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "", ErrMissingToken
	}
	return token, nil
}

type staticToken struct {
	digest    [sha256.Size]byte
	principal Principal
}

type staticTokens struct{ tokens []staticToken }

// MinStaticTokenLength is the shortest static bearer token StaticTokens accepts.
const MinStaticTokenLength = 16

// StaticTokens returns an Authenticator accepting the bearer tokens of tokens, each mapped to
// its Principal. Tokens must be at least MinStaticTokenLength bytes long. Every token is
// compared in constant time, so response timing does not reveal which prefix matched.
func StaticTokens(tokens map[string]Principal) (Authenticator, error) {
	if len(tokens) == 0 {
		return nil, fmt.Errorf("%w: StaticTokens: no tokens", ErrInvalidConfig)
	}
	st := &staticTokens{}
	for tok, p := range tokens {
		if len(tok) < MinStaticTokenLength {
			return nil, fmt.Errorf("%w: StaticTokens: token for subject %q is shorter than %d bytes",
				ErrInvalidConfig, p.Subject, MinStaticTokenLength)
		}
		if strings.ContainsAny(tok, " \t\r\n") {
			return nil, fmt.Errorf("%w: StaticTokens: token for subject %q contains white space", ErrInvalidConfig, p.Subject)
		}
		if p.Subject == "" {
			return nil, fmt.Errorf("%w: StaticTokens: a token has no Subject", ErrInvalidConfig)
		}
		st.tokens = append(st.tokens, staticToken{digest: sha256.Sum256([]byte(tok)), principal: p})
	}
	return st, nil
}

// Authenticate implements Authenticator.
func (s *staticTokens) Authenticate(r *http.Request) (Principal, error) {
	tok, err := BearerToken(r)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	d := sha256.Sum256([]byte(tok))
	found := -1
	for i := range s.tokens {
		// Compare against every token so timing does not depend on the position of a match.
		if subtle.ConstantTimeCompare(d[:], s.tokens[i].digest[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Principal{}, fmt.Errorf("%w: %w: static token not recognised", ErrUnauthenticated, ErrInvalidToken)
	}
	return s.tokens[found].principal, nil
}

type anyOf []Authenticator

// AnyOf returns an Authenticator that tries each of auths in order and returns the first
// Principal accepted. When all fail, the error of the last is returned.
func AnyOf(auths ...Authenticator) Authenticator {
	var a anyOf
	for _, x := range auths {
		if x != nil {
			a = append(a, x)
		}
	}
	return a
}

// Authenticate implements Authenticator.
func (a anyOf) Authenticate(r *http.Request) (Principal, error) {
	err := fmt.Errorf("%w: no authenticator configured", ErrUnauthenticated)
	for _, x := range a {
		p, e := x.Authenticate(r)
		if e == nil {
			return p, nil
		}
		err = e
	}
	return Principal{}, err
}

// clone returns a copy of p that shares no slice or map with it.
func (p Principal) clone() Principal {
	p.Namespaces = slices.Clone(p.Namespaces)
	p.NamespaceRights = maps.Clone(p.NamespaceRights)
	return p
}
