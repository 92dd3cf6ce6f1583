package failureconv

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

const sealedEncoding = "binary/test-sealed"

// sealCodec is a small AES-GCM codec for these tests: it seals whole payloads with the
// namespace of its serialization context as additional data, so a namespace mismatch fails
// decoding as it does in payloadkit's encryption codec. It records the namespaces it sees.
type sealCodec struct {
	aead      cipher.AEAD
	namespace string
	seen      *namespaces
	failEnc   bool
}

type namespaces struct {
	mu  sync.Mutex
	all []string
}

func (n *namespaces) add(ns string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.all = append(n.all, ns)
}

func (n *namespaces) list() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.all...)
}

func newSealCodec(t testing.TB) *sealCodec {
	t.Helper()
	block, err := aes.NewCipher([]byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, err)
	aead, err := cipher.NewGCM(block)
	require.NoError(t, err)
	return &sealCodec{aead: aead, seen: &namespaces{}}
}

func (c *sealCodec) WithSerializationContext(ctx converter.SerializationContext) converter.PayloadCodec {
	n := *c
	switch s := ctx.(type) {
	case converter.WorkflowSerializationContext:
		n.namespace = s.Namespace
	case converter.ActivitySerializationContext:
		n.namespace = s.Namespace
	}
	return &n
}

func (c *sealCodec) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	if c.failEnc {
		return nil, errors.New("key service unavailable")
	}
	c.seen.add(c.namespace)
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		b, err := proto.Marshal(p)
		if err != nil {
			return nil, err
		}
		nonce := make([]byte, c.aead.NonceSize())
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{converter.MetadataEncoding: []byte(sealedEncoding)},
			Data:     c.aead.Seal(nonce, nonce, b, []byte(c.namespace)),
		}
	}
	return out, nil
}

func (c *sealCodec) Decode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != sealedEncoding {
			out[i] = p
			continue
		}
		c.seen.add(c.namespace)
		ns := c.aead.NonceSize()
		if len(p.GetData()) < ns {
			return nil, errors.New("sealed payload too short")
		}
		b, err := c.aead.Open(nil, p.GetData()[:ns], p.GetData()[ns:], []byte(c.namespace))
		if err != nil {
			return nil, fmt.Errorf("opening sealed payload [namespace=%s]: %w", c.namespace, err)
		}
		var inner commonpb.Payload
		if err := proto.Unmarshal(b, &inner); err != nil {
			return nil, err
		}
		out[i] = &inner
	}
	return out, nil
}

func sealedDC(t testing.TB) (converter.DataConverter, *sealCodec) {
	c := newSealCodec(t)
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c), c
}

func newConv(t testing.TB, dc converter.DataConverter, opts *Options, enc bool) *Converter {
	t.Helper()
	c, err := New(dc, opts, enc)
	require.NoError(t, err)
	return c
}

func marshal(t testing.TB, f *failurepb.Failure) []byte {
	t.Helper()
	b, err := proto.Marshal(f)
	require.NoError(t, err)
	return b
}

type secretDetails struct {
	CardNumber string
	Amount     int
}

const secret = "card 4111-1111-1111-1111 declined"

// secretCardNumber is long enough that random ciphertext, digests and ids never contain it.
const secretCardNumber = "4111-1111-1111-1111"

