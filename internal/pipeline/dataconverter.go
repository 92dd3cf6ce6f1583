package pipeline

import (
	"context"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"
)

// dataConverter is the pipeline's context-aware DataConverter. Each With* method returns a new
// value; the receiver is never modified.
type dataConverter struct {
	converter.DataConverter // the codec data converter built from the fields below

	p         *Pipeline
	defaultNS string // namespace of serialization contexts that name none; "" for none
	sc        converter.SerializationContext
	ctx       context.Context
	wctx      workflow.Context
}

var (
	_ converter.DataConverter                         = (*dataConverter)(nil)
	_ converter.DataConverterWithSerializationContext = (*dataConverter)(nil)
	_ workflow.ContextAware                           = (*dataConverter)(nil)
)

// build makes the codec data converter: the parent with the serialization context and the
// bound contexts forwarded, and each stage with the serialization context applied and, when
// there is an observer, observed through this converter's binding.
func (d *dataConverter) build() {
	parent := d.p.parent
	if d.sc != nil {
		parent = converter.WithDataConverterSerializationContext(parent, d.sc)
	}
	if ca, ok := parent.(workflow.ContextAware); ok {
		if d.wctx != nil {
			parent = ca.WithWorkflowContext(d.wctx)
		}
		if ca, ok := parent.(workflow.ContextAware); ok && d.ctx != nil {
			parent = ca.WithContext(d.ctx)
		}
	}
	b := &binding{p: d.p, ctx: d.ctx, wctx: d.wctx}
	stages := d.p.stages
	codecs := make([]converter.PayloadCodec, 0, len(stages))
	// NewCodecDataConverter applies codecs last-to-first on encode.
	for i := len(stages) - 1; i >= 0; i-- {
		c := stages[i].Codec
		if d.sc != nil {
			if cc, ok := c.(converter.PayloadCodecWithSerializationContext); ok {
				c = cc.WithSerializationContext(d.sc)
			}
		}
		codecs = append(codecs, d.p.wrap(stages[i], c, b))
	}
	d.DataConverter = converter.NewCodecDataConverter(parent, codecs...)
}

func (d *dataConverter) with(edit func(*dataConverter)) *dataConverter {
	cp := *d
	edit(&cp)
	cp.build()
	return &cp
}

// WithContext implements workflow.ContextAware.
func (d *dataConverter) WithContext(ctx context.Context) converter.DataConverter {
	return d.with(func(cp *dataConverter) { cp.ctx = ctx })
}

// WithWorkflowContext implements workflow.ContextAware.
func (d *dataConverter) WithWorkflowContext(ctx workflow.Context) converter.DataConverter {
	return d.with(func(cp *dataConverter) { cp.wctx = ctx })
}

// WithSerializationContext implements converter.DataConverterWithSerializationContext.
func (d *dataConverter) WithSerializationContext(sc converter.SerializationContext) converter.DataConverter {
	return d.with(func(cp *dataConverter) { cp.sc = withDefaultNamespace(sc, d.defaultNS) })
}

// withDefaultNamespace fills in ns as the namespace of a workflow or activity serialization
// context that has none (the SDK's testsuite gives activities an empty namespace), and puts a
// workflow context of ns in place of a context that carries no namespace at all (Nexus
// operations): the stages only read the namespace from it.
func withDefaultNamespace(sc converter.SerializationContext, ns string) converter.SerializationContext {
	if ns == "" {
		return sc
	}
	switch v := sc.(type) {
	case converter.WorkflowSerializationContext:
		if v.Namespace == "" {
			v.Namespace = ns
		}
		return v
	case converter.ActivitySerializationContext:
		if v.Namespace == "" {
			v.Namespace = ns
		}
		return v
	}
	return converter.WorkflowSerializationContext{Namespace: ns}
}

// ToPayloads implements converter.DataConverter. When the bound context carries a Probe (or one
// is expecting a result there), the probe is told the proto size of the Payloads produced, the
// bytes the SDK sends; if it refuses them, ToPayloads returns its error instead.
func (d *dataConverter) ToPayloads(values ...any) (*commonpb.Payloads, error) {
	ps, err := d.DataConverter.ToPayloads(values...)
	if err != nil {
		return ps, err
	}
	if probe := findProbe(d.ctx, d.wctx); probe != nil {
		if err := probe(int64(proto.Size(ps))); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

// binding is the context a DataConverter was bound to, and the observing function the
// Observer returned for it.
type binding struct {
	p    *Pipeline
	ctx  context.Context
	wctx workflow.Context

	once sync.Once
	rec  func(CodecCall)
}

// recorder returns the observing function of b, or nil when nothing is to be recorded (no
// observer, the bound workflow is replaying, or the observer declined).
func (b *binding) recorder() func(CodecCall) {
	if b.wctx != nil && workflow.IsReplaying(b.wctx) {
		return nil
	}
	b.once.Do(func() { b.rec = b.p.observer.ObserveCodec(b.ctx, b.wctx) })
	return b.rec
}

// observedCodec reports each call of one stage's codec to the binding's observer.
type observedCodec struct {
	name string
	next converter.PayloadCodec
	b    *binding
}

var (
	_ converter.PayloadCodec                         = (*observedCodec)(nil)
	_ converter.PayloadCodecWithSerializationContext = (*observedCodec)(nil)
)

// Encode implements converter.PayloadCodec.
func (c *observedCodec) Encode(in []*commonpb.Payload) ([]*commonpb.Payload, error) {
	rec := c.b.recorder()
	if rec == nil {
		return c.next.Encode(in)
	}
	start := time.Now()
	out, err := c.next.Encode(in)
	rec(CodecCall{Stage: c.name, Op: OpEncode, In: in, Out: out, Start: start, Duration: time.Since(start), Err: err})
	return out, err
}

// Decode implements converter.PayloadCodec.
func (c *observedCodec) Decode(in []*commonpb.Payload) ([]*commonpb.Payload, error) {
	rec := c.b.recorder()
	if rec == nil {
		return c.next.Decode(in)
	}
	start := time.Now()
	out, err := c.next.Decode(in)
	rec(CodecCall{Stage: c.name, Op: OpDecode, In: in, Out: out, Start: start, Duration: time.Since(start), Err: err})
	return out, err
}

// WithSerializationContext implements converter.PayloadCodecWithSerializationContext: it
// forwards sc to the stage's codec (a Codec Server binds its codecs to a namespace this way).
func (c *observedCodec) WithSerializationContext(sc converter.SerializationContext) converter.PayloadCodec {
	n, ok := c.next.(converter.PayloadCodecWithSerializationContext)
	if !ok {
		return c
	}
	cp := *c
	cp.next = n.WithSerializationContext(sc)
	return &cp
}
