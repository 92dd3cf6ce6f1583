package codecserver_test

import (
	"context"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/codecserver"
	"github.com/payloadkit/payloadkit/offload"
)

// getCountingStore counts the reads that reach a store.
type getCountingStore struct {
	offload.Store
	gets atomic.Int64
}

func (s *getCountingStore) Get(ctx context.Context, key string) ([]byte, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, key)
}

// s2Bomb is a compressed payload of a few hundred bytes that decodes to size bytes.
func s2Bomb(t *testing.T, size int) *commonpb.Payload {
	t.Helper()
	c, err := codec.NewCompressionCodec(&codec.CompressionOptions{Algorithm: codec.S2})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: make([]byte, size)}})
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

// TestDecodeBudgetStopsBombs is finding 1 of the security review for the Codec Server: a
// request of a few hundred bytes whose payloads decode to 60 MiB each used to be answered
// with all of them (a 538-byte request got a 341 MiB response). Payloads are now decoded one
// at a time against MaxDecodedBytes.
func TestDecodeBudgetStopsBombs(t *testing.T) {
	kit, err := payloadkit.New(context.Background(), payloadkit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	h := newHandler(t, codecserver.Config{Insecure: true, Namespaces: codecserver.FromKit(kit, "orders"), Logger: newLogger(logs)})
	bomb := s2Bomb(t, 60<<20)
	body := payloadsJSON(t, bomb, bomb, bomb, bomb)
	hdr := map[string]string{"X-Namespace": "orders"}
	post(t, h, "/decode", payloadsJSON(t, s2Bomb(t, 1<<20)), hdr) // warm the codec's pools

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	code, resp, header := post(t, h, "/decode", body, hdr)
	runtime.ReadMemStats(&after)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(resp, "MaxDecodedBytes") ||
		!strings.Contains(resp, "33554432") || !strings.Contains(resp, header.Get(codecserver.RequestIDHeader)) {
		t.Fatalf("status %d %q, want 413 naming MaxDecodedBytes and the request id", code, resp)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("request of %d bytes, 4 payloads that decode to 240 MiB: %d MiB allocated before the 413", len(body), allocated>>20)
	// One payload is decoded (into a pooled buffer, then unmarshalled into its own copy) before
	// the budget stops the request; without it all four were, then base64-encoded.
	if allocated > 200<<20 {
		t.Fatalf("%d MiB allocated, want under 200 MiB", allocated>>20)
	}
	if !strings.Contains(logs.String(), "MaxDecodedBytes") {
		t.Fatalf("the log does not say which limit: %s", logs.String())
	}
}

func TestMaxResponseBytes(t *testing.T) {
	kit, err := payloadkit.New(context.Background(), payloadkit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, codecserver.Config{Insecure: true, Namespaces: codecserver.FromKit(kit, "orders"),
		MaxResponseBytes: 4000, Logger: newLogger(&logBuffer{})})
	small := s2Bomb(t, 1000)
	hdr := map[string]string{"X-Namespace": "orders"}
	if code, resp, _ := post(t, h, "/decode", payloadsJSON(t, small), hdr); code != http.StatusOK {
		t.Fatalf("one payload: %d %s", code, resp)
	}
	code, resp, _ := post(t, h, "/decode", payloadsJSON(t, small, small, small), hdr)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(resp, "MaxResponseBytes of 4000 bytes") {
		t.Fatalf("status %d %q, want 413 naming MaxResponseBytes", code, resp)
	}
}

// offloadOnlyServer serves orders and billing from one Kit that offloads (no encryption), with
// a token per namespace.
func offloadOnlyServer(t *testing.T) (http.Handler, *getCountingStore, *offload.MemoryStore, *logBuffer) {
	t.Helper()
	mem := offload.NewMemoryStore()
	store := &getCountingStore{Store: mem}
	kit, err := payloadkit.New(context.Background(), payloadkit.Options{
		Compression: &codec.CompressionOptions{Algorithm: codec.None},
		Offload:     &offload.Options{Store: store, Threshold: 1024},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kit.Close() })
	auth, err := codecserver.StaticTokens(map[string]codecserver.Principal{
		strings.Repeat("o", 32): {Subject: "orders-app", Namespaces: []string{"orders"}, CanDecode: true, CanEncode: true},
		strings.Repeat("b", 32): {Subject: "billing-app", Namespaces: []string{"billing"}, CanDecode: true, CanEncode: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	h := newHandler(t, codecserver.Config{Auth: auth, Namespaces: codecserver.FromKit(kit, "orders", "billing"), Logger: newLogger(logs)})
	return h, store, mem, logs
}

var (
	ordersToken  = map[string]string{"Authorization": "Bearer " + strings.Repeat("o", 32)}
	billingToken = map[string]string{"Authorization": "Bearer " + strings.Repeat("b", 32)}
)

// ordersClaim offloads a value through /orders/encode and returns the claim.
func ordersClaim(t *testing.T, h http.Handler) (*commonpb.Payload, offload.Claim) {
	t.Helper()
	secret := jsonPayload(t, "orders secret "+strings.Repeat("x", 4000))
	code, body, _ := post(t, h, "/orders/encode", payloadsJSON(t, secret), ordersToken)
	if code != http.StatusOK {
		t.Fatalf("/orders/encode: %d %s", code, body)
	}
	var ps commonpb.Payloads
	if err := protojson.Unmarshal([]byte(body), &ps); err != nil {
		t.Fatal(err)
	}
	cl, err := offload.ParseClaim(ps.Payloads[0])
	if err != nil {
		t.Fatalf("not a claim: %v", err)
	}
	return ps.Payloads[0], cl
}

// TestCrossNamespaceClaimRefused is finding 2: a caller with rights on billing only posted an
// orders claim to /billing/decode and got the orders data back when no encryption stage was
// configured. The billing codecs now refuse it before any store call.
func TestCrossNamespaceClaimRefused(t *testing.T) {
	h, store, _, logs := offloadOnlyServer(t)
	claim, cl := ordersClaim(t, h)
	if code, _, _ := post(t, h, "/orders/decode", payloadsJSON(t, claim), billingToken); code != http.StatusForbidden {
		t.Fatalf("/orders/decode with the billing token: %d, want 403", code)
	}
	gets := store.gets.Load()
	code, body, _ := post(t, h, "/billing/decode", payloadsJSON(t, claim), billingToken)
	if code != http.StatusBadRequest {
		t.Fatalf("/billing/decode of an orders claim: %d %s, want 400", code, body)
	}
	if strings.Contains(body, "orders secret") || strings.Contains(body, cl.Key) {
		t.Fatalf("response reveals the claim's object: %s", body)
	}
	if store.gets.Load() != gets {
		t.Fatal("the orders object was read for a billing request")
	}
	if !strings.Contains(logs.String(), "claim outside the namespace") {
		t.Fatalf("the log does not carry the reason: %s", logs.String())
	}
	// The orders caller still reads it.
	if code, body, _ := post(t, h, "/orders/decode", payloadsJSON(t, claim), ordersToken); code != http.StatusOK || !strings.Contains(body, b64std(`"orders secret`)[:12]) {
		t.Fatalf("/orders/decode: %d %s", code, body)
	}
}

// TestNoOracleOnStoreErrors is finding 3: a missing or replaced object used to be described
// to the caller (its real size, then its SHA-256). Callers now get a generic error with the
// request id; the details go to the log.
func TestNoOracleOnStoreErrors(t *testing.T) {
	h, _, mem, logs := offloadOnlyServer(t)
	claim, cl := ordersClaim(t, h)
	other := []byte(`{"not":"a payload"}`)
	if err := mem.Put(context.Background(), cl.Key, other); err != nil {
		t.Fatal(err)
	}
	code, body, hdr := post(t, h, "/orders/decode", payloadsJSON(t, claim), ordersToken)
	id := hdr.Get(codecserver.RequestIDHeader)
	if code != http.StatusBadRequest || id == "" || !strings.Contains(body, "request id "+id) {
		t.Fatalf("replaced object: %d %q, want 400 quoting request id %q", code, body, id)
	}
	for _, leak := range []string{cl.Key, "integrity", "SHA-256", "size", "19 bytes"} {
		if strings.Contains(body, leak) {
			t.Fatalf("response %q reveals %q", body, leak)
		}
	}
	mem.Delete(cl.Key)
	code, body, _ = post(t, h, "/orders/decode", payloadsJSON(t, claim), ordersToken)
	if code != http.StatusBadRequest || strings.Contains(body, "not found") || strings.Contains(body, cl.Key) {
		t.Fatalf("missing object: %d %q, want a generic 400", code, body)
	}
	log := logs.String()
	if !strings.Contains(log, "integrity check failed") || !strings.Contains(log, "object not found") || !strings.Contains(log, id) {
		t.Fatalf("the log lacks the details or the request id: %s", log)
	}
}
