package orders_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/failureconv"
	"github.com/payloadkit/payloadkit/samples/orders"
	"github.com/payloadkit/payloadkit/workflowtest"
)

const customerEmail = "ada.lovelace@example.com"

func validOrder() orders.Order {
	return orders.Order{
		ID:            "o-1001",
		CustomerEmail: customerEmail,
		Address:       "12 St James's Square, London",
		Items: []orders.Item{
			{SKU: "difference-engine", Quantity: 1, PriceCents: 1_500_00},
			{SKU: "punch-cards", Quantity: 200, PriceCents: 25},
		},
	}
}

// newEnv returns a workflow test environment with the Kit applied and the order workflow registered.
func newEnv(kit *workflowtest.Kit) *testsuite.TestWorkflowEnvironment {
	env := kit.NewWorkflowEnv(&testsuite.WorkflowTestSuite{})
	orders.Register(env, &orders.Activities{})
	return env
}

// assertNoPlaintext fails when any payload or failure that left the pipeline holds s.
func assertNoPlaintext(t *testing.T, kit *workflowtest.Kit, s string) {
	t.Helper()
	for i, r := range kit.Recorder().Payloads(workflowtest.Outbound) {
		b, err := proto.Marshal(r.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("outbound payload %d holds %q in plain text", i, s)
		}
	}
	for i, r := range kit.Recorder().Failures() {
		b, err := proto.Marshal(r.Failure)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("failure %d holds %q in plain text", i, s)
		}
	}
}

func TestPlaceOrder(t *testing.T) {
	kit := workflowtest.NewKit(t)
	env := newEnv(kit)
	order := validOrder()

	env.ExecuteWorkflow(orders.WorkflowName, order)
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow: %v", err)
	}
	var receipt orders.Receipt
	if err := env.GetWorkflowResult(&receipt); err != nil {
		t.Fatal(err)
	}
	label := orders.RenderLabel(order, "TRK-O-1001")
	sum := sha256.Sum256(label)
	want := orders.Receipt{
		OrderID:        order.ID,
		ChargeID:       "ch_" + order.ID,
		AmountCents:    1_500_00 + 200*25,
		TrackingNumber: "TRK-O-1001",
		LabelSHA256:    hex.EncodeToString(sum[:]),
	}
	if receipt != want {
		t.Fatalf("receipt = %+v, want %+v", receipt, want)
	}

	kit.AssertAllEncrypted(t)
	assertNoPlaintext(t, kit, customerEmail)
	assertNoPlaintext(t, kit, order.Address)
	// Only the shipment, with its 64 KiB label, is over the offload threshold.
	kit.AssertOffloaded(t, 1)
	if claims := kit.Offloaded(); len(claims) == 1 && claims[0].Size < orders.LabelSize {
		t.Errorf("offloaded object has %d bytes, want at least the %d-byte label", claims[0].Size, orders.LabelSize)
	}
	// One data key serves the whole run (the Kit caches it), and keys the Kit generated decrypt
	// from its cache, so KMS sees no Decrypt.
	kit.AssertKMSCalls(t, workflowtest.KMSGenerateDataKey, 1)
	kit.AssertKMSCalls(t, workflowtest.KMSDecrypt, 0)
}

func TestPlaceOrderRejectsInvalidOrder(t *testing.T) {
	kit := workflowtest.NewKit(t)
	env := newEnv(kit)
	order := validOrder()
	order.Address = " "
	order.Items = nil

	env.ExecuteWorkflow(orders.WorkflowName, order)
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	err := env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("workflow error %v holds no *temporal.ApplicationError", err)
	}
	if appErr.Type() != orders.ErrTypeInvalidOrder || !appErr.NonRetryable() {
		t.Errorf("error type %q, non-retryable %v; want %q, non-retryable", appErr.Type(), appErr.NonRetryable(), orders.ErrTypeInvalidOrder)
	}
	wantMsg := "order o-1001 for " + customerEmail + " rejected: shipping address is missing; order has no items"
	if appErr.Message() != wantMsg {
		t.Errorf("message = %q, want %q", appErr.Message(), wantMsg)
	}
	var details orders.ValidationDetails
	if err := appErr.Details(&details); err != nil {
		t.Fatalf("details: %v", err)
	}
	if details.CustomerEmail != customerEmail || details.OrderID != order.ID || len(details.Problems) != 2 {
		t.Errorf("details = %+v", details)
	}

	// The failures sent carry the public message only; the real one is encrypted.
	failures := kit.Recorder().Failures()
	if len(failures) == 0 {
		t.Fatal("no failure was recorded")
	}
	for i, r := range failures {
		for f := r.Failure; f != nil; f = f.GetCause() {
			if f.GetMessage() != failureconv.DefaultPublicMessage {
				t.Errorf("failure %d sent with message %q, want %q", i, f.GetMessage(), failureconv.DefaultPublicMessage)
			}
		}
	}
	kit.AssertAllEncrypted(t)
	assertNoPlaintext(t, kit, customerEmail)
	kit.AssertOffloaded(t, 0)
}

func TestValidateActivity(t *testing.T) {
	kit := workflowtest.NewKit(t, workflowtest.WithoutOffload())
	env := kit.NewActivityEnv(&testsuite.WorkflowTestSuite{})
	env.RegisterActivity(&orders.Activities{})

	if _, err := env.ExecuteActivity((&orders.Activities{}).Validate, validOrder()); err != nil {
		t.Fatalf("valid order rejected: %v", err)
	}
	bad := validOrder()
	bad.CustomerEmail = "not an address"
	_, err := env.ExecuteActivity((&orders.Activities{}).Validate, bad)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != orders.ErrTypeInvalidOrder {
		t.Fatalf("error = %v, want an %s application error", err, orders.ErrTypeInvalidOrder)
	}
	if !strings.Contains(appErr.Message(), "customer email is not an address") {
		t.Errorf("message = %q", appErr.Message())
	}
	kit.AssertAllEncrypted(t)
	assertNoPlaintext(t, kit, "not an address")
}
