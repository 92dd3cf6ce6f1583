package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporaltest"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/offload/s3store"
	"github.com/payloadkit/payloadkit/samples/internal/history"
	"github.com/payloadkit/payloadkit/workflowtest"
)

// The coverage matrix: TestCoverage runs one subtest per path a value takes between a Temporal
// client, the server and a worker, all on one Kit (static-key encryption, zstd compression,
// offload to S3) and one in-process server. Each row sends a value carrying a marker unique to
// the row and checks that the value round trips and that the marker appears nowhere in the raw
// history (the marshalled events, not only their payloads), nowhere on the gRPC wire between the
// client (and its workers) and the server, and that every history payload is encrypted or a
// claim. samples/cmd/coveragetable runs it and writes docs/COVERAGE.md from the run: each row
// logs its description as "coverage-asserts: ..." and each path that is not covered is logged as
// "coverage-not-covered: <path>: <reason>".

const (
	coverageQueue = "coverage"
	// coverageSearchAttribute is a keyword search attribute registered for the search attribute row.
	coverageSearchAttribute = "CoverageKeyword"
	// coverageLargeSize is the size of the offloaded workflow input.
	coverageLargeSize = 1 << 20
	// coverageEncrypted is the encoding of every encrypted payload.
	coverageEncrypted = "binary/encrypted"
)

// coverageNotCovered lists the paths that TestCoverage does not run, with the reason.
var coverageNotCovered = []struct{ path, reason string }{
	{"Nexus operation input and result", "the in-process server (go.temporal.io/server/temporaltest v1.32.1) starts its frontend " +
		"without an HTTP listener (config.RPC.HTTPPort is unset and no temporaltest option sets it), and the server " +
		"dispatches every worker-targeted Nexus operation over the frontend's HTTP API " +
		"(chasm/lib/nexusoperation/fx.go: BaseURL + RouteDispatchNexusTaskByEndpoint), so no Nexus operation can run on it"},
}

// --- wire recording ---

type wireRecord struct {
	method string
	req    []byte
	resp   []byte
}

// wireLog records the marshalled request and response of every unary call of a client.
type wireLog struct {
	mu      sync.Mutex
	records []wireRecord
}

func (l *wireLog) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	rec := wireRecord{method: method[strings.LastIndex(method, "/")+1:]}
	if m, ok := req.(proto.Message); ok {
		rec.req, _ = proto.Marshal(m)
	}
	if m, ok := reply.(proto.Message); ok && err == nil {
		rec.resp, _ = proto.Marshal(m)
	}
	l.mu.Lock()
	l.records = append(l.records, rec)
	l.mu.Unlock()
	return err
}

// check fails t when marker appears in a recorded message, and returns the number of calls of
// each method in want (failing when one was never called).
func (l *wireLog) check(t *testing.T, marker string, want ...string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]int{}
	for _, r := range l.records {
		seen[r.method]++
		if bytes.Contains(r.req, []byte(marker)) {
			t.Errorf("wire: %s request holds the plaintext marker", r.method)
		}
		if bytes.Contains(r.resp, []byte(marker)) {
			t.Errorf("wire: %s response holds the plaintext marker", r.method)
		}
	}
	for _, m := range want {
		if seen[m] == 0 {
			t.Errorf("wire: no %s call was recorded", m)
		}
	}
}

// contains reports whether marker appears in any recorded message.
func (l *wireLog) contains(marker string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.records {
		if bytes.Contains(r.req, []byte(marker)) || bytes.Contains(r.resp, []byte(marker)) {
			return true
		}
	}
	return false
}

// --- workflows and activities ---

func coverageEchoWorkflow(_ workflow.Context, s string) (string, error) { return s + "/result", nil }

func coverageEchoActivity(_ context.Context, s string) (string, error) { return s + "/activity", nil }

func coverageActivityOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, MaximumAttempts: 3},
	})
}

func coverageActivityWorkflow(ctx workflow.Context, s string) (string, error) {
	var out string
	err := workflow.ExecuteActivity(coverageActivityOptions(ctx), "coverageEcho", s).Get(ctx, &out)
	return out, err
}

