package workflowtest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/payloadkit/payloadkit/failureconv"
	"github.com/payloadkit/payloadkit/workflowtest"
)

func TestActivityFailureReachesWorkflowIntact(t *testing.T) {
	k := workflowtest.NewKit(t)
	var s testsuite.WorkflowTestSuite
	env := k.NewWorkflowEnv(&s)
	env.RegisterWorkflow(DeclinedWorkflow)
	env.RegisterActivity(DeclineCard)
	env.ExecuteWorkflow(DeclinedWorkflow, Order{ID: "o-2", CardNumber: secretCard, Amount: 7})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var seen string
	require.NoError(t, env.GetWorkflowResult(&seen))
	assert.Equal(t, "card "+secretCard+" declined: insufficient funds | "+secretCard+" | insufficient funds", seen)

	failures := k.Recorder().Failures()
	require.NotEmpty(t, failures, "the activity failure did not pass the Kit's failure converter")
	for _, f := range failures {
		assert.Equal(t, failureconv.DefaultPublicMessage, f.Failure.GetMessage())
		assert.NotNil(t, f.Failure.GetEncodedAttributes())
		assert.NotContains(t, f.Failure.String(), secretCard)
	}
	assert.True(t, k.AssertAllEncrypted(t))
}

func TestActivityEnv(t *testing.T) {
	k := workflowtest.NewKit(t)
	var s testsuite.WorkflowTestSuite
	env := k.NewActivityEnv(&s)
	env.RegisterActivity(ChargeCard)
	v, err := env.ExecuteActivity(ChargeCard, Order{ID: "o-3", CardNumber: secretCard})
	require.NoError(t, err)
	var r Receipt
	require.NoError(t, v.Get(&r))
	assert.Equal(t, "o-3", r.OrderID)
	assert.True(t, k.AssertAllEncrypted(t))
	assert.True(t, k.AssertOffloaded(t, 1))
}
