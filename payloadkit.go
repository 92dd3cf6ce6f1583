package payloadkit

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdkinterceptor "go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/failureconv"
	"github.com/payloadkit/payloadkit/interceptor"
	"github.com/payloadkit/payloadkit/internal/pipeline"
	"github.com/payloadkit/payloadkit/offload"
)

// PluginName is the name of the plugin returned by Kit.Plugin.
const PluginName = "payloadkit"

// Stage names, in the order payloads pass them on the way out. They are defined here only: the
// pipeline reports them to telemetry as they are (span attributes payloadkit.<stage>.duration_ms,
// the "stage" attribute of the metrics), and Stages lists them.
const (
	StageCompression = "compression"
	StageEncryption  = "encryption"
	StageOffload     = "offload"
)

// ErrInvalidOptions is returned (wrapped) by New when Options are invalid.
var ErrInvalidOptions = errors.New("payloadkit: invalid options")

// Kit holds everything a Temporal client, worker or test environment needs, built from one Options.
// It is safe for concurrent use.
type Kit struct {
	opts      Options
	pipeline  *pipeline.Pipeline
	stages    []string // configured stage names in encode order
	dc        converter.DataConverter
	fc        converter.FailureConverter
	telemetry *interceptor.Telemetry
	extStore  *converter.ExternalStorage
	plugin    *temporal.SimplePlugin
	closers   []func() error
}

// New validates opts and builds a Kit. ctx bounds the construction: New returns ctx's error when
// ctx is done before the Kit is complete. It is not kept.
//
// The codec pipeline (compression, encryption, offload, and the context-aware DataConverter
// around them) is assembled here and works without telemetry; telemetry observes it.
func New(ctx context.Context, opts Options) (kit *Kit, err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("payloadkit: New: %w", err)
	}
	k := &Kit{opts: opts}
	defer func() {
		if err != nil {
			_ = k.Close()
		}
	}()

	// Telemetry options: the caller's value is copied, never modified. With an offload stage,
	// large payloads leave history, so the early size-limit errors are off.
	var telOpts interceptor.Options
	if opts.Telemetry != nil {
		telOpts = *opts.Telemetry
	}
	if opts.Offload != nil {
		telOpts.DisableSizeLimit = true
	}
	tel, err := interceptor.New(&telOpts)
	if err != nil {
		return nil, fmt.Errorf("%w: Telemetry: %w", ErrInvalidOptions, err)
	}
	k.telemetry = tel
	// The Kit's defaults of the encryption options go into a copy: the caller's value is
	// never modified.
	if opts.Encryption != nil {
		enc := *opts.Encryption
		if err := encryptionDefaults(&enc, &opts, tel); err != nil {
			return nil, err
		}
		opts.Encryption = &enc
	}
	if opts.Offload != nil && opts.Offload.OnObject == nil {
		off := *opts.Offload
		off.OnObject = func(e offload.ObjectEvent) {
			tel.RecordObjectEvent(interceptor.ObjectEvent{Operation: e.Operation, Bytes: e.Bytes, Err: e.Err})
		}
		opts.Offload = &off
	}

	// Stages in encode order: compress, encrypt, offload.
	var stages []pipeline.Stage
	var remote bool
	// The compression stage is always installed: with codec.None it compresses nothing but
	// still decodes payloads compressed earlier.
	{
		c, err := codec.NewCompressionCodec(opts.Compression)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
		// *codec.Compression holds nothing to release: pooled coders go to the garbage collector.
		stages = append(stages, pipeline.Stage{Name: StageCompression, Codec: c})
		if opts.Compression == nil || opts.Compression.Algorithm != codec.None {
			k.stages = append(k.stages, StageCompression)
		}
	}
	if opts.Encryption != nil {
		c, err := codec.NewEncryptionCodec(opts.Encryption)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
		}
		k.closers = append(k.closers, c.Close)
		remote = remote || isRemote(opts.Encryption.Keys) || isRemote(opts.Encryption.KeyObjects)
		stages = append(stages, pipeline.Stage{Name: StageEncryption, Codec: c})
		k.stages = append(k.stages, StageEncryption)
	}
	if opts.Offload != nil {
		switch opts.Offload.Mode {
		case "", offload.ModeCodec:
			c, err := offload.NewCodec(opts.Offload)
			if err != nil {
				return nil, fmt.Errorf("%w: Offload: %w", ErrInvalidOptions, err)
			}
			stages = append(stages, pipeline.Stage{Name: StageOffload, Codec: c})
			k.stages = append(k.stages, StageOffload)
		case offload.ModeExternalStorage:
			es, err := offload.NewExternalStorage(opts.Offload)
			if err != nil {
				return nil, fmt.Errorf("%w: Offload: %w", ErrInvalidOptions, err)
			}
			k.extStore = &es
		default:
			return nil, fmt.Errorf("%w: Offload.Mode %q: allowed values are %q and %q",
				ErrInvalidOptions, opts.Offload.Mode, offload.ModeCodec, offload.ModeExternalStorage)
		}
		remote = remote || isRemote(opts.Offload.Store)
	}

	// Telemetry observes the pipeline; the pipeline does not depend on it.
	k.pipeline = pipeline.New(pipeline.Options{
		Parent:   opts.PayloadConverter, // nil: the SDK's default
		Stages:   stages,
		Observer: tel,
		Remote:   remote,
		// A key provider or store briefly unavailable must not fail a workflow for good: in
		// workflow code such errors become workflow task failures, which the server retries.
		Retryable: isRetryable,
	})
	k.dc = k.pipeline.DataConverter()
	fc, err := failureconv.New(k.dc, opts.Failures, opts.Encryption != nil)
	if err != nil {
		return nil, fmt.Errorf("%w: Failures: %w", ErrInvalidOptions, err)
	}
	k.fc = fc

	plugin, err := temporal.NewSimplePlugin(temporal.SimplePluginOptions{
		Name:               PluginName,
		DataConverter:      k.dc,
		FailureConverter:   k.fc,
		ClientInterceptors: k.ClientInterceptors(),
		WorkerInterceptors: k.workerOnlyInterceptors(),
		ConfigureClient: func(_ context.Context, o client.PluginConfigureClientOptions) error {
			// Bind the converters to the client's namespace (see DataConverterFor).
			ns := clientNamespace(*o.ClientOptions)
			o.ClientOptions.DataConverter = k.DataConverterFor(ns)
			o.ClientOptions.FailureConverter = k.FailureConverterFor(ns)
			if k.extStore != nil {
				o.ClientOptions.ExternalStorage = *k.extStore
			}
			return nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("payloadkit: building plugin: %w", err)
	}
	k.plugin = plugin
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("payloadkit: New: %w", err)
	}
	return k, nil
}