// coverageHeartbeatActivity records its input as heartbeat details and fails on its first
// attempt; the next attempt returns the details it was given.
func coverageHeartbeatActivity(ctx context.Context, s string) (string, error) {
	if activity.HasHeartbeatDetails(ctx) {
		var d string
		if err := activity.GetHeartbeatDetails(ctx, &d); err != nil {
			return "", err
		}
		return d + "/resumed", nil
	}
	activity.RecordHeartbeat(ctx, s+"/heartbeat")
	return "", temporal.NewApplicationError("first attempt fails after its heartbeat", "CoverageRetry")
}

func coverageHeartbeatWorkflow(ctx workflow.Context, s string) (string, error) {
	var out string
	err := workflow.ExecuteActivity(coverageActivityOptions(ctx), "coverageHeartbeat", s).Get(ctx, &out)
	return out, err
}

func coverageRejectActivity(_ context.Context, s string) (string, error) {
	return "", temporal.NewNonRetryableApplicationError("rejected "+s+"/message", "CoverageRejected", nil, s+"/details")
}

// coverageAppErrorWorkflow returns the details and message of its activity's ApplicationError.
func coverageAppErrorWorkflow(ctx workflow.Context, s string) (string, error) {
	err := workflow.ExecuteActivity(coverageActivityOptions(ctx), "coverageReject", s).Get(ctx, nil)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return "", fmt.Errorf("activity error %v is no ApplicationError", err)
	}
	var d string
	if err := appErr.Details(&d); err != nil {
		return "", err
	}
	return d + "|" + appErr.Message(), nil
}

func coverageLocalWorkflow(ctx workflow.Context, s string) (string, error) {
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: time.Minute})
	var out string
	err := workflow.ExecuteLocalActivity(ctx, coverageEchoActivity, s).Get(ctx, &out)
	return out, err
}

func coverageParentWorkflow(ctx workflow.Context, s string) (string, error) {
	ctx = workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID + "-child"})
	var out string
	err := workflow.ExecuteChildWorkflow(ctx, "coverageEcho", s+"/child").Get(ctx, &out)
	return out, err
}

// coverageSignalWorkflow returns its input and the first signal it receives.
func coverageSignalWorkflow(ctx workflow.Context, s string) (string, error) {
	var sig string
	workflow.GetSignalChannel(ctx, "coverage-signal").Receive(ctx, &sig)
	return s + "|" + sig, nil
}

// coverageInteractiveWorkflow answers queries and updates (with a validator) until signalled done.
func coverageInteractiveWorkflow(ctx workflow.Context, s string) (string, error) {
	last, released := s, false
	if err := workflow.SetQueryHandler(ctx, "state", func(arg string) (string, error) {
		return last + "|" + arg + "/query-result", nil
	}); err != nil {
		return "", err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, "set", func(ctx workflow.Context, arg string) (string, error) {
		if err := workflow.Await(ctx, func() bool { return released }); err != nil {
			return "", err
		}
		last = arg
		return arg + "/update-result", nil
	}, workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, arg string) error {
		if strings.HasPrefix(arg, "reject") {
			return fmt.Errorf("validator refuses %s", arg)
		}
		return nil
	}}); err != nil {
		return "", err
	}
	workflow.GetSignalChannel(ctx, "release").Receive(ctx, nil)
	released = true
	workflow.GetSignalChannel(ctx, "done").Receive(ctx, nil)
	return last, nil
}

func coverageContinueWorkflow(ctx workflow.Context, s string, run int) (string, error) {
	if run == 0 {
		return "", workflow.NewContinueAsNewError(ctx, "coverageContinue", s+"/next", 1)
	}
	return s + "/result", nil
}

func coverageFailWorkflow(_ workflow.Context, s string) (string, error) {
	return "", temporal.NewApplicationError("workflow failed for "+s, "CoverageFailed", s+"/details")
}

// coverageCancelWorkflow waits for its cancellation, then reports it with details.
func coverageCancelWorkflow(ctx workflow.Context, s string) (string, error) {
	_ = workflow.Await(ctx, func() bool { return false })
	return "", temporal.NewCanceledError(s + "/cancel-details")
}

