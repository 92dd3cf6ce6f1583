package interceptor

import (
	"context"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"
)

// DataConverter returns a DataConverter that behaves like
// converter.NewCodecDataConverter(parent, codecs...) and is also aware of the SDK's contexts:
//
//   - WithContext (workflow.ContextAware) binds a Go context: codec spans become children of its
//     span, such as the client or activity span of the SDK tracing interceptor.
//   - WithWorkflowContext (workflow.ContextAware) binds a workflow context: codec spans become
//     children of the span the SDK tracing interceptor stored in it (for example the
//     StartActivity span around an activity's input), or else of the caller's span carried in
//     the workflow's header. While the workflow is replaying nothing is recorded.
//   - WithSerializationContext (converter.DataConverterWithSerializationContext) forwards the
//     serialization context to parent and to every codec that accepts one.
//
// The three compose in any order. WithContext and WithWorkflowContext are also forwarded to
// parent when it is context aware. The result is correct whether or not telemetry is recorded.
//
// The returned converter also becomes the one the payload-size interceptors measure with,
// unless SetDataConverter is called afterwards.
func (t *Telemetry) DataConverter(parent converter.DataConverter, codecs []converter.PayloadCodec) converter.DataConverter {
	dc := &dataConverter{
		t:      t,
		parent: parent,
		codecs: append([]converter.PayloadCodec(nil), codecs...),
	}
	dc.build()
	t.SetDataConverter(dc)
	return dc
}

// dataConverter is the context-aware converter built by Telemetry.DataConverter. Each With*
// method returns a new value; the receiver is never modified.
type dataConverter struct {
	converter.DataConverter // the codec data converter built from the fields below

	t      *Telemetry
	parent converter.DataConverter  // as given to Telemetry.DataConverter
	codecs []converter.PayloadCodec // as given to Telemetry.DataConverter
	sc     converter.SerializationContext
	ctx    context.Context
	wctx   workflow.Context
}

var (
	_ converter.DataConverter                         = (*dataConverter)(nil)
	_ converter.DataConverterWithSerializationContext = (*dataConverter)(nil)
	_ workflow.ContextAware                           = (*dataConverter)(nil)
)

func (d *dataConverter) build() {
	parent := d.parent
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
	var b *binding
	if d.ctx != nil || d.wctx != nil {
		b = newBinding(d.ctx, d.wctx)
	}
	codecs := make([]converter.PayloadCodec, len(d.codecs))
	for i, c := range d.codecs {
		if d.sc != nil {
			if cc, ok := c.(converter.PayloadCodecWithSerializationContext); ok {
				c = cc.WithSerializationContext(d.sc)
			}
		}
		if tc, ok := c.(*tracedCodec); ok && b != nil {
			c = tc.withBinding(b)
		}
		codecs[i] = c
	}
	d.DataConverter = converter.NewCodecDataConverter(parent, codecs...)
}

func (d *dataConverter) clone() *dataConverter {
	cp := *d
	return &cp
}

// WithContext implements workflow.ContextAware.
func (d *dataConverter) WithContext(ctx context.Context) converter.DataConverter {
	cp := d.clone()
	cp.ctx = ctx
	cp.build()
	return cp
}

// WithWorkflowContext implements workflow.ContextAware.
func (d *dataConverter) WithWorkflowContext(ctx workflow.Context) converter.DataConverter {
	cp := d.clone()
	cp.wctx = ctx
	cp.build()
	return cp
}

// WithSerializationContext implements converter.DataConverterWithSerializationContext.
func (d *dataConverter) WithSerializationContext(sc converter.SerializationContext) converter.DataConverter {
	cp := d.clone()
	cp.sc = sc
	cp.build()
	return cp
}