// isRemote reports whether v (a key provider or an offload store) implements codec.Remote and
// says it calls a remote service. It is the one way a stage is known remote.
func isRemote(v any) bool {
	r, ok := v.(codec.Remote)
	return ok && r.Remote()
}

// DataConverter returns the Kit's DataConverter: Options.PayloadConverter (by default the
// SDK's default payload converters) followed by the Kit's codecs. It is aware of the SDK's
// serialization and workflow contexts.
func (k *Kit) DataConverter() converter.DataConverter { return k.dc }

// FailureConverter returns the Kit's FailureConverter, built on the Kit's DataConverter.
func (k *Kit) FailureConverter() converter.FailureConverter { return k.fc }

// DataConverterFor returns the Kit's DataConverter bound to namespace: conversions the SDK makes
// without a serialization context of its own (memos, query failures, some failure paths) are
// bound to namespace, so every envelope and claim the Kit writes carries a namespace and passes
// strict decoding. Where the SDK gives a serialization context with a namespace, that context
// applies instead; one without a namespace keeps namespace.
// ClientOptions and Plugin use it with the client's namespace.
func (k *Kit) DataConverterFor(namespace string) converter.DataConverter {
	return k.pipeline.DataConverterFor(namespace)
}

// FailureConverterFor returns the Kit's FailureConverter bound to namespace, as DataConverterFor
// does for the DataConverter. The SDK encodes workflow task failures with the worker's failure
// converter and no serialization context: this binding gives those failures their namespace.
func (k *Kit) FailureConverterFor(namespace string) converter.FailureConverter {
	return bindFailureConverter(k.fc, namespace)
}

