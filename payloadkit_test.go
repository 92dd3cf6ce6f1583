package payloadkit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdkinterceptor "go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/failureconv"
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

// TestOffloadDedupeWithEncryption: with encryption and offload, the same large value encoded
// twice in one namespace is stored once and the second encode makes no PUT; with
// DeterministicMinSize -1 every encode stores a new object.
func TestOffloadDedupeWithEncryption(t *testing.T) {
	for _, tc := range []struct {
		name    string
		detMin  int
		objects int
	}{{"default", 0, 1}, {"random message ids", -1, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			store := offload.NewMemoryStore()
			var puts, dedupes atomic.Int64
			kit := newKit(t, payloadkit.Options{
				Encryption: &codec.EncryptionOptions{Keys: keyring(t), DeterministicMinSize: tc.detMin},
				Offload: &offload.Options{Store: store, Threshold: 1024, OnObject: func(e offload.ObjectEvent) {
					switch e.Operation {
					case offload.OpPut:
						puts.Add(1)
					case offload.OpDeduplicated:
						dedupes.Add(1)
					}
				}},
			})
			dc := kit.DataConverterFor("orders")
			var claims []string
			for range 3 {
				p, err := dc.ToPayload(randomOrder(64 << 10))
				if err != nil {
					t.Fatal(err)
				}
				claims = append(claims, string(p.Data))
				var out order
				if err := dc.FromPayload(p, &out); err != nil || out != randomOrder(64<<10) {
					t.Fatalf("round trip: %v", err)
				}
			}
			if got := len(store.Keys()); got != tc.objects {
				t.Fatalf("store holds %d objects, want %d", got, tc.objects)
			}
			if puts.Load() != int64(tc.objects) || dedupes.Load() != int64(3-tc.objects) {
				t.Fatalf("%d puts and %d deduplicated, want %d and %d", puts.Load(), dedupes.Load(), tc.objects, 3-tc.objects)
			}
			stored, err := store.Get(context.Background(), store.Keys()[0])
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(stored), "ada@example.com") {
				t.Fatal("stored object holds plaintext")
			}
			// A small value is not deterministic: its envelopes differ.
			a, _ := dc.ToPayload("short")
			b, _ := dc.ToPayload("short")
			if string(a.Data) == string(b.Data) {
				t.Fatal("a small value encrypted to equal envelopes")
			}
		})
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
	if co.HostPort != "127.0.0.1:7233" || co.DataConverter == nil || co.FailureConverter == nil {
		t.Fatal("ClientOptions did not keep base fields or set the converters")
	}
	// The converters are bound to the client's namespace where the SDK gives no context.
	for ns, opts := range map[string]client.Options{"default": {}, "orders": {Namespace: "orders"}} {
		co := kit.ClientOptions(opts)
		p, err := co.DataConverter.ToPayload("x")
		if err != nil {
			t.Fatal(err)
		}
		env, err := codec.ReadEnvelope(p)
		if err != nil || env.Context[codec.ContextKeyNamespace] != ns {
			t.Fatalf("client of namespace %q wrote context %v (%v)", ns, env.Context, err)
		}
		f := co.FailureConverter.ErrorToFailure(errors.New("boom"))
		env, err = codec.ReadEnvelope(f.GetEncodedAttributes())
		if err != nil || env.Context[codec.ContextKeyNamespace] != ns {
			t.Fatalf("client of namespace %q wrote a failure with context %v (%v)", ns, env.Context, err)
		}
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
	if strings.Contains(f.String(), "4111 1111 1111 1111") {
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

// countingKeys is a key provider that counts the data keys it generates: with the data-key
// cache off, one per encryption Encode call.
type countingKeys struct {
	*codec.StaticKeyring
	generated atomic.Int64
}

func (k *countingKeys) GenerateDataKey(ctx context.Context, encCtx map[string]string) (codec.DataKey, error) {
	k.generated.Add(1)
	return k.StaticKeyring.GenerateDataKey(ctx, encCtx)
}

// shout is the activity of roundTripWorkflow.
func shout(_ context.Context, o order) (order, error) {
	o.Notes = strings.ToUpper(o.Notes)
	return o, nil
}

// roundTripWorkflow runs one activity on its input and returns the activity's result.
func roundTripWorkflow(ctx workflow.Context, o order) (order, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	var out order
	err := workflow.ExecuteActivity(ctx, shout, o).Get(ctx, &out)
	return out, err
}

// roundTrip runs roundTripWorkflow on in in the SDK's test environment with a Kit that compresses
// and encrypts (data-key cache off) with telemetry tel and failure options failures, and returns
// the workflow's error and the number of encryption Encode calls (data keys generated).
func roundTrip(t *testing.T, tel *interceptor.Options, failures *failureconv.Options, in order) (error, int64) {
	t.Helper()
	keys := &countingKeys{StaticKeyring: keyring(t)}
	kit := newKit(t, payloadkit.Options{
		Encryption: &codec.EncryptionOptions{Keys: keys, Cache: &codec.CacheOptions{Disabled: true}},
		Telemetry:  tel,
		Failures:   failures,
	})
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetDataConverter(kit.DataConverter())
	env.SetFailureConverter(kit.FailureConverter())
	env.SetWorkerOptions(worker.Options{Interceptors: kit.WorkerInterceptors()})
	env.RegisterWorkflow(roundTripWorkflow)
	env.RegisterActivity(shout)
	env.ExecuteWorkflow(roundTripWorkflow, in)
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	kit.FlushSpans() // the callers read the spans
	return env.GetWorkflowError(), keys.generated.Load()
}

// TestTelemetryEncodesOnce checks that telemetry learns sizes from the real encode: one activity
// round trip costs as many compression and encryption Encode calls with telemetry on (spans
// recorded, the payload-size histogram enabled, the size limit on) as with telemetry off.
func TestTelemetryEncodesOnce(t *testing.T) {
	in := bigOrder(100)
	off := &interceptor.Options{
		TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider(),
		DisableSDKTracing: true, DisableCodecTracing: true, DisablePayloadSize: true,
	}
	err, offEncodes := roundTrip(t, off, nil, in)
	if err != nil {
		t.Fatal(err)
	}

	spans := tracetest.NewSpanRecorder()
	reader := sdkmetric.NewManualReader()
	on := &interceptor.Options{
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)),
		MeterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
	}
	err, onEncodes := roundTrip(t, on, nil, in)
	if err != nil {
		t.Fatal(err)
	}

	// The workflow's input (encoded by the test environment), the activity's input and result,
	// the workflow's result: four encodes, each through compression then encryption.
	const want = 4
	if offEncodes != want || onEncodes != want {
		t.Errorf("encryption Encode calls: %d with telemetry off, %d with telemetry on; want %d and %d", offEncodes, onEncodes, want, want)
	}
	var compression, encryption int
	for _, s := range spans.Ended() {
		if s.Name() != interceptor.SpanEncode {
			continue
		}
		for _, kv := range s.Attributes() {
			switch kv.Key {
			case interceptor.AttrStageDuration(payloadkit.StageCompression):
				compression++
			case interceptor.AttrStageDuration(payloadkit.StageEncryption):
				encryption++
			}
		}
	}
	if compression != want || encryption != want {
		t.Errorf("encode spans with telemetry on: %d compression, %d encryption; want %d each", compression, encryption, want)
	}

	// The sizes were recorded all the same, from those encodes.
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	points := map[string]uint64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			h, ok := m.Data.(metricdata.Histogram[int64])
			if m.Name != interceptor.MetricPayloadSize || !ok {
				continue
			}
			for _, dp := range h.DataPoints {
				if stage, _ := dp.Attributes.Value("stage"); stage.AsString() == interceptor.StageInterceptor {
					kind, _ := dp.Attributes.Value("kind")
					dir, _ := dp.Attributes.Value("direction")
					points[kind.AsString()+" "+dir.AsString()] += dp.Count
				}
			}
		}
	}
	for _, k := range []string{"activity input", "activity result", "workflow result"} {
		if points[k] != 1 {
			t.Errorf("%s size points = %d, want 1 (all: %v)", k, points[k], points)
		}
	}
	t.Logf("one activity round trip: %d compression and %d encryption encodes with telemetry on, %d encryption encodes off", compression, encryption, offEncodes)
}