func coverageTimerWorkflow(ctx workflow.Context, s string) (string, error) {
	if err := workflow.NewTimerWithOptions(ctx, time.Millisecond, workflow.TimerOptions{Summary: s + "/summary"}).Get(ctx, nil); err != nil {
		return "", err
	}
	return "fired", nil
}

func coverageSearchAttrWorkflow(ctx workflow.Context, s string) (string, error) {
	if err := workflow.UpsertTypedSearchAttributes(ctx, temporal.NewSearchAttributeKeyKeyword(coverageSearchAttribute).ValueSet(s)); err != nil {
		return "", err
	}
	return "upserted", nil
}

func coverageDigestWorkflow(_ workflow.Context, b []byte) (string, error) {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func coverageRegister(r worker.Registry) {
	for name, wf := range map[string]any{
		"coverageEcho": coverageEchoWorkflow, "coverageActivity": coverageActivityWorkflow,
		"coverageHeartbeatWorkflow": coverageHeartbeatWorkflow, "coverageAppError": coverageAppErrorWorkflow,
		"coverageLocal": coverageLocalWorkflow, "coverageParent": coverageParentWorkflow,
		"coverageSignal": coverageSignalWorkflow, "coverageInteractive": coverageInteractiveWorkflow,
		"coverageContinue": coverageContinueWorkflow, "coverageFail": coverageFailWorkflow,
		"coverageCancel": coverageCancelWorkflow, "coverageTimer": coverageTimerWorkflow,
		"coverageSearchAttr": coverageSearchAttrWorkflow, "coverageDigest": coverageDigestWorkflow,
	} {
		r.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: name})
	}
	r.RegisterActivityWithOptions(coverageEchoActivity, activity.RegisterOptions{Name: "coverageEcho"})
	r.RegisterActivityWithOptions(coverageHeartbeatActivity, activity.RegisterOptions{Name: "coverageHeartbeat"})
	r.RegisterActivityWithOptions(coverageRejectActivity, activity.RegisterOptions{Name: "coverageReject"})
}

// --- the environment shared by the rows ---

type coverageEnv struct {
	ts     *temporaltest.TestServer
	kit    *payloadkit.Kit
	c      client.Client
	wire   *wireLog
	s3     *s3.Client
	bucket string
}

func startCoverageEnv(t *testing.T) *coverageEnv {
	t.Helper()
	s3c, bucket := workflowtest.S3(t)
	store, err := s3store.New(s3c, bucket, nil)
	if err != nil {
		t.Fatal(err)
	}
	kit := newKit(t, payloadkit.Options{
		Encryption: &codec.EncryptionOptions{Keys: staticKeyring(t, "coverage")},
		// Compression defaults to zstd.
		Offload: &offload.Options{Store: store, Prefix: "coverage-" + offloadRandomHex(t, 4), Timeout: 20 * time.Second},
	})
	wire := &wireLog{}
	base := client.Options{ConnectionOptions: client.ConnectionOptions{
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(wire.intercept)},
	}}
	ts := temporaltest.NewServer(temporaltest.WithT(t), temporaltest.WithBaseClientOptions(kit.ClientOptions(base)))
	env := &coverageEnv{ts: ts, kit: kit, c: ts.GetDefaultClient(), wire: wire, s3: s3c, bucket: bucket}
	ts.NewWorkerWithOptions(coverageQueue, coverageRegister, kit.WorkerOptions(worker.Options{}))
	return env
}

// newMarker returns a plaintext marker unique to row and this run.
func newMarker(t *testing.T, row string) string {
	return "PKCOV-" + row + "-" + offloadRandomHex(t, 8)
}

// start starts workflow on the coverage queue with id and args.
func (e *coverageEnv) start(t *testing.T, ctx context.Context, opts client.StartWorkflowOptions, workflow string, args ...any) client.WorkflowRun {
	t.Helper()
	opts.TaskQueue = coverageQueue
	if opts.ID == "" {
		opts.ID = "coverage-" + offloadRandomHex(t, 6)
	}
	run, err := e.c.ExecuteWorkflow(ctx, opts, workflow, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.c.TerminateWorkflow(context.Background(), run.GetID(), "", "test over") })
	return run
}

// historyCheck is what checkHistory found in one run's history.
type historyCheck struct {
	events   []*historypb.HistoryEvent
	payloads []history.Payload
}

