package failureconv

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/payloadkit/payloadkit/codec"
)

// With payloadkit's envelope encryption codec, the namespace of the serialization context is
// bound into every encrypted attribute payload: another namespace is refused.
func TestEnvelopeEncryptionBindsNamespace(t *testing.T) {
	ring, err := codec.NewStaticKeyring("k1", map[string][]byte{"k1": codec.GenerateKey()})
	require.NoError(t, err)
	enc, err := codec.NewEncryptionCodec(&codec.EncryptionOptions{Keys: ring})
	require.NoError(t, err)
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), enc)
	c := newConv(t, dc, nil, true)

	payments := c.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "payments", WorkflowID: "wf"})
	marketing := c.WithSerializationContext(converter.ActivitySerializationContext{Namespace: "marketing"})

	f := payments.ErrorToFailure(temporal.NewApplicationError(secret, "PaymentDeclined", secretDetails{CardNumber: secretCardNumber}))
	assert.Equal(t, codec.EncodingEncrypted, string(f.GetEncodedAttributes().GetMetadata()[converter.MetadataEncoding]))
	assert.Equal(t, codec.EncodingEncrypted,
		string(f.GetApplicationFailureInfo().GetDetails().GetPayloads()[0].GetMetadata()[converter.MetadataEncoding]))
	assert.NotContains(t, string(marshal(t, f)), secretCardNumber)

	var app *temporal.ApplicationError
	require.ErrorAs(t, payments.FailureToError(f), &app)
	assert.Equal(t, secret, app.Message())

	_, err = marketing.(*Converter).Decode(f)
	assert.ErrorIs(t, err, ErrNotDecoded)
	assert.ErrorIs(t, err, codec.ErrNamespaceMismatch)
	require.ErrorAs(t, marketing.FailureToError(f), &app)
	assert.NotContains(t, app.Message(), secretCardNumber)
	assert.Contains(t, app.Message(), `current namespace "marketing"`)

	// A converter without context (namespace unknown) still reads it.
	_, err = c.Decode(f)
	assert.NoError(t, err)
}