func TestApplicationErrorRoundTripEncrypted(t *testing.T) {
	dc, _ := sealedDC(t)
	c := newConv(t, dc, nil, true)

	cause := errors.New("upstream said: " + secret)
	appErr := temporal.NewApplicationErrorWithCause(secret, "PaymentDeclined", cause,
		secretDetails{CardNumber: "4111-1111-1111-1111", Amount: 42})
	f := c.ErrorToFailure(appErr)

	raw := marshal(t, f)
	assert.NotContains(t, string(raw), secretCardNumber, "the encoded Failure proto holds the secret in plain text")
	assert.Equal(t, DefaultPublicMessage, f.GetMessage())
	assert.Equal(t, DefaultPublicMessage, f.GetCause().GetMessage())
	assert.Equal(t, sealedEncoding, string(f.GetEncodedAttributes().GetMetadata()[converter.MetadataEncoding]))
	assert.Equal(t, sealedEncoding, string(f.GetCause().GetEncodedAttributes().GetMetadata()[converter.MetadataEncoding]))
	details := f.GetApplicationFailureInfo().GetDetails().GetPayloads()
	require.Len(t, details, 1)
	assert.Equal(t, sealedEncoding, string(details[0].GetMetadata()[converter.MetadataEncoding]))
	assert.Equal(t, "PaymentDeclined", f.GetApplicationFailureInfo().GetType(), "the error type stays readable")

	back := c.FailureToError(f)
	var got *temporal.ApplicationError
	require.ErrorAs(t, back, &got)
	assert.Equal(t, secret, got.Message())
	assert.Equal(t, "PaymentDeclined", got.Type())
	var d secretDetails
	require.NoError(t, got.Details(&d))
	assert.Equal(t, secretDetails{CardNumber: "4111-1111-1111-1111", Amount: 42}, d)
	require.NotNil(t, errors.Unwrap(got))
	assert.Contains(t, errors.Unwrap(got).Error(), "upstream said: "+secret)
}

func TestCanceledAndHeartbeatDetailsUseDataConverter(t *testing.T) {
	dc, _ := sealedDC(t)
	c := newConv(t, dc, nil, true)
	tests := []struct {
		name    string
		err     error
		details func(*failurepb.Failure) []*commonpb.Payload
		decode  func(t *testing.T, err error) converter.EncodedValues
	}{{
		name: "canceled",
		err:  temporal.NewCanceledError(secretDetails{CardNumber: secretCardNumber, Amount: 1}),
		details: func(f *failurepb.Failure) []*commonpb.Payload {
			return f.GetCanceledFailureInfo().GetDetails().GetPayloads()
		},
		decode: func(t *testing.T, err error) converter.EncodedValues {
			var ce *temporal.CanceledError
			require.ErrorAs(t, err, &ce)
			return detailsOf(ce)
		},
	}, {
		name: "heartbeat timeout",
		err:  temporal.NewHeartbeatTimeoutError(secretDetails{CardNumber: secretCardNumber, Amount: 1}),
		details: func(f *failurepb.Failure) []*commonpb.Payload {
			return f.GetTimeoutFailureInfo().GetLastHeartbeatDetails().GetPayloads()
		},
		decode: func(t *testing.T, err error) converter.EncodedValues {
			var te *temporal.TimeoutError
			require.ErrorAs(t, err, &te)
			assert.Equal(t, enumspb.TIMEOUT_TYPE_HEARTBEAT, te.TimeoutType())
			return heartbeatOf(te)
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := c.ErrorToFailure(tt.err)
			ps := tt.details(f)
			require.Len(t, ps, 1)
			assert.Equal(t, sealedEncoding, string(ps[0].GetMetadata()[converter.MetadataEncoding]))
			assert.NotContains(t, string(marshal(t, f)), secretCardNumber)
			var d secretDetails
			require.NoError(t, tt.decode(t, c.FailureToError(f)).Get(&d))
			assert.Equal(t, secretDetails{CardNumber: secretCardNumber, Amount: 1}, d)
		})
	}
}

type detailsValues struct{ get func(...any) error }

func (d detailsValues) HasValues() bool       { return true }
func (d detailsValues) Get(ptrs ...any) error { return d.get(ptrs...) }

func detailsOf(ce *temporal.CanceledError) converter.EncodedValues {
	return detailsValues{get: ce.Details}
}

func heartbeatOf(te *temporal.TimeoutError) converter.EncodedValues {
	return detailsValues{get: te.LastHeartbeatDetails}
}