// bindFailureConverter binds fc to namespace when it accepts a serialization context.
func bindFailureConverter(fc converter.FailureConverter, namespace string) converter.FailureConverter {
	if fcs, ok := fc.(converter.FailureConverterWithSerializationContext); ok {
		return fcs.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: namespace})
	}
	return fc
}

// NamespacePluginName is the name of the plugin ClientOptions adds (see namespacePlugin).
const NamespacePluginName = PluginName + ".namespace"

// namespacePlugin returns a plugin that, when the client is created, binds the converters
// ClientOptions set (dc and fc, still in place) to the namespace the client ends up with:
// whoever builds the client may set Namespace after ClientOptions ran (a test server, a
// configuration loader).
func (k *Kit) namespacePlugin(dc converter.DataConverter, fc converter.FailureConverter) client.Plugin {
	p, _ := temporal.NewSimplePlugin(temporal.SimplePluginOptions{
		Name: NamespacePluginName,
		ConfigureClient: func(_ context.Context, o client.PluginConfigureClientOptions) error {
			ns := clientNamespace(*o.ClientOptions)
			if o.ClientOptions.DataConverter == dc {
				o.ClientOptions.DataConverter = k.DataConverterFor(ns)
			}
			if o.ClientOptions.FailureConverter == fc {
				o.ClientOptions.FailureConverter = k.FailureConverterFor(ns)
			}
			return nil
		},
	})
	return p
}

// clientNamespace is the namespace a client built from o uses.
func clientNamespace(o client.Options) string {
	if o.Namespace != "" {
		return o.Namespace
	}
	return client.DefaultNamespace
}

// ClientInterceptors returns the interceptors to set on client.Options.Interceptors.
func (k *Kit) ClientInterceptors() []sdkinterceptor.ClientInterceptor {
	return k.telemetry.ClientInterceptors()
}

// WorkerInterceptors returns the interceptors to set on worker.Options.Interceptors.
func (k *Kit) WorkerInterceptors() []sdkinterceptor.WorkerInterceptor {
	return k.telemetry.WorkerInterceptors()
}

// Plugin returns a plugin carrying the DataConverter, FailureConverter and interceptors, for
// client.Options.Plugins. Use either the plugin or ClientOptions/WorkerOptions, not both.
func (k *Kit) Plugin() *temporal.SimplePlugin { return k.plugin }

// ClientOptions returns base with the DataConverter, FailureConverter and client interceptors set
// (the interceptors are appended to those already in base). The converters are bound to the
// client's namespace (see DataConverterFor); the workers of the client use them too.
func (k *Kit) ClientOptions(base client.Options) client.Options {
	ns := clientNamespace(base)
	dc, fc := k.DataConverterFor(ns), k.FailureConverterFor(ns)
	base.DataConverter = dc
	base.FailureConverter = fc
	base.Plugins = append(append([]client.Plugin(nil), base.Plugins...), k.namespacePlugin(dc, fc))
	base.Interceptors = append(append([]sdkinterceptor.ClientInterceptor(nil), base.Interceptors...), k.ClientInterceptors()...)
	if k.extStore != nil {
		base.ExternalStorage = *k.extStore
	}
	return base
}

// WorkerOptions returns base with the worker interceptors appended that a client built with
// ClientOptions does not already carry: the SDK applies a client's interceptors that are also
// worker interceptors to every worker of that client, so they are not added twice. The data and
// failure converters of a worker come from its client. A testsuite environment has no client:
// give it WorkerInterceptors instead.
func (k *Kit) WorkerOptions(base worker.Options) worker.Options {
	base.Interceptors = append(append([]sdkinterceptor.WorkerInterceptor(nil), base.Interceptors...), k.workerOnlyInterceptors()...)
	return base
}

