package offload_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"

	"github.com/payloadkit/payloadkit/offload"
)

// readRecorder wraps a MemoryStore, recording the keys read and the bounds asked for, and the
// most reads in flight at once. fail, when set, is returned by every read.
type readRecorder struct {
	*offload.MemoryStore
	mu       sync.Mutex
	reads    map[string]int
	bounds   map[string]int64
	inFlight atomic.Int64
	maxIn    atomic.Int64
	delay    time.Duration
	fail     error
}

func newReadRecorder() *readRecorder {
	return &readRecorder{MemoryStore: offload.NewMemoryStore(), reads: map[string]int{}, bounds: map[string]int64{}}
}

func (r *readRecorder) GetBounded(ctx context.Context, key string, maxBytes int64) ([]byte, error) {
	n := r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	for m := r.maxIn.Load(); n > m && !r.maxIn.CompareAndSwap(m, n); m = r.maxIn.Load() {
	}
	r.mu.Lock()
	r.reads[key]++
	r.bounds[key] = maxBytes
	r.mu.Unlock()
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	if r.fail != nil {
		return nil, r.fail
	}
	return r.MemoryStore.GetBounded(ctx, key, maxBytes)
}

// Get must not be called: the verified read uses GetBounded when the store has it.
func (r *readRecorder) Get(context.Context, string) ([]byte, error) {
	return nil, errors.New("unbounded Get called")
}

// putClaim stores data under its codec key (unless skip) and returns the claim payload.
func putClaim(t *testing.T, s offload.Store, data []byte, skip bool) (*commonpb.Payload, offload.Claim) {
	t.Helper()
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	cl := offload.Claim{Store: s.Name(), Key: offload.CodecKey(offload.DefaultPrefix, "payments", hexSum), Size: int64(len(data)), SHA256: hexSum}
	if !skip {
		require.NoError(t, s.Put(context.Background(), cl.Key, data))
	}
	p, err := cl.Payload()
	require.NoError(t, err)
	return p, cl
}

func payloads(ps ...*commonpb.Payload) *commonpb.Payloads { return &commonpb.Payloads{Payloads: ps} }

