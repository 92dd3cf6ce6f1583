package codecserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/offload"

	"github.com/payloadkit/payloadkit/internal/pipeline"
)

// ErrInvalidConfig is returned (wrapped) by New, StaticTokens and NewJWTAuthenticator when
// their configuration is invalid.
var ErrInvalidConfig = errors.New("codecserver: invalid config")

// Defaults of Config.
const (
	// DefaultMaxBodyBytes bounds a request body (4 MiB): enough for a Temporal payload at the
	// server's default 2 MiB blob limit once base64 and JSON are added.
	DefaultMaxBodyBytes = 4 << 20
	// DefaultMaxPayloads bounds the number of payloads in one request.
	DefaultMaxPayloads = 1000
	// DefaultClaimDisplayLimit is the claim size (1 MiB) above which /decode answers a
	// placeholder instead of fetching the offloaded object.
	DefaultClaimDisplayLimit = 1 << 20
	// DefaultMaxDecodedBytes bounds the decoded payloads of one /decode request together (32 MiB).
	DefaultMaxDecodedBytes = 32 << 20
	// DefaultMaxResponseBytes bounds a response body (48 MiB: DefaultMaxDecodedBytes in base64
	// with room for JSON and metadata).
	DefaultMaxResponseBytes = 48 << 20
)

// Header and metadata names used by the server.
const (
	// NamespaceHeader selects the namespace, as sent by the Temporal Web UI and CLI.
	NamespaceHeader = "X-Namespace"
	// RequestIDHeader carries the id the server gives each request, in every response. Error
	// responses quote it; the server's log line for the request carries it with the details.
	RequestIDHeader = "X-Request-Id"

	// PlaceholderEncoding is the encoding of placeholder payloads (JSON text, as the SDK's
	// JSON payload converter writes).
	PlaceholderEncoding = "json/plain"
)

// maxNamespaceLength bounds namespace names taken from requests.
const maxNamespaceLength = 255

// Config configures the Codec Server. Namespaces (or NamespaceCodecs) and Auth (or Insecure)
// are required; every other field has a documented default.
type Config struct {
	// Namespaces maps each namespace to its codecs, in converter.NewCodecDataConverter order
	// (as Kit.Codecs returns them; see FromKit). A namespace not listed here (nor accepted by
	// NamespaceCodecs) is answered 404: there is no fallback.
	Namespaces map[string][]converter.PayloadCodec
	// NamespaceCodecs, if set, is consulted for namespaces missing from Namespaces; it returns
	// ok=false for unknown namespaces. It must be safe for concurrent use.
	NamespaceCodecs func(namespace string) (codecs []converter.PayloadCodec, ok bool)
	// DefaultNamespace is used when a request names no namespace (no X-Namespace header and
	// no path prefix). Defaults to none: such requests are answered 400.
	DefaultNamespace string

	// Auth authenticates requests. Required unless Insecure is true.
	Auth Authenticator
	// Insecure serves without authentication: every caller may encode and decode every
	// configured namespace. Every log line then carries insecure=true. Only for local development.
	Insecure bool

	// AllowedOrigins lists the browser origins (scheme://host[:port], for example the Temporal
	// Web UI's) allowed by CORS. "*" allows every origin and cannot be combined with
	// AllowCredentials. Requests carrying any other Origin are answered 403.
	AllowedOrigins []string
	// AllowCredentials sends Access-Control-Allow-Credentials: true to allowed origins (needed
	// when the Web UI is configured to include credentials).
	AllowCredentials bool

	// MaxBodyBytes bounds a request body; larger requests are answered 413.
	// Defaults to DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxPayloads bounds the payloads of one request; more are answered 413.
	// Defaults to DefaultMaxPayloads.
	MaxPayloads int
	// ClaimDisplayLimit is the claim-size, in bytes, above which /decode returns a small
	// placeholder payload (encoding json/plain, naming the size and object key) instead of
	// fetching the offloaded object. Defaults to DefaultClaimDisplayLimit; negative means
	// always fetch.
	ClaimDisplayLimit int64

	// MaxDecodedBytes bounds the decoded payloads of one /decode request together, in bytes
	// (protobuf size): payloads are decoded one at a time and the request is answered 413,
	// naming the limit, as soon as their sum passes it, so a request retains at most this
	// much plus one payload (itself bounded by the codecs' own limits).
	// Defaults to DefaultMaxDecodedBytes.
	MaxDecodedBytes int64
	// MaxResponseBytes bounds a response body; a larger response is not sent and the request
	// is answered 413, naming the limit. Defaults to DefaultMaxResponseBytes.
	MaxResponseBytes int64

	// Logger receives one audit line per request. Defaults to slog.Default().
	Logger *slog.Logger
}

