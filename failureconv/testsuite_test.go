package failureconv

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// testNamespace is the namespace of the SDK's test workflow environment.
const testNamespace = "default-test-namespace"

// recordingFC records every Failure its converter produces, across serialization contexts.
// The SDK's test environment gives activity task handlers an empty namespace while workflows
// get testNamespace; recordingFC fills it in, as a worker connected to a namespace would.
type recordingFC struct {
	inner converter.FailureConverter
	mu    *sync.Mutex
	sent  *[]*failurepb.Failure
}

func (r recordingFC) ErrorToFailure(err error) *failurepb.Failure {
	f := r.inner.ErrorToFailure(err)
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.sent = append(*r.sent, f)
	return f
}

func (r recordingFC) FailureToError(f *failurepb.Failure) error { return r.inner.FailureToError(f) }

func (r recordingFC) WithSerializationContext(ctx converter.SerializationContext) converter.FailureConverter {
	if a, ok := ctx.(converter.ActivitySerializationContext); ok && a.Namespace == "" {
		a.Namespace = testNamespace
		ctx = a
	}
	r.inner = converter.WithFailureConverterSerializationContext(r.inner, ctx)
	return r
}

func chargeCard(_ context.Context, card string) error {
	return temporal.NewNonRetryableApplicationError("card "+card+" declined by issuer", "PaymentDeclined", nil,
		secretDetails{CardNumber: card, Amount: 42})
}

func chargeWorkflow(ctx workflow.Context, card string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	err := workflow.ExecuteActivity(ctx, chargeCard, card).Get(ctx, nil)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		return "", fmt.Errorf("expected an application error, got %v", err)
	}
	var d secretDetails
	if err := app.Details(&d); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s|%s|%s|%d", app.Message(), app.Type(), d.CardNumber, d.Amount), nil
}

func TestWorkflowSeesActivityFailureIntact(t *testing.T) {
	dc, codec := sealedDC(t)
	fc := newConv(t, dc, nil, true)
	var sent []*failurepb.Failure
	rec := recordingFC{inner: fc, mu: &sync.Mutex{}, sent: &sent}

	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetDataConverter(dc)
	env.SetFailureConverter(rec)
	env.RegisterWorkflow(chargeWorkflow)
	env.RegisterActivity(chargeCard)
	env.ExecuteWorkflow(chargeWorkflow, "4111-1111-1111-1111")

	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var got string
	require.NoError(t, env.GetWorkflowResult(&got))
	assert.Equal(t, "card 4111-1111-1111-1111 declined by issuer|PaymentDeclined|4111-1111-1111-1111|42", got)

	require.NotEmpty(t, sent, "the activity failure did not pass the failure converter")
	for _, f := range sent {
		assert.NotContains(t, string(marshal(t, f)), secretCardNumber, "a failure crossed the converter in plain text")
		assert.Equal(t, DefaultPublicMessage, f.GetMessage())
		assert.NotNil(t, f.GetEncodedAttributes())
	}
	assert.Contains(t, codec.seen.list(), testNamespace, "the test environment's namespace did not reach the codec")
	assert.NotContains(t, codec.seen.list(), "", "a payload was encoded without a namespace")
}