func TestSerializationContextReachesCodec(t *testing.T) {
	dc, codec := sealedDC(t)
	c := newConv(t, dc, nil, true)
	inA := c.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "payments", WorkflowID: "wf"})
	inB := c.WithSerializationContext(converter.ActivitySerializationContext{Namespace: "marketing"})

	f := inA.ErrorToFailure(temporal.NewApplicationError(secret, "T", secretDetails{CardNumber: secretCardNumber}))
	assert.Equal(t, []string{"payments", "payments"}, codec.seen.list(), "details and attributes are encoded with the namespace")

	var ok *temporal.ApplicationError
	require.ErrorAs(t, inA.FailureToError(f), &ok)
	assert.Equal(t, secret, ok.Message())

	// Another namespace cannot open the attributes: the message says so and keeps no secret.
	var bad *temporal.ApplicationError
	require.ErrorAs(t, inB.FailureToError(f), &bad)
	assert.NotContains(t, bad.Message(), secretCardNumber)
	assert.True(t, strings.HasPrefix(bad.Message(), DefaultPublicMessage), bad.Message())
	assert.Contains(t, bad.Message(), "namespace=marketing")
	_, err := inB.(*Converter).Decode(f)
	assert.ErrorIs(t, err, ErrNotDecoded)

	// Without a context the namespace is empty, which is not "payments" either.
	_, err = c.Decode(f)
	assert.ErrorIs(t, err, ErrNotDecoded)
	assert.Contains(t, codec.seen.list(), "marketing")
}

func TestUndecodableFailureKeepsAttributesWhenSentOn(t *testing.T) {
	dc, _ := sealedDC(t)
	c := newConv(t, dc, nil, true)
	inA := c.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "a"})
	inB := c.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "b"})
	f := inA.ErrorToFailure(temporal.NewApplicationError(secret, "T"))

	// b cannot decode, and passes the failure on: the attributes survive for a later reader.
	again := inB.ErrorToFailure(inB.FailureToError(f))
	assert.True(t, proto.Equal(f.GetEncodedAttributes(), again.GetEncodedAttributes()))
	var got *temporal.ApplicationError
	require.ErrorAs(t, inA.FailureToError(again), &got)
	assert.Equal(t, secret, got.Message())
}

func TestDecodedFailureIsEncodedAgainWhenSentOn(t *testing.T) {
	dc, _ := sealedDC(t)
	c := newConv(t, dc, nil, true)
	f := c.ErrorToFailure(temporal.NewApplicationError(secret, "T"))
	err := c.FailureToError(f)
	// The error holds the failure it was decoded from; sending it again must not leak the message.
	again := c.ErrorToFailure(err)
	assert.NotContains(t, string(marshal(t, again)), secretCardNumber)
	assert.Equal(t, DefaultPublicMessage, again.GetMessage())
	var got *temporal.ApplicationError
	require.ErrorAs(t, c.FailureToError(again), &got)
	assert.Equal(t, secret, got.Message())
}

func TestPlainFailureFromAnotherConverterDecodes(t *testing.T) {
	dc, _ := sealedDC(t)
	c := newConv(t, dc, nil, true)
	plain := temporal.GetDefaultFailureConverter().ErrorToFailure(
		temporal.NewApplicationErrorWithCause("plain message", "T", errors.New("plain cause")))
	require.Nil(t, plain.GetEncodedAttributes())
	err := c.FailureToError(plain)
	var got *temporal.ApplicationError
	require.ErrorAs(t, err, &got)
	assert.Equal(t, "plain message", got.Message())
	assert.Contains(t, errors.Unwrap(got).Error(), "plain cause")
}

func TestSDKDefaultConverterReadsOurFailures(t *testing.T) {
	dc, _ := sealedDC(t)
	c := newConv(t, dc, &Options{PublicMessage: "see codec server"}, true)
	f := c.ErrorToFailure(temporal.NewApplicationError(secret, "T"))
	assert.Equal(t, "see codec server", f.GetMessage())
	sdk := temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: dc})
	var got *temporal.ApplicationError
	require.ErrorAs(t, sdk.FailureToError(f), &got)
	assert.Equal(t, secret, got.Message())
}

func TestOurConverterReadsSDKEncodedFailures(t *testing.T) {
	dc, _ := sealedDC(t)
	sdk := temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: dc, EncodeCommonAttributes: true})
	f := sdk.ErrorToFailure(temporal.NewApplicationError(secret, "T"))
	require.Equal(t, "Encoded failure", f.GetMessage())
	var got *temporal.ApplicationError
	require.ErrorAs(t, newConv(t, dc, nil, false).FailureToError(f), &got)
	assert.Equal(t, secret, got.Message())
}

