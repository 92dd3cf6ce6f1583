package offload_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/offload"
)

// countingLimiter is a converter.StorageDriverLimiter counting permits and bounding them.
type countingLimiter[T any] struct {
	sem      chan struct{}
	permits  atomic.Int64
	inFlight atomic.Int64
	maxIn    atomic.Int64
}

func newCountingLimiter[T any](n int) *countingLimiter[T] {
	return &countingLimiter[T]{sem: make(chan struct{}, n)}
}

func (l *countingLimiter[T]) Permit(ctx context.Context, _ T, fn func() error) error {
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-l.sem }()
	l.permits.Add(1)
	n := l.inFlight.Add(1)
	defer l.inFlight.Add(-1)
	for {
		m := l.maxIn.Load()
		if n <= m || l.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	return fn()
}

func TestStorageDriverRoundTrip(t *testing.T) {
	store := newCountingStore()
	var ev events
	d, err := offload.NewStorageDriver(store, &offload.StorageDriverOptions{Name: "pk", OnObject: ev.record})
	if err != nil {
		t.Fatal(err)
	}
	var sdkDriver converter.StorageDriver = d
	if sdkDriver.Name() != "pk" || sdkDriver.Type() != offload.DriverType {
		t.Fatalf("Name/Type = %s/%s", sdkDriver.Name(), sdkDriver.Type())
	}
	target := converter.StorageDriverWorkflowInfo{Namespace: "default", WorkflowType: "Order Flow", WorkflowID: "order/42", RunID: "r1"}
	in := []*commonpb.Payload{bigPayload(3000, 1), bigPayload(3000, 2), bigPayload(3000, 1)}
	before := clonePayloads(in)
	storeLimiter := newCountingLimiter[*commonpb.Payload](2)
	claims, err := sdkDriver.Store(converter.StorageDriverStoreContext{Context: context.Background(), Target: target, Limiter: storeLimiter}, in)
	if err != nil {
		t.Fatal(err)
	}
	assertUnchanged(t, before, in)
	if storeLimiter.permits.Load() != 3 || storeLimiter.maxIn.Load() > 2 {
		t.Fatalf("store permits = %d (max in flight %d), want one permit per payload within the limit", storeLimiter.permits.Load(), storeLimiter.maxIn.Load())
	}
	if len(claims) != 3 {
		t.Fatalf("%d claims for 3 payloads", len(claims))
	}
	key := claims[0].ClaimData[offload.DriverClaimKey]
	wantPrefix := "v0/ns/default/wt/Order%20Flow/wi/order%2F42/ri/r1/d/sha256/"
	if !strings.HasPrefix(key, wantPrefix) || claims[0].ClaimData[offload.DriverClaimHashAlgorithm] != "sha256" ||
		!strings.HasSuffix(key, claims[0].ClaimData[offload.DriverClaimHashValue]) {
		t.Fatalf("claim = %v, want key %s<hash>", claims[0].ClaimData, wantPrefix)
	}
	if claims[0].ClaimData[offload.DriverClaimKey] != claims[2].ClaimData[offload.DriverClaimKey] {
		t.Fatalf("equal payloads got different keys")
	}
	if _, ok := claims[0].ClaimData[offload.DriverClaimBucket]; ok {
		t.Fatalf("a memory store claim has a bucket")
	}
	if store.puts.Load() > 3 || ev.count(offload.OpPut)+ev.count(offload.OpDeduplicated) != 3 {
		t.Fatalf("puts = %d, events %+v", store.puts.Load(), ev.all)
	}

	claimsBefore := make([]map[string]string, len(claims))
	for i, c := range claims {
		claimsBefore[i] = map[string]string{}
		for k, v := range c.ClaimData {
			claimsBefore[i][k] = v
		}
	}
	getLimiter := newCountingLimiter[converter.StorageDriverClaim](8)
	out, err := sdkDriver.Retrieve(converter.StorageDriverRetrieveContext{Context: context.Background(), Limiter: getLimiter}, claims)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if !proto.Equal(out[i], before[i]) {
			t.Fatalf("payload %d did not round-trip", i)
		}
		for k, v := range claimsBefore[i] {
			if claims[i].ClaimData[k] != v {
				t.Fatalf("Retrieve mutated claim %d", i)
			}
		}
	}
	if getLimiter.permits.Load() != 3 {
		t.Fatalf("retrieve permits = %d, want 3", getLimiter.permits.Load())
	}

	// Without a limiter (nil), the driver still works.
	if _, err := sdkDriver.Retrieve(converter.StorageDriverRetrieveContext{Context: context.Background()}, claims[:1]); err != nil {
		t.Fatal(err)
	}
}

func TestDriverKeyLayout(t *testing.T) {
	const h = "0000000000000000000000000000000000000000000000000000000000000000"
	for _, tc := range []struct {
		target converter.StorageDriverTargetInfo
		want   string
	}{
		{converter.StorageDriverWorkflowInfo{Namespace: "ns", WorkflowType: "T", WorkflowID: "id", RunID: "run"}, "v0/ns/ns/wt/T/wi/id/ri/run/d/sha256/" + h},
		{converter.StorageDriverWorkflowInfo{Namespace: "ns"}, "v0/ns/ns/wt/null/wi/null/ri/null/d/sha256/" + h},
		{converter.StorageDriverWorkflowInfo{Namespace: "n s", WorkflowType: "a/b", WorkflowID: "x%y!-_.*'()", RunID: "é"}, "v0/ns/n%20s/wt/a%2Fb/wi/x%25y!-_.*'()/ri/%C3%A9/d/sha256/" + h},
		{converter.StorageDriverActivityInfo{Namespace: "ns", ActivityType: "A", ActivityID: "1", RunID: "r"}, "v0/ns/ns/at/A/ai/1/ri/r/d/sha256/" + h},
		{nil, "v0/d/sha256/" + h},
	} {
		if got := offload.DriverKey(tc.target, h); got != tc.want {
			t.Errorf("DriverKey(%+v) = %s, want %s", tc.target, got, tc.want)
		}
	}
}

