package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/codec/awskms"
	"github.com/payloadkit/payloadkit/interceptor"
	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/samples/internal/history"
	"github.com/payloadkit/payloadkit/workflowtest"
)

const (
	// telemetryNotesSize is the size of the random (incompressible) notes carried by the order:
	// well over telemetryThreshold after compression and encryption, so the workflow input and
	// the activity input are offloaded while the small receipts stay inline.
	telemetryNotesSize = 8 << 10
	// telemetryThreshold is the offload threshold of the test's Kit.
	telemetryThreshold = 2 << 10
)

// telemetryOrder is the workflow's input, passed on to the activity.
type telemetryOrder struct {
	Customer string
	Notes    []byte
}

// telemetryReceipt is the activity's and the workflow's result.
type telemetryReceipt struct {
	Customer string
	Digest   string
	Bytes    int
}

// telemetryChargeActivity returns a receipt naming the SHA-256 of the order's notes.
func telemetryChargeActivity(_ context.Context, o telemetryOrder) (telemetryReceipt, error) {
	sum := sha256.Sum256(o.Notes)
	return telemetryReceipt{Customer: o.Customer, Digest: hex.EncodeToString(sum[:]), Bytes: len(o.Notes)}, nil
}

// telemetryWorkflow runs telemetryCharge on its input and returns the receipt.
func telemetryWorkflow(ctx workflow.Context, o telemetryOrder) (telemetryReceipt, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	var r telemetryReceipt
	err := workflow.ExecuteActivity(ctx, "telemetryCharge", o).Get(ctx, &r)
	return r, err
}

// telemetryCountingStore is a MemoryStore counting the calls the offload stage makes.
type telemetryCountingStore struct {
	*offload.MemoryStore
	mu                sync.Mutex
	puts, gets, found int
}

func (s *telemetryCountingStore) Put(ctx context.Context, key string, data []byte) error {
	s.mu.Lock()
	s.puts++
	s.mu.Unlock()
	return s.MemoryStore.Put(ctx, key, data)
}

func (s *telemetryCountingStore) Get(ctx context.Context, key string) ([]byte, error) {
	return s.GetBounded(ctx, key, -1)
}

func (s *telemetryCountingStore) GetBounded(ctx context.Context, key string, maxBytes int64) ([]byte, error) {
	s.mu.Lock()
	s.gets++
	s.mu.Unlock()
	return s.MemoryStore.GetBounded(ctx, key, maxBytes)
}

func (s *telemetryCountingStore) Exists(ctx context.Context, key string) (bool, error) {
	ok, err := s.MemoryStore.Exists(ctx, key)
	if ok {
		s.mu.Lock()
		s.found++
		s.mu.Unlock()
	}
	return ok, err
}

func (s *telemetryCountingStore) PutParts(ctx context.Context, key string, parts [][]byte, sum [sha256.Size]byte) error {
	s.mu.Lock()
	s.puts++
	s.mu.Unlock()
	return s.MemoryStore.PutParts(ctx, key, parts, sum)
}

func (s *telemetryCountingStore) Stat(ctx context.Context, key string) (offload.ObjectInfo, error) {
	info, err := s.MemoryStore.Stat(ctx, key)
	if err == nil {
		s.mu.Lock()
		s.found++
		s.mu.Unlock()
	}
	return info, err
}

func (s *telemetryCountingStore) counts() (puts, gets, found int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.puts, s.gets, s.found
}

// telemetryMetrics collects the payloadkit metrics of reader by name.
func telemetryMetrics(t *testing.T, reader *sdkmetric.ManualReader) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collecting metrics: %v", err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != interceptor.ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// telemetryMatch reports whether set holds every attribute of want.
func telemetryMatch(set attribute.Set, want map[string]string) bool {
	for k, v := range want {
		got, ok := set.Value(attribute.Key(k))
		if !ok || got.Emit() != v {
			return false
		}
	}
	return true
}

