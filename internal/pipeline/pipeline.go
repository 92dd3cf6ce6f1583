// Package pipeline is payloadkit's core: the chain of codec stages and the context-aware
// DataConverter around it. It runs with no telemetry at all. Telemetry decorates it through one
// hook, Observer, which sees every run of the chain with the result of each stage; the
// payload-size guard learns the encoded size of workflow and activity inputs and results from
// the real encode through Probe.
package pipeline

import (
	"context"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"
)

// Operations reported in ChainCall.Op.
const (
	OpEncode = "encode"
	OpDecode = "decode"
)

// Stage is one codec stage of the chain.
type Stage struct {
	// Name names the stage in what the Observer receives (for example "compression").
	Name string
	// Codec is the stage's codec. When it implements
	// converter.PayloadCodecWithSerializationContext it receives the serialization context.
	Codec converter.PayloadCodec
}

// Options configure a Pipeline.
type Options struct {
	// Parent converts values to payloads before the stages run (the Kit's
	// Options.PayloadConverter). It receives the serialization context, and the workflow or Go
	// context when it is workflow.ContextAware. Defaults to converter.GetDefaultDataConverter().
	Parent converter.DataConverter
	// Stages in encode order: the first is applied first on encode and last on decode.
	Stages []Stage
	// Observer sees every run of the chain. Defaults to none: stages run bare.
	Observer Observer
	// Remote reports that a stage calls a remote service (a key provider or a store): the
	// DataConverter then turns off the SDK's deadlock detector around its calls, each remote
	// call being bounded by its own timeout.
	Remote bool
	// Retryable reports errors of the stages that may succeed when retried (a key provider or
	// a store briefly unavailable). When such an error occurs in a DataConverter bound to a
	// workflow context, the DataConverter panics with a *RetryableError instead of returning
	// it: the SDK fails a workflow for good when its input cannot be decoded or its result
	// encoded, but turns a panic into a workflow task failure, which the server retries.
	// Defaults to none: every error is returned.
	Retryable func(error) bool
}

// RetryableError is the panic value of a DataConverter bound to a workflow context when a stage
// fails with an error Options.Retryable accepts. The SDK reports it as a workflow task failure
// (under its default panic policy, WorkflowPanicPolicy BlockWorkflow) and the server retries
// the task.
type RetryableError struct {
	// Err is the stage's error.
	Err error
}

func (e *RetryableError) Error() string {
	return "payloadkit: retryable failure in workflow code, failing the workflow task so that it is retried: " + e.Err.Error()
}

func (e *RetryableError) Unwrap() error { return e.Err }

// CodecCall describes one call of a stage's Encode or Decode within a ChainCall (whose Op it
// shares).
type CodecCall struct {
	// Stage is the stage's name.
	Stage string
	// In holds the payloads the stage received and Out those it returned (nil on error). They
	// must not be modified or kept after the observing function returns.
	In, Out []*commonpb.Payload
	// Duration is how long the call took; the calls of a run follow one another from its Start.
	Duration time.Duration
	// Err is the call's error, if any.
	Err error
}

// ChainCall describes one run of the chain: the encode of a ToPayloads or the decode of a
// FromPayloads through every stage, or one call of a codec of Pipeline.Codecs.
type ChainCall struct {
	// Op is OpEncode or OpDecode.
	Op string
	// In holds the payloads the chain received and Out those it returned (nil on error). They
	// must not be modified or kept after the observing function returns.
	In, Out []*commonpb.Payload
	// Start is when the run started and Duration how long it took.
	Start    time.Time
	Duration time.Duration
	// Stages holds one call per stage that ran, in the order they ran (encode order for
	// OpEncode, reverse for OpDecode). On error the last one is the stage that failed. The
	// slice must not be kept after the observing function returns.
	Stages []CodecCall
	// Err is the error of the failing stage, if any.
	Err error

	inline [maxInlineStages]CodecCall // backs Stages: one allocation per run
}

// maxInlineStages is the number of stage calls a run records without a second allocation.
const maxInlineStages = 4

// Observer is the one hook through which telemetry sees the pipeline.
type Observer interface {
	// ObserveChain returns the function to call after each run of the chain made through a
	// DataConverter bound to ctx (WithContext) and wctx (WithWorkflowContext); either or both
	// may be nil. It returns nil to record nothing. It is called at most once per bound
	// DataConverter, lazily, on its first run made while the bound workflow is not
	// replaying; nothing is observed while it replays.
	ObserveChain(ctx context.Context, wctx workflow.Context) func(*ChainCall)
}

// Pipeline is the assembled chain. It is safe for concurrent use.
type Pipeline struct {
	parent   converter.DataConverter
	stages   []Stage
	names    []string                 // stage names, encode order
	codecs   []converter.PayloadCodec // stage codecs, encode order
	observer Observer
	remote   bool
	retry    func(error) bool
	dc       converter.DataConverter
}

// New assembles a Pipeline from opts.
func New(opts Options) *Pipeline {
	p := &Pipeline{
		parent:   opts.Parent,
		stages:   append([]Stage(nil), opts.Stages...),
		observer: opts.Observer,
		remote:   opts.Remote,
		retry:    opts.Retryable,
	}
	for _, s := range p.stages {
		p.names = append(p.names, s.Name)
		p.codecs = append(p.codecs, s.Codec)
	}
	if p.parent == nil {
		p.parent = converter.GetDefaultDataConverter()
	}
	p.dc = p.DataConverterFor("")
	return p
}

// DataConverterFor returns the pipeline's DataConverter (see DataConverter) with namespace as
// its default: it starts bound to a workflow serialization context of namespace, and a
// workflow or activity serialization context given later without a namespace keeps it. A
// serialization context with a namespace replaces it. An empty namespace gives the unbound
// DataConverter.
func (p *Pipeline) DataConverterFor(namespace string) converter.DataConverter {
	d := &dataConverter{p: p, defaultNS: namespace}
	if namespace != "" {
		d.sc = converter.WorkflowSerializationContext{Namespace: namespace}
	}
	d.build()
	if p.remote {
		return workflow.DataConverterWithoutDeadlockDetection(d)
	}
	return d
}

// DataConverter returns the pipeline's DataConverter. It behaves like
// converter.NewCodecDataConverter(parent, codecs...) with the stages' codecs, and is also aware
// of the SDK's contexts:
//
//   - WithSerializationContext (converter.DataConverterWithSerializationContext) forwards the
//     serialization context to the parent and to every stage that accepts one.
//   - WithContext and WithWorkflowContext (workflow.ContextAware) bind a Go context or a
//     workflow context: the Observer receives it, and a Probe carried by it learns the encoded
//     size of what ToPayloads produces. While the bound workflow replays nothing is observed.
//
// The three compose in any order. WithContext and WithWorkflowContext are also forwarded to
// the parent when it is context aware.
func (p *Pipeline) DataConverter() converter.DataConverter { return p.dc }

// Codecs returns the stages' codecs in the order converter.NewCodecDataConverter expects them
// (the last is applied first on encode), for a Codec Server. With an observer each is observed
// with no bound context, as a chain of its one stage.
func (p *Pipeline) Codecs() []converter.PayloadCodec {
	b := &binding{p: p}
	out := make([]converter.PayloadCodec, 0, len(p.stages))
	for i := len(p.stages) - 1; i >= 0; i-- {
		s := p.stages[i]
		if p.observer == nil {
			out = append(out, s.Codec)
			continue
		}
		out = append(out, &chainCodec{names: []string{s.Name}, codecs: []converter.PayloadCodec{s.Codec}, b: b})
	}
	return out
}