// has reports whether a payload of an event of type et has a field path containing field.
func (h historyCheck) has(et enumspb.EventType, field string) bool {
	for _, p := range h.payloads {
		if p.EventType == et && strings.Contains(p.Field, field) {
			return true
		}
	}
	return false
}

// require fails t unless a payload of an event of type et has a field path containing field.
func (h historyCheck) require(t *testing.T, et enumspb.EventType, field string) {
	t.Helper()
	if !h.has(et, field) {
		t.Errorf("history holds no payload in %s at a field path containing %q", et, field)
	}
}

func isSearchAttributeField(field string) bool { return strings.Contains(field, "search_attributes") }

// checkHistory reads the raw history of a run (runID "" is the latest run), fails t when the
// marker appears anywhere in its marshalled events or when a payload other than a search
// attribute is neither encrypted nor a claim, and returns the events and payloads.
func (e *coverageEnv) checkHistory(t *testing.T, ctx context.Context, workflowID, runID, marker string) historyCheck {
	t.Helper()
	events, err := history.Events(ctx, e.c, workflowID, runID)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(marker)) {
			t.Errorf("history of %s: event %d %s holds the plaintext marker", workflowID, ev.GetEventId(), ev.GetEventType())
		}
	}
	payloads := history.FromEvents(events)
	for _, p := range payloads {
		if isSearchAttributeField(p.Field) {
			continue
		}
		if p.Encoding() != coverageEncrypted && !offload.IsClaim(p.Payload) {
			t.Errorf("history of %s: event %d %s %s has encoding %q, want %s or a claim", workflowID, p.EventID, p.EventType, p.Field, p.Encoding(), coverageEncrypted)
		}
	}
	if len(payloads) == 0 {
		t.Errorf("history of %s holds no payload", workflowID)
	}
	return historyCheck{events: events, payloads: payloads}
}

// row runs one row of the matrix as a subtest that logs what it asserts.
func row(t *testing.T, name, asserts string, f func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		t.Logf("coverage-asserts: %s", asserts)
		f(t)
	})
}

