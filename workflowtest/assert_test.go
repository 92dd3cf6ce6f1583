package workflowtest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.temporal.io/sdk/testsuite"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/interceptor"
	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/workflowtest"
)

func errorsContain(t *testing.T, f *fakeT, want string) {
	t.Helper()
	for _, e := range f.errors() {
		if strings.Contains(e, want) {
			return
		}
	}
	t.Errorf("no reported error contains %q; reported: %q", want, f.errors())
}

func TestAssertAllEncryptedFails(t *testing.T) {
	t.Run("nothing recorded", func(t *testing.T) {
		k := workflowtest.NewKit(t)
		f := &fakeT{}
		assert.False(t, k.AssertAllEncrypted(f))
		errorsContain(t, f, "no payload left the pipeline")
	})
	t.Run("encryption off", func(t *testing.T) {
		k := workflowtest.NewKit(t, workflowtest.WithoutEncryption())
		runOrder(t, k)
		f := &fakeT{}
		assert.False(t, k.AssertAllEncrypted(f))
		// The order is compressed or plain JSON; the receipt claims point at unencrypted objects.
		errorsContain(t, f, "not encrypted")
		errorsContain(t, f, "claim [key=payloadkit/"+workflowtest.TestNamespace)
		assert.Len(t, f.errors(), 4)
	})
	t.Run("failure in plain text", func(t *testing.T) {
		k := workflowtest.NewKit(t, workflowtest.WithoutEncryption())
		var s testsuite.WorkflowTestSuite
		env := k.NewWorkflowEnv(&s)
		env.RegisterWorkflow(DeclinedWorkflow)
		env.RegisterActivity(DeclineCard)
		env.ExecuteWorkflow(DeclinedWorkflow, Order{ID: "o-2", CardNumber: secretCard})
		require.NoError(t, env.GetWorkflowError())
		f := &fakeT{}
		assert.False(t, k.AssertAllEncrypted(f))
		errorsContain(t, f, "sent without encoded attributes")
	})
	t.Run("claim object missing", func(t *testing.T) {
		k := workflowtest.NewKit(t)
		runOrder(t, k)
		for _, c := range k.Offloaded() {
			k.Store().(*offload.MemoryStore).Delete(c.Key)
		}
		f := &fakeT{}
		assert.False(t, k.AssertAllEncrypted(f))
		errorsContain(t, f, "reading the stored object")
	})
}

func TestAssertOffloadedFails(t *testing.T) {
	k := workflowtest.NewKit(t)
	runOrder(t, k)
	f := &fakeT{}
	assert.False(t, k.AssertOffloaded(f, 3))
	errorsContain(t, f, "2 payloads offloaded, want 3")

	claims := k.Offloaded()
	require.NotEmpty(t, claims)
	k.Store().(*offload.MemoryStore).Delete(claims[0].Key)
	f = &fakeT{}
	assert.False(t, k.AssertOffloaded(f, 2))
	errorsContain(t, f, "object not in the store")
}

func TestAssertKMSCallsFails(t *testing.T) {
	k := workflowtest.NewKit(t)
	runOrder(t, k)
	f := &fakeT{}
	assert.False(t, k.AssertKMSCalls(f, workflowtest.KMSGenerateDataKey, 5))
	errorsContain(t, f, "1 KMS GenerateDataKey calls, want 5")

	none := workflowtest.NewKit(t, workflowtest.WithoutEncryption())
	f = &fakeT{}
	assert.False(t, none.AssertKMSCalls(f, workflowtest.KMSDecrypt, 0))
	errorsContain(t, f, "no KMS test server")
	assert.Zero(t, none.KMSCalls(workflowtest.KMSDecrypt))
}

func TestAssertSpanFails(t *testing.T) {
	k := workflowtest.NewKit(t)
	runOrder(t, k)
	f := &fakeT{}
	assert.Nil(t, k.AssertSpan(f, "payloadkit.nothing.encode"))
	errorsContain(t, f, interceptor.SpanEncode) // the spans that did end are listed
	f = &fakeT{}
	// Only a failed run names a stage.
	assert.Nil(t, k.AssertSpan(f, interceptor.SpanEncode, interceptor.AttrStage.String("compression")))
	errorsContain(t, f, `no ended span "payloadkit.encode"`)
}

func TestMetricLookups(t *testing.T) {
	k := workflowtest.NewKit(t)
	_, found := k.MetricValue(interceptor.MetricCodecDuration)
	assert.False(t, found, "metrics before any payload")
	runOrder(t, k)

	encrypt := []attribute.KeyValue{attribute.String("stage", payloadkit.StageEncryption), attribute.String("operation", "encode")}
	after := append([]attribute.KeyValue{attribute.String("position", "after")}, encrypt...)
	before := append([]attribute.KeyValue{attribute.String("position", "before")}, encrypt...)
	in, found := k.MetricValue(interceptor.MetricPayloadSize, before...)
	require.True(t, found)
	out, found := k.MetricValue(interceptor.MetricPayloadSize, after...)
	require.True(t, found)
	assert.Greater(t, out, in, "encryption adds a header and a tag to every payload")
	assert.True(t, k.AssertMetric(t, interceptor.MetricPayloadSize, out, after...))

	f := &fakeT{}
	assert.False(t, k.AssertMetric(f, interceptor.MetricPayloadSize, out+1, after...))
	errorsContain(t, f, "want")
	f = &fakeT{}
	assert.False(t, k.AssertMetric(f, "payloadkit.nothing", 1))
	errorsContain(t, f, interceptor.MetricCodecDuration) // the metrics that exist are listed
}

func TestWithStore(t *testing.T) {
	k := workflowtest.NewKit(t, workflowtest.WithStore(offload.NewMemoryStore()))
	runOrder(t, k)
	assert.Empty(t, k.EncryptionProblems())
	for _, c := range k.Offloaded() {
		_, err := k.Store().Get(context.Background(), c.Key)
		assert.NoError(t, err)
	}
}