// telemetryHist returns the count and sum of the int64 histogram points matching want.
func telemetryHist(t *testing.T, agg metricdata.Aggregation, want map[string]string) (count uint64, sum int64) {
	t.Helper()
	h, ok := agg.(metricdata.Histogram[int64])
	if !ok {
		t.Fatalf("metric is %T, want an int64 histogram", agg)
	}
	for _, dp := range h.DataPoints {
		if telemetryMatch(dp.Attributes, want) {
			count += dp.Count
			sum += dp.Sum
		}
	}
	return count, sum
}

// telemetrySum returns the total of the int64 counter points matching want.
func telemetrySum(t *testing.T, agg metricdata.Aggregation, want map[string]string) int64 {
	t.Helper()
	if agg == nil {
		return 0
	}
	s, ok := agg.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("metric is %T, want an int64 sum", agg)
	}
	var n int64
	for _, dp := range s.DataPoints {
		if telemetryMatch(dp.Attributes, want) {
			n += dp.Value
		}
	}
	return n
}

// telemetryAttr returns the int64 attribute key of span s.
func telemetryAttr(s sdktrace.ReadOnlySpan, key attribute.Key) (int64, bool) {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value.AsInt64(), true
		}
	}
	return 0, false
}

// telemetryCodecSpan is a payloadkit codec span, one per run of the chain: its operation and
// the stages that ran, in the order of their attributes (payloadkit.<stage>.duration_ms).
func telemetryCodecSpan(s sdktrace.ReadOnlySpan, stages []string) (op string, ran []string, ok bool) {
	switch s.Name() {
	case interceptor.SpanEncode:
		op = "encode"
	case interceptor.SpanDecode:
		op = "decode"
	default:
		return "", nil, false
	}
	for _, kv := range s.Attributes() {
		for _, st := range stages {
			if kv.Key == interceptor.AttrStageDuration(st) {
				ran = append(ran, st)
			}
		}
	}
	return op, ran, true
}

// TestTelemetryEndToEnd runs a workflow with one activity through a Kit that compresses,
// encrypts with the KMS test server and offloads to a memory store, with an SDK TracerProvider
// and a ManualReader, and checks the span tree, the payload sizes recorded against the payloads
// the server stored, and the KMS and offload counters against the calls the KMS server and the
// store received.
func TestTelemetryEndToEnd(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))

	kmsServer := workflowtest.StartKMS(t)
	keyID := kmsServer.NewKey()
	provider, err := awskms.New(kmsServer.Client(), keyID)
	if err != nil {
		t.Fatal(err)
	}
	store := &telemetryCountingStore{MemoryStore: offload.NewMemoryStore()}
	kit := newKit(t, payloadkit.Options{
		Encryption: &codec.EncryptionOptions{Keys: provider},
		Offload:    &offload.Options{Store: store, Threshold: telemetryThreshold, Timeout: 10 * time.Second},
		Telemetry:  &interceptor.Options{TracerProvider: tp, MeterProvider: mp},
	})

	s := startServer(t, kit)
	s.worker("telemetry", func(r worker.Registry) {
		r.RegisterWorkflowWithOptions(telemetryWorkflow, workflow.RegisterOptions{Name: "telemetryWorkflow"})
		r.RegisterActivityWithOptions(telemetryChargeActivity, activity.RegisterOptions{Name: "telemetryCharge"})
	})

	notes := make([]byte, telemetryNotesSize)
	if _, err := rand.Read(notes); err != nil {
		t.Fatal(err)
	}
	in := telemetryOrder{Customer: "Grace Hopper", Notes: notes}
	ctx := testContext(t, time.Minute)
	// The test's own span is the root of the trace: the client's spans and the decoding of the
	// result hang under it.
	ctx, root := tp.Tracer("payloadkit-e2e").Start(ctx, "e2e.order")
	run, err := s.GetDefaultClient().ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "telemetry"}, "telemetryWorkflow", in)
	if err != nil {
		t.Fatal(err)
	}
	var out telemetryReceipt
	if err := run.Get(ctx, &out); err != nil {
		t.Fatalf("workflow: %v", err)
	}
	root.End()
	if sum := sha256.Sum256(notes); out.Digest != hex.EncodeToString(sum[:]) || out.Customer != in.Customer || out.Bytes != len(notes) {
		t.Fatalf("receipt = %+v", out)
	}

	kit.FlushSpans() // codec spans end in bursts: end the waiting ones
	ended := spans.Ended()
	tree := interceptor.FormatSpanTree(ended)
	t.Logf("span tree:\n%s", tree)
	stages := kit.Stages()
	if want := []string{payloadkit.StageCompression, payloadkit.StageEncryption, payloadkit.StageOffload}; strings.Join(stages, ",") != strings.Join(want, ",") {
		t.Fatalf("Kit stages = %v, want %v", stages, want)
	}
	telemetryCheckSpans(t, ended, root, stages, tree)

	payloads := s.historyPayloads(t, run)

	// A second process (its own Kit with cold caches, the same providers) reads the result:
	// its Decrypt call and store read are counted too.
	coldProvider, err := awskms.New(kmsServer.Client(), keyID)
	if err != nil {
		t.Fatal(err)
	}
	cold := newKit(t, payloadkit.Options{
		Encryption: &codec.EncryptionOptions{Keys: coldProvider},
		Offload:    &offload.Options{Store: store, Threshold: telemetryThreshold, Timeout: 10 * time.Second},
		Telemetry:  &interceptor.Options{TracerProvider: tp, MeterProvider: mp},
	})
	var again telemetryReceipt
	if err := s.NewClientWithOptions(cold.ClientOptions(client.Options{})).GetWorkflow(ctx, run.GetID(), run.GetRunID()).Get(ctx, &again); err != nil {
		t.Fatalf("reading the result with a second Kit: %v", err)
	}
	if again != out {
		t.Errorf("second Kit read %+v, want %+v", again, out)
	}
	if n := kmsServer.Calls(workflowtest.KMSDecrypt); n != 1 {
		t.Errorf("KMS server received %d Decrypt calls, want 1 (the second Kit's data key)", n)
	}

	m := telemetryMetrics(t, reader)
	telemetryCheckSizes(t, ended, m, payloads, stages)
	telemetryCheckKMS(t, m, kmsServer)
	telemetryCheckOffload(t, m, store, payloads)
}

