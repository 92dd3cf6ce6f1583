package payloadkit_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdkinterceptor "go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/interceptor"
	"github.com/payloadkit/payloadkit/offload"
)

type order struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Notes string `json:"notes"`
}

func bigOrder(n int) order {
	return order{ID: "o-1", Email: "ada@example.com", Notes: strings.Repeat("deliver to reception; ", n)}
}

// randomOrder holds about n bytes of random words and numbers: compressible, but not to nothing.
func randomOrder(n int) order {
	r := rand.New(rand.NewSource(1))
	words := []string{"parcel", "invoice", "reception", "fragile", "express", "return", "gift", "box"}
	var b strings.Builder
	for b.Len() < n {
		fmt.Fprintf(&b, "%s-%d ", words[r.Intn(len(words))], r.Intn(1_000_000))
	}
	return order{ID: "o-2", Email: "ada@example.com", Notes: b.String()}
}

func newKit(t *testing.T, opts payloadkit.Options) *payloadkit.Kit {
	t.Helper()
	kit, err := payloadkit.New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := kit.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return kit
}

func keyring(t *testing.T) *codec.StaticKeyring {
	t.Helper()
	ring, err := codec.NewStaticKeyring("k1", map[string][]byte{"k1": codec.GenerateKey()})
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

func TestZeroOptionsCompresses(t *testing.T) {
	kit := newKit(t, payloadkit.Options{})
	if got := strings.Join(kit.Stages(), ","); got != "compression" {
		t.Fatalf("stages = %q, want compression", got)
	}
	in := bigOrder(100)
	p, err := kit.DataConverter().ToPayload(in)
	if err != nil {
		t.Fatal(err)
	}
	if enc := string(p.Metadata["encoding"]); enc != codec.EncodingZstd {
		t.Fatalf("encoding = %q, want %q", enc, codec.EncodingZstd)
	}
	plain, _ := converter.GetDefaultDataConverter().ToPayload(in)
	if len(p.Data) >= len(plain.Data)/4 {
		t.Errorf("compressed %d bytes of %d: want at least 4x smaller", len(p.Data), len(plain.Data))
	}
	var out order
	if err := kit.DataConverter().FromPayload(p, &out); err != nil || out != in {
		t.Fatalf("round trip: %v, %+v", err, out)
	}
	// Small payloads stay as they are.
	small, _ := kit.DataConverter().ToPayload("hi")
	if enc := string(small.Metadata["encoding"]); enc != "json/plain" {
		t.Errorf("small payload encoding = %q, want json/plain", enc)
	}
}

func TestCodecOrderCompressEncryptOffload(t *testing.T) {
	store := offload.NewMemoryStore()
	kit := newKit(t, payloadkit.Options{
		Encryption: &codec.EncryptionOptions{Keys: keyring(t)},
		Offload:    &offload.Options{Store: store, Threshold: 1024},
	})
	if got := strings.Join(kit.Stages(), ","); got != "compression,encryption,offload" {
		t.Fatalf("stages = %q", got)
	}
	// A large payload: compressed, then encrypted, then offloaded as a claim.
	p, err := kit.DataConverter().ToPayload(randomOrder(64 << 10))
	if err != nil {
		t.Fatal(err)
	}
	if enc := string(p.Metadata["encoding"]); enc != offload.EncodingClaimCheck {
		t.Fatalf("outer encoding = %q, want a claim", enc)
	}
	keys := store.Keys()
	if len(keys) != 1 {
		t.Fatalf("store holds %d objects, want 1", len(keys))
	}
	stored, err := store.Get(context.Background(), keys[0])
	if err != nil {
		t.Fatal(err)
	}
	var inner commonpb.Payload
	if err := inner.Unmarshal(stored); err != nil {
		t.Fatalf("stored object is not a payload: %v", err)
	}
	if enc := string(inner.Metadata["encoding"]); enc != codec.EncodingEncrypted {
		t.Fatalf("stored payload encoding = %q, want %q", enc, codec.EncodingEncrypted)
	}
	if strings.Contains(string(stored), "ada@example.com") {
		t.Fatal("stored object holds plaintext")
	}
	// Codecs() is in NewCodecDataConverter order: the last is applied first on encode, so
	// decoding by hand runs them first to last and peels offload, encryption, compression.
	ps := []*commonpb.Payload{p}
	wantAfter := []string{codec.EncodingEncrypted, codec.EncodingZstd, "json/plain"}
	for i, c := range kit.Codecs() {
		if ps, err = c.Decode(ps); err != nil {
			t.Fatalf("codec %d decode: %v", i, err)
		}
		if enc := string(ps[0].Metadata["encoding"]); enc != wantAfter[i] {
			t.Fatalf("after codec %d: encoding %q, want %q", i, enc, wantAfter[i])
		}
	}
	var out order
	if err := kit.DataConverter().FromPayload(p, &out); err != nil || out != randomOrder(64<<10) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestInvalidOptionsNameTheField(t *testing.T) {
	cases := []struct {
		name string
		opts payloadkit.Options
		want []string
	}{
		{"algorithm", payloadkit.Options{Compression: &codec.CompressionOptions{Algorithm: "lz4"}}, []string{"Compression.Algorithm", `"zstd"`, `"s2"`, `"gzip"`, `"none"`}},
		{"min size", payloadkit.Options{Compression: &codec.CompressionOptions{MinSize: -1}}, []string{"Compression.MinSize"}},
		{"no keys", payloadkit.Options{Encryption: &codec.EncryptionOptions{}}, []string{"Encryption.Keys"}},
		{"no store", payloadkit.Options{Offload: &offload.Options{}}, []string{"Offload", "Store"}},
		{"offload mode", payloadkit.Options{Offload: &offload.Options{Store: offload.NewMemoryStore(), Mode: "sideways"}}, []string{"Offload.Mode", `"codec"`, `"external-storage"`}},
		{"telemetry", payloadkit.Options{Telemetry: &interceptor.Options{WarnSize: -1}}, []string{"Telemetry", "WarnSize"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kit, err := payloadkit.New(context.Background(), tc.opts)
			if err == nil {
				kit.Close()
				t.Fatal("New accepted invalid options")
			}
			if !errors.Is(err, payloadkit.ErrInvalidOptions) {
				t.Errorf("error %v is not ErrInvalidOptions", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}
}

func TestCompressionNoneStillDecodes(t *testing.T) {
	zstdKit := newKit(t, payloadkit.Options{})
	p, err := zstdKit.DataConverter().ToPayload(bigOrder(100))
	if err != nil {
		t.Fatal(err)
	}
	noneKit := newKit(t, payloadkit.Options{Compression: &codec.CompressionOptions{Algorithm: codec.None}})
	if len(noneKit.Stages()) != 0 {
		t.Errorf("stages = %v, want none", noneKit.Stages())
	}
	fresh, _ := noneKit.DataConverter().ToPayload(bigOrder(100))
	if enc := string(fresh.Metadata["encoding"]); enc != "json/plain" {
		t.Errorf("None compressed: encoding %q", enc)
	}
	var out order
	if err := noneKit.DataConverter().FromPayload(p, &out); err != nil || out != bigOrder(100) {
		t.Fatalf("None kit cannot decode zstd payload: %v", err)
	}
}

func TestReadsSDKZlibHistories(t *testing.T) {
	sdk := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true}))
	p, err := sdk.ToPayload(bigOrder(50))
	if err != nil {
		t.Fatal(err)
	}
	kit := newKit(t, payloadkit.Options{Encryption: &codec.EncryptionOptions{Keys: keyring(t)}})
	var out order
	if err := kit.DataConverter().FromPayload(p, &out); err != nil || out != bigOrder(50) {
		t.Fatalf("kit cannot read SDK zlib payload: %v", err)
	}
}

func TestClientAndWorkerOptions(t *testing.T) {
	kit := newKit(t, payloadkit.Options{Encryption: &codec.EncryptionOptions{Keys: keyring(t)}})
	mine := &struct{ interceptorBase }{}
	co := kit.ClientOptions(client.Options{HostPort: "127.0.0.1:7233", Interceptors: []interceptorClient{mine}})
	if co.HostPort != "127.0.0.1:7233" || co.DataConverter != kit.DataConverter() || co.FailureConverter != kit.FailureConverter() {
		t.Fatal("ClientOptions did not keep base fields or set the converters")
	}
	if len(co.Interceptors) != 1+len(kit.ClientInterceptors()) || co.Interceptors[0] != mine {
		t.Fatalf("ClientOptions interceptors = %d, want the base one first then the Kit's %d", len(co.Interceptors), len(kit.ClientInterceptors()))
	}
	if len(kit.ClientInterceptors()) == 0 || len(kit.WorkerInterceptors()) == 0 {
		t.Fatal("telemetry is on by default: want client and worker interceptors")
	}
	wo := kit.WorkerOptions(worker.Options{MaxConcurrentActivityExecutionSize: 7})
	if wo.MaxConcurrentActivityExecutionSize != 7 {
		t.Fatal("WorkerOptions lost a base field")
	}
	// Interceptors that are both client and worker interceptors reach workers through the
	// client; WorkerOptions must not add them a second time.
	for _, wi := range wo.Interceptors {
		if _, both := wi.(interceptorClient); both {
			t.Errorf("WorkerOptions repeats client interceptor %T", wi)
		}
	}
	if p := kit.Plugin(); p == nil || p.Name() != payloadkit.PluginName {
		t.Fatalf("Plugin = %v", p)
	}
	// The failure converter encodes messages through the Kit's codecs when encryption is on.
	f := kit.FailureConverter().ErrorToFailure(temporal.NewApplicationError("card 4111 1111 1111 1111 declined", "Card"))
	if strings.Contains(f.String(), "4111") {
		t.Fatal("failure message stored in plain text")
	}
	back := kit.FailureConverter().FailureToError(f)
	if !strings.Contains(back.Error(), "4111 1111 1111 1111") {
		t.Fatalf("failure did not decode: %v", back)
	}
}

type (
	interceptorBase   = sdkinterceptor.ClientInterceptorBase
	interceptorClient = sdkinterceptor.ClientInterceptor
)
