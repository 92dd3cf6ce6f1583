package awskms_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/codec/awskms"
	"github.com/payloadkit/payloadkit/workflowtest"
)

func newProvider(t testing.TB, c awskms.Client, keyID string, opts ...awskms.Option) *awskms.Provider {
	t.Helper()
	p, err := awskms.New(c, keyID, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newCodec returns an encryption codec with its own data-key cache: a fresh codec stands for
// another process (a worker, a Codec Server) that has never seen the data keys.
func newCodec(t testing.TB, keys codec.KeyProvider) converter.PayloadCodec {
	t.Helper()
	c, err := codec.NewEncryptionCodec(&codec.EncryptionOptions{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testPayloads(t testing.TB, values ...any) []*commonpb.Payload {
	t.Helper()
	ps, err := converter.GetDefaultDataConverter().ToPayloads(values...)
	if err != nil {
		t.Fatal(err)
	}
	return ps.Payloads
}

func encode(t testing.TB, c converter.PayloadCodec, in []*commonpb.Payload) []*commonpb.Payload {
	t.Helper()
	out, err := c.Encode(in)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return out
}

func mustDecode(t testing.TB, c converter.PayloadCodec, encoded, want []*commonpb.Payload) {
	t.Helper()
	got, err := c.Decode(encoded)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("Decode returned %d payloads, want %d", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("payload %d: decoded %v, want %v", i, got[i], want[i])
		}
	}
}

func keyIDOf(p *commonpb.Payload) string {
	return string(p.GetMetadata()[codec.MetadataEncryptionKeyID])
}

func TestNewValidatesArguments(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	c := srv.Client()
	tokens := make([]string, awskms.MaxGrantTokens+1)
	for i := range tokens {
		tokens[i] = "t"
	}
	for name, tc := range map[string]struct {
		client awskms.Client
		keyID  string
		opts   []awskms.Option
	}{
		"nil client":         {nil, "alias/x", nil},
		"empty key id":       {c, "", nil},
		"key id too long":    {c, strings.Repeat("k", awskms.MaxKeyIDLen+1), nil},
		"too many tokens":    {c, "alias/x", []awskms.Option{awskms.WithGrantTokens(tokens...)}},
		"empty grant token":  {c, "alias/x", []awskms.Option{awskms.WithGrantTokens("")}},
		"grant token 8193 B": {c, "alias/x", []awskms.Option{awskms.WithGrantTokens(strings.Repeat("g", 8193))}},
	} {
		if p, err := awskms.New(tc.client, tc.keyID, tc.opts...); err == nil {
			t.Errorf("%s: New returned %v and no error", name, p)
		}
	}
	p := newProvider(t, c, "alias/x", nil, awskms.WithGrantTokens("a", "b"))
	if !p.Remote() || p.KeyID() != "alias/x" {
		t.Errorf("Remote() = %v, KeyID() = %q", p.Remote(), p.KeyID())
	}
	var _ codec.Remote = p
}

func TestRoundTripThroughEncryptionCodec(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	arn := srv.NewKey()
	in := testPayloads(t, "hello", map[string]int{"n": 1}, []byte{0, 1, 2})

	enc := newCodec(t, newProvider(t, srv.Client(), arn))
	out := encode(t, enc, in)
	for i, p := range out {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != codec.EncodingEncrypted || keyIDOf(p) != arn {
			t.Fatalf("payload %d: metadata %q", i, p.GetMetadata())
		}
		if bytes.Contains(p.GetData(), []byte("hello")) {
			t.Fatalf("payload %d carries its plaintext", i)
		}
	}
	// Another process, with its own client and cache.
	dec := newCodec(t, newProvider(t, srv.Client(), arn))
	mustDecode(t, dec, out, in)

	if g, d := srv.Calls(workflowtest.KMSGenerateDataKey), srv.Calls(workflowtest.KMSDecrypt); g != 1 || d != 1 {
		t.Errorf("KMS calls: GenerateDataKey %d, Decrypt %d; want 1 and 1", g, d)
	}
}

func TestAliasAndMultiRegionKeysStoreTheKeyARN(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	arn := srv.NewKey()
	mrk := srv.NewMultiRegionKey()
	srv.SetAlias("alias/orders", arn)
	aliasARN := "arn:aws:kms:" + workflowtest.KMSRegion + ":" + workflowtest.KMSAccountID + ":alias/orders"
	in := testPayloads(t, "order 1")

	for _, tc := range []struct{ configured, stored string }{
		{"alias/orders", arn},
		{aliasARN, arn},
		{mrk, mrk},
		{mrk[strings.LastIndex(mrk, "/")+1:], mrk},
	} {
		out := encode(t, newCodec(t, newProvider(t, srv.Client(), tc.configured)), in)
		if got := keyIDOf(out[0]); got != tc.stored {
			t.Errorf("configured %s: stored key id %s, want the key ARN %s", tc.configured, got, tc.stored)
		}
		mustDecode(t, newCodec(t, newProvider(t, srv.Client(), tc.configured)), out, in)
	}

	// Moving the alias: payloads made before still decode (their data keys name the old key),
	// new payloads use the new key.
	before := encode(t, newCodec(t, newProvider(t, srv.Client(), "alias/orders")), in)
	next := srv.NewKey()
	srv.SetAlias("alias/orders", next)
	after := encode(t, newCodec(t, newProvider(t, srv.Client(), "alias/orders")), in)
	if keyIDOf(before[0]) != arn || keyIDOf(after[0]) != next {
		t.Fatalf("stored key ids %s and %s, want %s then %s", keyIDOf(before[0]), keyIDOf(after[0]), arn, next)
	}
	dec := newCodec(t, newProvider(t, srv.Client(), "alias/orders"))
	mustDecode(t, dec, before, in)
	mustDecode(t, dec, after, in)
}

func TestRotationKeepsOldPayloadsDecodable(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	c := srv.Client()
	arn := srv.NewKey()
	in := testPayloads(t, "before rotation")
	before := encode(t, newCodec(t, newProvider(t, c, arn)), in)

	if _, err := c.RotateKeyOnDemand(context.Background(), &kms.RotateKeyOnDemandInput{KeyId: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	if srv.KeyVersions(arn) != 2 {
		t.Fatalf("key versions after rotation: %d", srv.KeyVersions(arn))
	}
	after := encode(t, newCodec(t, newProvider(t, c, arn)), in)

	dec := newCodec(t, newProvider(t, c, arn))
	mustDecode(t, dec, before, in)
	mustDecode(t, dec, after, in)
	if d := srv.Calls(workflowtest.KMSDecrypt); d != 2 {
		t.Errorf("Decrypt calls %d, want 2 (one per data key)", d)
	}
}

func TestChangingTheConfiguredKeyKeepsOldPayloadsDecodable(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	keyA, keyB := srv.NewKey(), srv.NewKey()
	in := testPayloads(t, "payload")
	fromA := encode(t, newCodec(t, newProvider(t, srv.Client(), keyA)), in)

	// The application is reconfigured to key B; payloads written under key A still decode.
	b := newCodec(t, newProvider(t, srv.Client(), keyB))
	fromB := encode(t, b, in)
	if keyIDOf(fromB[0]) != keyB {
		t.Fatalf("new payloads use %s, want %s", keyIDOf(fromB[0]), keyB)
	}
	mustDecode(t, b, fromA, in)
	mustDecode(t, b, fromB, in)
}

// recordingClient records the inputs a Provider sends.
type recordingClient struct {
	awskms.Client
	mu       sync.Mutex
	generate []*kms.GenerateDataKeyInput
	decrypt  []*kms.DecryptInput
}

func (r *recordingClient) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	r.mu.Lock()
	r.generate = append(r.generate, in)
	r.mu.Unlock()
	return r.Client.GenerateDataKey(ctx, in, optFns...)
}

func (r *recordingClient) Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	r.mu.Lock()
	r.decrypt = append(r.decrypt, in)
	r.mu.Unlock()
	return r.Client.Decrypt(ctx, in, optFns...)
}

func TestEncryptionContextReachesKMS(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	arn := srv.NewKey()
	rec := &recordingClient{Client: srv.Client()}
	in := testPayloads(t, "namespaced")

	enc := newCodec(t, newProvider(t, rec, arn, awskms.WithGrantTokens("grant-1")))
	nsA := enc.(converter.PayloadCodecWithSerializationContext).WithSerializationContext(
		converter.WorkflowSerializationContext{Namespace: "ns-a"})
	out := encode(t, nsA, in)

	if len(rec.generate) != 1 {
		t.Fatalf("%d GenerateDataKey calls, want 1", len(rec.generate))
	}
	g := rec.generate[0]
	if g.EncryptionContext[codec.ContextKeyNamespace] != "ns-a" || g.KeySpec != "AES_256" ||
		aws.ToString(g.KeyId) != arn || fmt.Sprint(g.GrantTokens) != "[grant-1]" {
		t.Errorf("GenerateDataKey input: KeyId %s KeySpec %s context %v grant tokens %v",
			aws.ToString(g.KeyId), g.KeySpec, g.EncryptionContext, g.GrantTokens)
	}

	// A fresh codec (no current namespace) decodes the original and sends the stored context.
	mustDecode(t, newCodec(t, newProvider(t, rec, arn, awskms.WithGrantTokens("grant-1"))), out, in)
	d := rec.decrypt[0]
	if d.EncryptionContext[codec.ContextKeyNamespace] != "ns-a" || aws.ToString(d.KeyId) != arn || fmt.Sprint(d.GrantTokens) != "[grant-1]" {
		t.Errorf("Decrypt input: KeyId %s context %v grant tokens %v", aws.ToString(d.KeyId), d.EncryptionContext, d.GrantTokens)
	}

	// Rewriting the stored namespace in the header: KMS refuses the data key.
	tampered := proto.Clone(out[0]).(*commonpb.Payload)
	i := bytes.Index(tampered.Data, []byte("ns-a"))
	if i < 0 {
		t.Fatal("the header does not carry the namespace")
	}
	copy(tampered.Data[i:], "ns-b")
	before := srv.Calls(workflowtest.KMSDecrypt)
	_, err := newCodec(t, newProvider(t, rec, arn)).Decode([]*commonpb.Payload{tampered})
	if !errors.Is(err, codec.ErrDecrypt) || !strings.Contains(err.Error(), "InvalidCiphertextException") {
		t.Fatalf("decoding with an altered context: %v, want codec.ErrDecrypt from KMS InvalidCiphertextException", err)
	}
	if srv.Calls(workflowtest.KMSDecrypt) != before+1 {
		t.Error("the altered context did not reach KMS")
	}
}

func TestDisabledAndUnknownKeys(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	arn := srv.NewKey()
	in := testPayloads(t, "x")
	out := encode(t, newCodec(t, newProvider(t, srv.Client(), arn)), in)

	srv.SetKeyEnabled(arn, false)
	_, err := newCodec(t, newProvider(t, srv.Client(), arn)).Decode(out)
	if !errors.Is(err, codec.ErrKeyDisabled) {
		t.Errorf("decode under a disabled key: %v, want codec.ErrKeyDisabled", err)
	}
	_, err = newCodec(t, newProvider(t, srv.Client(), arn)).Encode(in)
	if !errors.Is(err, codec.ErrKeyDisabled) || !strings.Contains(err.Error(), arn) {
		t.Errorf("encode under a disabled key: %v, want codec.ErrKeyDisabled naming %s", err, arn)
	}

	_, err = newCodec(t, newProvider(t, srv.Client(), "alias/missing")).Encode(in)
	if !errors.Is(err, codec.ErrUnknownKey) || errors.Is(err, codec.ErrRetryable) {
		t.Errorf("encode under an unknown key: %v, want codec.ErrUnknownKey", err)
	}
}

func TestErrorMapping(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	arn := srv.NewKey()
	p := newProvider(t, srv.Client(), arn)
	ctx := context.Background()
	good, err := p.GenerateDataKey(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		errType string
		want    error
	}{
		{"ThrottlingException", codec.ErrRetryable},
		{"KMSInternalException", codec.ErrRetryable},
		{"DependencyTimeoutException", codec.ErrRetryable},
		{"KeyUnavailableException", codec.ErrRetryable},
		{"NotFoundException", codec.ErrUnknownKey},
		{"DisabledException", codec.ErrKeyDisabled},
		{"KMSInvalidStateException", codec.ErrKeyDisabled},
		{"InvalidCiphertextException", codec.ErrDecrypt},
		{"IncorrectKeyException", codec.ErrDecrypt},
		{"AccessDeniedException", nil},
	} {
		srv.FailNext(workflowtest.KMSGenerateDataKey, 1, tc.errType)
		_, genErr := p.GenerateDataKey(ctx, nil)
		srv.FailNext(workflowtest.KMSDecrypt, 1, tc.errType)
		_, decErr := p.DecryptDataKey(ctx, good.KeyID, good.Encrypted, nil)
		for op, err := range map[string]error{"GenerateDataKey": genErr, "Decrypt": decErr} {
			if err == nil || !strings.Contains(err.Error(), tc.errType) ||
				!strings.Contains(err.Error(), "awskms "+op+" [key="+arn+"]") {
				t.Errorf("%s %s: error %v does not name the operation, key and error type", op, tc.errType, err)
			}
			for _, s := range []error{codec.ErrRetryable, codec.ErrUnknownKey, codec.ErrKeyDisabled, codec.ErrDecrypt} {
				if errors.Is(err, s) != (s == tc.want) {
					t.Errorf("%s %s: errors.Is(err, %v) = %v", op, tc.errType, s, errors.Is(err, s))
				}
			}
			if tc.want == codec.ErrRetryable && !strings.Contains(err.Error(), "retrying may succeed") {
				t.Errorf("%s %s: %v does not say retrying may succeed", op, tc.errType, err)
			}
		}
	}

	transient := map[string]func(bool){
		"unavailable":     srv.SetUnavailable,
		"dropped":         srv.SetDropConnections,
		"slow (deadline)": func(on bool) { srv.SetLatency(map[bool]time.Duration{true: time.Minute}[on]) },
	}
	for name, set := range transient {
		set(true)
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, genErr := p.GenerateDataKey(short, nil)
		_, decErr := p.DecryptDataKey(short, good.KeyID, good.Encrypted, nil)
		cancel()
		set(false)
		if !errors.Is(genErr, codec.ErrRetryable) || !errors.Is(decErr, codec.ErrRetryable) {
			t.Errorf("%s: errors %v / %v, want codec.ErrRetryable", name, genErr, decErr)
		}
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.GenerateDataKey(canceled, nil); err == nil || errors.Is(err, codec.ErrRetryable) {
		t.Errorf("canceled context: %v, want a non-retryable error", err)
	}

	if pt, err := p.DecryptDataKey(ctx, good.KeyID, good.Encrypted, nil); err != nil || !bytes.Equal(pt, good.Plaintext) {
		t.Fatalf("after the faults: %v", err)
	}
	if _, err := p.DecryptDataKey(ctx, good.KeyID, nil, nil); !errors.Is(err, codec.ErrMalformed) {
		t.Errorf("empty encrypted data key: %v, want codec.ErrMalformed", err)
	}
	if _, err := p.DecryptDataKey(ctx, "", good.Encrypted, nil); !errors.Is(err, codec.ErrMalformed) {
		t.Errorf("empty key id: %v, want codec.ErrMalformed", err)
	}
	if _, err := p.DecryptDataKey(ctx, good.KeyID, make([]byte, awskms.MaxEncryptedDataKeyLen+1), nil); !errors.Is(err, codec.ErrMalformed) {
		t.Errorf("oversized encrypted data key: %v, want codec.ErrMalformed", err)
	}
}

func TestRetryableDuringEncodeThenRecovery(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	arn := srv.NewKey()
	in := testPayloads(t, "first", "second")
	written := encode(t, newCodec(t, newProvider(t, srv.Client(), arn)), in)

	enc := newCodec(t, newProvider(t, srv.Client(), arn))
	dec := newCodec(t, newProvider(t, srv.Client(), arn))

	srv.FailNext(workflowtest.KMSGenerateDataKey, 1, "ThrottlingException")
	if _, err := enc.Encode(in); !errors.Is(err, codec.ErrRetryable) {
		t.Fatalf("throttled encode: %v, want codec.ErrRetryable", err)
	}
	srv.SetUnavailable(true)
	if _, err := enc.Encode(in); !errors.Is(err, codec.ErrRetryable) {
		t.Fatalf("encode while KMS is unavailable: %v, want codec.ErrRetryable", err)
	}
	if _, err := dec.Decode(written); !errors.Is(err, codec.ErrRetryable) {
		t.Fatalf("decode while KMS is unavailable: %v, want codec.ErrRetryable", err)
	}
	srv.SetUnavailable(false)

	// After recovery: the failure was not cached, the next encode calls KMS and succeeds, and
	// payloads from before and after decode.
	calls := srv.Calls(workflowtest.KMSGenerateDataKey)
	again := encode(t, enc, in)
	if srv.Calls(workflowtest.KMSGenerateDataKey) != calls+1 {
		t.Errorf("the encode after recovery made %d GenerateDataKey calls, want 1", srv.Calls(workflowtest.KMSGenerateDataKey)-calls)
	}
	mustDecode(t, dec, written, in)
	mustDecode(t, dec, again, in)
}

// fakeClient answers with canned outputs.
type fakeClient struct {
	gen *kms.GenerateDataKeyOutput
	dec *kms.DecryptOutput
	err error
}

func (f *fakeClient) GenerateDataKey(context.Context, *kms.GenerateDataKeyInput, ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	return f.gen, f.err
}

func (f *fakeClient) Decrypt(context.Context, *kms.DecryptInput, ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	return f.dec, f.err
}

func TestHTTPStatusWithoutKnownCode(t *testing.T) {
	for status, retryable := range map[int]bool{502: true, 503: true, 429: true, 400: false, 403: false} {
		err := &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      errors.New("unexpected answer"),
		}}
		p := newProvider(t, &fakeClient{err: err}, "k")
		_, genErr := p.GenerateDataKey(context.Background(), nil)
		if errors.Is(genErr, codec.ErrRetryable) != retryable {
			t.Errorf("HTTP %d: %v, retryable %v, want %v", status, genErr, errors.Is(genErr, codec.ErrRetryable), retryable)
		}
		if !errors.Is(genErr, err) {
			t.Errorf("HTTP %d: the KMS error is not wrapped", status)
		}
	}
}

func TestInvalidKMSResponses(t *testing.T) {
	ctx := context.Background()
	key := make([]byte, 32)
	for name, out := range map[string]*kms.GenerateDataKeyOutput{
		"16-byte key":   {KeyId: aws.String("k"), Plaintext: key[:16], CiphertextBlob: []byte("c")},
		"no key id":     {Plaintext: key, CiphertextBlob: []byte("c")},
		"no ciphertext": {KeyId: aws.String("k"), Plaintext: key},
	} {
		p := newProvider(t, &fakeClient{gen: out}, "k")
		if _, err := p.GenerateDataKey(ctx, nil); !errors.Is(err, awskms.ErrInvalidResponse) {
			t.Errorf("GenerateDataKey with %s: %v, want ErrInvalidResponse", name, err)
		}
	}
	p := newProvider(t, &fakeClient{dec: &kms.DecryptOutput{Plaintext: make([]byte, 64)}}, "k")
	if _, err := p.DecryptDataKey(ctx, "k", []byte("c"), nil); !errors.Is(err, awskms.ErrInvalidResponse) {
		t.Errorf("Decrypt with a 64-byte key: %v, want ErrInvalidResponse", err)
	}
}

func TestMultiRegionKeyReplicaRegion(t *testing.T) {
	srv := workflowtest.StartKMS(t)
	mrk, plain := srv.NewMultiRegionKey(), srv.NewKey()
	ctx := context.Background()
	otherRegion := func(arn string) string {
		return strings.Replace(arn, ":"+workflowtest.KMSRegion+":", ":eu-west-1:", 1)
	}

	gen := func(key string) codec.DataKey {
		dk, err := newProvider(t, srv.Client(), key).GenerateDataKey(ctx, map[string]string{"namespace": "n"})
		if err != nil {
			t.Fatal(err)
		}
		return dk
	}
	mrkKey, plainKey := gen(mrk), gen(plain)

	// Data keys stored by a writer in eu-west-1 name eu-west-1 ARNs; this reader's KMS is us-east-1.
	rec := &recordingClient{Client: srv.Client()}
	replica := newProvider(t, rec, mrk, awskms.WithMultiRegionKeyRegion(workflowtest.KMSRegion))
	pt, err := replica.DecryptDataKey(ctx, otherRegion(mrkKey.KeyID), mrkKey.Encrypted, map[string]string{"namespace": "n"})
	if err != nil || !bytes.Equal(pt, mrkKey.Plaintext) {
		t.Fatalf("multi-region key from another region: %v", err)
	}
	if got := aws.ToString(rec.decrypt[0].KeyId); got != mrk {
		t.Errorf("Decrypt KeyId %s, want the local replica %s", got, mrk)
	}
	// Single-region keys are never rewritten; without the option, neither are multi-region keys.
	if _, err := replica.DecryptDataKey(ctx, otherRegion(plainKey.KeyID), plainKey.Encrypted, map[string]string{"namespace": "n"}); !errors.Is(err, codec.ErrUnknownKey) {
		t.Errorf("single-region key of another region: %v, want codec.ErrUnknownKey", err)
	}
	strict := newProvider(t, srv.Client(), mrk)
	if _, err := strict.DecryptDataKey(ctx, otherRegion(mrkKey.KeyID), mrkKey.Encrypted, map[string]string{"namespace": "n"}); !errors.Is(err, codec.ErrUnknownKey) {
		t.Errorf("without WithMultiRegionKeyRegion: %v, want codec.ErrUnknownKey", err)
	}
	if _, err := awskms.New(srv.Client(), mrk, awskms.WithMultiRegionKeyRegion("")); err == nil {
		t.Error("WithMultiRegionKeyRegion(\"\") was accepted")
	}
}