// telemetryCheckSpans checks the span tree: e2e.order -> StartWorkflow -> RunWorkflow ->
// StartActivity -> RunActivity, and every codec span, one per stage and direction, in that
// trace under one of those spans.
func telemetryCheckSpans(t *testing.T, ended []sdktrace.ReadOnlySpan, root trace.Span, stages []string, tree string) {
	t.Helper()
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range ended {
		byName[s.Name()] = append(byName[s.Name()], s)
	}
	one := func(name string) sdktrace.ReadOnlySpan {
		t.Helper()
		if len(byName[name]) != 1 {
			t.Fatalf("%d spans named %s, want 1\n%s", len(byName[name]), name, tree)
		}
		return byName[name][0]
	}
	rootSC := root.SpanContext()
	traceID := rootSC.TraceID()
	start := one("StartWorkflow:telemetryWorkflow")
	startAct := one("StartActivity:telemetryCharge")
	runAct := one("RunActivity:telemetryCharge")
	// A workflow replayed after a cache eviction may open a second RunWorkflow span; every one
	// of them is a child of StartWorkflow.
	runs := byName["RunWorkflow:telemetryWorkflow"]
	if len(runs) == 0 {
		t.Fatalf("no RunWorkflow span\n%s", tree)
	}
	parentOf := map[trace.SpanID]string{
		rootSC.SpanID():                 "e2e.order",
		start.SpanContext().SpanID():    start.Name(),
		startAct.SpanContext().SpanID(): startAct.Name(),
		runAct.SpanContext().SpanID():   runAct.Name(),
	}
	for _, r := range runs {
		parentOf[r.SpanContext().SpanID()] = r.Name()
	}
	edge := func(child sdktrace.ReadOnlySpan, parents ...sdktrace.ReadOnlySpan) {
		t.Helper()
		if child.SpanContext().TraceID() != traceID {
			t.Errorf("%s is in trace %s, want %s", child.Name(), child.SpanContext().TraceID(), traceID)
		}
		for _, p := range parents {
			if child.Parent().SpanID() == p.SpanContext().SpanID() {
				return
			}
		}
		t.Errorf("%s has parent %s (%q), want %s", child.Name(), child.Parent().SpanID(), parentOf[child.Parent().SpanID()], parents[0].Name())
	}
	if start.Parent().SpanID() != rootSC.SpanID() {
		t.Errorf("StartWorkflow has parent %s, want the test's span %s", start.Parent().SpanID(), rootSC.SpanID())
	}
	for _, r := range runs {
		edge(r, start)
	}
	edge(startAct, runs...)
	edge(runAct, startAct)

	// Codec spans: each is in the trace under a known span. Per stage, the activity's input and
	// result are each encoded and decoded once under StartActivity (the workflow encodes the
	// input and decodes the result in it, the activity works under the span carried in its
	// header); the workflow's input and result are handled under StartWorkflow (the workflow
	// task works under the span carried in the start header).
	type key struct{ stage, op, parent string }
	counts := map[key]int{}
	for _, s := range ended {
		op, ran, ok := telemetryCodecSpan(s, stages)
		if !ok {
			continue
		}
		if len(ran) != len(stages) {
			t.Errorf("%s ran stages %v, want all of %v", s.Name(), ran, stages)
		}
		parent, known := parentOf[s.Parent().SpanID()]
		if !s.Parent().IsValid() && op == "decode" {
			// The SDK decodes a workflow's result in WorkflowRun.Get without binding the
			// caller's context to the DataConverter: those codec spans start traces of their own.
			parent, known = "(no parent)", true
		} else if s.SpanContext().TraceID() != traceID {
			t.Errorf("%s is in trace %s, want %s", s.Name(), s.SpanContext().TraceID(), traceID)
		}
		if !known {
			t.Errorf("%s has parent %s, which is none of the workflow's spans", s.Name(), s.Parent().SpanID())
			continue
		}
		if n, _ := telemetryAttr(s, interceptor.AttrPayloadCount); n != 1 {
			t.Errorf("%s under %s: %d payloads, want 1", s.Name(), parent, n)
		}
		for _, stage := range ran {
			counts[key{stage, op, parent}]++
		}
	}
	for _, stage := range stages {
		for _, k := range []key{
			{stage, "encode", startAct.Name()},
			{stage, "decode", startAct.Name()},
		} {
			if counts[k] != 2 {
				t.Errorf("%d payloadkit.%s spans with stage %s under %s, want 2 (activity input and result)", counts[k], k.op, k.stage, k.parent)
			}
		}
		for _, c := range []struct {
			k    key
			want int
			what string
		}{
			{key{stage, "encode", start.Name()}, 2, "the client encodes the workflow input, the worker its result"},
			{key{stage, "decode", start.Name()}, 1, "the worker decodes the workflow input"},
			{key{stage, "decode", "(no parent)"}, 1, "the client decodes the workflow result"},
		} {
			if counts[c.k] != c.want {
				t.Errorf("%d payloadkit.%s spans with stage %s under %s, want %d (%s)", counts[c.k], c.k.op, c.k.stage, c.k.parent, c.want, c.what)
			}
		}
	}
	t.Logf("codec spans by parent: %v", counts)
}

