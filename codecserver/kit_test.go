package codecserver_test

import (
	"context"
	"encoding/hex"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/codecserver"
	"github.com/payloadkit/payloadkit/offload"
)

// newKit builds a Kit that compresses, encrypts with a static keyring and offloads payloads
// over 1 KiB to an in-memory store, as a worker would.
func newKit(t *testing.T, store offload.Store) *payloadkit.Kit {
	t.Helper()
	keys, err := codec.NewStaticKeyring("k1", map[string][]byte{"k1": []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	kit, err := payloadkit.New(context.Background(), payloadkit.Options{
		Encryption: &codec.EncryptionOptions{Keys: keys},
		Offload:    &offload.Options{Store: store, Threshold: 1024},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kit.Close() })
	return kit
}

// workerPayloads encodes values as a worker in namespace ns would.
func workerPayloads(t *testing.T, kit *payloadkit.Kit, ns string, values ...any) []*commonpb.Payload {
	t.Helper()
	dc := converter.WithDataConverterSerializationContext(kit.DataConverter(), converter.WorkflowSerializationContext{Namespace: ns, WorkflowID: "wf-1"})
	ps, err := dc.ToPayloads(values...)
	if err != nil {
		t.Fatal(err)
	}
	return ps.Payloads
}

// TestKitEncryptionAndOffload decodes through the server what a Kit-configured worker wrote:
// encrypted payloads bound to their namespace and offloaded claims, with the placeholder for
// claims above the display limit.
func TestKitEncryptionAndOffload(t *testing.T) {
	store := offload.NewMemoryStore()
	kit := newKit(t, store)
	const secret = "customer Quillfeather ordered 3 widgets"
	huge := secret + " " + hex.EncodeToString(pseudoRandom(20000)) // compresses to about 20 KB: offloaded
	written := workerPayloads(t, kit, "orders", secret, huge)
	if !offload.IsClaim(written[1]) || offload.IsClaim(written[0]) {
		t.Fatalf("expected only the second payload to be offloaded: %v, %v", written[0].Metadata, written[1].Metadata)
	}
	if strings.Contains(string(written[0].Data), "customer") {
		t.Fatal("payload not encrypted")
	}

	var logs logBuffer
	h := newHandler(t, codecserver.Config{
		Namespaces: codecserver.FromKit(kit, "orders", "billing"),
		Logger:     newLogger(&logs),
	})
	srv := httptest.NewServer(h)
	defer srv.Close()

	dec, err := remote(srv, testToken, "orders").Decode(written)
	if err != nil {
		t.Fatal(err)
	}
	var got0, got1 string
	dc := converter.GetDefaultDataConverter()
	if err := dc.FromPayload(dec[0], &got0); err != nil || got0 != secret {
		t.Fatalf("payload 0 = %q, %v", got0, err)
	}
	if err := dc.FromPayload(dec[1], &got1); err != nil || got1 != huge {
		t.Fatalf("offloaded payload not restored: %v", err)
	}

	// The encryption context carries the namespace: another namespace's codecs refuse it.
	if _, err := remote(srv, testToken, "billing").Decode(written[:1]); err == nil {
		t.Fatal("payload written in orders decoded through billing")
	}

	// With a display limit below the object size, the claim is answered by a placeholder.
	small := newHandler(t, codecserver.Config{Namespaces: codecserver.FromKit(kit, "orders"), ClaimDisplayLimit: 100})
	srv2 := httptest.NewServer(small)
	defer srv2.Close()
	dec, err = remote(srv2, testToken, "orders").Decode(written)
	if err != nil {
		t.Fatal(err)
	}
	var ph codecserver.Placeholder
	if err := dc.FromPayload(dec[1], &ph); err != nil || ph.Size <= 100 || !strings.Contains(ph.Key, "orders") {
		t.Fatalf("placeholder = %+v, %v", ph, err)
	}
	if err := dc.FromPayload(dec[0], &got0); err != nil || got0 != secret {
		t.Fatalf("payload next to a placeholder = %q, %v", got0, err)
	}

	// The server encodes as the worker does: the Kit decodes it with the namespace's context.
	enc, err := remote(srv, testToken, "orders").Encode(workerPayloadsPlain(t, secret))
	if err != nil {
		t.Fatal(err)
	}
	var back string
	wdc := converter.WithDataConverterSerializationContext(kit.DataConverter(), converter.WorkflowSerializationContext{Namespace: "orders"})
	if err := wdc.FromPayload(enc[0], &back); err != nil || back != secret {
		t.Fatalf("worker decode of server-encoded payload = %q, %v", back, err)
	}

	if strings.Contains(logs.String(), "Quillfeather") || strings.Contains(logs.String(), "widgets") {
		t.Error("audit log contains payload contents")
	}
}

func workerPayloadsPlain(t *testing.T, values ...any) []*commonpb.Payload {
	t.Helper()
	ps, err := converter.GetDefaultDataConverter().ToPayloads(values...)
	if err != nil {
		t.Fatal(err)
	}
	return ps.Payloads
}

func pseudoRandom(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
