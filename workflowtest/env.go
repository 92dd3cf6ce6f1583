package workflowtest

import (
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
)

// TestNamespace is the namespace the SDK's test workflow environment gives workflows. (Its
// activity task handlers get an empty namespace, which payloadkit's codecs treat as unknown.)
const TestNamespace = "default-test-namespace"

// testWorkerOptions carries every worker interceptor of the Kit: a test environment has no
// client to bring the interceptors that are both client and worker interceptors (the SDK's
// tracing interceptor), so Kit.WorkerOptions, which leaves those to the client, is not enough.
func (k *Kit) testWorkerOptions() worker.Options {
	return worker.Options{Interceptors: k.kit.WorkerInterceptors()}
}

// ApplyToWorkflowEnv sets the Kit's recording DataConverter and FailureConverter on env, and
// worker options carrying the Kit's worker interceptors. It replaces env's worker options: to set
// others too, append k.Kit().WorkerInterceptors() to yours and call env.SetWorkerOptions afterwards.
func (k *Kit) ApplyToWorkflowEnv(env *testsuite.TestWorkflowEnvironment) {
	env.SetDataConverter(k.dc)
	env.SetFailureConverter(k.fc)
	env.SetWorkerOptions(k.testWorkerOptions())
}

// ApplyToActivityEnv sets the Kit's recording DataConverter and FailureConverter on env, and
// worker options carrying the Kit's worker interceptors. It replaces env's worker options: to set
// others too, append k.Kit().WorkerInterceptors() to yours and call env.SetWorkerOptions afterwards.
func (k *Kit) ApplyToActivityEnv(env *testsuite.TestActivityEnvironment) {
	env.SetDataConverter(k.dc)
	env.SetFailureConverter(k.fc)
	env.SetWorkerOptions(k.testWorkerOptions())
}

// NewWorkflowEnv returns a test workflow environment of s with the Kit applied (ApplyToWorkflowEnv).
func (k *Kit) NewWorkflowEnv(s *testsuite.WorkflowTestSuite) *testsuite.TestWorkflowEnvironment {
	env := s.NewTestWorkflowEnvironment()
	k.ApplyToWorkflowEnv(env)
	return env
}

// NewActivityEnv returns a test activity environment of s with the Kit applied (ApplyToActivityEnv).
func (k *Kit) NewActivityEnv(s *testsuite.WorkflowTestSuite) *testsuite.TestActivityEnvironment {
	env := s.NewTestActivityEnvironment()
	k.ApplyToActivityEnv(env)
	return env
}