// telemetryCheckSizes compares the payload sizes recorded by the codec stages with the payloads
// the server stored.
func telemetryCheckSizes(t *testing.T, ended []sdktrace.ReadOnlySpan, m map[string]metricdata.Aggregation, payloads []history.Payload, stages []string) {
	t.Helper()
	// The payloads the chain produced: the offload stage's encode output is a claim or, under
	// the threshold, the encrypted payload. Other history payloads (the SDK's tracing header)
	// never passed the codecs.
	var stored []int64
	var storedSum int64
	storedSizes := map[int64]bool{}
	for _, p := range payloads {
		switch p.Encoding() {
		case codec.EncodingEncrypted, offload.EncodingClaimCheck:
			n := int64(p.Size())
			stored = append(stored, n)
			storedSum += n
			storedSizes[n] = true
		}
	}
	if len(stored) < 4 {
		t.Fatalf("%d encoded payloads in history, want at least 4 (workflow and activity inputs and results)", len(stored))
	}

	hist := m[interceptor.MetricPayloadSize]
	if hist == nil {
		t.Fatalf("no %s metric", interceptor.MetricPayloadSize)
	}
	count, sum := telemetryHist(t, hist, map[string]string{"stage": payloadkit.StageOffload, "operation": "encode", "position": "after"})
	if count != uint64(len(stored)) || sum != storedSum {
		t.Errorf("%s offload/encode/after: %d points summing %d bytes; history holds %d encoded payloads of %d bytes",
			interceptor.MetricPayloadSize, count, sum, len(stored), storedSum)
	}

	// Spans agree with the metric, and each decode of the offload stage read a stored payload.
	var spanOut int64
	for _, s := range ended {
		op, ran, ok := telemetryCodecSpan(s, stages)
		if !ok || !slices.Contains(ran, payloadkit.StageOffload) {
			continue
		}
		switch op {
		case "encode":
			n, _ := telemetryAttr(s, interceptor.AttrStageBytesOut(payloadkit.StageOffload))
			spanOut += n
			// The offload stage runs last: its output is the chain's.
			if out, _ := telemetryAttr(s, interceptor.AttrBytesOut); out != n {
				t.Errorf("%s: chain wrote %d bytes, offload stage %d", s.Name(), out, n)
			}
		case "decode":
			if n, _ := telemetryAttr(s, interceptor.AttrStageBytesIn(payloadkit.StageOffload)); !storedSizes[n] {
				t.Errorf("%s read %d bytes: no payload of that size in history (%v)", s.Name(), n, stored)
			}
		}
	}
	if spanOut != storedSum {
		t.Errorf("offload encode spans wrote %d bytes, history holds %d", spanOut, storedSum)
	}

	// What one stage hands on is what the next receives: encode in stage order, decode in reverse.
	for i := 0; i+1 < len(stages); i++ {
		for _, dir := range []struct{ op, from, to string }{
			{"encode", stages[i], stages[i+1]},
			{"decode", stages[i+1], stages[i]},
		} {
			c1, s1 := telemetryHist(t, hist, map[string]string{"stage": dir.from, "operation": dir.op, "position": "after"})
			c2, s2 := telemetryHist(t, hist, map[string]string{"stage": dir.to, "operation": dir.op, "position": "before"})
			if c1 != c2 || s1 != s2 || c1 == 0 {
				t.Errorf("%s: %s after = %d points/%d bytes, %s before = %d points/%d bytes", dir.op, dir.from, c1, s1, dir.to, c2, s2)
			}
		}
	}

	// The activity's result stays inline: the size the worker measured before encoding it is
	// the size of the Payloads message holding the stored payload.
	var result *commonpb.Payload
	for _, p := range payloads {
		if p.EventType == enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED && strings.Contains(p.Field, "_attributes.result.") {
			result = p.Payload
		}
	}
	if result == nil {
		t.Fatal("no activity result in history")
	}
	want := int64(proto.Size(&commonpb.Payloads{Payloads: []*commonpb.Payload{result}}))
	count, sum = telemetryHist(t, hist, map[string]string{"stage": "interceptor", "kind": "activity", "direction": "result"})
	if count != 1 || sum != want {
		t.Errorf("interceptor activity result: %d points summing %d bytes, want 1 point of %d bytes (the stored result)", count, sum, want)
	}
	t.Logf("history: %d encoded payloads, %d bytes (%v); offload encode spans wrote %d bytes", len(stored), storedSum, stored, spanOut)
}

