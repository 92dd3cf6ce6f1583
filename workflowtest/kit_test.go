package workflowtest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.temporal.io/sdk/testsuite"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/failureconv"
	"github.com/payloadkit/payloadkit/interceptor"
	"github.com/payloadkit/payloadkit/workflowtest"
)

func runOrder(t *testing.T, k *workflowtest.Kit) Receipt {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := k.NewWorkflowEnv(&s)
	env.RegisterWorkflow(OrderWorkflow)
	env.RegisterActivity(ChargeCard)
	env.ExecuteWorkflow(OrderWorkflow, Order{ID: "o-1", CardNumber: secretCard, Amount: 42})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var r Receipt
	require.NoError(t, env.GetWorkflowResult(&r))
	return r
}

func TestKitWorkflowRoundTrip(t *testing.T) {
	k := workflowtest.NewKit(t)
	r := runOrder(t, k)
	assert.Equal(t, "o-1", r.OrderID)
	assert.Equal(t, "1111", r.Last4)
	assert.Len(t, r.Document, documentSize)

	// Order in, order to the activity, receipt from the activity, receipt out.
	out := k.Recorder().Payloads(workflowtest.Outbound)
	require.Len(t, out, 4)
	for _, p := range out {
		assert.NotContains(t, string(p.Payload.GetData()), secretCard, "plain card number left the pipeline")
		assert.Equal(t, workflowtest.TestNamespace, p.Namespace())
	}
	assert.True(t, k.AssertAllEncrypted(t))

	// Both receipts are offloaded (encrypted separately, so to two objects).
	assert.True(t, k.AssertOffloaded(t, 2))
	claims := k.Offloaded()
	require.Len(t, claims, 2)
	stored, err := k.Store().Get(context.Background(), claims[0].Key)
	require.NoError(t, err)
	assert.NotContains(t, string(stored), secretCard)

	// One data key serves every payload; payloads encrypted here decrypt from the cache.
	assert.True(t, k.AssertKMSCalls(t, workflowtest.KMSGenerateDataKey, 1))
	assert.True(t, k.AssertKMSCalls(t, workflowtest.KMSDecrypt, 0))

	span := k.AssertSpan(t, interceptor.SpanEncode, interceptor.AttrOperation.String("encode"), interceptor.AttrOutcome.String("ok"))
	require.NotNil(t, span)
	// One span per encode through the chain; the encryption stage's timing is an attribute.
	var encodes int
	for _, s := range k.FindSpans(interceptor.SpanEncode) {
		for _, kv := range s.Attributes() {
			if kv.Key == interceptor.AttrStageDuration(payloadkit.StageEncryption) {
				encodes++
			}
		}
	}
	n, found := k.MetricCount(interceptor.MetricCodecDuration,
		attribute.String("stage", payloadkit.StageEncryption), attribute.String("operation", "encode"))
	require.True(t, found)
	assert.Equal(t, uint64(encodes), n, "one duration per traced encryption call")
	assert.GreaterOrEqual(t, encodes, len(out))
}

func TestKitOptions(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		k := workflowtest.NewKit(t)
		assert.NotNil(t, k.KMS())
		assert.NotEmpty(t, k.KeyID())
		assert.NotNil(t, k.Store())
		assert.Equal(t, []string{payloadkit.StageCompression, payloadkit.StageEncryption, payloadkit.StageOffload}, k.Kit().Stages())
		assert.Equal(t, workflowtest.DefaultOffloadThreshold, k.Options().Offload.Threshold)
	})
	t.Run("without encryption", func(t *testing.T) {
		k := workflowtest.NewKit(t, workflowtest.WithoutEncryption())
		assert.Nil(t, k.KMS())
		assert.Empty(t, k.KeyID())
		assert.Equal(t, []string{payloadkit.StageCompression, payloadkit.StageOffload}, k.Kit().Stages())
	})
	t.Run("without offload", func(t *testing.T) {
		k := workflowtest.NewKit(t, workflowtest.WithoutOffload())
		assert.Nil(t, k.Store())
		runOrder(t, k)
		assert.Empty(t, k.Offloaded())
		assert.True(t, k.AssertAllEncrypted(t))
	})
	t.Run("offload threshold", func(t *testing.T) {
		k := workflowtest.NewKit(t, workflowtest.WithOffloadThreshold(1<<20))
		runOrder(t, k)
		assert.True(t, k.AssertOffloaded(t, 0))
	})
	t.Run("key provider", func(t *testing.T) {
		ring, err := codec.NewStaticKeyring("k1", map[string][]byte{"k1": codec.GenerateKey()})
		require.NoError(t, err)
		k := workflowtest.NewKit(t, workflowtest.WithKeyProvider(ring))
		assert.Nil(t, k.KMS())
		runOrder(t, k)
		assert.True(t, k.AssertAllEncrypted(t))
	})
	t.Run("options edit", func(t *testing.T) {
		k := workflowtest.NewKit(t, workflowtest.WithOptions(func(o *payloadkit.Options) {
			o.Failures = &failureconv.Options{PublicMessage: "see the codec server"}
		}))
		f := k.FailureConverter().ErrorToFailure(assert.AnError)
		assert.Equal(t, "see the codec server", f.GetMessage())
	})
}
