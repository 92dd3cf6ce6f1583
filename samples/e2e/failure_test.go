package e2e

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/failureconv"
	"github.com/payloadkit/payloadkit/samples/internal/history"
)

const (
	// failureSecret is personal data an application puts in an error message and its details.
	failureSecret = "jane.doe+secret@example.com"
	// failureErrorType is the application error type of the rejection.
	failureErrorType = "CustomerRejected"
	// failureSourceFile names this file; it appears in stack traces recorded here.
	failureSourceFile = "failure_test.go"
)

// failureDetails are the details of the rejection error.
type failureDetails struct {
	Email  string
	Reason string
}

// failureRejectActivity fails with an application error whose message and details hold the secret.
func failureRejectActivity(_ context.Context, email string) error {
	return temporal.NewApplicationError("customer "+email+" is blocked", failureErrorType,
		failureDetails{Email: email, Reason: "fraud check for " + email})
}

// failurePanicActivity panics with the secret: the failure carries a stack trace of this file.
func failurePanicActivity(_ context.Context, email string) error {
	panic("cannot charge " + email)
}

// failureWorkflow runs the activity named by activityName once and returns its error.
func failureWorkflow(ctx workflow.Context, activityName, email string) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	return workflow.ExecuteActivity(ctx, activityName, email).Get(ctx, nil)
}

func failureRegister(r worker.Registry) {
	r.RegisterWorkflowWithOptions(failureWorkflow, workflow.RegisterOptions{Name: "failureWorkflow"})
	r.RegisterActivityWithOptions(failureRejectActivity, activity.RegisterOptions{Name: "failureReject"})
	r.RegisterActivityWithOptions(failurePanicActivity, activity.RegisterOptions{Name: "failurePanic"})
}

// failureHistoryBytes returns every event of the run's history, marshalled, and the events.
func failureHistoryBytes(t *testing.T, ctx context.Context, s *server, run client.WorkflowRun) ([]byte, []*historypb.HistoryEvent) {
	t.Helper()
	events, err := history.Events(ctx, s.GetDefaultClient(), run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, ev := range events {
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all, events
}

// TestFailureSecretsStayOutOfHistory fails activities with errors carrying personal data (in the
// message, the details and a panic's stack trace) and checks that the raw history holds none of
// it in plain text while the client gets the original error back.
func TestFailureSecretsStayOutOfHistory(t *testing.T) {
	keyring := staticKeyring(t, "k1")
	kit := newKit(t, payloadkit.Options{
		Encryption: &codec.EncryptionOptions{Keys: keyring},
	})
	s := startServer(t, kit)
	s.worker("failure", failureRegister)
	fc, ok := kit.FailureConverter().(*failureconv.Converter)
	if !ok {
		t.Fatalf("the Kit's FailureConverter is a %T, want *failureconv.Converter", kit.FailureConverter())
	}

	t.Run("application error", func(t *testing.T) {
		ctx := testContext(t, time.Minute)
		run, err := s.GetDefaultClient().ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "failure"},
			"failureWorkflow", "failureReject", failureSecret)
		if err != nil {
			t.Fatal(err)
		}
		werr := run.Get(ctx, nil)
		if werr == nil {
			t.Fatal("workflow succeeded, want the activity's error")
		}
		var appErr *temporal.ApplicationError
		if !errors.As(werr, &appErr) {
			t.Fatalf("client error %v holds no *temporal.ApplicationError", werr)
		}
		if want := "customer " + failureSecret + " is blocked"; appErr.Message() != want {
			t.Errorf("message = %q, want %q", appErr.Message(), want)
		}
		if appErr.Type() != failureErrorType {
			t.Errorf("type = %q, want %q", appErr.Type(), failureErrorType)
		}
		var details failureDetails
		if err := appErr.Details(&details); err != nil {
			t.Fatalf("details: %v", err)
		}
		if want := (failureDetails{Email: failureSecret, Reason: "fraud check for " + failureSecret}); details != want {
			t.Errorf("details = %+v, want %+v", details, want)
		}

		raw, events := failureHistoryBytes(t, ctx, s, run)
		failureAssertHidden(t, raw)
		// The search does see the events' strings: the activity type and the public message are there.
		for _, visible := range []string{"failureReject", failureconv.DefaultPublicMessage} {
			if !bytes.Contains(raw, []byte(visible)) {
				t.Errorf("history does not contain %q: the search would not find the secret either", visible)
			}
		}
		// The failure stored in history decodes back to the original message.
		f := failureLastActivityFailure(t, events)
		decoded, err := fc.Decode(f)
		if err != nil {
			t.Fatalf("decoding the stored failure: %v", err)
		}
		if !strings.Contains(decoded.GetMessage(), failureSecret) {
			t.Errorf("decoded stored failure message = %q, want it to hold the original message", decoded.GetMessage())
		}
		t.Logf("history: %d events, %d bytes; stored failure message %q", len(events), len(raw), f.GetMessage())
	})

	t.Run("panic stack trace", func(t *testing.T) {
		ctx := testContext(t, time.Minute)
		run, err := s.GetDefaultClient().ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "failure"},
			"failureWorkflow", "failurePanic", failureSecret)
		if err != nil {
			t.Fatal(err)
		}
		werr := run.Get(ctx, nil)
		if werr == nil {
			t.Fatal("workflow succeeded, want the activity's panic")
		}
		if !strings.Contains(werr.Error(), "cannot charge "+failureSecret) {
			t.Errorf("client error %q does not hold the panic message", werr)
		}
		raw, events := failureHistoryBytes(t, ctx, s, run)
		failureAssertHidden(t, raw)
		if bytes.Contains(raw, []byte(failureSourceFile)) {
			t.Errorf("history holds the stack trace (%s) in plain text", failureSourceFile)
		}
		decoded, err := fc.Decode(failureLastActivityFailure(t, events))
		if err != nil {
			t.Fatalf("decoding the stored failure: %v", err)
		}
		if !strings.Contains(decoded.GetStackTrace(), failureSourceFile) {
			t.Errorf("decoded stack trace does not name %s:\n%s", failureSourceFile, decoded.GetStackTrace())
		}
		t.Logf("decoded stack trace: %d bytes", len(decoded.GetStackTrace()))
	})
}

// failureAssertHidden fails when raw history bytes hold the secret in any common form.
func failureAssertHidden(t *testing.T, raw []byte) {
	t.Helper()
	for _, form := range []string{failureSecret, strings.ToUpper(failureSecret), "jane.doe", "example.com"} {
		if bytes.Contains(bytes.ToLower(raw), bytes.ToLower([]byte(form))) {
			t.Errorf("history holds %q in plain text", form)
		}
	}
}

// failureLastActivityFailure returns the failure of the activity-failed event of events.
func failureLastActivityFailure(t *testing.T, events []*historypb.HistoryEvent) *failurepb.Failure {
	t.Helper()
	for i := len(events) - 1; i >= 0; i-- {
		if a := events[i].GetActivityTaskFailedEventAttributes(); a != nil {
			return a.GetFailure()
		}
	}
	t.Fatal("history has no activity-failed event")
	return nil
}
