package pipeline

import (
	"context"
	"slices"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	"github.com/payloadkit/payloadkit/internal/pbwire"
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
// bound contexts forwarded, and the stages with the serialization context applied and, when
// there is an observer, run as one chain observed through this converter's binding.
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
	// A new slice either way: it is reversed below.
	var codecs []converter.PayloadCodec
	if d.sc != nil {
		codecs = BindCodecs(d.p.codecs, d.sc)
	} else {
		codecs = slices.Clone(d.p.codecs)
	}
	switch {
	case d.p.observer == nil || len(codecs) == 0:
		// NewCodecDataConverter applies codecs last-to-first on encode.
		slices.Reverse(codecs)
		d.DataConverter = converter.NewCodecDataConverter(parent, codecs...)
	default:
		// One observed codec runs the whole chain, so that the observer sees one run per
		// ToPayloads or FromPayloads.
		d.DataConverter = converter.NewCodecDataConverter(parent, &chainCodec{
			names:  d.p.names,
			codecs: codecs,
			b:      &binding{p: d.p, ctx: d.ctx, wctx: d.wctx},
		})
	}
}

// BindCodecs returns codecs with sc applied to each one that implements
// converter.PayloadCodecWithSerializationContext (the others as they are), in a new slice: the
// pipeline's stages, the Codec Server's and the payloadkit command's codecs for a namespace.
func BindCodecs(codecs []converter.PayloadCodec, sc converter.SerializationContext) []converter.PayloadCodec {
	out := make([]converter.PayloadCodec, len(codecs))
	for i, c := range codecs {
		if cc, ok := c.(converter.PayloadCodecWithSerializationContext); ok {
			c = cc.WithSerializationContext(sc)
		}
		out[i] = c
	}
	return out
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
		d.panicIfRetryable(err)
		return ps, err
	}
	if probe := findProbe(d.ctx, d.wctx); probe != nil {
		if err := probe(pbwire.PayloadsSize(ps)); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

// ToPayload implements converter.DataConverter (see Options.Retryable).
func (d *dataConverter) ToPayload(value any) (*commonpb.Payload, error) {
	p, err := d.DataConverter.ToPayload(value)
	d.panicIfRetryable(err)
	return p, err
}

// FromPayloads implements converter.DataConverter (see Options.Retryable).
func (d *dataConverter) FromPayloads(payloads *commonpb.Payloads, valuePtrs ...any) error {
	err := d.DataConverter.FromPayloads(payloads, valuePtrs...)
	d.panicIfRetryable(err)
	return err
}

// FromPayload implements converter.DataConverter (see Options.Retryable).
func (d *dataConverter) FromPayload(payload *commonpb.Payload, valuePtr any) error {
	err := d.DataConverter.FromPayload(payload, valuePtr)
	d.panicIfRetryable(err)
	return err
}

// panicIfRetryable panics with a *RetryableError when err is retryable and the converter is
// bound to a workflow context (see Options.Retryable).
func (d *dataConverter) panicIfRetryable(err error) {
	if err != nil && d.wctx != nil && d.p.retry != nil && d.p.retry(err) {
		panic(&RetryableError{Err: err})
	}
}

// binding is the context a DataConverter was bound to, and the observing function the
// Observer returned for it.
type binding struct {
	p    *Pipeline
	ctx  context.Context
	wctx workflow.Context

	once sync.Once
	rec  func(*ChainCall)
}

// recorder returns the observing function of b, or nil when nothing is to be recorded (no
// observer, the bound workflow is replaying, or the observer declined).
func (b *binding) recorder() func(*ChainCall) {
	if b.wctx != nil && workflow.IsReplaying(b.wctx) {
		return nil
	}
	b.once.Do(func() { b.rec = b.p.observer.ObserveChain(b.ctx, b.wctx) })
	return b.rec
}

// chainCodec runs stages as one codec and reports each run to the binding's observer.
type chainCodec struct {
	names  []string                 // stage names, encode order
	codecs []converter.PayloadCodec // stage codecs, encode order
	b      *binding
}

var (
	_ converter.PayloadCodec                         = (*chainCodec)(nil)
	_ converter.PayloadCodecWithSerializationContext = (*chainCodec)(nil)
)

// Encode implements converter.PayloadCodec: the stages in order.
func (c *chainCodec) Encode(in []*commonpb.Payload) ([]*commonpb.Payload, error) {
	rec := c.b.recorder()
	if rec == nil {
		var err error
		for _, s := range c.codecs {
			if in, err = s.Encode(in); err != nil {
				return nil, err
			}
		}
		return in, nil
	}
	return c.run(rec, OpEncode, in)
}

// Decode implements converter.PayloadCodec: the stages in reverse order.
func (c *chainCodec) Decode(in []*commonpb.Payload) ([]*commonpb.Payload, error) {
	rec := c.b.recorder()
	if rec == nil {
		var err error
		for i := len(c.codecs) - 1; i >= 0; i-- {
			if in, err = c.codecs[i].Decode(in); err != nil {
				return nil, err
			}
		}
		return in, nil
	}
	return c.run(rec, OpDecode, in)
}

// run runs the stages for op, timing each, and reports the run to rec.
func (c *chainCodec) run(rec func(*ChainCall), op string, in []*commonpb.Payload) ([]*commonpb.Payload, error) {
	call := &ChainCall{Op: op, In: in}
	call.Stages = call.inline[:0]
	n := len(c.codecs)
	start := time.Now()
	call.Start = start
	cur := in
	for k := range n {
		i := k
		if op == OpDecode {
			i = n - 1 - k
		}
		sc := CodecCall{Stage: c.names[i], In: cur}
		var out []*commonpb.Payload
		var err error
		if op == OpDecode {
			out, err = c.codecs[i].Decode(cur)
		} else {
			out, err = c.codecs[i].Encode(cur)
		}
		end := time.Now()
		sc.Duration = end.Sub(start)
		start = end
		if err != nil {
			sc.Err = err
			call.Stages = append(call.Stages, sc)
			call.Err = err
			call.Duration = end.Sub(call.Start)
			rec(call)
			return nil, err
		}
		sc.Out = out
		call.Stages = append(call.Stages, sc)
		cur = out
	}
	call.Out = cur
	call.Duration = start.Sub(call.Start)
	rec(call)
	return cur, nil
}

// WithSerializationContext implements converter.PayloadCodecWithSerializationContext: it
// forwards sc to the stages' codecs (a Codec Server binds its codecs to a namespace this way).
func (c *chainCodec) WithSerializationContext(sc converter.SerializationContext) converter.PayloadCodec {
	cp := *c
	cp.codecs = make([]converter.PayloadCodec, len(c.codecs))
	for i, s := range c.codecs {
		if n, ok := s.(converter.PayloadCodecWithSerializationContext); ok {
			s = n.WithSerializationContext(sc)
		}
		cp.codecs[i] = s
	}
	return &cp
}
