package codecserver_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/codecserver"
)

const (
	testToken   = "static-token-0123456789abcdef"
	readerToken = "reader-token-0123456789abcdef"
)

func compression(t testing.TB) converter.PayloadCodec {
	t.Helper()
	c, err := codec.NewCompressionCodec(nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func staticAuth(t testing.TB) codecserver.Authenticator {
	t.Helper()
	a, err := codecserver.StaticTokens(map[string]codecserver.Principal{
		testToken:   {Subject: "ops", Namespaces: []string{"orders", "billing"}, CanDecode: true, CanEncode: true},
		readerToken: {Subject: "reader", Namespaces: []string{"orders"}, CanDecode: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newHandler(t testing.TB, cfg codecserver.Config) http.Handler {
	t.Helper()
	if cfg.Namespaces == nil && cfg.NamespaceCodecs == nil {
		cfg.Namespaces = map[string][]converter.PayloadCodec{
			"orders":  {compression(t)},
			"billing": {compression(t)},
		}
	}
	if cfg.Auth == nil && !cfg.Insecure {
		cfg.Auth = staticAuth(t)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h, err := codecserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func largeValue() string {
	return strings.Repeat("order line: 3 x widget, shipped to Springfield; ", 40)
}

// TestRemoteRoundTrip drives the server with the SDK's remote codec: what the server encodes,
// local codecs decode, and what local codecs encode, the server decodes.
func TestRemoteRoundTrip(t *testing.T) {
	local := compression(t)
	srv := httptest.NewServer(newHandler(t, codecserver.Config{}))
	defer srv.Close()
	rc := remote(srv, testToken, "orders")

	small := jsonPayload(t, "hi")
	big := jsonPayload(t, largeValue())
	orig := []*commonpb.Payload{small, big}
	origCopy := []*commonpb.Payload{proto.Clone(small).(*commonpb.Payload), proto.Clone(big).(*commonpb.Payload)}

	enc, err := rc.Encode(orig)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) != 2 {
		t.Fatalf("encode returned %d payloads", len(enc))
	}
	if got := string(enc[1].Metadata["encoding"]); got != codec.EncodingZstd {
		t.Errorf("large payload encoding = %q, want %q", got, codec.EncodingZstd)
	}
	if len(enc[1].Data) >= len(big.Data) {
		t.Errorf("large payload not compressed: %d >= %d bytes", len(enc[1].Data), len(big.Data))
	}
	for i := range orig {
		if !proto.Equal(orig[i], origCopy[i]) {
			t.Errorf("input payload %d was mutated", i)
		}
	}
	dec, err := local.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range orig {
		if !proto.Equal(dec[i], orig[i]) {
			t.Errorf("local decode of server-encoded payload %d differs", i)
		}
	}

	localEnc, err := local.Encode(orig)
	if err != nil {
		t.Fatal(err)
	}
	remoteDec, err := rc.Decode(localEnc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range orig {
		if !proto.Equal(remoteDec[i], orig[i]) {
			t.Errorf("server decode of locally encoded payload %d differs", i)
		}
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(remoteDec[1], &s); err != nil || s != largeValue() {
		t.Errorf("decoded value = %.20q, %v", s, err)
	}
}

// TestEmptyRequest checks that zero payloads give an empty, well-formed answer.
func TestEmptyRequest(t *testing.T) {
	h := newHandler(t, codecserver.Config{})
	code, body, _ := post(t, h, "/decode", []byte(`{"payloads":[]}`), map[string]string{
		"Authorization": "Bearer " + testToken, "X-Namespace": "orders"})
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var ps commonpb.Payloads
	if err := json.Unmarshal([]byte(body), &ps); err != nil || len(ps.Payloads) != 0 {
		t.Fatalf("body %q: %v", body, err)
	}
}

// TestSerializationContext checks that codecs receive the request's namespace, so a payload
// written for one namespace cannot be decoded through another's context.
func TestSerializationContext(t *testing.T) {
	logs := &logBuffer{}
	h := newHandler(t, codecserver.Config{
		Insecure: true,
		Namespaces: map[string][]converter.PayloadCodec{
			"orders":  {tagCodec{}},
			"billing": {tagCodec{}},
		},
		Logger: newLogger(logs),
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	in := jsonPayload(t, "x")
	enc, err := remote(srv, "", "orders").Encode([]*commonpb.Payload{in})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(enc[0].Metadata["ns"]); got != "orders" {
		t.Fatalf("codec bound to namespace %q, want orders", got)
	}
	// The caller learns that decoding failed and the request id; the reason goes to the log.
	_, err = remote(srv, "", "billing").Decode(enc)
	if err == nil || strings.Contains(err.Error(), "namespace mismatch") || !strings.Contains(err.Error(), "request id") {
		t.Fatalf("decode through billing: err = %v, want a generic failure with a request id", err)
	}
	if !strings.Contains(logs.String(), "namespace mismatch") {
		t.Fatalf("the log does not carry the reason: %s", logs.String())
	}
	dec, err := remote(srv, "", "orders").Decode(enc)
	if err != nil || !proto.Equal(dec[0], in) {
		t.Fatalf("decode through orders: %v", err)
	}
	// The path prefix selects the namespace as well.
	code, body, _ := post(t, h, "/orders/encode", payloadsJSON(t, in), nil)
	if code != http.StatusOK || !strings.Contains(body, b64std("orders")) {
		t.Fatalf("/orders/encode: %d %s", code, body)
	}
}

func b64std(s string) string {
	b, _ := json.Marshal([]byte(s))
	return strings.Trim(string(b), `"`)
}

func TestNamespaceSelection(t *testing.T) {
	calls := &atomic.Int64{}
	fallback := func(ns string) ([]converter.PayloadCodec, bool) {
		if ns == "dynamic" {
			return []converter.PayloadCodec{tagCodec{calls: calls}}, true
		}
		return nil, false
	}
	auth := staticAuthAll(t)
	h := newHandler(t, codecserver.Config{Auth: auth, NamespaceCodecs: fallback, Namespaces: map[string][]converter.PayloadCodec{
		"orders": {compression(t)},
	}})
	hDefault := newHandler(t, codecserver.Config{Auth: auth, DefaultNamespace: "orders"})
	body := payloadsJSON(t, jsonPayload(t, "x"))
	authz := "Bearer " + testToken
	for _, tc := range []struct {
		name   string
		h      http.Handler
		path   string
		hdr    map[string]string
		status int
	}{
		{"header", h, "/decode", map[string]string{"X-Namespace": "orders"}, 200},
		{"path", h, "/orders/decode", nil, 200},
		{"path and same header", h, "/orders/decode", map[string]string{"X-Namespace": "orders"}, 200},
		{"path and other header", h, "/orders/decode", map[string]string{"X-Namespace": "billing"}, 400},
		{"missing", h, "/decode", nil, 400},
		{"unknown", h, "/decode", map[string]string{"X-Namespace": "nope"}, 404},
		{"unknown path", h, "/nope/decode", nil, 404},
		{"invalid name", h, "/decode", map[string]string{"X-Namespace": "a b"}, 400},
		{"dynamic", h, "/decode", map[string]string{"X-Namespace": "dynamic"}, 200},
		{"default", hDefault, "/decode", nil, 200},
		{"unknown endpoint", h, "/orders/transcode", nil, 404},
		{"deep path", h, "/a/b/decode", nil, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"Authorization": authz}
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			code, resp, _ := post(t, tc.h, tc.path, body, hdr)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %s", code, tc.status, resp)
			}
		})
	}
	if calls.Load() != 1 {
		t.Errorf("NamespaceCodecs codec called %d times, want 1", calls.Load())
	}
}

func staticAuthAll(t testing.TB) codecserver.Authenticator {
	t.Helper()
	a, err := codecserver.StaticTokens(map[string]codecserver.Principal{
		testToken: {Subject: "ops", Namespaces: []string{codecserver.AllNamespaces}, CanDecode: true, CanEncode: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestMethods(t *testing.T) {
	h := newHandler(t, codecserver.Config{})
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/healthz", 200},
		{http.MethodHead, "/healthz", 200},
		{http.MethodPost, "/healthz", 405},
		{http.MethodGet, "/decode", 405},
		{http.MethodPut, "/orders/encode", 405},
		{http.MethodGet, "/", 404},
		{http.MethodOptions, "/decode", 204}, // not a preflight: no Origin
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, rec.Code, tc.status)
		}
	}
}

func TestStaticTokens(t *testing.T) {
	h := newHandler(t, codecserver.Config{})
	body := payloadsJSON(t, jsonPayload(t, "x"))
	for _, tc := range []struct {
		name, path, authz, ns string
		status                int
	}{
		{"valid", "/decode", "Bearer " + testToken, "orders", 200},
		{"valid encode", "/encode", "Bearer " + testToken, "billing", 200},
		{"lower-case scheme", "/decode", "bearer " + testToken, "orders", 200},
		{"missing", "/decode", "", "orders", 401},
		{"basic scheme", "/decode", "Basic " + testToken, "orders", 401},
		{"wrong token", "/decode", "Bearer " + testToken + "x", "orders", 401},
		{"prefix of token", "/decode", "Bearer " + testToken[:20], "orders", 401},
		{"reader decodes", "/decode", "Bearer " + readerToken, "orders", 200},
		{"reader cannot encode", "/encode", "Bearer " + readerToken, "orders", 403},
		{"reader other namespace", "/decode", "Bearer " + readerToken, "billing", 403},
		{"forbidden beats unknown", "/decode", "Bearer " + readerToken, "nope", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"X-Namespace": tc.ns}
			if tc.authz != "" {
				hdr["Authorization"] = tc.authz
			}
			code, resp, h := post(t, h, tc.path, body, hdr)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %s", code, tc.status, resp)
			}
			if code == 401 && h.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	for _, bad := range []map[string]codecserver.Principal{
		nil,
		{"short": {Subject: "x"}},
		{"has space 0123456789": {Subject: "x"}},
		{"0123456789abcdef0123": {}},
	} {
		if _, err := codecserver.StaticTokens(bad); !errors.Is(err, codecserver.ErrInvalidConfig) {
			t.Errorf("StaticTokens(%v): err = %v, want ErrInvalidConfig", bad, err)
		}
	}
}

func TestCORS(t *testing.T) {
	const ui = "http://localhost:8233"
	h := newHandler(t, codecserver.Config{AllowedOrigins: []string{ui}, AllowCredentials: true})
	preflight := func(origin string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodOptions, "/decode", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace,authorization")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	rec := preflight(ui)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("allowed preflight: status %d", rec.Code)
	}
	want := map[string]string{
		"Access-Control-Allow-Origin":      ui,
		"Access-Control-Allow-Methods":     "POST, GET, OPTIONS",
		"Access-Control-Allow-Headers":     "X-Namespace, Content-Type, Authorization",
		"Access-Control-Allow-Credentials": "true",
		"Vary":                             "Origin",
	}
	for k, v := range want {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("preflight %s = %q, want %q", k, got, v)
		}
	}

	rec = preflight("https://evil.example")
	if rec.Code != http.StatusForbidden {
		t.Errorf("other origin preflight: status %d, want 403", rec.Code)
	}
	for k := range rec.Header() {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("other origin preflight got header %s", k)
		}
	}

	body := payloadsJSON(t, jsonPayload(t, "x"))
	code, _, hdr := post(t, h, "/decode", body, map[string]string{"Origin": ui, "Authorization": "Bearer " + testToken, "X-Namespace": "orders"})
	if code != 200 || hdr.Get("Access-Control-Allow-Origin") != ui || hdr.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("allowed POST: status %d, headers %v", code, hdr)
	}
	// Errors are readable by the allowed origin too.
	code, _, hdr = post(t, h, "/decode", body, map[string]string{"Origin": ui, "X-Namespace": "orders"})
	if code != 401 || hdr.Get("Access-Control-Allow-Origin") != ui {
		t.Errorf("allowed origin without token: status %d, headers %v", code, hdr)
	}
	code, _, hdr = post(t, h, "/decode", body, map[string]string{"Origin": "https://evil.example", "Authorization": "Bearer " + testToken, "X-Namespace": "orders"})
	if code != 403 || hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin POST: status %d, headers %v", code, hdr)
	}

	// Without AllowCredentials no credentials header; "*" echoes any origin.
	h = newHandler(t, codecserver.Config{AllowedOrigins: []string{"*"}})
	req := httptest.NewRequest(http.MethodOptions, "/decode", nil)
	req.Header.Set("Origin", "https://any.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 204 || rec.Header().Get("Access-Control-Allow-Origin") != "https://any.example" ||
		rec.Header().Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("wildcard preflight: %d %v", rec.Code, rec.Header())
	}
}

func TestLimits(t *testing.T) {
	h := newHandler(t, codecserver.Config{MaxBodyBytes: 1024, MaxPayloads: 3})
	hdr := map[string]string{"Authorization": "Bearer " + testToken, "X-Namespace": "orders"}

	big := payloadsJSON(t, jsonPayload(t, strings.Repeat("x", 2000)))
	if code, body, _ := post(t, h, "/decode", big, hdr); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: status %d, want 413: %s", code, body)
	}
	// Without Content-Length (chunked), MaxBytesReader stops the read.
	req := httptest.NewRequest(http.MethodPost, "/decode", io.MultiReader(bytes.NewReader(big)))
	req.ContentLength = -1
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized chunked body: status %d, want 413", rec.Code)
	}

	p := jsonPayload(t, "x")
	if code, _, _ := post(t, h, "/decode", payloadsJSON(t, p, p, p), hdr); code != 200 {
		t.Errorf("3 payloads: status %d, want 200", code)
	}
	if code, _, _ := post(t, h, "/decode", payloadsJSON(t, p, p, p, p), hdr); code != http.StatusRequestEntityTooLarge {
		t.Errorf("4 payloads: status %d, want 413", code)
	}
	for _, bad := range []string{``, `{`, `[]`, `{"payloads":{}}`, `{"payloads":[{"data":"!!"}]}`, `{"payloads":[null]}`} {
		if code, _, _ := post(t, h, "/decode", []byte(bad), hdr); code != http.StatusBadRequest {
			t.Errorf("body %q: status %d, want 400", bad, code)
		}
	}
	// A corrupt compressed payload is the caller's problem: 400, not 500.
	corrupt := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(codec.EncodingZstd)}, Data: []byte("not zstd")}
	if code, _, _ := post(t, h, "/decode", payloadsJSON(t, corrupt), hdr); code != http.StatusBadRequest {
		t.Errorf("corrupt payload: status %d, want 400", code)
	}
}

// claimCodec stands in for the offload stage: it "fetches" claims, counting fetches.
type claimCodec struct{ fetched *atomic.Int64 }

func (c claimCodec) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) { return ps, nil }
func (c claimCodec) Decode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		out[i] = p
		if string(p.Metadata["encoding"]) == "binary/claim-check" {
			c.fetched.Add(1)
			out[i] = &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"fetched ` + string(p.Metadata["claim-key"]) + `"`)}
		}
	}
	return out, nil
}

func claim(key string, size int) *commonpb.Payload {
	return &commonpb.Payload{Metadata: map[string][]byte{
		"encoding":   []byte("binary/claim-check"),
		"claim-key":  []byte(key),
		"claim-size": []byte(strconv.Itoa(size)),
	}, Data: []byte("claim")}
}

func TestClaimPlaceholder(t *testing.T) {
	fetched := &atomic.Int64{}
	h := newHandler(t, codecserver.Config{
		Insecure:          true,
		ClaimDisplayLimit: 1000,
		Namespaces:        map[string][]converter.PayloadCodec{"orders": {claimCodec{fetched}}},
		Logger:            newLogger(&logBuffer{}),
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	plain := jsonPayload(t, "plain")
	in := []*commonpb.Payload{claim("pk/orders/sha256/aa", 5000), plain, claim("pk/orders/sha256/bb", 1000)}
	out, err := remote(srv, "", "orders").Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	if fetched.Load() != 1 {
		t.Errorf("fetched %d claims, want 1 (only the one within the limit)", fetched.Load())
	}
	if got := string(out[0].Metadata["encoding"]); got != codecserver.PlaceholderEncoding {
		t.Fatalf("placeholder encoding %q", got)
	}
	var ph codecserver.Placeholder
	if err := converter.GetDefaultDataConverter().FromPayload(out[0], &ph); err != nil {
		t.Fatal(err)
	}
	if ph.Key != "pk/orders/sha256/aa" || ph.Size != 5000 || ph.Limit != 1000 || ph.Message == "" {
		t.Errorf("placeholder = %+v", ph)
	}
	if !proto.Equal(out[1], plain) {
		t.Error("plain payload changed")
	}
	if string(out[2].Data) != `"fetched pk/orders/sha256/bb"` {
		t.Errorf("claim within limit: %q", out[2].Data)
	}

	// A negative limit always fetches.
	fetched.Store(0)
	h = newHandler(t, codecserver.Config{
		Insecure: true, ClaimDisplayLimit: -1, Logger: newLogger(&logBuffer{}),
		Namespaces: map[string][]converter.PayloadCodec{"orders": {claimCodec{fetched}}},
	})
	if code, _, _ := post(t, h, "/orders/decode", payloadsJSON(t, in...), nil); code != 200 || fetched.Load() != 2 {
		t.Errorf("limit -1: status %d, fetched %d, want 200 and 2", code, fetched.Load())
	}
}

// TestAuditLog checks one line per request with the audit fields, and that neither payload
// bytes nor the bearer token reach the log.
func TestAuditLog(t *testing.T) {
	var logs logBuffer
	h := newHandler(t, codecserver.Config{Logger: newLogger(&logs)})
	const secret = "card number 4111-1111-1111-1111"
	srv := httptest.NewServer(h)
	defer srv.Close()
	rc := remote(srv, testToken, "orders")
	enc, err := rc.Encode([]*commonpb.Payload{jsonPayload(t, secret+strings.Repeat(" padding", 50))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Decode(enc); err != nil {
		t.Fatal(err)
	}
	// A failing request: the token is wrong but the payload still carries the secret.
	if _, err := remote(srv, testToken+"wrong", "orders").Decode([]*commonpb.Payload{jsonPayload(t, secret)}); err == nil {
		t.Fatal("wrong token accepted")
	}

	out := logs.String()
	for _, leak := range []string{secret, "4111-1111-1111-1111", testToken, b64std(secret)[:16]} {
		if strings.Contains(out, leak) {
			t.Errorf("audit log contains %q", leak)
		}
	}
	lines := logs.lines(t)
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3:\n%s", len(lines), out)
	}
	for i, want := range []struct {
		endpoint string
		status   float64
		outcome  string
	}{{"encode", 200, "ok"}, {"decode", 200, "ok"}, {"decode", 401, "unauthenticated"}} {
		l := lines[i]
		if l["endpoint"] != want.endpoint || l["status"] != want.status || l["outcome"] != want.outcome || l["msg"] != "codec request" {
			t.Errorf("line %d = %v, want %+v", i, l, want)
		}
		if want.status == 200 && (l["payloads"] != 1.0 || l["bytes_in"].(float64) <= 0) {
			t.Errorf("line %d: payloads/bytes_in = %v/%v", i, l["payloads"], l["bytes_in"])
		}
		for _, k := range []string{"subject", "namespace", "duration", "bytes_out"} {
			if _, ok := l[k]; !ok {
				t.Errorf("line %d lacks %s", i, k)
			}
		}
		if _, ok := l["insecure"]; ok {
			t.Errorf("line %d marked insecure", i)
		}
	}
	if lines[0]["subject"] != "ops" || lines[0]["namespace"] != "orders" || lines[0]["bytes_out"].(float64) <= 0 {
		t.Errorf("encode line: %v", lines[0])
	}
}

func TestInsecure(t *testing.T) {
	_, err := codecserver.New(codecserver.Config{Namespaces: map[string][]converter.PayloadCodec{"orders": {compression(t)}}})
	if !errors.Is(err, codecserver.ErrInvalidConfig) {
		t.Fatalf("New without Auth: err = %v, want ErrInvalidConfig", err)
	}
	var logs logBuffer
	h := newHandler(t, codecserver.Config{Insecure: true, Logger: newLogger(&logs)})
	if code, body, _ := post(t, h, "/decode", payloadsJSON(t, jsonPayload(t, "x")), map[string]string{"X-Namespace": "billing"}); code != 200 {
		t.Fatalf("insecure decode: %d %s", code, body)
	}
	lines := logs.lines(t)
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want a warning and an audit line", len(lines))
	}
	for _, l := range lines {
		if l["insecure"] != true {
			t.Errorf("log line without insecure=true: %v", l)
		}
	}
}

func TestNewValidation(t *testing.T) {
	ns := map[string][]converter.PayloadCodec{"orders": {compression(t)}}
	auth := staticAuth(t)
	for name, cfg := range map[string]codecserver.Config{
		"no namespaces":         {Auth: auth},
		"auth and insecure":     {Namespaces: ns, Auth: auth, Insecure: true},
		"negative body":         {Namespaces: ns, Auth: auth, MaxBodyBytes: -1},
		"negative payloads":     {Namespaces: ns, Auth: auth, MaxPayloads: -1},
		"star with credentials": {Namespaces: ns, Auth: auth, AllowedOrigins: []string{"*"}, AllowCredentials: true},
		"origin with path":      {Namespaces: ns, Auth: auth, AllowedOrigins: []string{"http://ui.example/app"}},
		"origin with slash":     {Namespaces: ns, Auth: auth, AllowedOrigins: []string{"http://ui.example/"}},
		"origin without scheme": {Namespaces: ns, Auth: auth, AllowedOrigins: []string{"ui.example"}},
		"bad namespace":         {Namespaces: map[string][]converter.PayloadCodec{"a/b": nil}, Auth: auth},
		"nil codec":             {Namespaces: map[string][]converter.PayloadCodec{"orders": {nil}}, Auth: auth},
		"unknown default":       {Namespaces: ns, Auth: auth, DefaultNamespace: "billing"},
	} {
		if _, err := codecserver.New(cfg); !errors.Is(err, codecserver.ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", name, err)
		}
	}
}

// panicCodec breaks the codec contract.
type panicCodec struct{}

func (panicCodec) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) { panic("boom") }
func (panicCodec) Decode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) { return ps[:0], nil }

func TestCodecContractViolations(t *testing.T) {
	var logs logBuffer
	h := newHandler(t, codecserver.Config{Insecure: true, Logger: newLogger(&logs),
		Namespaces: map[string][]converter.PayloadCodec{"orders": {panicCodec{}}}})
	body := payloadsJSON(t, jsonPayload(t, "x"))
	for _, path := range []string{"/orders/encode", "/orders/decode"} {
		if code, _, _ := post(t, h, path, body, nil); code != http.StatusInternalServerError {
			t.Errorf("%s: status %d, want 500", path, code)
		}
	}
	if !strings.Contains(logs.String(), "panic: boom") {
		t.Errorf("panic not logged: %s", logs.String())
	}
}

func ExampleFromKit() {
	// Any value with a Codecs method works; a *payloadkit.Kit is the usual one.
	m := codecserver.FromKit(codecSource{}, "orders", "billing")
	fmt.Println(len(m), len(m["orders"]), len(m["billing"]))
	// Output: 2 1 1
}

type codecSource struct{}

func (codecSource) Codecs() []converter.PayloadCodec {
	c, _ := codec.NewCompressionCodec(nil)
	return []converter.PayloadCodec{c}
}

// TestResponseIsProtoJSON checks that responses read back with protojson to the same payloads,
// external payload details included.
func TestResponseIsProtoJSON(t *testing.T) {
	h := newHandler(t, codecserver.Config{Insecure: true, Namespaces: map[string][]converter.PayloadCodec{"orders": nil}})
	in := []*commonpb.Payload{
		{Metadata: map[string][]byte{"encoding": []byte("binary/plain"), "k\"\n<>&": {0, 0xff, '"'}}, Data: []byte("\x00\xffé<script>")},
		{},
		{Data: []byte("x"), ExternalPayloads: []*commonpb.Payload_ExternalPayloadDetails{{SizeBytes: 1 << 40}}},
	}
	code, body, _ := post(t, h, "/orders/decode", payloadsJSON(t, in...), nil)
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	var out commonpb.Payloads
	if err := protojson.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&out, &commonpb.Payloads{Payloads: in}) {
		t.Errorf("round trip differs:\n got %v\nwant %v", &out, &commonpb.Payloads{Payloads: in})
	}
}
