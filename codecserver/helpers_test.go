package codecserver_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/codecserver"
)

// signingKey is a private key with its JWS algorithm and key id.
type signingKey struct {
	kid string
	alg string
	key crypto.Signer
}

var (
	keysOnce sync.Once
	rsaKey   *rsa.PrivateKey
	ec256Key *ecdsa.PrivateKey
	ec384Key *ecdsa.PrivateKey
	edKey    ed25519.PrivateKey
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ec256Key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if ec384Key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			panic(err)
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// publicJWK returns the JWK of k's public key.
func publicJWK(k signingKey) map[string]string {
	m := map[string]string{"kid": k.kid, "use": "sig"}
	switch pub := k.key.Public().(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = b64(pub.N.Bytes())
		m["e"] = b64(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		m["kty"] = "EC"
		m["crv"] = pub.Curve.Params().Name
		size := (pub.Curve.Params().BitSize + 7) / 8
		raw, err := pub.Bytes()
		if err != nil {
			panic(err)
		}
		m["x"] = b64(raw[1 : 1+size])
		m["y"] = b64(raw[1+size:])
	case ed25519.PublicKey:
		m["kty"] = "OKP"
		m["crv"] = "Ed25519"
		m["x"] = b64(pub)
	}
	return m
}

// signJWT signs claims with k, as an issuer would.
func signJWT(t testing.TB, k signingKey, claims map[string]any) string {
	t.Helper()
	return signJWTHeader(t, k, nil, claims)
}

// signJWTHeader is signJWT with extra protected header parameters (a nil value removes one).
func signJWTHeader(t testing.TB, k signingKey, extra map[string]any, claims map[string]any) string {
	t.Helper()
	hdr := map[string]any{"alg": k.alg, "kid": k.kid, "typ": "JWT"}
	for name, v := range extra {
		if v == nil {
			delete(hdr, name)
		} else {
			hdr[name] = v
		}
	}
	h, _ := json.Marshal(hdr)
	c, _ := json.Marshal(claims)
	signed := b64(h) + "." + b64(c)
	var sig []byte
	var err error
	switch k.alg {
	case "RS256":
		d := sha256.Sum256([]byte(signed))
		sig, err = rsa.SignPKCS1v15(rand.Reader, k.key.(*rsa.PrivateKey), crypto.SHA256, d[:])
	case "PS256":
		d := sha256.Sum256([]byte(signed))
		sig, err = rsa.SignPSS(rand.Reader, k.key.(*rsa.PrivateKey), crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "ES256", "ES384":
		priv := k.key.(*ecdsa.PrivateKey)
		var d []byte
		if k.alg == "ES256" {
			s := sha256.Sum256([]byte(signed))
			d = s[:]
		} else {
			s := sha512.Sum384([]byte(signed))
			d = s[:]
		}
		r, s, e := ecdsa.Sign(rand.Reader, priv, d)
		err = e
		size := (priv.Curve.Params().BitSize + 7) / 8
		sig = make([]byte, 2*size)
		r.FillBytes(sig[:size])
		s.FillBytes(sig[size:])
	case "EdDSA":
		sig = ed25519.Sign(k.key.(ed25519.PrivateKey), []byte(signed))
	default:
		t.Fatalf("signJWT: unsupported alg %s", k.alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + b64(sig)
}

// jwksServer serves a JWKS that tests can change, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []map[string]string
	raw     []byte // when set, served instead of keys
	fetches atomic.Int64
}

func newJWKSServer(t testing.TB, keys ...signingKey) *jwksServer {
	t.Helper()
	js := &jwksServer{}
	js.set(keys...)
	js.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		js.fetches.Add(1)
		js.mu.Lock()
		defer js.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if js.raw != nil {
			_, _ = w.Write(js.raw)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": js.keys})
	}))
	t.Cleanup(js.Close)
	return js
}

func (js *jwksServer) set(keys ...signingKey) {
	js.mu.Lock()
	defer js.mu.Unlock()
	js.keys = nil
	for _, k := range keys {
		js.keys = append(js.keys, publicJWK(k))
	}
}

// fakeClock is a settable clock for JWTConfig.Now.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time             { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration)    { c.ns.Add(int64(d)) }
func (c *fakeClock) Unix(d time.Duration) int64 { return c.Now().Add(d).Unix() }

// logBuffer is a concurrency-safe buffer for slog output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lines returns the JSON log records.
func (l *logBuffer) lines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace([]byte(l.String())), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func newLogger(l *logBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// remote returns the SDK's remote codec pointed at srv, sending token and namespace.
func remote(srv *httptest.Server, token, namespace string) converter.PayloadCodec {
	return converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint: srv.URL,
		ModifyRequest: func(r *http.Request) error {
			if token != "" {
				r.Header.Set("Authorization", "Bearer "+token)
			}
			if namespace != "" {
				r.Header.Set("X-Namespace", namespace)
			}
			return nil
		},
	})
}

// post sends a raw request to the server and returns the response status and body.
func post(t testing.TB, h http.Handler, path string, body []byte, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String(), rec.Header()
}

// payloadsJSON marshals payloads as the SDK's remote codec does.
func payloadsJSON(t testing.TB, ps ...*commonpb.Payload) []byte {
	t.Helper()
	b, err := json.Marshal(&commonpb.Payloads{Payloads: ps})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsonPayload is the SDK default converter's payload for v.
func jsonPayload(t testing.TB, v any) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tagCodec is a codec that records the namespace it was bound to and writes it into the
// payloads it encodes (encoding "test/tag"), refusing to decode payloads of another namespace.
type tagCodec struct {
	namespace string
	calls     *atomic.Int64
}

func (c tagCodec) WithSerializationContext(sc converter.SerializationContext) converter.PayloadCodec {
	if w, ok := sc.(converter.WorkflowSerializationContext); ok {
		c.namespace = w.Namespace
	}
	return c
}

func (c tagCodec) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	if c.calls != nil {
		c.calls.Add(1)
	}
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		b, err := proto.Marshal(p)
		if err != nil {
			return nil, err
		}
		out[i] = &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("test/tag"), "ns": []byte(c.namespace)}, Data: b}
	}
	return out, nil
}

func (c tagCodec) Decode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	if c.calls != nil {
		c.calls.Add(1)
	}
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		if string(p.Metadata["encoding"]) != "test/tag" {
			out[i] = p
			continue
		}
		if got := string(p.Metadata["ns"]); got != c.namespace {
			return nil, &nsError{got: got, want: c.namespace}
		}
		var inner commonpb.Payload
		if err := proto.Unmarshal(p.Data, &inner); err != nil {
			return nil, err
		}
		out[i] = &inner
	}
	return out, nil
}

type nsError struct{ got, want string }

func (e *nsError) Error() string { return "namespace mismatch: payload " + e.got + ", codec " + e.want }

// Compile-time check that codecserver.Authenticator is implemented by the built-in types.
var (
	_ codecserver.Authenticator = (*codecserver.JWTAuthenticator)(nil)
	_ codecserver.Authenticator = codecserver.AuthenticatorFunc(nil)
)