// TestSizeLimitFromTheOneEncode checks the early size-limit check (no offload stage): an activity
// input over Telemetry.LimitSize fails the workflow with ErrPayloadTooLarge in a non-retryable
// ApplicationError of type PayloadTooLargeErrorType before the activity is scheduled, measured
// by the one encode that produced the payload.
func TestSizeLimitFromTheOneEncode(t *testing.T) {
	// Failure messages stay in the clear here, so that the only encodes are of values.
	plainFailures := false
	err, encodes := roundTrip(t, &interceptor.Options{
		TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider(),
		LimitSize: 2048,
	}, &failureconv.Options{EncodeAttributes: &plainFailures}, randomOrder(8<<10))
	if err == nil {
		t.Fatal("workflow succeeded with an activity input over the limit")
	}
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != interceptor.PayloadTooLargeErrorType || !appErr.NonRetryable() {
		t.Fatalf("error %v: want a non-retryable ApplicationError of type %s", err, interceptor.PayloadTooLargeErrorType)
	}
	// The Go error crossed a FailureConverter: ErrPayloadTooLarge is known by its text.
	if !strings.Contains(appErr.Error(), interceptor.ErrPayloadTooLarge.Error()) {
		t.Errorf("error %v does not carry ErrPayloadTooLarge", err)
	}
	if !strings.Contains(err.Error(), `activity "shout" input`) || !strings.Contains(err.Error(), "over the limit of 2048 bytes") {
		t.Errorf("error %q: want the activity's input and the limit named", err)
	}
	// The workflow's input and the activity's input, each encoded once; the activity never ran.
	if encodes != 2 {
		t.Errorf("encryption Encode calls = %d, want 2", encodes)
	}
}

func TestNewHonoursItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	kit, err := payloadkit.New(ctx, payloadkit.Options{})
	if err == nil {
		kit.Close()
		t.Fatal("New built a Kit with a cancelled context")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

// customJSON is a payload converter of a team's own: JSON under its own encoding name, with a
// metadata entry of its own that must survive the codecs.
type customJSON struct{}

const (
	encodingCustomJSON = "json/custom"
	customJSONVersion  = "custom-json-version"
)

func (customJSON) Encoding() string { return encodingCustomJSON }

func (customJSON) ToPayload(v any) (*commonpb.Payload, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", encodingCustomJSON, err)
	}
	return &commonpb.Payload{
		Metadata: map[string][]byte{converter.MetadataEncoding: []byte(encodingCustomJSON), customJSONVersion: []byte("1")},
		Data:     b,
	}, nil
}

func (customJSON) FromPayload(p *commonpb.Payload, valuePtr any) error {
	return json.Unmarshal(p.GetData(), valuePtr)
}

func (customJSON) ToString(p *commonpb.Payload) string { return string(p.GetData()) }

// TestOwnPayloadConverter gives the Kit a composite payload converter, protobuf binary first
// and a custom JSON converter after it: small values of both are encrypted inline, large ones
// are compressed, encrypted and offloaded; the history side holds no plaintext, peeling the
// Kit's codecs gives back the converter's own encodings (binary/protobuf, json/custom, with
// its metadata), and the Kit's DataConverter returns the values.
func TestOwnPayloadConverter(t *testing.T) {
	store := offload.NewMemoryStore()
	kit := newKit(t, payloadkit.Options{
		PayloadConverter: converter.NewCompositeDataConverter(converter.NewProtoPayloadConverter(), customJSON{}),
		Encryption:       &codec.EncryptionOptions{Keys: keyring(t), RequireEncryption: true},
		Offload:          &offload.Options{Store: store, Threshold: 1024},
	})
	const secret = "ada@example.com"
	smallProto := &commonpb.WorkflowType{Name: secret}
	largeProto := wrapperspb.String(secret + " " + randomOrder(16<<10).Notes)
	smallJSON := order{ID: "o-1", Email: secret}
	largeJSON := randomOrder(16 << 10)

	dc := kit.DataConverterFor("orders")
	ps, err := dc.ToPayloads(smallProto, largeProto, smallJSON, largeJSON)
	if err != nil {
		t.Fatal(err)
	}
	wantOuter := []string{codec.EncodingEncrypted, offload.EncodingClaimCheck, codec.EncodingEncrypted, offload.EncodingClaimCheck}
	for i, p := range ps.Payloads {
		if enc := string(p.Metadata[converter.MetadataEncoding]); enc != wantOuter[i] {
			t.Errorf("payload %d: encoding %q, want %q", i, enc, wantOuter[i])
		}
		if b, _ := proto.Marshal(p); bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte("parcel-")) {
			t.Errorf("payload %d holds plaintext", i)
		}
	}
	keys := store.Keys()
	if len(keys) != 2 {
		t.Fatalf("store holds %d objects, want 2", len(keys))
	}
	for _, key := range keys {
		stored, err := store.Get(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		var inner commonpb.Payload
		if err := proto.Unmarshal(stored, &inner); err != nil {
			t.Fatalf("stored object %s is not a payload: %v", key, err)
		}
		if enc := string(inner.Metadata[converter.MetadataEncoding]); enc != codec.EncodingEncrypted || bytes.Contains(stored, []byte(secret)) {
			t.Errorf("stored object %s: encoding %q, or plaintext", key, enc)
		}
	}

	// Peel the codecs, bound to the namespace as a Codec Server binds them: offload,
	// encryption (the large payloads were compressed), then compression.
	sc := converter.WorkflowSerializationContext{Namespace: "orders"}
	wantAfter := [][]string{
		{codec.EncodingEncrypted, codec.EncodingEncrypted, codec.EncodingEncrypted, codec.EncodingEncrypted},
		{"binary/protobuf", codec.EncodingZstd, encodingCustomJSON, codec.EncodingZstd},
		{"binary/protobuf", "binary/protobuf", encodingCustomJSON, encodingCustomJSON},
	}
	peeled := ps.Payloads
	for i, c := range kit.Codecs() {
		if cs, ok := c.(converter.PayloadCodecWithSerializationContext); ok {
			c = cs.WithSerializationContext(sc)
		}
		if peeled, err = c.Decode(peeled); err != nil {
			t.Fatalf("codec %d decode: %v", i, err)
		}
		for j, p := range peeled {
			if enc := string(p.Metadata[converter.MetadataEncoding]); enc != wantAfter[i][j] {
				t.Errorf("after codec %d, payload %d: encoding %q, want %q", i, j, enc, wantAfter[i][j])
			}
		}
	}
	for _, j := range []int{2, 3} {
		if v := string(peeled[j].Metadata[customJSONVersion]); v != "1" {
			t.Errorf("payload %d lost the converter's metadata: %s=%q", j, customJSONVersion, v)
		}
	}

	var gotSmallProto *commonpb.WorkflowType
	var gotLargeProto *wrapperspb.StringValue
	var gotSmallJSON, gotLargeJSON order
	if err := dc.FromPayloads(ps, &gotSmallProto, &gotLargeProto, &gotSmallJSON, &gotLargeJSON); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(gotSmallProto, smallProto) || !proto.Equal(gotLargeProto, largeProto) {
		t.Errorf("proto values did not round trip: %v", gotSmallProto)
	}
	if gotSmallJSON != smallJSON || gotLargeJSON != largeJSON {
		t.Errorf("custom JSON values did not round trip: %+v", gotSmallJSON)
	}
}