// telemetryCheckKMS compares payloadkit.kms.requests with the calls the KMS test server received.
func telemetryCheckKMS(t *testing.T, m map[string]metricdata.Aggregation, kmsServer *workflowtest.KMS) {
	t.Helper()
	var report []string
	for _, op := range []string{workflowtest.KMSGenerateDataKey, workflowtest.KMSDecrypt} {
		got := telemetrySum(t, m[interceptor.MetricKMSRequests], map[string]string{"operation": op})
		want := int64(kmsServer.Calls(op))
		if got != want {
			t.Errorf("%s{operation=%s} = %d, the KMS server received %d", interceptor.MetricKMSRequests, op, got, want)
		}
		if failed := telemetrySum(t, m[interceptor.MetricKMSRequests], map[string]string{"operation": op, "outcome": "error"}); failed != 0 {
			t.Errorf("%d failed %s requests", failed, op)
		}
		report = append(report, fmt.Sprintf("%s=%d", op, got))
	}
	if got := telemetrySum(t, m[interceptor.MetricKMSRequests], nil); got != int64(kmsServer.Calls(workflowtest.KMSAnyOperation)) {
		t.Errorf("%s total = %d, the KMS server received %d requests", interceptor.MetricKMSRequests, got, kmsServer.Calls(workflowtest.KMSAnyOperation))
	}
	if kmsServer.Calls(workflowtest.KMSGenerateDataKey) == 0 {
		t.Error("no GenerateDataKey call reached the KMS server")
	}
	hits := telemetrySum(t, m[interceptor.MetricKMSCache], map[string]string{"result": "hit"})
	misses := telemetrySum(t, m[interceptor.MetricKMSCache], map[string]string{"result": "miss"})
	t.Logf("KMS requests: %s; data-key cache: %d hits, %d misses", strings.Join(report, " "), hits, misses)
}