// namespaceCodecs are the codecs of one namespace, bound to its serialization context.
type namespaceCodecs []converter.PayloadCodec

type server struct {
	cfg        Config
	log        *slog.Logger
	namespaces map[string]namespaceCodecs
	anyOrigin  bool
}

// New validates cfg and returns the Codec Server handler. It serves POST /encode and
// POST /decode (also as /{namespace}/encode and /{namespace}/decode), GET /healthz and CORS
// preflights. To serve under a path prefix, wrap it in http.StripPrefix.
//
// Status codes: 200 success; 400 malformed request, missing namespace or a codec error on
// the request's payloads; 401 missing or invalid credentials; 403 a valid caller without the
// namespace or right, or a disallowed Origin; 404 unknown path or namespace; 405 wrong method;
// 413 body larger than MaxBodyBytes or more than MaxPayloads payloads; 500 a codec broke its
// contract; 503 a codec timed out.
func New(cfg Config) (http.Handler, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if len(cfg.Namespaces) == 0 && cfg.NamespaceCodecs == nil {
		return nil, bad("Namespaces or NamespaceCodecs is required")
	}
	switch {
	case cfg.Auth == nil && !cfg.Insecure:
		return nil, bad("Auth is required (set Insecure to serve without authentication)")
	case cfg.Auth != nil && cfg.Insecure:
		return nil, bad("Auth and Insecure are mutually exclusive")
	}
	if cfg.MaxBodyBytes < 0 || cfg.MaxPayloads < 0 || cfg.MaxDecodedBytes < 0 || cfg.MaxResponseBytes < 0 {
		return nil, bad("MaxBodyBytes, MaxPayloads, MaxDecodedBytes and MaxResponseBytes must not be negative")
	}
	if cfg.MaxDecodedBytes == 0 {
		cfg.MaxDecodedBytes = DefaultMaxDecodedBytes
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxPayloads == 0 {
		cfg.MaxPayloads = DefaultMaxPayloads
	}
	if cfg.ClaimDisplayLimit == 0 {
		cfg.ClaimDisplayLimit = DefaultClaimDisplayLimit
	}
	s := &server{cfg: cfg, namespaces: map[string]namespaceCodecs{}}
	for _, o := range cfg.AllowedOrigins {
		if o == "*" {
			if cfg.AllowCredentials {
				return nil, bad(`AllowedOrigins "*" cannot be combined with AllowCredentials`)
			}
			s.anyOrigin = true
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.HasSuffix(o, "/") {
			return nil, bad("AllowedOrigins: %q is not an origin (want scheme://host[:port])", o)
		}
	}
	for ns, codecs := range cfg.Namespaces {
		if err := validNamespace(ns); err != nil {
			return nil, bad("Namespaces: %v", err)
		}
		if slices.Contains(codecs, nil) {
			return nil, bad("Namespaces[%q]: nil codec", ns)
		}
		s.namespaces[ns] = bindNamespace(ns, codecs)
	}
	if cfg.DefaultNamespace != "" {
		if _, ok := s.lookup(cfg.DefaultNamespace); !ok {
			return nil, bad("DefaultNamespace %q is not a configured namespace", cfg.DefaultNamespace)
		}
	}
	s.log = cfg.Logger
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "codecserver")
	if cfg.Insecure {
		s.log = s.log.With("insecure", true)
		s.log.Warn("codec server runs without authentication: every caller may encode and decode every namespace")
	}
	return s, nil
}

// bindNamespace gives codecs that implement converter.PayloadCodecWithSerializationContext the
// namespace's workflow serialization context, so encryption contexts match what workers wrote.
func bindNamespace(ns string, codecs []converter.PayloadCodec) namespaceCodecs {
	return pipeline.BindCodecs(codecs, converter.WorkflowSerializationContext{Namespace: ns})
}

func validNamespace(ns string) error {
	if ns == "" || len(ns) > maxNamespaceLength {
		return fmt.Errorf("namespace must be 1 to %d bytes long", maxNamespaceLength)
	}
	for _, r := range ns {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("namespace %q: only letters, digits, '-', '_' and '.' are allowed", ns)
		}
	}
	return nil
}