func TestVerifyHistory(t *testing.T) {
	store := newReadRecorder()
	good, goodClaim := putClaim(t, store, []byte("good object"), false)
	header, _ := putClaim(t, store, []byte("header object"), false)
	missing, missingClaim := putClaim(t, store, []byte("missing object"), true)
	corrupt, corruptClaim := putClaim(t, store, []byte("corrupt object"), false)
	// Same size, different bytes.
	require.NoError(t, store.Put(context.Background(), corruptClaim.Key, []byte("CORRUPT object")))
	nested, nestedClaim := putClaim(t, store, []byte("nested failure details"), false)
	other, err := offload.Claim{Store: "s3/elsewhere", Key: goodClaim.Key, Size: goodClaim.Size, SHA256: goodClaim.SHA256}.Payload()
	require.NoError(t, err)
	malformed := &commonpb.Payload{
		Metadata: map[string][]byte{"encoding": []byte(offload.EncodingClaimCheck), offload.MetadataClaimKey: []byte("payloadkit/payments/sha256/zz")},
		Data:     []byte(`{"v":1,`),
	}
	inline := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"inline"`)}

	h := &historypb.History{Events: []*historypb.HistoryEvent{
		{EventId: 1, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{
			WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
				Input:  payloads(good, inline, good),
				Header: &commonpb.Header{Fields: map[string]*commonpb.Payload{"tracing": header}},
				Memo:   &commonpb.Memo{Fields: map[string]*commonpb.Payload{"order": missing}},
			},
		}},
		{EventId: 7, EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, Attributes: &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{
			ActivityTaskCompletedEventAttributes: &historypb.ActivityTaskCompletedEventAttributes{Result: payloads(corrupt, good)},
		}},
		{EventId: 9, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, Attributes: &historypb.HistoryEvent_WorkflowExecutionFailedEventAttributes{
			WorkflowExecutionFailedEventAttributes: &historypb.WorkflowExecutionFailedEventAttributes{Failure: &failurepb.Failure{
				Message: "outer",
				Cause: &failurepb.Failure{
					Message:     "inner",
					FailureInfo: &failurepb.Failure_ApplicationFailureInfo{ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{Details: payloads(inline, nested)}},
				},
			}},
		}},
		{EventId: 10, EventType: enumspb.EVENT_TYPE_MARKER_RECORDED, Attributes: &historypb.HistoryEvent_MarkerRecordedEventAttributes{
			MarkerRecordedEventAttributes: &historypb.MarkerRecordedEventAttributes{Details: map[string]*commonpb.Payloads{"b": payloads(malformed), "a": payloads(other)}},
		}},
	}}

	rep, err := offload.VerifyHistory(context.Background(), store, h, &offload.VerifyOptions{Concurrency: 2})
	require.NoError(t, err)
	type row struct {
		id     int64
		path   string
		key    string
		status offload.ClaimStatus
	}
	var got []row
	for _, c := range rep.Checks {
		got = append(got, row{c.EventID, c.Path, c.Claim.Key, c.Status})
		if c.Status == offload.ClaimOK {
			assert.NoError(t, c.Err, c.Path)
		} else {
			assert.Error(t, c.Err, c.Path)
		}
	}
	assert.Equal(t, []row{
		{1, "workflowExecutionStartedEventAttributes.input.payloads[0]", goodClaim.Key, offload.ClaimOK},
		{1, "workflowExecutionStartedEventAttributes.input.payloads[2]", goodClaim.Key, offload.ClaimOK},
		{1, `workflowExecutionStartedEventAttributes.memo.fields["order"]`, missingClaim.Key, offload.ClaimMissing},
		{1, `workflowExecutionStartedEventAttributes.header.fields["tracing"]`, rep.Checks[3].Claim.Key, offload.ClaimOK},
		{7, "activityTaskCompletedEventAttributes.result.payloads[0]", corruptClaim.Key, offload.ClaimCorrupt},
		{7, "activityTaskCompletedEventAttributes.result.payloads[1]", goodClaim.Key, offload.ClaimOK},
		{9, "workflowExecutionFailedEventAttributes.failure.cause.applicationFailureInfo.details.payloads[1]", nestedClaim.Key, offload.ClaimOK},
		{10, `markerRecordedEventAttributes.details["a"].payloads[0]`, goodClaim.Key, offload.ClaimOtherStore},
		{10, `markerRecordedEventAttributes.details["b"].payloads[0]`, "payloadkit/payments/sha256/zz", offload.ClaimMalformed},
	}, got)

	byPath := map[string]offload.ClaimCheck{}
	for _, c := range rep.Checks {
		byPath[c.Path] = c
	}
	assert.ErrorIs(t, byPath[`workflowExecutionStartedEventAttributes.memo.fields["order"]`].Err, offload.ErrNotFound)
	assert.ErrorIs(t, byPath["activityTaskCompletedEventAttributes.result.payloads[0]"].Err, offload.ErrIntegrity)
	assert.ErrorIs(t, byPath[`markerRecordedEventAttributes.details["a"].payloads[0]`].Err, offload.ErrStore)
	assert.ErrorIs(t, byPath[`markerRecordedEventAttributes.details["b"].payloads[0]`].Err, offload.ErrIntegrity)
	assert.Equal(t, "WorkflowExecutionStarted", byPath["workflowExecutionStartedEventAttributes.input.payloads[0]"].EventType)
	assert.Equal(t, goodClaim, byPath["workflowExecutionStartedEventAttributes.input.payloads[0]"].Claim)

	assert.Equal(t, offload.VerifySummary{Claims: 9, Objects: 5, OK: 5, Missing: 1, Corrupt: 1, Malformed: 1, OtherStore: 1}, rep.Summary)
	assert.Equal(t, "claims=9 objects=5 ok=5 missing=1 corrupt=1 malformed=1 other-store=1 errors=0", rep.Summary.String())
	assert.False(t, rep.OK())
	assert.True(t, rep.Damaged())
	assert.Len(t, rep.Problems(), 4)
	for _, p := range rep.Problems() {
		assert.NotEqual(t, offload.ClaimOK, p.Status)
	}

	// Each distinct object is read once, bounded by its claimed size; the other store's claim
	// and the malformed one are not read.
	assert.Equal(t, map[string]int{goodClaim.Key: 1, rep.Checks[3].Claim.Key: 1, missingClaim.Key: 1, corruptClaim.Key: 1, nestedClaim.Key: 1}, store.reads)
	assert.Equal(t, goodClaim.Size, store.bounds[goodClaim.Key])
	assert.Equal(t, corruptClaim.Size, store.bounds[corruptClaim.Key])
}

// TestVerifyHistoryCodecClaims verifies claims written by the codec itself.
func TestVerifyHistoryCodecClaims(t *testing.T) {
	store := offload.NewMemoryStore()
	c, err := offload.NewCodec(&offload.Options{Store: store, Threshold: 16})
	require.NoError(t, err)
	big := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: bytes.Repeat([]byte("x"), 1000)}
	enc, err := c.Encode([]*commonpb.Payload{big})
	require.NoError(t, err)
	require.True(t, offload.IsClaim(enc[0]))
	h := &historypb.History{Events: []*historypb.HistoryEvent{{EventId: 1, Attributes: &historypb.HistoryEvent_WorkflowExecutionCompletedEventAttributes{
		WorkflowExecutionCompletedEventAttributes: &historypb.WorkflowExecutionCompletedEventAttributes{Result: payloads(enc...)},
	}}}}

	rep, err := offload.VerifyHistory(context.Background(), store, h, nil)
	require.NoError(t, err)
	assert.True(t, rep.OK())
	assert.Equal(t, offload.VerifySummary{Claims: 1, Objects: 1, OK: 1}, rep.Summary)
	assert.Empty(t, rep.Problems())

	// Deleting the object is what verification must catch.
	store.Delete(rep.Checks[0].Claim.Key)
	rep, err = offload.VerifyHistory(context.Background(), store, h, nil)
	require.NoError(t, err)
	assert.Equal(t, offload.VerifySummary{Claims: 1, Objects: 1, Missing: 1}, rep.Summary)
	assert.False(t, rep.OK())
}

func TestVerifyHistoryStoreFailure(t *testing.T) {
	store := newReadRecorder()
	p, _ := putClaim(t, store, []byte("object"), false)
	store.fail = fmt.Errorf("dial tcp: connection refused")
	h := &historypb.History{Events: []*historypb.HistoryEvent{{EventId: 3, Attributes: &historypb.HistoryEvent_WorkflowExecutionCompletedEventAttributes{
		WorkflowExecutionCompletedEventAttributes: &historypb.WorkflowExecutionCompletedEventAttributes{Result: payloads(p)},
	}}}}
	rep, err := offload.VerifyHistory(context.Background(), store, h, nil)
	require.NoError(t, err)
	require.Len(t, rep.Checks, 1)
	assert.Equal(t, offload.ClaimError, rep.Checks[0].Status)
	assert.ErrorIs(t, rep.Checks[0].Err, offload.ErrStore)
	assert.ErrorContains(t, rep.Checks[0].Err, "connection refused")
	assert.Equal(t, 1, rep.Summary.Errors)
	assert.False(t, rep.OK())
	assert.False(t, rep.Damaged(), "an unreachable store is not evidence of damage")
}

func TestVerifyHistoryBounds(t *testing.T) {
	store := newReadRecorder()
	var ps []*commonpb.Payload
	for i := range 12 {
		p, _ := putClaim(t, store, fmt.Appendf(nil, "object %d", i), false)
		ps = append(ps, p)
	}
	big, bigClaim := putClaim(t, store, bytes.Repeat([]byte("b"), 200), false)
	ps = append(ps, big)
	h := &historypb.History{Events: []*historypb.HistoryEvent{{EventId: 1, Attributes: &historypb.HistoryEvent_WorkflowExecutionCompletedEventAttributes{
		WorkflowExecutionCompletedEventAttributes: &historypb.WorkflowExecutionCompletedEventAttributes{Result: payloads(ps...)},
	}}}}
	store.delay = 20 * time.Millisecond

	rep, err := offload.VerifyHistory(context.Background(), store, h, &offload.VerifyOptions{Concurrency: 3, MaxObjectSize: 100})
	require.NoError(t, err)
	assert.Equal(t, offload.VerifySummary{Claims: 13, Objects: 13, OK: 12, Errors: 1}, rep.Summary)
	assert.LessOrEqual(t, store.maxIn.Load(), int64(3))
	assert.Greater(t, store.maxIn.Load(), int64(1), "reads run concurrently")
	last := rep.Checks[12]
	assert.Equal(t, offload.ClaimError, last.Status)
	assert.ErrorIs(t, last.Err, offload.ErrTooLarge)
	assert.Zero(t, store.reads[bigClaim.Key], "a claim above MaxObjectSize is not read")
}

func TestVerifyHistoryArguments(t *testing.T) {
	ctx := context.Background()
	store := offload.NewMemoryStore()
	_, err := offload.VerifyHistory(ctx, nil, &historypb.History{}, nil)
	assert.ErrorContains(t, err, "store is required")
	_, err = offload.VerifyHistory(ctx, store, nil, nil)
	assert.ErrorContains(t, err, "history is required")
	_, err = offload.VerifyHistory(ctx, store, &historypb.History{}, &offload.VerifyOptions{Concurrency: -1})
	assert.ErrorContains(t, err, "Concurrency must not be negative")

	rep, err := offload.VerifyHistory(ctx, store, &historypb.History{}, nil)
	require.NoError(t, err)
	assert.True(t, rep.OK())
	assert.Equal(t, offload.VerifySummary{}, rep.Summary)

	// A cancelled context: the report names the unchecked object, the error the cancellation.
	p, _ := putClaim(t, store, []byte("object"), false)
	h := &historypb.History{Events: []*historypb.HistoryEvent{{EventId: 1, Attributes: &historypb.HistoryEvent_WorkflowExecutionCompletedEventAttributes{
		WorkflowExecutionCompletedEventAttributes: &historypb.WorkflowExecutionCompletedEventAttributes{Result: payloads(p)},
	}}}}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	rep, err = offload.VerifyHistory(cctx, store, h, nil)
	assert.ErrorIs(t, err, context.Canceled)
	require.NotNil(t, rep)
	assert.Equal(t, offload.ClaimError, rep.Checks[0].Status)
	assert.ErrorIs(t, rep.Checks[0].Err, context.Canceled)
}