// telemetryCheckOffload compares the offload counters with the store's calls and objects.
func telemetryCheckOffload(t *testing.T, m map[string]metricdata.Aggregation, store *telemetryCountingStore, payloads []history.Payload) {
	t.Helper()
	puts, gets, found := store.counts()
	keys := store.Keys()
	var objectBytes int64
	for _, k := range keys {
		data, err := store.MemoryStore.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		objectBytes += int64(len(data))
	}
	objects := m[interceptor.MetricOffloadObjects]
	bytes := m[interceptor.MetricOffloadBytes]
	checks := []struct {
		name      string
		got, want int64
	}{
		{"objects{put,ok}", telemetrySum(t, objects, map[string]string{"operation": offload.OpPut, "outcome": "ok"}), int64(puts)},
		{"objects{put,ok} vs stored objects", telemetrySum(t, objects, map[string]string{"operation": offload.OpPut, "outcome": "ok"}), int64(len(keys))},
		{"objects{get,ok}", telemetrySum(t, objects, map[string]string{"operation": offload.OpGet, "outcome": "ok"}), int64(gets)},
		{"objects{deduplicated}", telemetrySum(t, objects, map[string]string{"operation": offload.OpDeduplicated}), int64(found)},
		{"objects{outcome=error}", telemetrySum(t, objects, map[string]string{"outcome": "error"}), 0},
		{"bytes{put}", telemetrySum(t, bytes, map[string]string{"operation": offload.OpPut}), objectBytes},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("payloadkit.offload.%s = %d, want %d", c.name, c.got, c.want)
		}
	}

	// The history names exactly the stored objects, with their sizes: the workflow's and the
	// activity's inputs, one value in one namespace, hence one object (deduplicated).
	claimed := map[string]string{}
	for _, p := range payloads {
		if offload.IsClaim(p.Payload) {
			md := p.Payload.GetMetadata()
			claimed[string(md[offload.MetadataClaimKey])] = string(md[offload.MetadataClaimSize])
		}
	}
	if len(claimed) != 1 || len(keys) != 1 || puts != 1 || found != 1 {
		t.Errorf("history names %d objects, the store holds %d from %d puts and %d deduplicated encodes; want 1 object from 1 put and 1 deduplicated (the workflow's and the activity's inputs are one value)",
			len(claimed), len(keys), puts, found)
	}
	for _, k := range keys {
		data, _ := store.MemoryStore.Get(context.Background(), k)
		if size, ok := claimed[k]; !ok || size != strconv.Itoa(len(data)) {
			t.Errorf("object %s (%d bytes): history claims size %q", k, len(data), size)
		}
	}
	t.Logf("offload: %d puts, %d gets, %d deduplicated; %d objects, %d bytes", puts, gets, found, len(keys), objectBytes)
}