// TestDefaultPayloadConverter checks that a Kit without PayloadConverter writes what the SDK's
// default converters write (proto messages as json/protobuf).
func TestDefaultPayloadConverter(t *testing.T) {
	kit := newKit(t, payloadkit.Options{})
	p, err := kit.DataConverter().ToPayload(&commonpb.WorkflowType{Name: "w"})
	if err != nil {
		t.Fatal(err)
	}
	if enc := string(p.Metadata[converter.MetadataEncoding]); enc != "json/protobuf" {
		t.Errorf("encoding %q, want json/protobuf", enc)
	}
}

// TestEnvelopeV2ThroughKit: with Format v2 and an offload stage, the Kit keeps key objects in the
// offload store (a MemoryStore only when AllowLocalKeyObjects is set), a small value costs at
// most 96 bytes of encryption, and a Kit writing v1 on the same store decodes v2 payloads.
func TestEnvelopeV2ThroughKit(t *testing.T) {
	ring := keyring(t)
	mem := offload.NewMemoryStore()
	_, err := payloadkit.New(context.Background(), payloadkit.Options{
		Encryption: &codec.EncryptionOptions{Keys: ring, Format: codec.FormatV2},
		Offload:    &offload.Options{Store: mem},
	})
	if !errors.Is(err, payloadkit.ErrInvalidOptions) || !strings.Contains(err.Error(), "AllowLocalKeyObjects") {
		t.Fatalf("v2 with a MemoryStore: %v, want ErrInvalidOptions naming AllowLocalKeyObjects", err)
	}

	files, err := offload.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		store offload.Store
		allow bool
	}{{"file store", files, false}, {"memory store in a test", mem, true}} {
		t.Run(tc.name, func(t *testing.T) {
			none := codec.None
			v2 := newKit(t, payloadkit.Options{
				Compression:          &codec.CompressionOptions{Algorithm: none},
				Encryption:           &codec.EncryptionOptions{Keys: ring, Format: codec.FormatV2},
				Offload:              &offload.Options{Store: tc.store},
				AllowLocalKeyObjects: tc.allow,
			})
			v1 := newKit(t, payloadkit.Options{
				Compression: &codec.CompressionOptions{Algorithm: none},
				Encryption:  &codec.EncryptionOptions{Keys: ring},
				Offload:     &offload.Options{Store: tc.store},
			})
			value := strings.Repeat("x", 30)
			plain, err := converter.GetDefaultDataConverter().ToPayload(value)
			if err != nil {
				t.Fatal(err)
			}
			p, err := v2.DataConverterFor("orders").ToPayload(value)
			if err != nil {
				t.Fatal(err)
			}
			if !codec.IsEnvelopeV2(p) {
				t.Fatalf("the Kit wrote %q, not a v2 envelope", p.Metadata)
			}
			if overhead := proto.Size(p) - proto.Size(plain); overhead > 96 {
				t.Errorf("v2 costs %d bytes over the plain payload, want at most 96", overhead)
			}
			ref, err := codec.ReadKeyObjectRef(p)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := tc.store.Exists(context.Background(), codec.KeyObjectKey(codec.DefaultKeyObjectPrefix, ref)); err != nil || !ok {
				t.Fatalf("key object not in the offload store: %v", err)
			}
			var out string
			if err := v1.DataConverterFor("orders").FromPayload(p, &out); err != nil || out != value {
				t.Fatalf("a v1 Kit on the same store decoded %q, %v", out, err)
			}
		})
	}
}

