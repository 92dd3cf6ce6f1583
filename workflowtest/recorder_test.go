package workflowtest_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/payloadkit/payloadkit/workflowtest"
)

// nsCodec marks payloads with the namespace of its serialization context, and fails on demand.
type nsCodec struct {
	namespace string
	fail      bool
}

func (c *nsCodec) WithSerializationContext(ctx converter.SerializationContext) converter.PayloadCodec {
	n := *c
	if w, ok := ctx.(converter.WorkflowSerializationContext); ok {
		n.namespace = w.Namespace
	}
	return &n
}

func (c *nsCodec) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	if c.fail {
		return nil, errors.New("codec down")
	}
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		md := map[string][]byte{"ns": []byte(c.namespace)}
		for k, v := range p.GetMetadata() {
			md[k] = v
		}
		out[i] = &commonpb.Payload{Metadata: md, Data: p.GetData()}
	}
	return out, nil
}

func (c *nsCodec) Decode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) { return ps, nil }

func TestRecorderDataConverter(t *testing.T) {
	rec := workflowtest.NewRecorder()
	dc := rec.WrapDataConverter(converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), &nsCodec{}))
	ctx := converter.WorkflowSerializationContext{Namespace: "payments", WorkflowID: "wf"}
	inNS := converter.WithDataConverterSerializationContext(dc, ctx)

	p, err := inNS.ToPayload("a")
	require.NoError(t, err)
	ps, err := dc.ToPayloads("b", 2)
	require.NoError(t, err)
	var s string
	require.NoError(t, inNS.FromPayload(p, &s))
	assert.Equal(t, "a", s)

	out := rec.Payloads(workflowtest.Outbound)
	require.Len(t, out, 3)
	assert.Equal(t, "payments", out[0].Namespace())
	assert.Equal(t, "payments", string(out[0].Payload.GetMetadata()["ns"]), "serialization context not forwarded")
	assert.Equal(t, ctx, out[0].Context)
	assert.Empty(t, out[1].Namespace())
	assert.Nil(t, out[1].Context)
	assert.Len(t, rec.Payloads(workflowtest.Inbound), 1)
	assert.Len(t, rec.Payloads(""), 4)

	// Records are copies: changing what was returned does not change them, and the other way round.
	ps.Payloads[0].Data = []byte("changed")
	out[1].Payload.Data = []byte("changed too")
	assert.Equal(t, `"b"`, string(rec.Payloads(workflowtest.Outbound)[1].Payload.GetData()))

	rec.Reset()
	assert.Empty(t, rec.Payloads(""))
}

func TestRecorderSkipsFailedEncodes(t *testing.T) {
	rec := workflowtest.NewRecorder()
	dc := rec.WrapDataConverter(converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), &nsCodec{fail: true}))
	_, err := dc.ToPayload("secret")
	require.Error(t, err)
	_, err = dc.ToPayloads("secret")
	require.Error(t, err)
	assert.Empty(t, rec.Payloads(workflowtest.Outbound), "a payload that failed to encode never left the pipeline")
}

func TestRecorderFailureConverter(t *testing.T) {
	rec := workflowtest.NewRecorder()
	fc := rec.WrapFailureConverter(temporal.GetDefaultFailureConverter())
	ctx := converter.ActivitySerializationContext{Namespace: "payments"}
	f := converter.WithFailureConverterSerializationContext(fc, ctx).ErrorToFailure(errors.New("boom"))
	assert.EqualError(t, fc.FailureToError(f), "boom")
	got := rec.Failures()
	require.Len(t, got, 1)
	assert.Equal(t, "boom", got[0].Failure.GetMessage())
	assert.Equal(t, ctx, got[0].Context)
	assert.Nil(t, fc.ErrorToFailure(nil))
	assert.Len(t, rec.Failures(), 1, "nil failures are not recorded")
}