// workerOnlyInterceptors returns the worker interceptors that are not also client interceptors.
func (k *Kit) workerOnlyInterceptors() []sdkinterceptor.WorkerInterceptor {
	var out []sdkinterceptor.WorkerInterceptor
	for _, wi := range k.WorkerInterceptors() {
		if _, both := wi.(sdkinterceptor.ClientInterceptor); !both {
			out = append(out, wi)
		}
	}
	return out
}

// Codecs returns the Kit's codecs in the order converter.NewCodecDataConverter expects them
// (the last is applied first on encode): for example to build a Codec Server.
func (k *Kit) Codecs() []converter.PayloadCodec { return k.pipeline.Codecs() }

// Stages returns the names of the configured codec stages in encode order.
func (k *Kit) Stages() []string { return append([]string(nil), k.stages...) }

// FlushSpans ends the codec spans still waiting to be ended: codec spans are ended in bursts,
// at most 20 ms after their chain run (see interceptor.Options.EndSpansImmediately). Call it
// before reading spans synchronously, or before shutting down the tracer provider without
// closing the Kit.
func (k *Kit) FlushSpans() {
	if k.telemetry != nil {
		k.telemetry.Flush()
	}
}

// Close ends the codec spans still waiting to be ended, then releases what the Kit holds: it
// zeroes cached data keys and closes the stages that hold resources. The Kit must not be used
// afterwards. Close it before shutting down its tracer provider.
func (k *Kit) Close() error {
	k.FlushSpans()
	var errs []error
	for _, c := range k.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// isRetryable reports errors of the stages that may succeed when retried.
func isRetryable(err error) bool {
	return errors.Is(err, codec.ErrRetryable) || errors.Is(err, offload.ErrRetryable)
}

// encryptionDefaults applies the Kit's defaults to enc, the Kit's copy of opts.Encryption:
//   - telemetry records key-provider events unless the caller set OnKeyEvent;
//   - with an offload stage in codec mode, large payloads (half the offload threshold or more)
//     get deterministic message ids, so that the offload stage stores an equal value once;
//   - with an offload stage and no KeyObjects, the offload store (under its prefix) keeps the
//     key objects of envelope v2, so the Kit decodes v2 payloads of other writers in every case;
//   - the format defaults to v2 where every process can read the key objects: an offload stage
//     in codec mode on a remote store (S3).
//
// It refuses v2 with key objects in a MemoryStore, which no other process can read, unless
// Options.AllowLocalKeyObjects is set.
func encryptionDefaults(enc *codec.EncryptionOptions, opts *Options, tel *interceptor.Telemetry) error {
	if enc.OnKeyEvent == nil {
		enc.OnKeyEvent = func(e codec.KeyEvent) {
			tel.RecordKeyEvent(interceptor.KeyEvent{Kind: e.Kind, Operation: e.Operation, Hit: e.Hit, Err: e.Err})
		}
	}
	off := opts.Offload
	codecMode := off != nil && (off.Mode == "" || off.Mode == offload.ModeCodec)
	if codecMode && enc.DeterministicMinSize == 0 {
		threshold := off.Threshold
		if threshold <= 0 {
			threshold = offload.DefaultThreshold
		}
		enc.DeterministicMinSize = max(threshold/2, 1)
	}
	if enc.KeyObjects == nil && off != nil && off.Store != nil {
		enc.KeyObjects = off.Store
		if enc.KeyObjectPrefix == "" {
			enc.KeyObjectPrefix = off.Prefix // "" means the same default as offload's
		}
		if codecMode && enc.Format == codec.FormatDefault && isRemote(off.Store) {
			enc.Format = codec.FormatV2
		}
	}
	if enc.Format != codec.FormatV2 || opts.AllowLocalKeyObjects {
		return nil
	}
	if _, ok := enc.KeyObjects.(*offload.MemoryStore); ok {
		return fmt.Errorf("%w: Encryption.Format is v2 with key objects in an offload.MemoryStore, "+
			"which workers in other processes, the Codec Server and the CLI cannot read: use a shared store "+
			"(S3, a shared directory), or set AllowLocalKeyObjects in tests", ErrInvalidOptions)
	}
	return nil
}