// remoteMemoryStore is a MemoryStore that says it is remote, as the S3 store does.
type remoteMemoryStore struct{ *offload.MemoryStore }

func (remoteMemoryStore) Remote() bool { return true }

// TestEnvelopeV2IsTheDefaultWithRemoteStore: a Kit whose offload stage uses a remote store
// writes v2 unless Format says v1; with a local store it writes v1.
func TestEnvelopeV2IsTheDefaultWithRemoteStore(t *testing.T) {
	ring := keyring(t)
	files, err := offload.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		store  offload.Store
		format codec.EnvelopeFormat
		v2     bool
	}{
		{"remote store", remoteMemoryStore{offload.NewMemoryStore()}, codec.FormatDefault, true},
		{"remote store, v1 asked", remoteMemoryStore{offload.NewMemoryStore()}, codec.FormatV1, false},
		{"local store", files, codec.FormatDefault, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kit := newKit(t, payloadkit.Options{
				Encryption: &codec.EncryptionOptions{Keys: ring, Format: tc.format},
				Offload:    &offload.Options{Store: tc.store},
			})
			p, err := kit.DataConverterFor("orders").ToPayload("a value")
			if err != nil {
				t.Fatal(err)
			}
			if got := codec.IsEnvelopeV2(p); got != tc.v2 {
				t.Fatalf("v2 = %v, want %v", got, tc.v2)
			}
			var out string
			if err := kit.DataConverterFor("orders").FromPayload(p, &out); err != nil || out != "a value" {
				t.Fatalf("round trip: %q %v", out, err)
			}
		})
	}
}

// Codec spans end in bursts (interceptor.Options.EndSpansImmediately); the Kit's FlushSpans
// and Close end the waiting ones, so that nothing is lost when the process stops.
func TestKitCloseEndsWaitingSpans(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	kit, err := payloadkit.New(context.Background(), payloadkit.Options{Telemetry: &interceptor.Options{
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)),
		MeterProvider:  metricnoop.NewMeterProvider(),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kit.DataConverter().ToPayload(bigOrder(10)); err != nil {
		t.Fatal(err)
	}
	if err := kit.Close(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range spans.Ended() {
		if s.Name() == interceptor.SpanEncode {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d encode spans ended after Close, want 1", n)
	}
}
