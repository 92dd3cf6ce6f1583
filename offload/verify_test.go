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

	"go.temporal.io/sdk/converter"

	"github.com/payloadkit/payloadkit/codec"
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
	assert.Equal(t, "claims=9 key-objects=0 objects=5 ok=5 missing=1 corrupt=1 malformed=1 other-store=1 errors=0", rep.Summary.String())
	for _, c := range rep.Checks {
		assert.Equal(t, offload.KindClaim, c.Kind, c.Path)
	}
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

// v2Encoder returns an encryption codec writing envelope format v2 with its key objects in
// store, bound to namespace (each namespace has its own data key, so its own key object).
func v2Encoder(t *testing.T, store codec.ObjectStore, namespace string) converter.PayloadCodec {
	t.Helper()
	ring, err := codec.NewStaticKeyring("k1", map[string][]byte{"k1": bytes.Repeat([]byte{7}, codec.DataKeySize)})
	require.NoError(t, err)
	c, err := codec.NewEncryptionCodec(&codec.EncryptionOptions{Keys: ring, Format: codec.FormatV2, KeyObjects: store})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: namespace})
}

func encodeV2(t *testing.T, c converter.PayloadCodec, data string) (*commonpb.Payload, string) {
	t.Helper()
	out, err := c.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(data)}})
	require.NoError(t, err)
	require.True(t, codec.IsEnvelopeV2(out[0]))
	ref, err := codec.ReadKeyObjectRef(out[0])
	require.NoError(t, err)
	return out[0], codec.KeyObjectKey(codec.DefaultKeyObjectPrefix, ref)
}

// TestVerifyHistoryKeyObjects: the key object of every v2 payload, in the history or in a
// claim object, is read once and checked; missing and corrupt ones are reported like claims.
func TestVerifyHistoryKeyObjects(t *testing.T) {
	ctx := context.Background()
	store := newReadRecorder()
	payments := v2Encoder(t, store, "payments")
	good1, goodKey := encodeV2(t, payments, `"one"`)
	good2, goodKey2 := encodeV2(t, payments, `"two"`)
	require.Equal(t, goodKey, goodKey2, "one data key, one key object")
	missing, missingKey := encodeV2(t, v2Encoder(t, store, "orders"), `"three"`)
	store.Delete(missingKey)
	corrupt, corruptKey := encodeV2(t, v2Encoder(t, store, "billing"), `"four"`)
	obj, err := store.MemoryStore.GetBounded(ctx, corruptKey, 1<<20)
	require.NoError(t, err)
	obj[len(obj)-1] ^= 0x01 // same size, other bytes
	require.NoError(t, store.Put(ctx, corruptKey, obj))
	short := &commonpb.Payload{Metadata: good1.Metadata, Data: good1.Data[:20]}

	// An offloaded v2 payload: the claim object holds it; its key object is goodKey's.
	big, bigKey := encodeV2(t, payments, `"`+string(bytes.Repeat([]byte("x"), 500))+`"`)
	require.Equal(t, goodKey, bigKey)
	oc, err := offload.NewCodec(&offload.Options{Store: store.MemoryStore, Threshold: 64})
	require.NoError(t, err)
	claims, err := oc.Encode([]*commonpb.Payload{big})
	require.NoError(t, err)
	require.True(t, offload.IsClaim(claims[0]))
	claimKey := claims[0].Metadata[offload.MetadataClaimKey]

	h := &historypb.History{Events: []*historypb.HistoryEvent{
		{EventId: 1, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{
			WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{Input: payloads(good1, missing, claims[0])},
		}},
		{EventId: 5, EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, Attributes: &historypb.HistoryEvent_ActivityTaskCompletedEventAttributes{
			ActivityTaskCompletedEventAttributes: &historypb.ActivityTaskCompletedEventAttributes{Result: payloads(good2, corrupt, short)},
		}},
	}}
	rep, err := offload.VerifyHistory(ctx, store, h, &offload.VerifyOptions{Concurrency: 2})
	require.NoError(t, err)

	type row struct {
		kind    offload.CheckKind
		id      int64
		path    string
		key     string
		inClaim bool
		status  offload.ClaimStatus
	}
	var got []row
	for _, c := range rep.Checks {
		got = append(got, row{c.Kind, c.EventID, c.Path, c.Claim.Key, c.InClaim, c.Status})
		if c.Status == offload.ClaimOK {
			assert.NoError(t, c.Err, c.Path)
		} else {
			assert.Error(t, c.Err, c.Path)
		}
	}
	const in, res = "workflowExecutionStartedEventAttributes.input.payloads", "activityTaskCompletedEventAttributes.result.payloads"
	assert.Equal(t, []row{
		{offload.KindKeyObject, 1, in + "[0]", goodKey, false, offload.ClaimOK},
		{offload.KindKeyObject, 1, in + "[1]", missingKey, false, offload.ClaimMissing},
		{offload.KindClaim, 1, in + "[2]", string(claimKey), false, offload.ClaimOK},
		{offload.KindKeyObject, 1, in + "[2]", goodKey, true, offload.ClaimOK},
		{offload.KindKeyObject, 5, res + "[0]", goodKey, false, offload.ClaimOK},
		{offload.KindKeyObject, 5, res + "[1]", corruptKey, false, offload.ClaimCorrupt},
		{offload.KindKeyObject, 5, res + "[2]", "", false, offload.ClaimMalformed},
	}, got)
	assert.ErrorIs(t, rep.Checks[1].Err, offload.ErrNotFound)
	assert.ErrorIs(t, rep.Checks[5].Err, offload.ErrIntegrity)
	assert.ErrorIs(t, rep.Checks[6].Err, offload.ErrIntegrity)
	assert.ErrorIs(t, rep.Checks[6].Err, codec.ErrMalformed)
	assert.Equal(t, goodKey, codec.KeyObjectKey(codec.DefaultKeyObjectPrefix, mustRef(t, rep.Checks[0].Claim.SHA256)))
	assert.Equal(t, "ActivityTaskCompleted", rep.Checks[4].EventType)

	assert.Equal(t, offload.VerifySummary{Claims: 1, KeyObjects: 6, Objects: 4, OK: 4, Missing: 1, Corrupt: 1, Malformed: 1}, rep.Summary)
	assert.Equal(t, "claims=1 key-objects=6 objects=4 ok=4 missing=1 corrupt=1 malformed=1 other-store=0 errors=0", rep.Summary.String())
	assert.False(t, rep.OK())
	assert.True(t, rep.Damaged())
	assert.Len(t, rep.Problems(), 3)

	// Each distinct key object is read once, bounded by the largest key object.
	assert.Equal(t, map[string]int{goodKey: 1, missingKey: 1, corruptKey: 1, string(claimKey): 1}, store.reads)
	assert.Equal(t, int64(codec.MaxKeyObjectSize), store.bounds[goodKey])

	// The good payloads alone verify.
	h.Events = h.Events[:1]
	h.Events[0].GetWorkflowExecutionStartedEventAttributes().Input = payloads(good1, good2, claims[0])
	rep, err = offload.VerifyHistory(ctx, store, h, nil)
	require.NoError(t, err)
	assert.True(t, rep.OK(), "%+v", rep.Problems())
	assert.Equal(t, offload.VerifySummary{Claims: 1, KeyObjects: 3, Objects: 2, OK: 4}, rep.Summary)
}

