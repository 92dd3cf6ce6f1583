package failureconv

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// frozenFailure is temporal.NewApplicationError("card declined", "PaymentDeclined") converted
// with encoded attributes by a Converter on the SDK's default DataConverter (no codecs), in
// deterministic proto encoding. The attributes payload is the JSON object every Temporal SDK
// writes: {"message":…,"stack_trace":…} with encoding json/plain.
const frozenFailure = "0a0f456e636f646564206661696c7572651205476f53444ba201460a160a08656e636f64696e67120a6a736f6e2f706c61696e" +
	"122c7b226d657373616765223a2263617264206465636c696e6564222c22737461636b5f7472616365223a22227d2a110a0f5061796d656e74" +
	"4465636c696e6564"

func TestFrozenWireFormat(t *testing.T) {
	c := newConv(t, nil, nil, true)
	f := c.ErrorToFailure(temporal.NewApplicationError("card declined", "PaymentDeclined"))
	got, err := proto.MarshalOptions{Deterministic: true}.Marshal(f)
	require.NoError(t, err)
	assert.Equal(t, frozenFailure, hex.EncodeToString(got), "the encoded failure format changed")

	raw, err := hex.DecodeString(frozenFailure)
	require.NoError(t, err)
	var frozen failurepb.Failure
	require.NoError(t, proto.Unmarshal(raw, &frozen))
	assert.Equal(t, DefaultPublicMessage, frozen.GetMessage())
	var app *temporal.ApplicationError
	require.ErrorAs(t, c.FailureToError(&frozen), &app)
	assert.Equal(t, "card declined", app.Message())
	assert.Equal(t, "PaymentDeclined", app.Type())
}

func FuzzFailureToError(f *testing.F) {
	dc, _ := sealedDC(f)
	c := newConv(f, dc, &Options{StackTraces: StackTracesTrim, MaxStackTraceSize: 64}, true)
	seeds := []error{
		temporal.NewApplicationErrorWithCause(secret, "T", errors.New("cause"), secretDetails{CardNumber: secretCardNumber}),
		temporal.NewCanceledError("details"),
		temporal.NewHeartbeatTimeoutError(1, 2),
		errors.New("plain"),
	}
	for _, e := range seeds {
		b, err := proto.Marshal(c.ErrorToFailure(e))
		require.NoError(f, err)
		f.Add(b)
		b, err = proto.Marshal(temporal.GetDefaultFailureConverter().ErrorToFailure(e))
		require.NoError(f, err)
		f.Add(b)
	}
	raw, _ := hex.DecodeString(frozenFailure)
	f.Add(raw)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var in failurepb.Failure
		if proto.Unmarshal(data, &in) != nil {
			return
		}
		before := proto.Clone(&in)
		d, derr := c.Decode(&in)
		if derr != nil && !errors.Is(derr, ErrNotDecoded) {
			t.Fatalf("Decode error does not wrap ErrNotDecoded: %v", derr)
		}
		if derr == nil && d.GetEncodedAttributes() != nil {
			t.Fatal("Decode succeeded but left encoded attributes")
		}
		_ = c.FailureToError(&in)
		if !proto.Equal(before, &in) {
			t.Fatal("input failure was modified")
		}
		// Whatever was decoded is sent on encoded.
		out := c.ErrorToFailure(c.FailureToError(&in))
		for n := out; n != nil; n = n.GetCause() {
			if n.GetEncodedAttributes() == nil {
				t.Fatalf("failure sent on without encoded attributes: %v", n)
			}
		}
	})
}

func FuzzDecodeAttributes(f *testing.F) {
	c := newConv(f, nil, nil, true)
	f.Add([]byte(`{"message":"m","stack_trace":"s"}`))
	f.Add([]byte(`{"message":1}`))
	f.Add([]byte(`null`))
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &failurepb.Failure{
			Message: DefaultPublicMessage,
			EncodedAttributes: &commonpb.Payload{
				Metadata: map[string][]byte{converter.MetadataEncoding: []byte("json/plain")},
				Data:     data,
			},
		}
		d, err := c.Decode(in)
		switch {
		case err != nil:
			if !errors.Is(err, ErrNotDecoded) || d.GetEncodedAttributes() == nil {
				t.Fatalf("undecodable attributes: err=%v, attributes kept=%v", err, d.GetEncodedAttributes() != nil)
			}
		case d.GetEncodedAttributes() != nil:
			t.Fatal("decoded attributes were kept")
		}
		_ = c.FailureToError(in)
	})
}