func TestInputsAreNotMutated(t *testing.T) {
	dc, _ := sealedDC(t)
	c := newConv(t, dc, &Options{StackTraces: StackTracesDrop}, true)
	f := c.ErrorToFailure(temporal.NewApplicationErrorWithCause(secret, "T", errors.New("cause")))
	before := proto.Clone(f)
	_ = c.FailureToError(f)
	_, _ = c.Decode(f)
	assert.True(t, proto.Equal(before, f), "FailureToError or Decode changed its input")

	// A failure held by an error (here from a plain converter, with a stack trace) is not changed
	// by ErrorToFailure either.
	held := &failurepb.Failure{
		Message:     "held " + secret,
		StackTrace:  "goroutine 1\nmain.go:1",
		FailureInfo: &failurepb.Failure_ApplicationFailureInfo{ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{Type: "T"}},
	}
	heldBefore := proto.Clone(held)
	err := temporal.GetDefaultFailureConverter().FailureToError(held)
	out := c.ErrorToFailure(err)
	assert.Equal(t, DefaultPublicMessage, out.GetMessage())
	assert.Empty(t, out.GetStackTrace())
	stillHeld := temporal.GetDefaultFailureConverter().ErrorToFailure(err)
	assert.True(t, proto.Equal(heldBefore, stillHeld), "ErrorToFailure changed the failure held by its error")
}

func panicFailure(stack string) *failurepb.Failure {
	return &failurepb.Failure{
		Message:     "panic: " + secret,
		StackTrace:  stack,
		FailureInfo: &failurepb.Failure_ApplicationFailureInfo{ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{Type: "PanicError"}},
	}
}

func longStack(lines int) string {
	var b strings.Builder
	for i := range lines {
		fmt.Fprintf(&b, "github.com/acme/payments.charge(...)\n\t/src/payments/charge.go:%d +0x%x\n", i, i)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func TestStackTraceModes(t *testing.T) {
	stack := longStack(200)
	require.Greater(t, len(stack), DefaultMaxStackTraceSize)
	dc, _ := sealedDC(t)
	tests := []struct {
		name   string
		opts   *Options
		encode bool
		check  func(t *testing.T, got string)
	}{
		{"keep encoded", nil, true, func(t *testing.T, got string) { assert.Equal(t, stack, got) }},
		{"keep plain", &Options{StackTraces: StackTracesKeep}, false, func(t *testing.T, got string) { assert.Equal(t, stack, got) }},
		{"drop encoded", &Options{StackTraces: StackTracesDrop}, true, func(t *testing.T, got string) { assert.Empty(t, got) }},
		{"drop plain", &Options{StackTraces: StackTracesDrop}, false, func(t *testing.T, got string) { assert.Empty(t, got) }},
		{"trim default size", &Options{StackTraces: StackTracesTrim}, true, func(t *testing.T, got string) {
			kept, marker, ok := strings.Cut(got, "\n[failureconv: ")
			require.True(t, ok, got)
			assert.LessOrEqual(t, len(kept), DefaultMaxStackTraceSize)
			assert.True(t, strings.HasPrefix(stack, kept+"\n"), "trimmed at a line break")
			assert.Equal(t, fmt.Sprintf("%d bytes of stack trace trimmed]", len(stack)-len(kept)), marker)
		}},
		{"trim 100", &Options{StackTraces: StackTracesTrim, MaxStackTraceSize: 100}, false, func(t *testing.T, got string) {
			kept, _, ok := strings.Cut(got, "\n[failureconv: ")
			require.True(t, ok, got)
			assert.LessOrEqual(t, len(kept), 100)
			assert.Equal(t, strings.Join(strings.Split(stack, "\n")[:2], "\n"), kept)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newConv(t, dc, tt.opts, tt.encode)
			// A failure with a stack trace, as another SDK or a panic sends it, held by an error.
			err := temporal.GetDefaultFailureConverter().FailureToError(panicFailure(stack))
			f := c.ErrorToFailure(err)
			if tt.encode {
				assert.Empty(t, f.GetStackTrace(), "stack trace left in plain text")
				assert.NotContains(t, string(marshal(t, f)), "charge.go")
			} else {
				tt.check(t, f.GetStackTrace())
			}
			d, derr := c.Decode(f)
			require.NoError(t, derr)
			tt.check(t, d.GetStackTrace())
			var pe *temporal.PanicError
			require.ErrorAs(t, c.FailureToError(f), &pe)
			tt.check(t, pe.StackTrace())
		})
	}
}

func TestTrimStackTrace(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"line one\nline two", 12, "line one\n[failureconv: 9 bytes of stack trace trimmed]"},
		{"no line breaks at all", 5, "no li\n[failureconv: 16 bytes of stack trace trimmed]"},
		// "é" is two bytes: the cut backs off to a rune boundary.
		{"aé", 2, "a\n[failureconv: 2 bytes of stack trace trimmed]"},
		{"ééé", 3, "é\n[failureconv: 4 bytes of stack trace trimmed]"},
	}
	for _, tt := range tests {
		got := trimStackTrace(tt.in, tt.max)
		assert.Equal(t, tt.want, got, "trimStackTrace(%q, %d)", tt.in, tt.max)
		assert.True(t, utf8.ValidString(got))
	}
}