func TestStorageDriverRetrieveChecks(t *testing.T) {
	mem := offload.NewMemoryStore()
	d, err := offload.NewStorageDriver(mem, &offload.StorageDriverOptions{MaxPayloadSize: 10000})
	if err != nil {
		t.Fatal(err)
	}
	ctx := converter.StorageDriverStoreContext{Context: context.Background()}
	claims, err := d.Store(ctx, []*commonpb.Payload{bigPayload(2000, 3)})
	if err != nil {
		t.Fatal(err)
	}
	key := claims[0].ClaimData[offload.DriverClaimKey]
	if !strings.HasPrefix(key, "v0/d/sha256/") {
		t.Fatalf("key without target = %s", key)
	}
	rctx := converter.StorageDriverRetrieveContext{Context: context.Background()}
	with := func(k, v string) []converter.StorageDriverClaim {
		cd := map[string]string{}
		for kk, vv := range claims[0].ClaimData {
			cd[kk] = vv
		}
		if v == "" {
			delete(cd, k)
		} else {
			cd[k] = v
		}
		return []converter.StorageDriverClaim{{ClaimData: cd}}
	}
	for name, tc := range map[string]struct {
		claims []converter.StorageDriverClaim
		want   error
	}{
		"bad algorithm":   {with(offload.DriverClaimHashAlgorithm, "md5"), offload.ErrIntegrity},
		"bad hash":        {with(offload.DriverClaimHashValue, "xyz"), offload.ErrIntegrity},
		"wrong hash":      {with(offload.DriverClaimHashValue, strings.Repeat("0", 64)), offload.ErrIntegrity},
		"escaping key":    {with(offload.DriverClaimKey, "../x"), offload.ErrIntegrity},
		"missing object":  {with(offload.DriverClaimKey, "v0/d/sha256/other"), offload.ErrNotFound},
		"size too large":  {with(offload.DriverClaimSize, "10001"), offload.ErrTooLarge},
		"size mismatch":   {with(offload.DriverClaimSize, "5"), offload.ErrIntegrity},
		"size not number": {with(offload.DriverClaimSize, "-1"), offload.ErrIntegrity},
	} {
		_, err := d.Retrieve(rctx, tc.claims)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
	// Claims of the SDK's own S3 driver carry no size: the object is bounded by the maximum size.
	if _, err := d.Retrieve(rctx, with(offload.DriverClaimSize, "")); err != nil {
		t.Errorf("claim without size: %v", err)
	}
	// Too large to store: nothing is uploaded.
	_, err = d.Store(ctx, []*commonpb.Payload{bigPayload(500, 4), bigPayload(20000, 5)})
	if !errors.Is(err, offload.ErrTooLarge) || len(mem.Keys()) != 1 {
		t.Fatalf("Store above the maximum: err = %v, %d objects (want ErrTooLarge and no new object)", err, len(mem.Keys()))
	}
}

func TestNewExternalStorage(t *testing.T) {
	mem := offload.NewMemoryStore()
	es, err := offload.NewExternalStorage(&offload.Options{Store: mem, Threshold: 4096, DriverName: "blobs", Mode: offload.ModeExternalStorage})
	if err != nil {
		t.Fatal(err)
	}
	if es.PayloadSizeThreshold != 4096 || len(es.Drivers) != 1 || es.Drivers[0].Name() != "blobs" {
		t.Fatalf("ExternalStorage = %+v", es)
	}
	es, err = offload.NewExternalStorage(&offload.Options{Store: mem})
	if err != nil {
		t.Fatal(err)
	}
	if es.PayloadSizeThreshold != offload.DefaultThreshold || es.Drivers[0].Name() != offload.DefaultDriverName {
		t.Fatalf("defaults: threshold %d, driver %s", es.PayloadSizeThreshold, es.Drivers[0].Name())
	}
	if _, err := offload.NewExternalStorage(&offload.Options{}); err == nil {
		t.Fatal("NewExternalStorage without a store succeeded")
	}
}

func TestNewStorageDriverOptions(t *testing.T) {
	mem := offload.NewMemoryStore()
	d, err := offload.NewStorageDriver(mem, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != offload.DefaultDriverName {
		t.Fatalf("nil options: name %q, want %q", d.Name(), offload.DefaultDriverName)
	}
	for name, tc := range map[string]struct {
		store offload.Store
		opts  *offload.StorageDriverOptions
		want  string
	}{
		"no store":         {nil, nil, "Store is required"},
		"negative max":     {mem, &offload.StorageDriverOptions{MaxPayloadSize: -1}, "MaxPayloadSize must not be negative"},
		"negative timeout": {mem, &offload.StorageDriverOptions{Timeout: -time.Second}, "Timeout must not be negative"},
	} {
		if _, err := offload.NewStorageDriver(tc.store, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one containing %q", name, err, tc.want)
		}
	}
}
