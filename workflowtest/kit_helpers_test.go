package workflowtest_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// fakeT stands in for the *testing.T a test function receives: it records errors instead of
// failing, and runs cleanups when closed.
type fakeT struct {
	testing.TB // not set: calling a method not defined below panics

	mu       sync.Mutex
	errs     []string
	cleanups []func()
}

func (f *fakeT) Helper()         {}
func (f *fakeT) Name() string    { return "fake" }
func (f *fakeT) Log(args ...any) {}

func (f *fakeT) Logf(format string, args ...any) {}

func (f *fakeT) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func (f *fakeT) Error(args ...any) { f.Errorf("%s", fmt.Sprint(args...)) }

func (f *fakeT) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	panic("fakeT: Fatalf: " + fmt.Sprintf(format, args...))
}

func (f *fakeT) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

func (f *fakeT) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.errs) > 0
}

func (f *fakeT) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

// errors returns the errors reported so far.
func (f *fakeT) errors() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.errs...)
}

// close runs the cleanups, last registered first.
func (f *fakeT) close() {
	f.mu.Lock()
	fns := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

// Order is the input of OrderWorkflow: it holds a card number that must never reach history in
// plain text.
type Order struct {
	ID         string
	CardNumber string
	Amount     int
}

// Receipt is the result of the ChargeCard activity and of OrderWorkflow; its Document makes it
// large enough to be offloaded.
type Receipt struct {
	OrderID  string
	Last4    string
	Document []byte
}

// CardDeclined is the details of the application error DeclineCard returns.
type CardDeclined struct {
	CardNumber string
	Reason     string
}

const (
	secretCard   = "4111-1111-1111-1111"
	documentSize = 16 << 10
)

func ChargeCard(_ context.Context, o Order) (Receipt, error) {
	// An incompressible document, so that the receipt stays over the offload threshold.
	rng := rand.New(rand.NewPCG(uint64(len(o.ID)), uint64(o.Amount)))
	doc := make([]byte, documentSize)
	for i := range doc {
		doc[i] = byte(rng.Uint32())
	}
	return Receipt{OrderID: o.ID, Last4: o.CardNumber[len(o.CardNumber)-4:], Document: doc}, nil
}

func DeclineCard(_ context.Context, o Order) (Receipt, error) {
	return Receipt{}, temporal.NewNonRetryableApplicationError("card "+o.CardNumber+" declined: insufficient funds",
		"CardDeclined", nil, CardDeclined{CardNumber: o.CardNumber, Reason: "insufficient funds"})
}

func OrderWorkflow(ctx workflow.Context, o Order) (Receipt, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	var r Receipt
	err := workflow.ExecuteActivity(ctx, "ChargeCard", o).Get(ctx, &r)
	return r, err
}

// DeclinedWorkflow runs DeclineCard and returns what it sees of the failure.
func DeclinedWorkflow(ctx workflow.Context, o Order) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	err := workflow.ExecuteActivity(ctx, DeclineCard, o).Get(ctx, nil)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		return "", fmt.Errorf("expected an application error, got %v", err)
	}
	var d CardDeclined
	if err := app.Details(&d); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s | %s | %s", app.Message(), d.CardNumber, d.Reason), nil
}