// TestCoverage is the coverage matrix (see the top of this file and docs/COVERAGE.md).
func TestCoverage(t *testing.T) {
	for _, nc := range coverageNotCovered {
		t.Logf("coverage-not-covered: %s: %s", nc.path, nc.reason)
	}
	e := startCoverageEnv(t)
	ns := e.ts.GetDefaultNamespace()
	const roundTrip = "the value round trips; the marker is absent from the raw history and the wire; every history payload is binary/encrypted or a claim"

	row(t, "workflow_input_and_result", "workflow input and result: "+roundTrip, func(t *testing.T) {
		ctx, m := testContext(t, time.Minute), newMarker(t, "wfio")
		run := e.start(t, ctx, client.StartWorkflowOptions{}, "coverageEcho", m)
		var got string
		if err := run.Get(ctx, &got); err != nil || got != m+"/result" {
			t.Fatalf("result %q, %v", got, err)
		}
		h := e.checkHistory(t, ctx, run.GetID(), run.GetRunID(), m)
		h.require(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, ".input.")
		h.require(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, ".result.")
		e.wire.check(t, m, "StartWorkflowExecution")
	})

	row(t, "workflow_input_offloaded_1MiB", "a 1 MiB workflow input: its digest round trips; history holds a claim for it; the S3 object holds no marker; "+roundTrip, func(t *testing.T) {
		ctx, m := testContext(t, 2*time.Minute), newMarker(t, "large")
		r := mrand.New(mrand.NewPCG(7, 11))
		blob := make([]byte, coverageLargeSize)
		for i := range blob {
			blob[i] = byte(r.Uint32())
		}
		for off := 0; off+len(m) <= len(blob); off += 64 << 10 {
			copy(blob[off:], m)
		}
		run := e.start(t, ctx, client.StartWorkflowOptions{}, "coverageDigest", blob)
		var got string
		if err := run.Get(ctx, &got); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(blob)
		if got != hex.EncodeToString(sum[:]) {
			t.Fatalf("digest %s, want %x", got, sum)
		}
		h := e.checkHistory(t, ctx, run.GetID(), run.GetRunID(), m)
		claims := 0
		for _, p := range h.payloads {
			if p.EventType != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED || !offload.IsClaim(p.Payload) {
				continue
			}
			claims++
			cl, err := offload.ParseClaim(p.Payload)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := e.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(cl.Key)})
			if err != nil {
				t.Fatalf("object %s: %v", cl.Key, err)
			}
			data, err := io.ReadAll(obj.Body)
			_ = obj.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(data)) != cl.Size || len(data) < coverageLargeSize/2 {
				t.Errorf("object %s is %d bytes, claim says %d", cl.Key, len(data), cl.Size)
			}
			if bytes.Contains(data, []byte(m)) {
				t.Errorf("object %s holds the plaintext marker", cl.Key)
			}
		}
		if claims != 1 {
			t.Errorf("the started event holds %d claims, want 1", claims)
		}
		e.wire.check(t, m, "StartWorkflowExecution")
	})

	row(t, "activity_input_and_result", "activity input and result: "+roundTrip, func(t *testing.T) {
		ctx, m := testContext(t, time.Minute), newMarker(t, "act")
		run := e.start(t, ctx, client.StartWorkflowOptions{}, "coverageActivity", m)
		var got string
		if err := run.Get(ctx, &got); err != nil || got != m+"/activity" {
			t.Fatalf("result %q, %v", got, err)
		}
		h := e.checkHistory(t, ctx, run.GetID(), run.GetRunID(), m)
		h.require(t, enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, ".input.")
		h.require(t, enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, ".result.")
		e.wire.check(t, m, "RespondActivityTaskCompleted")
	})

	row(t, "activity_heartbeat_details", "heartbeat details recorded by a failing first attempt reach the retry: "+roundTrip, func(t *testing.T) {
		ctx, m := testContext(t, time.Minute), newMarker(t, "hb")
		run := e.start(t, ctx, client.StartWorkflowOptions{}, "coverageHeartbeatWorkflow", m)
		var got string
		if err := run.Get(ctx, &got); err != nil || got != m+"/heartbeat/resumed" {
			t.Fatalf("result %q, %v", got, err)
		}
		e.checkHistory(t, ctx, run.GetID(), run.GetRunID(), m)
		e.wire.check(t, m, "RecordActivityTaskHeartbeat")
	})

	row(t, "activity_application_error_details", "an activity's ApplicationError message and details reach the workflow: "+roundTrip, func(t *testing.T) {
		ctx, m := testContext(t, time.Minute), newMarker(t, "apperr")
		run := e.start(t, ctx, client.StartWorkflowOptions{}, "coverageAppError", m)
		var got string
		if err := run.Get(ctx, &got); err != nil || got != m+"/details|rejected "+m+"/message" {
			t.Fatalf("result %q, %v", got, err)
		}
		h := e.checkHistory(t, ctx, run.GetID(), run.GetRunID(), m)
		h.require(t, enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED, ".application_failure_info.details.")
		h.require(t, enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED, ".encoded_attributes")
		e.wire.check(t, m, "RespondActivityTaskFailed")
	})

	row(t, "local_activity_input_and_result", "local activity input and result (the result is recorded in a marker event): "+roundTrip, func(t *testing.T) {
		ctx, m := testContext(t, time.Minute), newMarker(t, "local")
		run := e.start(t, ctx, client.StartWorkflowOptions{}, "coverageLocal", m)
		var got string
		if err := run.Get(ctx, &got); err != nil || got != m+"/activity" {
			t.Fatalf("result %q, %v", got, err)
		}
		h := e.checkHistory(t, ctx, run.GetID(), run.GetRunID(), m)
		h.require(t, enumspb.EVENT_TYPE_MARKER_RECORDED, ".details[")
		e.wire.check(t, m)
	})

	row(t, "child_workflow_input_and_result", "child workflow input and result, in the parent's and the child's histories: "+roundTrip, func(t *testing.T) {
		ctx, m := testContext(t, time.Minute), newMarker(t, "child")
		run := e.start(t, ctx, client.StartWorkflowOptions{}, "coverageParent", m)
		var got string
		if err := run.Get(ctx, &got); err != nil || got != m+"/child/result" {
			t.Fatalf("result %q, %v", got, err)
		}
		h := e.checkHistory(t, ctx, run.GetID(), run.GetRunID(), m)
		h.require(t, enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED, ".input.")
		h.require(t, enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED, ".result.")
		ch := e.checkHistory(t, ctx, run.GetID()+"-child", "", m)
		ch.require(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, ".input.")
		ch.require(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, ".result.")
		e.wire.check(t, m)
	})

	row(t, "signal", "a signal's argument: "+roundTrip, func(t *testing.T) {
		ctx, m := testContext(t, time.Minute), newMarker(t, "signal")
		run := e.start(t, ctx, client.StartWorkflowOptions{}, "coverageSignal", "start")
		if err := e.c.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), "coverage-signal", m+"/signal"); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := run.Get(ctx, &got); err != nil || got != "start|"+m+"/signal" {
			t.Fatalf("result %q, %v", got, err)
		}
		h := e.checkHistory(t, ctx, run.GetID(), run.GetRunID(), m)
		h.require(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, ".input.")
		e.wire.check(t, m, "SignalWorkflowExecution")
	})

	row(t, "signal_with_start", "signal-with-start: the workflow input and the signal argument: "+roundTrip, func(t *testing.T) {
		ctx, m := testContext(t, time.Minute), newMarker(t, "sws")
		id := "coverage-sws-" + offloadRandomHex(t, 6)
		run, err := e.c.SignalWithStartWorkflow(ctx, id, "coverage-signal", m+"/signal",
			client.StartWorkflowOptions{ID: id, TaskQueue: coverageQueue}, "coverageSignal", m+"/input")
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if err := run.Get(ctx, &got); err != nil || got != m+"/input|"+m+"/signal" {
			t.Fatalf("result %q, %v", got, err)
		}
		h := e.checkHistory(t, ctx, run.GetID(), run.GetRunID(), m)
		h.require(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, ".input.")
		h.require(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, ".input.")
		e.wire.check(t, m, "SignalWithStartWorkflowExecution")
	})

	row(t, "query_arguments_and_result", "query argument and result; the QueryWorkflow request and response hold no marker; "+roundTrip, func(t *testing.T) {
		ctx, m := testContext(t, time.Minute), newMarker(t, "query")
		run := e.start(t, ctx, client.StartWorkflowOptions{}, "coverageInteractive", m+"/input")
		v, err := e.c.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), "state", m+"/arg")
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if err := v.Get(&got); err != nil || got != m+"/input|"+m+"/arg/query-result" {
			t.Fatalf("query result %q, %v", got, err)
		}
		for _, sig := range []string{"release", "done"} {
			if err := e.c.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), sig, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := run.Get(ctx, &got); err != nil || got != m+"/input" {
			t.Fatalf("result %q, %v", got, err)
		}
		e.checkHistory(t, ctx, run.GetID(), run.GetRunID(), m)
		e.wire.check(t, m, "QueryWorkflow")
	})

	row(t, "update_arguments_and_result_with_validator", "update argument and result, and a validator's rejection (message encoded); the UpdateWorkflowExecution and PollWorkflowExecutionUpdate requests and responses hold no marker; "+roundTrip, func(t *testing.T) {
		ctx, m := testContext(t, time.Minute), newMarker(t, "update")
		run := e.start(t, ctx, client.StartWorkflowOptions{}, "coverageInteractive", "start")
		// The validator rejects this one.
		rejected, err := e.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: run.GetID(), RunID: run.GetRunID(), UpdateName: "set",
			Args: []any{"reject " + m}, WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err == nil {
			err = rejected.Get(ctx, nil)
		}
		if err == nil || !strings.Contains(err.Error(), "validator refuses reject "+m) {
			t.Fatalf("rejected update: %v, want the validator's error", err)
		}
		h, err := e.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: run.GetID(), RunID: run.GetRunID(), UpdateName: "set",
			Args: []any{m + "/arg"}, WaitForStage: client.WorkflowUpdateStageAccepted,
		})
		if err != nil {
			t.Fatal(err)
		}
		// The handler waits for this signal: its result is fetched by PollWorkflowExecutionUpdate.
		if err := e.c.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), "release", nil); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := h.Get(ctx, &got); err != nil || got != m+"/arg/update-result" {
			t.Fatalf("update result %q, %v", got, err)
		}
		if err := e.c.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), "done", nil); err != nil {
			t.Fatal(err)
		}
		if err := run.Get(ctx, &got); err != nil || got != m+"/arg" {
			t.Fatalf("result %q, %v", got, err)
		}
		hc := e.checkHistory(t, ctx, run.GetID(), run.GetRunID(), m)
		hc.require(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, ".accepted_request.input.args.")
		hc.require(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED, ".outcome.success.")
		e.wire.check(t, m, "UpdateWorkflowExecution", "PollWorkflowExecutionUpdate")
	})

	row(t, "memo", "a memo set at start, read back with DescribeWorkflowExecution and decoded with the Kit's converter: "+roundTrip, func(t *testing.T) {
		ctx, m := testContext(t, time.Minute), newMarker(t, "memo")
		run := e.start(t, ctx, client.StartWorkflowOptions{Memo: map[string]any{"note": m + "/memo"}}, "coverageEcho", "x")
		if err := run.Get(ctx, nil); err != nil {
			t.Fatal(err)
		}
		desc, err := e.c.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
		if err != nil {
			t.Fatal(err)
		}
		p := desc.GetWorkflowExecutionInfo().GetMemo().GetFields()["note"]
		if enc := string(p.GetMetadata()["encoding"]); enc != coverageEncrypted {
			t.Errorf("described memo has encoding %q, want %s", enc, coverageEncrypted)
		}
		var got string
		if err := e.kit.DataConverterFor(ns).FromPayload(p, &got); err != nil || got != m+"/memo" {
			t.Fatalf("memo %q, %v", got, err)
		}
		h := e.checkHistory(t, ctx, run.GetID(), run.GetRunID(), m)
		h.require(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, ".memo.fields[note]")
		e.wire.check(t, m, "DescribeWorkflowExecution")
	})

	row(t, "continue_as_new_input", "continue-as-new input, in the first run's and the next run's histories: "+roundTrip, func(t *testing.T) {
		ctx, m := testContext(t, time.Minute), newMarker(t, "can")
		run := e.start(t, ctx, client.StartWorkflowOptions{}, "coverageContinue", m, 0)
		// Get follows the continue-as-new chain: afterwards GetRunID names the last run.
		first := run.GetRunID()
		var got string
		if err := run.Get(ctx, &got); err != nil || got != m+"/next/result" {
			t.Fatalf("result %q, %v", got, err)
		}
		if run.GetRunID() == first {
			t.Fatal("the workflow did not continue as new")
		}
		h := e.checkHistory(t, ctx, run.GetID(), first, m)
		h.require(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW, ".input.")
		next := e.checkHistory(t, ctx, run.GetID(), run.GetRunID(), m)
		next.require(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, ".input.")
		e.wire.check(t, m)
	})

	row(t, "workflow_failure_details", "a workflow's ApplicationError message and details reach the client: "+roundTrip, func(t *testing.T) {
		ctx, m := testContext(t, time.Minute), newMarker(t, "wffail")
		run := e.start(t, ctx, client.StartWorkflowOptions{}, "coverageFail", m)
		err := run.Get(ctx, nil)
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) {
			t.Fatalf("workflow error %v holds no ApplicationError", err)
		}
		var d string
		if err := appErr.Details(&d); err != nil || d != m+"/details" {
			t.Errorf("details %q, %v", d, err)
		}
		if appErr.Message() != "workflow failed for "+m {
			t.Errorf("message %q", appErr.Message())
		}
		h := e.checkHistory(t, ctx, run.GetID(), run.GetRunID(), m)
		h.require(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, ".application_failure_info.details.")
		h.require(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, ".encoded_attributes")
		e.wire.check(t, m)
	})

	row(t, "workflow_cancellation_details", "the details of a cancelled workflow reach the client: "+roundTrip, func(t *testing.T) {
		ctx, m := testContext(t, time.Minute), newMarker(t, "cancel")
		run := e.start(t, ctx, client.StartWorkflowOptions{}, "coverageCancel", m)
		if err := e.c.CancelWorkflow(ctx, run.GetID(), run.GetRunID()); err != nil {
			t.Fatal(err)
		}
		err := run.Get(ctx, nil)
		var canceled *temporal.CanceledError
		if !errors.As(err, &canceled) {
			t.Fatalf("workflow error %v holds no CanceledError", err)
		}
		var d string
		if err := canceled.Details(&d); err != nil || d != m+"/cancel-details" {
			t.Errorf("details %q, %v", d, err)
		}
		h := e.checkHistory(t, ctx, run.GetID(), run.GetRunID(), m)
		h.require(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, ".details.")
		e.wire.check(t, m)
	})

	row(t, "timer_summary", "a timer's summary (user metadata) decodes from the TimerStarted event: "+roundTrip, func(t *testing.T) {
		ctx, m := testContext(t, time.Minute), newMarker(t, "timer")
		run := e.start(t, ctx, client.StartWorkflowOptions{}, "coverageTimer", m)
		if err := run.Get(ctx, nil); err != nil {
			t.Fatal(err)
		}
		h := e.checkHistory(t, ctx, run.GetID(), run.GetRunID(), m)
		h.require(t, enumspb.EVENT_TYPE_TIMER_STARTED, ".user_metadata.summary")
		var summary *commonpb.Payload
		for _, ev := range h.events {
			if ev.GetEventType() == enumspb.EVENT_TYPE_TIMER_STARTED {
				summary = ev.GetUserMetadata().GetSummary()
			}
		}
		var got string
		if err := e.kit.DataConverterFor(ns).FromPayload(summary, &got); err != nil || got != m+"/summary" {
			t.Fatalf("summary %q, %v", got, err)
		}
		e.wire.check(t, m)
	})

	row(t, "search_attributes_stay_unencoded", "by Temporal's design a search attribute is stored unencoded (json/plain, marker in history) and README.md says so; every other payload is binary/encrypted", func(t *testing.T) {
		ctx, m := testContext(t, time.Minute), newMarker(t, "sa")
		if _, err := e.c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace:        ns,
			SearchAttributes: map[string]enumspb.IndexedValueType{coverageSearchAttribute: enumspb.INDEXED_VALUE_TYPE_KEYWORD},
		}); err != nil {
			t.Fatal(err)
		}
		run := e.start(t, ctx, client.StartWorkflowOptions{}, "coverageSearchAttr", m)
		if err := run.Get(ctx, nil); err != nil {
			t.Fatal(err)
		}
		events, err := history.Events(ctx, e.c, run.GetID(), run.GetRunID())
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range history.FromEvents(events) {
			if !isSearchAttributeField(p.Field) {
				if p.Encoding() != coverageEncrypted {
					t.Errorf("event %d %s %s has encoding %q", p.EventID, p.EventType, p.Field, p.Encoding())
				}
				continue
			}
			if p.EventType == enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES && strings.Contains(p.Field, coverageSearchAttribute) {
				found = true
				if p.Encoding() != "json/plain" || !bytes.Contains(p.Payload.GetData(), []byte(m)) {
					t.Errorf("search attribute payload: encoding %q, data %q; want json/plain holding the value", p.Encoding(), p.Payload.GetData())
				}
			}
		}
		if !found {
			t.Errorf("no upserted %s search attribute in history", coverageSearchAttribute)
		}
		if !e.wire.contains(m) {
			t.Error("the unencoded search attribute is not on the wire")
		}
		// The documentation states it.
		readme, err := os.ReadFile("../../README.md")
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?i)search attributes[^.]*(not encoded|unencoded|not encrypted)`).Match(readme) {
			t.Error("README.md has no sentence saying that search attributes are not encoded")
		}
	})

	// A check of the wire recorder itself, so that a recorder seeing nothing cannot make the rows
	// pass vacuously.
	t.Run("wire_recorder_sees_traffic", func(t *testing.T) {
		t.Logf("coverage-asserts: the gRPC recorder saw the worker's polls and the client's calls")
		e.wire.check(t, "no such marker "+offloadRandomHex(t, 8), "StartWorkflowExecution", "PollWorkflowTaskQueue", "RespondWorkflowTaskCompleted", "GetWorkflowExecutionHistory")
	})
}