func (s *server) lookup(ns string) (namespaceCodecs, bool) {
	if c, ok := s.namespaces[ns]; ok {
		return c, true
	}
	if s.cfg.NamespaceCodecs != nil {
		if c, ok := s.cfg.NamespaceCodecs(ns); ok && !slices.Contains(c, nil) {
			return bindNamespace(ns, c), true
		}
	}
	return nil, false
}

// requestError is a failed request: its status, an outcome word for the audit log, and a
// message for the client.
type requestError struct {
	status  int
	outcome string
	msg     string
}

func fail(status int, outcome, format string, args ...any) *requestError {
	return &requestError{status: status, outcome: outcome, msg: fmt.Sprintf(format, args...)}
}

// audit collects one request's audit record. It never holds payload bytes or credentials.
type audit struct {
	requestID                    string
	subject, namespace, endpoint string
	payloads, placeholders       int
	bytesIn, bytesOut            int
	err                          string
}

func (s *server) originAllowed(origin string) bool {
	return s.anyOrigin || slices.Contains(s.cfg.AllowedOrigins, origin)
}

// ServeHTTP implements http.Handler.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	a := &audit{endpoint: strings.TrimPrefix(r.URL.Path, "/"), requestID: newRequestID()}
	w.Header().Set(RequestIDHeader, a.requestID)
	var rerr *requestError
	status := http.StatusOK
	level := slog.LevelInfo
	func() {
		defer func() {
			if p := recover(); p != nil {
				rerr = fail(http.StatusInternalServerError, "panic", "internal error")
				a.err = fmt.Sprint("panic: ", p)
			}
		}()
		origin := r.Header.Get("Origin")
		w.Header().Add("Vary", "Origin")
		if r.Method == http.MethodOptions {
			a.endpoint = "preflight"
			level = slog.LevelDebug
			status, rerr = s.preflight(w, r, origin)
			return
		}
		if origin != "" {
			if !s.originAllowed(origin) {
				rerr = fail(http.StatusForbidden, "origin_forbidden", "origin not allowed")
				return
			}
			s.corsHeaders(w, origin)
		}
		if r.URL.Path == "/healthz" {
			a.endpoint = "healthz"
			level = slog.LevelDebug
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, HEAD")
				rerr = fail(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, "ok\n")
			return
		}
		rerr = s.serveCodec(w, r, a)
	}()
	if rerr != nil {
		status = rerr.status
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="codec-server"`)
		}
		if status >= 500 {
			level = slog.LevelError
		} else if level == slog.LevelInfo {
			level = slog.LevelWarn
		}
		http.Error(w, rerr.msg, status)
	}
	outcome := "ok"
	if rerr != nil {
		outcome = rerr.outcome
	}
	attrs := []slog.Attr{
		slog.String("request_id", a.requestID),
		slog.String("subject", a.subject),
		slog.String("namespace", a.namespace),
		slog.String("endpoint", a.endpoint),
		slog.Int("payloads", a.payloads),
		slog.Int("bytes_in", a.bytesIn),
		slog.Int("bytes_out", a.bytesOut),
		slog.Duration("duration", time.Since(start)),
		slog.Int("status", status),
		slog.String("outcome", outcome),
	}
	if a.placeholders > 0 {
		attrs = append(attrs, slog.Int("placeholders", a.placeholders))
	}
	if a.err != "" {
		attrs = append(attrs, slog.String("error", a.err))
	}
	s.log.LogAttrs(r.Context(), level, "codec request", attrs...)
}

func (s *server) corsHeaders(w http.ResponseWriter, origin string) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	if s.cfg.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

func (s *server) preflight(w http.ResponseWriter, r *http.Request, origin string) (int, *requestError) {
	if origin == "" || r.Header.Get("Access-Control-Request-Method") == "" {
		// Not a CORS preflight.
		w.Header().Set("Allow", "POST, GET, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent, nil
	}
	if !s.originAllowed(origin) {
		return 0, fail(http.StatusForbidden, "origin_forbidden", "origin not allowed")
	}
	s.corsHeaders(w, origin)
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "X-Namespace, Content-Type, Authorization")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent, nil
}

// route splits /encode, /decode, /{ns}/encode and /{ns}/decode.
func route(path string) (ns string, op Operation, ok bool) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	switch len(parts) {
	case 1:
	case 2:
		ns = parts[0]
		if ns == "" {
			return "", "", false
		}
	default:
		return "", "", false
	}
	switch op = Operation(parts[len(parts)-1]); op {
	case OpEncode, OpDecode:
		return ns, op, true
	}
	return "", "", false
}

func (s *server) serveCodec(w http.ResponseWriter, r *http.Request, a *audit) *requestError {
	pathNS, op, ok := route(r.URL.Path)
	if !ok {
		a.endpoint = "unknown"
		return fail(http.StatusNotFound, "not_found", "not found")
	}
	a.endpoint = string(op)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		return fail(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
	}

	// 1. Who is calling (401).
	principal := Principal{Subject: "anonymous", Namespaces: []string{AllNamespaces}, CanDecode: true, CanEncode: true}
	if !s.cfg.Insecure {
		p, err := s.cfg.Auth.Authenticate(r)
		if err != nil {
			a.err = err.Error()
			return fail(http.StatusUnauthorized, "unauthenticated", "unauthorized")
		}
		principal = p
	}
	a.subject = principal.Subject

	// 2. Which namespace (400), may the caller use it (403), does it exist (404).
	ns := r.Header.Get(NamespaceHeader)
	if pathNS != "" {
		if ns != "" && ns != pathNS {
			return fail(http.StatusBadRequest, "bad_namespace", "X-Namespace header and path name different namespaces")
		}
		ns = pathNS
	}
	if ns == "" {
		ns = s.cfg.DefaultNamespace
	}
	if ns == "" {
		return fail(http.StatusBadRequest, "missing_namespace", "missing namespace: set the X-Namespace header")
	}
	if err := validNamespace(ns); err != nil {
		return fail(http.StatusBadRequest, "bad_namespace", "invalid namespace")
	}
	a.namespace = ns
	if !principal.Allows(ns, op) {
		return fail(http.StatusForbidden, "forbidden", "forbidden: no %s right on this namespace", op)
	}
	codecs, ok := s.lookup(ns)
	if !ok {
		return fail(http.StatusNotFound, "unknown_namespace", "unknown namespace")
	}

	// 3. Read a bounded body (413, 400).
	if r.ContentLength > s.cfg.MaxBodyBytes {
		a.bytesIn = int(r.ContentLength)
		return fail(http.StatusRequestEntityTooLarge, "too_large", "request body larger than %d bytes", s.cfg.MaxBodyBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	a.bytesIn = len(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fail(http.StatusRequestEntityTooLarge, "too_large", "request body larger than %d bytes", s.cfg.MaxBodyBytes)
		}
		return fail(http.StatusBadRequest, "bad_request", "reading request body failed")
	}
	var in commonpb.Payloads
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, &in); err != nil {
		return fail(http.StatusBadRequest, "bad_request", "request body is not a JSON Payloads object")
	}
	a.payloads = len(in.Payloads)
	if len(in.Payloads) > s.cfg.MaxPayloads {
		return fail(http.StatusRequestEntityTooLarge, "too_many_payloads", "more than %d payloads", s.cfg.MaxPayloads)
	}
	if slices.Contains(in.Payloads, nil) {
		return fail(http.StatusBadRequest, "bad_request", "null payload")
	}

	// 4. Run the codecs. The details of a codec error go to the log only: the caller learns
	// that the request failed and its id, never why a payload could not be decoded (which
	// object is missing, what a stored object holds, which key refused), except for the size
	// limits it ran into.
	var out []*commonpb.Payload
	switch op {
	case OpEncode:
		out, err = encode(codecs, in.Payloads)
	case OpDecode:
		out, a.placeholders, err = s.decode(codecs, in.Payloads)
	}
	if err != nil {
		a.err = err.Error()
		switch {
		case errors.Is(err, errCountMismatch):
			return fail(http.StatusInternalServerError, "codec_error", "%s failed (request id %s)", op, a.requestID)
		case errors.Is(err, context.DeadlineExceeded):
			return fail(http.StatusServiceUnavailable, "codec_timeout", "%s timed out (request id %s)", op, a.requestID)
		case errors.Is(err, errDecodedBudget):
			return fail(http.StatusRequestEntityTooLarge, "too_large", "%s failed: the decoded payloads exceed the server's MaxDecodedBytes of %d bytes (request id %s)",
				op, s.cfg.MaxDecodedBytes, a.requestID)
		case errors.Is(err, codec.ErrDecodedTooLarge), errors.Is(err, offload.ErrTooLarge):
			return fail(http.StatusRequestEntityTooLarge, "too_large", "%s failed: a payload exceeds a size limit of the codecs (MaxDecodedSize, MaxDecodedBatchSize, MaxPayloadSize or MaxBatchSize) (request id %s)",
				op, a.requestID)
		}
		return fail(http.StatusBadRequest, "codec_error", "%s failed: the payloads could not be %sd (request id %s)", op, op, a.requestID)
	}

	resp, err := marshalPayloads(out)
	if err != nil {
		a.err = err.Error()
		return fail(http.StatusInternalServerError, "marshal_error", "encoding the response failed")
	}
	if int64(len(resp)) > s.cfg.MaxResponseBytes {
		a.err = fmt.Sprintf("response of %d bytes", len(resp))
		return fail(http.StatusRequestEntityTooLarge, "too_large", "%s failed: the response would exceed the server's MaxResponseBytes of %d bytes (request id %s)",
			op, s.cfg.MaxResponseBytes, a.requestID)
	}
	a.bytesOut = len(resp)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(resp)
	return nil
}

var (
	errCountMismatch = errors.New("codecserver: codec returned a different number of payloads")
	errDecodedBudget = errors.New("codecserver: decoded payloads exceed MaxDecodedBytes")
)

// newRequestID returns a random id for one request.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func encode(codecs namespaceCodecs, payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	var err error
	for i := len(codecs) - 1; i >= 0; i-- {
		n := len(payloads)
		if payloads, err = codecs[i].Encode(payloads); err != nil {
			return nil, err
		}
		if len(payloads) != n {
			return nil, fmt.Errorf("%w: encode stage %d: %d in, %d out", errCountMismatch, i, n, len(payloads))
		}
	}
	return payloads, nil
}

func decodeAll(codecs namespaceCodecs, payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	var err error
	for i, c := range codecs {
		n := len(payloads)
		if payloads, err = c.Decode(payloads); err != nil {
			return nil, err
		}
		if len(payloads) != n {
			return nil, fmt.Errorf("%w: decode stage %d: %d in, %d out", errCountMismatch, i, n, len(payloads))
		}
	}
	return payloads, nil
}

// decode decodes payloads one at a time against MaxDecodedBytes, replacing claims larger
// than ClaimDisplayLimit by placeholders.
func (s *server) decode(codecs namespaceCodecs, payloads []*commonpb.Payload) ([]*commonpb.Payload, int, error) {
	out := make([]*commonpb.Payload, len(payloads))
	placeholders := 0
	var total int64
	for i, p := range payloads {
		if s.cfg.ClaimDisplayLimit >= 0 {
			if ph := s.placeholder(p); ph != nil {
				out[i] = ph
				placeholders++
				continue
			}
		}
		dec, err := decodeAll(codecs, []*commonpb.Payload{p})
		if err != nil {
			return nil, 0, fmt.Errorf("payload %d: %w", i, err)
		}
		if total += int64(proto.Size(dec[0])); total > s.cfg.MaxDecodedBytes {
			return nil, 0, fmt.Errorf("%w: %d bytes after payload %d, the limit is %d", errDecodedBudget, total, i, s.cfg.MaxDecodedBytes)
		}
		out[i] = dec[0]
	}
	return out, placeholders, nil
}

// Placeholder is the JSON document carried by a placeholder payload.
type Placeholder struct {
	// Message explains why the payload is not shown.
	Message string `json:"message"`
	// Key is the object key of the offloaded payload.
	Key string `json:"key"`
	// Size is the offloaded object's size in bytes.
	Size int64 `json:"size"`
	// Limit is the server's ClaimDisplayLimit.
	Limit int64 `json:"limit"`
}

// placeholder returns a placeholder for a claim larger than the display limit, or nil.
func (s *server) placeholder(p *commonpb.Payload) *commonpb.Payload {
	if string(p.GetMetadata()["encoding"]) != offload.EncodingClaimCheck {
		return nil
	}
	raw := p.GetMetadata()[offload.MetadataClaimSize]
	if len(raw) == 0 || len(raw) > 20 {
		return nil
	}
	size, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || size <= s.cfg.ClaimDisplayLimit {
		return nil
	}
	key := string(p.GetMetadata()[offload.MetadataClaimKey])
	doc, err := json.Marshal(Placeholder{
		Message: "offloaded payload not shown: larger than the codec server's display limit",
		Key:     truncate(key, 1024),
		Size:    size,
		Limit:   s.cfg.ClaimDisplayLimit,
	})
	if err != nil {
		return nil
	}
	return &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(PlaceholderEncoding)}, Data: doc}
}

// wirePayload is the protobuf JSON form of a Payload, written with encoding/json: several times
// faster than protojson for payload bytes, and read back by protojson unchanged.
type wirePayload struct {
	Metadata         map[string][]byte `json:"metadata,omitempty"`
	Data             []byte            `json:"data,omitempty"`
	ExternalPayloads []json.RawMessage `json:"externalPayloads,omitempty"`
}

func marshalPayloads(payloads []*commonpb.Payload) ([]byte, error) {
	out := struct {
		Payloads []wirePayload `json:"payloads"`
	}{Payloads: make([]wirePayload, len(payloads))}
	for i, p := range payloads {
		if p == nil {
			return nil, fmt.Errorf("codec returned a nil payload at index %d", i)
		}
		w := wirePayload{Metadata: p.GetMetadata(), Data: p.GetData()}
		for _, ext := range p.GetExternalPayloads() {
			b, err := protojson.Marshal(ext)
			if err != nil {
				return nil, err
			}
			w.ExternalPayloads = append(w.ExternalPayloads, b)
		}
		out.Payloads[i] = w
	}
	return json.Marshal(out)
}
