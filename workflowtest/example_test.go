package workflowtest_test

import (
	"errors"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/interceptor"
	"github.com/payloadkit/payloadkit/workflowtest"
)

// quietSuite returns a test suite that does not log (so that the examples' output is theirs).
func quietSuite() *testsuite.WorkflowTestSuite {
	s := &testsuite.WorkflowTestSuite{}
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	return s
}

// A workflow test with the real pipeline: compression, envelope encryption with a key of the
// KMS test server, offload of large payloads to a memory store, and telemetry recorders.
func ExampleNewKit() {
	t := &fakeT{} // in a test: the *testing.T the test function receives
	defer t.close()

	k := workflowtest.NewKit(t)
	env := k.NewWorkflowEnv(quietSuite())
	env.RegisterWorkflow(OrderWorkflow)
	env.RegisterActivity(ChargeCard)
	env.ExecuteWorkflow(OrderWorkflow, Order{ID: "o-1", CardNumber: "4111-1111-1111-1111", Amount: 42})

	var r Receipt
	if err := env.GetWorkflowResult(&r); err != nil {
		fmt.Println("workflow failed:", err)
		return
	}
	fmt.Println("receipt:", r.OrderID, r.Last4, len(r.Document), "bytes")
	fmt.Println("all encrypted:", k.AssertAllEncrypted(t))
	fmt.Println("offloaded payloads:", len(k.Offloaded()))
	fmt.Println("GenerateDataKey calls:", k.KMSCalls(workflowtest.KMSGenerateDataKey))
	fmt.Println("encode spans:", len(k.FindSpans(interceptor.SpanEncode)) > 0)
	// Output:
	// receipt: o-1 1111 16384 bytes
	// all encrypted: true
	// offloaded payloads: 2
	// GenerateDataKey calls: 1
	// encode spans: true
}

// Assertions report what they find with t.Errorf: here, payloads that left unencrypted.
func ExampleKit_AssertAllEncrypted() {
	t := &fakeT{}
	defer t.close()

	k := workflowtest.NewKit(t, workflowtest.WithoutEncryption(), workflowtest.WithoutOffload())
	env := k.NewWorkflowEnv(quietSuite())
	env.RegisterWorkflow(OrderWorkflow)
	env.RegisterActivity(ChargeCard)
	env.ExecuteWorkflow(OrderWorkflow, Order{ID: "o-1", CardNumber: "4111-1111-1111-1111", Amount: 42})

	fmt.Println("all encrypted:", k.AssertAllEncrypted(t))
	errs := t.errors()
	fmt.Println(len(errs), "errors; the first:")
	fmt.Println(errs[0])
	// Output:
	// all encrypted: false
	// 4 errors; the first:
	// workflowtest: payload 0 [namespace=default-test-namespace]: encoding "json/plain", 59 bytes, not encrypted
}

// Replaying a history exported with `temporal workflow show -o json` checks that today's
// workflow code and keys still read it.
func ExampleKit_ReplayHistoryFile() {
	t := &fakeT{}
	defer t.close()

	k := replayKit(t, replayKeyID, replayKeyHex)
	fmt.Println("replay with the original key:", k.ReplayHistoryFile(greetingHistory, GreetingWorkflow))

	other := replayKit(t, replayKeyID, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
	err := other.ReplayHistoryFile(greetingHistory, GreetingWorkflow)
	fmt.Println("replay with another key fails to decrypt:", errors.Is(err, codec.ErrDecrypt))
	// Output:
	// replay with the original key: <nil>
	// replay with another key fails to decrypt: true
}
