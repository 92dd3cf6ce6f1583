// Package pipeline is payloadkit's core: the chain of codec stages and the context-aware
// DataConverter around it. It runs with no telemetry at all. Telemetry decorates it through one
// hook, Observer, which sees every stage call; the payload-size guard learns the encoded size of
// workflow and activity inputs and results from the real encode through Probe.
package pipeline

import (
	"context"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"
)

// Operations reported in CodecCall.Op.
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
	// Observer sees every stage call. Defaults to none: stages run bare.
	Observer Observer
	// Remote reports that a stage calls a remote service (a key provider or a store): the
	// DataConverter then turns off the SDK's deadlock detector around its calls, each remote
	// call being bounded by its own timeout.
	Remote bool
}

// CodecCall describes one call of a stage's Encode or Decode.
type CodecCall struct {
	// Stage is the stage's name.
	Stage string
	// Op is OpEncode or OpDecode.
	Op string
	// In holds the payloads the stage received and Out those it returned (nil on error). They
	// must not be modified or kept after the observing function returns.
	In, Out []*commonpb.Payload
	// Start is when the call started and Duration how long it took.
	Start    time.Time
	Duration time.Duration
	// Err is the call's error, if any.
	Err error
}

// Observer is the one hook through which telemetry sees the pipeline.
type Observer interface {
	// ObserveCodec returns the function to call after each stage call made through a
	// DataConverter bound to ctx (WithContext) and wctx (WithWorkflowContext); either or both
	// may be nil. It returns nil to record nothing. It is called at most once per bound
	// DataConverter, lazily, on its first stage call made while the bound workflow is not
	// replaying; nothing is observed while it replays.
	ObserveCodec(ctx context.Context, wctx workflow.Context) func(CodecCall)
}

// Pipeline is the assembled chain. It is safe for concurrent use.
type Pipeline struct {
	parent   converter.DataConverter
	stages   []Stage
	observer Observer
	remote   bool
	dc       converter.DataConverter
}

// New assembles a Pipeline from opts.
func New(opts Options) *Pipeline {
	p := &Pipeline{
		parent:   opts.Parent,
		stages:   append([]Stage(nil), opts.Stages...),
		observer: opts.Observer,
	}
	if p.parent == nil {
		p.parent = converter.GetDefaultDataConverter()
	}
	p.remote = opts.Remote
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
// (the last is applied first on encode), observed with no bound context: for a Codec Server.
func (p *Pipeline) Codecs() []converter.PayloadCodec {
	b := &binding{p: p}
	out := make([]converter.PayloadCodec, 0, len(p.stages))
	for i := len(p.stages) - 1; i >= 0; i-- {
		out = append(out, p.wrap(p.stages[i], p.stages[i].Codec, b))
	}
	return out
}

// wrap returns c observed as stage s through b, or c itself without an observer.
func (p *Pipeline) wrap(s Stage, c converter.PayloadCodec, b *binding) converter.PayloadCodec {
	if p.observer == nil {
		return c
	}
	return &observedCodec{name: s.Name, next: c, b: b}
}