// TestVerifyHistoryKeyObjectPrefix: key objects are read under VerifyOptions.KeyObjectPrefix.
func TestVerifyHistoryKeyObjectPrefix(t *testing.T) {
	ctx := context.Background()
	store := offload.NewMemoryStore()
	ring, err := codec.NewStaticKeyring("k1", map[string][]byte{"k1": bytes.Repeat([]byte{7}, codec.DataKeySize)})
	require.NoError(t, err)
	c, err := codec.NewEncryptionCodec(&codec.EncryptionOptions{Keys: ring, Format: codec.FormatV2, KeyObjects: store, KeyObjectPrefix: "tenant/a"})
	require.NoError(t, err)
	defer func() { _ = c.Close() }()
	out, err := c.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte("1")}})
	require.NoError(t, err)
	h := &historypb.History{Events: []*historypb.HistoryEvent{{EventId: 1, Attributes: &historypb.HistoryEvent_WorkflowExecutionCompletedEventAttributes{
		WorkflowExecutionCompletedEventAttributes: &historypb.WorkflowExecutionCompletedEventAttributes{Result: payloads(out...)},
	}}}}

	rep, err := offload.VerifyHistory(ctx, store, h, nil)
	require.NoError(t, err)
	assert.Equal(t, offload.ClaimMissing, rep.Checks[0].Status, "the default prefix holds no key object")
	rep, err = offload.VerifyHistory(ctx, store, h, &offload.VerifyOptions{KeyObjectPrefix: "tenant/a"})
	require.NoError(t, err)
	assert.True(t, rep.OK())
	assert.Contains(t, rep.Checks[0].Claim.Key, "tenant/a/keys/")
	_, err = offload.VerifyHistory(ctx, store, h, &offload.VerifyOptions{KeyObjectPrefix: "tenant/"})
	assert.ErrorContains(t, err, "KeyObjectPrefix")
}

func mustRef(t *testing.T, h string) [sha256.Size]byte {
	t.Helper()
	var ref [sha256.Size]byte
	b, err := hex.DecodeString(h)
	require.NoError(t, err)
	copy(ref[:], b)
	return ref
}
