package workflowtest

import (
	"context"
	"sync"

	commonpb "go.temporal.io/api/common/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// Direction says which way a recorded payload crossed the DataConverter.
type Direction string

// Directions of recorded payloads.
const (
	// Outbound payloads left the pipeline: the encoded form the Temporal server would store.
	Outbound Direction = "outbound"
	// Inbound payloads entered the pipeline to be decoded.
	Inbound Direction = "inbound"
)

// PayloadRecord is one payload that crossed the DataConverter, in its encoded form.
type PayloadRecord struct {
	// Direction says whether the payload left (Outbound) or entered (Inbound) the pipeline.
	Direction Direction
	// Payload is a copy of the encoded payload.
	Payload *commonpb.Payload
	// Context is the serialization context the DataConverter had, or nil.
	Context converter.SerializationContext
}

// Namespace returns the namespace of the record's serialization context ("" when there is none).
func (r PayloadRecord) Namespace() string { return namespaceOf(r.Context) }

// FailureRecord is one Failure produced by the FailureConverter.
type FailureRecord struct {
	// Failure is a copy of the Failure as it would be sent to the Temporal server.
	Failure *failurepb.Failure
	// Context is the serialization context the FailureConverter had, or nil.
	Context converter.SerializationContext
}

func namespaceOf(ctx converter.SerializationContext) string {
	switch c := ctx.(type) {
	case converter.WorkflowSerializationContext:
		return c.Namespace
	case converter.ActivitySerializationContext:
		return c.Namespace
	}
	return ""
}

// Recorder keeps a copy of every payload that crosses a DataConverter it wraps and of every
// Failure a FailureConverter it wraps produces. It is safe for concurrent use.
type Recorder struct {
	mu       sync.Mutex
	payloads []PayloadRecord
	failures []FailureRecord
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{} }

// Payloads returns copies of the recorded payloads, in order, of direction d ("" for both).
func (r *Recorder) Payloads(d Direction) []PayloadRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []PayloadRecord
	for _, p := range r.payloads {
		if d == "" || p.Direction == d {
			p.Payload = proto.Clone(p.Payload).(*commonpb.Payload)
			out = append(out, p)
		}
	}
	return out
}

// Failures returns copies of the recorded failures, in order.
func (r *Recorder) Failures() []FailureRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]FailureRecord, len(r.failures))
	for i, f := range r.failures {
		f.Failure = proto.Clone(f.Failure).(*failurepb.Failure)
		out[i] = f
	}
	return out
}

// Reset forgets everything recorded so far.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.payloads, r.failures = nil, nil
}

func (r *Recorder) addPayloads(d Direction, ctx converter.SerializationContext, ps ...*commonpb.Payload) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range ps {
		if p != nil {
			r.payloads = append(r.payloads, PayloadRecord{Direction: d, Payload: proto.Clone(p).(*commonpb.Payload), Context: ctx})
		}
	}
}

func (r *Recorder) addFailure(ctx converter.SerializationContext, f *failurepb.Failure) {
	if f == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, FailureRecord{Failure: proto.Clone(f).(*failurepb.Failure), Context: ctx})
}

// WrapDataConverter returns dc wrapped so that every payload it encodes or decodes is recorded.
// The wrapper forwards workflow and activity contexts (converter.ContextAware) and serialization
// contexts (converter.DataConverterWithSerializationContext) to dc.
func (r *Recorder) WrapDataConverter(dc converter.DataConverter) converter.DataConverter {
	return &recordingDataConverter{rec: r, inner: dc}
}

// WrapFailureConverter returns fc wrapped so that every Failure it produces is recorded. The
// wrapper forwards serialization contexts to fc.
func (r *Recorder) WrapFailureConverter(fc converter.FailureConverter) converter.FailureConverter {
	return &recordingFailureConverter{rec: r, inner: fc}
}

type recordingDataConverter struct {
	rec     *Recorder
	inner   converter.DataConverter
	context converter.SerializationContext
}

var (
	_ converter.DataConverterWithSerializationContext = (*recordingDataConverter)(nil)
	_ converter.ContextAware                          = (*recordingDataConverter)(nil)
)

func (d *recordingDataConverter) with(inner converter.DataConverter) *recordingDataConverter {
	return &recordingDataConverter{rec: d.rec, inner: inner, context: d.context}
}

func (d *recordingDataConverter) ToPayload(value any) (*commonpb.Payload, error) {
	p, err := d.inner.ToPayload(value)
	if err != nil {
		// converter.CodecDataConverter returns the unencoded payload with its error: it never left.
		return p, err
	}
	d.rec.addPayloads(Outbound, d.context, p)
	return p, nil
}

func (d *recordingDataConverter) FromPayload(p *commonpb.Payload, valuePtr any) error {
	d.rec.addPayloads(Inbound, d.context, p)
	return d.inner.FromPayload(p, valuePtr)
}

func (d *recordingDataConverter) ToPayloads(values ...any) (*commonpb.Payloads, error) {
	ps, err := d.inner.ToPayloads(values...)
	if err != nil {
		return ps, err
	}
	d.rec.addPayloads(Outbound, d.context, ps.GetPayloads()...)
	return ps, nil
}

func (d *recordingDataConverter) FromPayloads(ps *commonpb.Payloads, valuePtrs ...any) error {
	d.rec.addPayloads(Inbound, d.context, ps.GetPayloads()...)
	return d.inner.FromPayloads(ps, valuePtrs...)
}

func (d *recordingDataConverter) ToString(p *commonpb.Payload) string { return d.inner.ToString(p) }

func (d *recordingDataConverter) ToStrings(ps *commonpb.Payloads) []string {
	return d.inner.ToStrings(ps)
}

func (d *recordingDataConverter) WithSerializationContext(ctx converter.SerializationContext) converter.DataConverter {
	n := d.with(converter.WithDataConverterSerializationContext(d.inner, ctx))
	n.context = ctx
	return n
}

func (d *recordingDataConverter) WithWorkflowContext(ctx converter.WorkflowContext) converter.DataConverter {
	if ca, ok := d.inner.(converter.ContextAware); ok {
		return d.with(ca.WithWorkflowContext(ctx))
	}
	return d
}

func (d *recordingDataConverter) WithContext(ctx context.Context) converter.DataConverter {
	if ca, ok := d.inner.(converter.ContextAware); ok {
		return d.with(ca.WithContext(ctx))
	}
	return d
}

type recordingFailureConverter struct {
	rec     *Recorder
	inner   converter.FailureConverter
	context converter.SerializationContext
}

var _ converter.FailureConverterWithSerializationContext = (*recordingFailureConverter)(nil)

func (f *recordingFailureConverter) ErrorToFailure(err error) *failurepb.Failure {
	out := f.inner.ErrorToFailure(err)
	f.rec.addFailure(f.context, out)
	return out
}

func (f *recordingFailureConverter) FailureToError(fl *failurepb.Failure) error {
	return f.inner.FailureToError(fl)
}

func (f *recordingFailureConverter) WithSerializationContext(ctx converter.SerializationContext) converter.FailureConverter {
	return &recordingFailureConverter{
		rec:     f.rec,
		inner:   converter.WithFailureConverterSerializationContext(f.inner, ctx),
		context: ctx,
	}
}