func TestEncodeErrorFailsClosed(t *testing.T) {
	codec := newSealCodec(t)
	codec.failEnc = true
	c := newConv(t, converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), codec), nil, true)
	err := temporal.GetDefaultFailureConverter().FailureToError(panicFailure("goroutine 1 [running]:\nsecret.go:1"))
	f := c.ErrorToFailure(err)
	assert.NotContains(t, string(marshal(t, f)), secretCardNumber)
	assert.NotContains(t, string(marshal(t, f)), "secret.go")
	assert.Nil(t, f.GetEncodedAttributes())
	assert.Equal(t, DefaultPublicMessage+" (failureconv: encoding failure attributes: key service unavailable)", f.GetMessage())
}

func TestEncodeAttributesDefaultAndOverride(t *testing.T) {
	dc, _ := sealedDC(t)
	on, off := true, false
	tests := []struct {
		opts       *Options
		encryption bool
		want       bool
	}{
		{nil, true, true},
		{nil, false, false},
		{&Options{EncodeAttributes: &off}, true, false},
		{&Options{EncodeAttributes: &on}, false, true},
	}
	for _, tt := range tests {
		c := newConv(t, dc, tt.opts, tt.encryption)
		assert.Equal(t, tt.want, c.EncodesAttributes())
		f := c.ErrorToFailure(errors.New(secret))
		assert.Equal(t, tt.want, f.GetEncodedAttributes() != nil)
		assert.Equal(t, !tt.want, strings.Contains(f.GetMessage(), secretCardNumber))
	}
}

func TestNilDataConverterMeansDefault(t *testing.T) {
	c := newConv(t, nil, nil, true)
	f := c.ErrorToFailure(errors.New("boom"))
	assert.Equal(t, "json/plain", string(f.GetEncodedAttributes().GetMetadata()[converter.MetadataEncoding]))
	assert.EqualError(t, c.FailureToError(f), "boom")
	assert.Nil(t, c.ErrorToFailure(nil))
	assert.NoError(t, c.FailureToError(nil))
}

func TestInvalidOptions(t *testing.T) {
	tests := []struct {
		opts Options
		msg  string
	}{
		{Options{StackTraces: "shorten"}, `StackTraces "shorten"`},
		{Options{StackTraces: StackTracesTrim, MaxStackTraceSize: -1}, "MaxStackTraceSize -1 is negative"},
		{Options{MaxStackTraceSize: 10}, `MaxStackTraceSize is set but StackTraces is "keep"`},
		{Options{StackTraces: StackTracesDrop, MaxStackTraceSize: 10}, `StackTraces is "drop"`},
		{Options{PublicMessage: "\xff"}, "PublicMessage is not valid UTF-8"},
	}
	for _, tt := range tests {
		_, err := New(nil, &tt.opts, true)
		assert.ErrorIs(t, err, ErrInvalidOptions)
		assert.ErrorContains(t, err, tt.msg)
	}
}
