package workflowtest

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.temporal.io/sdk/converter"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/codec/awskms"
	"github.com/payloadkit/payloadkit/failureconv"
	"github.com/payloadkit/payloadkit/interceptor"
	"github.com/payloadkit/payloadkit/offload"
)

// DefaultOffloadThreshold is the offload threshold, in bytes, of a Kit made by NewKit: small, so
// that tests exercise the offload stage with modest payloads.
const DefaultOffloadThreshold = 4 << 10

// Kit is a payloadkit.Kit on in-memory parts, for tests: an AWS-KMS-compatible test server with a
// new key (through the awskms provider), a memory offload store, a span recorder and a manual
// metric reader wired as telemetry providers, and a Recorder that sees every payload crossing
// the DataConverter and every Failure the FailureConverter produces.
type Kit struct {
	kit      *payloadkit.Kit
	opts     payloadkit.Options
	kms      *KMS
	keyID    string
	store    offload.Store
	spans    *tracetest.SpanRecorder
	metrics  *sdkmetric.ManualReader
	recorder *Recorder
	dc       converter.DataConverter // bound to TestNamespace
	fc       converter.FailureConverter
	replayDC converter.DataConverter // unbound: replay decodes histories of any namespace
	replayFC converter.FailureConverter
}

// KitOption changes how NewKit builds a Kit.
type KitOption func(*kitConfig)

type kitConfig struct {
	encryption bool
	keys       codec.KeyProvider
	offload    bool
	threshold  int
	store      offload.Store
	edits      []func(*payloadkit.Options)
}

// WithOptions edits the payloadkit.Options NewKit built before the Kit is made from them. Edits
// run in order, after every other option.
func WithOptions(edit func(*payloadkit.Options)) KitOption {
	return func(c *kitConfig) { c.edits = append(c.edits, edit) }
}

// WithoutEncryption turns the encryption stage off; no KMS test server is started.
func WithoutEncryption() KitOption { return func(c *kitConfig) { c.encryption = false } }

// WithKeyProvider encrypts with p (for example a codec.StaticKeyring) instead of a key of the
// KMS test server; no KMS test server is started.
func WithKeyProvider(p codec.KeyProvider) KitOption {
	return func(c *kitConfig) { c.encryption, c.keys = true, p }
}

// WithoutOffload turns the offload stage off.
func WithoutOffload() KitOption { return func(c *kitConfig) { c.offload = false } }

// WithOffloadThreshold sets the offload threshold in bytes (DefaultOffloadThreshold otherwise).
func WithOffloadThreshold(n int) KitOption {
	return func(c *kitConfig) { c.offload, c.threshold = true, n }
}

// WithStore offloads to s instead of a new offload.MemoryStore.
func WithStore(s offload.Store) KitOption {
	return func(c *kitConfig) { c.offload, c.store = true, s }
}

// NewKit builds a Kit for the test t. By default it compresses, encrypts with a new key of a new
// KMS test server and offloads payloads over DefaultOffloadThreshold bytes to a memory store;
// telemetry goes to the Kit's span recorder and metric reader. Everything is closed with
// t.Cleanup. NewKit fails the test (t.Fatalf) when the Kit cannot be built.
func NewKit(t testing.TB, opts ...KitOption) *Kit {
	t.Helper()
	cfg := kitConfig{encryption: true, offload: true, threshold: DefaultOffloadThreshold}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	k := &Kit{
		spans:    tracetest.NewSpanRecorder(),
		metrics:  sdkmetric.NewManualReader(),
		recorder: NewRecorder(),
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(k.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(k.metrics))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	// The recorder is read right after calls: codec spans end as their chain returns.
	k.opts.Telemetry = &interceptor.Options{TracerProvider: tp, MeterProvider: mp, EndSpansImmediately: true}

	if cfg.encryption {
		keys := cfg.keys
		if keys == nil {
			k.kms = StartKMS(t)
			k.keyID = k.kms.NewKey()
			p, err := awskms.New(k.kms.Client(), k.keyID)
			if err != nil {
				t.Fatalf("workflowtest: KMS key provider: %v", err)
			}
			keys = p
		}
		k.opts.Encryption = &codec.EncryptionOptions{Keys: keys}
	}
	if cfg.offload {
		k.store = cfg.store
		if k.store == nil {
			k.store = offload.NewMemoryStore()
		}
		k.opts.Offload = &offload.Options{Store: k.store, Threshold: cfg.threshold}
	}
	for _, edit := range cfg.edits {
		edit(&k.opts)
	}
	if k.opts.Offload != nil {
		k.store = k.opts.Offload.Store
	} else {
		k.store = nil
	}

	kit, err := payloadkit.New(context.Background(), k.opts)
	if err != nil {
		t.Fatalf("workflowtest: building the Kit: %v", err)
	}
	t.Cleanup(func() {
		if err := kit.Close(); err != nil {
			t.Errorf("workflowtest: closing the Kit: %v", err)
		}
	})
	k.kit = kit
	// Bound to the testsuite's namespace, as ClientOptions binds a client's converters to its
	// namespace: paths on which the testsuite gives no serialization context still write
	// envelopes and claims that strict decoding accepts.
	k.dc = k.recorder.WrapDataConverter(kit.DataConverterFor(TestNamespace))
	// The failure converter is the Kit's, built on the recording DataConverter so that failure
	// attributes and details are recorded too.
	fc, err := failureconv.New(k.dc, k.opts.Failures, k.opts.Encryption != nil)
	if err != nil {
		t.Fatalf("workflowtest: building the failure converter: %v", err)
	}
	k.fc = k.recorder.WrapFailureConverter(fc)
	k.replayDC = k.recorder.WrapDataConverter(kit.DataConverter())
	rfc, err := failureconv.New(k.replayDC, k.opts.Failures, k.opts.Encryption != nil)
	if err != nil {
		t.Fatalf("workflowtest: building the failure converter: %v", err)
	}
	k.replayFC = k.recorder.WrapFailureConverter(rfc)
	return k
}

// Kit returns the payloadkit.Kit under test.
func (k *Kit) Kit() *payloadkit.Kit { return k.kit }

// Options returns the payloadkit.Options the Kit was built from.
func (k *Kit) Options() payloadkit.Options { return k.opts }

// DataConverter returns the Kit's DataConverter wrapped by the Kit's Recorder.
func (k *Kit) DataConverter() converter.DataConverter { return k.dc }

// FailureConverter returns the Kit's failure converter, on the recording DataConverter and
// wrapped by the Kit's Recorder.
func (k *Kit) FailureConverter() converter.FailureConverter { return k.fc }

// KMS returns the KMS test server, or nil when encryption is off or uses another key provider.
func (k *Kit) KMS() *KMS { return k.kms }

// KeyID returns the ARN of the KMS test server key the Kit encrypts with ("" without one).
func (k *Kit) KeyID() string { return k.keyID }

// Store returns the offload store, or nil when offload is off.
func (k *Kit) Store() offload.Store { return k.store }

// Spans returns the span recorder receiving the Kit's spans.
func (k *Kit) Spans() *tracetest.SpanRecorder { return k.spans }

// Metrics returns the manual reader receiving the Kit's metrics.
func (k *Kit) Metrics() *sdkmetric.ManualReader { return k.metrics }

// Recorder returns the Recorder of the Kit's DataConverter and FailureConverter.
func (k *Kit) Recorder() *Recorder { return k.recorder }
