package main

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/offload"
)

// resultCheck works around the Go SDK failing a workflow for good when its result cannot be
// encoded: with KMS or the store briefly unavailable (a transient, retryable error), it encodes
// the result once itself and panics instead, which fails the workflow task; the server retries
// it and the workflow completes once KMS and the store are back. (The SDK encodes the result
// again after this check; the data key is then cached.)
type resultCheck struct {
	interceptor.WorkerInterceptorBase
	dc converter.DataConverter
}

func (r *resultCheck) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	i := &resultCheckInbound{dc: r.dc}
	i.Next = next
	return i
}

type resultCheckInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	dc converter.DataConverter
}

func (i *resultCheckInbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	res, err := i.Next.ExecuteWorkflow(ctx, in)
	if err != nil || res == nil {
		return res, err
	}
	dc := i.dc
	if ca, ok := dc.(converter.ContextAware); ok {
		dc = ca.WithWorkflowContext(ctx)
	}
	if _, encErr := workflow.DataConverterWithoutDeadlockDetection(dc).ToPayloads(res); encErr != nil &&
		(errors.Is(encErr, codec.ErrRetryable) || errors.Is(encErr, offload.ErrRetryable)) {
		panic(fmt.Sprintf("encoding the workflow result failed transiently, the workflow task is retried: %v", encErr))
	}
	return res, nil
}
