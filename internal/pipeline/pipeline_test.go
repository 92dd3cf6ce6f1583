package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"
)

// tagCodec wraps each payload in one of encoding "binary/<tag>" and records the serialization
// contexts it is given and its Encode calls.
type tagCodec struct {
	tag string
	sc  converter.SerializationContext
	log *codecLog
}

type codecLog struct {
	mu      sync.Mutex
	encodes int
	seen    []converter.SerializationContext
}

func newTagCodec(tag string) *tagCodec { return &tagCodec{tag: tag, log: &codecLog{}} }

func (c *tagCodec) WithSerializationContext(sc converter.SerializationContext) converter.PayloadCodec {
	cp := *c
	cp.sc = sc
	return &cp
}

func (c *tagCodec) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	c.log.mu.Lock()
	c.log.encodes++
	c.log.seen = append(c.log.seen, c.sc)
	c.log.mu.Unlock()
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		b, err := proto.Marshal(p)
		if err != nil {
			return nil, err
		}
		out[i] = &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/" + c.tag)}, Data: b}
	}
	return out, nil
}

func (c *tagCodec) Decode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		if string(p.GetMetadata()["encoding"]) != "binary/"+c.tag {
			out[i] = p
			continue
		}
		var inner commonpb.Payload
		if err := proto.Unmarshal(p.Data, &inner); err != nil {
			return nil, err
		}
		out[i] = &inner
	}
	return out, nil
}

func (l *codecLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.encodes
}

func (l *codecLog) contexts() []converter.SerializationContext {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]converter.SerializationContext(nil), l.seen...)
}

func TestDataConverterMatchesCodecDataConverter(t *testing.T) {
	a, b := newTagCodec("a"), newTagCodec("b")
	dc := New(Options{Stages: []Stage{{Name: "a", Codec: a}, {Name: "b", Codec: b}}}).DataConverter()
	// Encode order a then b: NewCodecDataConverter takes them last-applied-first.
	plain := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), b, a)
	sc := converter.WorkflowSerializationContext{Namespace: "ns"}
	variants := map[string]converter.DataConverter{
		"plain":      dc,
		"ctx":        dc.(workflow.ContextAware).WithContext(context.Background()),
		"sc":         dc.(converter.DataConverterWithSerializationContext).WithSerializationContext(sc),
		"ctx+sc":     dc.(workflow.ContextAware).WithContext(context.Background()).(converter.DataConverterWithSerializationContext).WithSerializationContext(sc),
		"sc+ctx":     dc.(converter.DataConverterWithSerializationContext).WithSerializationContext(sc).(workflow.ContextAware).WithContext(context.Background()),
		"dc-wrapped": workflow.DataConverterWithoutDeadlockDetection(dc).(workflow.ContextAware).WithContext(context.Background()),
		"remote":     New(Options{Stages: []Stage{{Name: "a", Codec: a}, {Name: "b", Codec: b}}, Remote: true}).DataConverter(),
	}
	want, err := plain.ToPayloads("v", 1, []byte{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if enc := string(want.Payloads[0].Metadata["encoding"]); enc != "binary/b" {
		t.Fatalf("outer encoding %q, want binary/b (a is applied first)", enc)
	}
	for name, v := range variants {
		got, err := v.ToPayloads("v", 1, []byte{1, 2})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !proto.Equal(got, want) {
			t.Errorf("%s: payloads differ from NewCodecDataConverter", name)
		}
		var s string
		var n int
		var bs []byte
		if err := v.FromPayloads(got, &s, &n, &bs); err != nil || s != "v" || n != 1 || len(bs) != 2 {
			t.Errorf("%s: FromPayloads = %q %d %v, %v", name, s, n, bs, err)
		}
	}
}

func TestSerializationContextReachesStagesInAnyOrder(t *testing.T) {
	c := newTagCodec("a")
	dc := New(Options{Stages: []Stage{{Name: "a", Codec: c}}}).DataConverter()
	sc := converter.ActivitySerializationContext{Namespace: "ns", WorkflowID: "wf", ActivityType: "Act"}
	for name, v := range map[string]converter.DataConverter{
		"sc then ctx": dc.(converter.DataConverterWithSerializationContext).WithSerializationContext(sc).(workflow.ContextAware).WithContext(context.Background()),
		"ctx then sc": dc.(workflow.ContextAware).WithContext(context.Background()).(converter.DataConverterWithSerializationContext).WithSerializationContext(sc),
	} {
		before := len(c.log.contexts())
		if _, err := v.ToPayload("x"); err != nil {
			t.Fatal(err)
		}
		if seen := c.log.contexts()[before:]; len(seen) != 1 || seen[0] != sc {
			t.Errorf("%s: stage saw %v, want %v", name, seen, sc)
		}
	}
	before := len(c.log.contexts())
	if _, err := dc.ToPayload("x"); err != nil {
		t.Fatal(err)
	}
	if seen := c.log.contexts()[before:]; len(seen) != 1 || seen[0] != nil {
		t.Errorf("unbound converter passed %v, want no serialization context", seen)
	}
}

// awareParent is a context-aware parent converter recording what it is bound to.
type awareParent struct {
	converter.DataConverter
	ctxs *[]context.Context
}

func (p awareParent) WithContext(ctx context.Context) converter.DataConverter {
	*p.ctxs = append(*p.ctxs, ctx)
	return p
}

func (p awareParent) WithWorkflowContext(workflow.Context) converter.DataConverter { return p }

func TestContextForwardedToParent(t *testing.T) {
	var seen []context.Context
	parent := awareParent{DataConverter: converter.GetDefaultDataConverter(), ctxs: &seen}
	dc := New(Options{Parent: parent}).DataConverter()
	ctx := context.WithValue(context.Background(), probeKey{}, "marker")
	if _, err := dc.(workflow.ContextAware).WithContext(ctx).ToPayload("x"); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0] != ctx {
		t.Errorf("parent bound to %v, want the context given", seen)
	}
}

// fakeObserver records what it is asked to observe.
type fakeObserver struct {
	mu    sync.Mutex
	binds []context.Context
	calls []observedCall // stage calls, flattened
	runs  []string       // op of each chain run
}

// observedCall is a stage call with the operation and start of its chain run.
type observedCall struct {
	CodecCall
	op    string
	start time.Time
}

func (o *fakeObserver) ObserveChain(ctx context.Context, _ workflow.Context) func(*ChainCall) {
	o.mu.Lock()
	o.binds = append(o.binds, ctx)
	o.mu.Unlock()
	return func(c *ChainCall) {
		o.mu.Lock()
		o.runs = append(o.runs, c.Op)
		for _, s := range c.Stages {
			o.calls = append(o.calls, observedCall{CodecCall: s, op: c.Op, start: c.Start})
		}
		o.mu.Unlock()
	}
}

func TestObserverSeesOneRunPerChainCall(t *testing.T) {
	obs := &fakeObserver{}
	a, b := newTagCodec("a"), newTagCodec("b")
	p := New(Options{Stages: []Stage{{Name: "first", Codec: a}, {Name: "second", Codec: b}}, Observer: obs})
	ctx := context.WithValue(context.Background(), probeKey{}, "x")
	bound := p.DataConverter().(workflow.ContextAware).WithContext(ctx)
	ps, err := bound.ToPayloads("hello")
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := bound.FromPayloads(ps, &out); err != nil || out != "hello" {
		t.Fatalf("round trip: %q, %v", out, err)
	}
	if len(obs.binds) != 1 || obs.binds[0] != ctx {
		t.Errorf("ObserveChain called with %v, want once with the bound context", obs.binds)
	}
	if len(obs.runs) != 2 || obs.runs[0] != OpEncode || obs.runs[1] != OpDecode {
		t.Errorf("chain runs %v, want one encode and one decode", obs.runs)
	}
	want := []struct{ stage, op string }{{"first", OpEncode}, {"second", OpEncode}, {"second", OpDecode}, {"first", OpDecode}}
	if len(obs.calls) != len(want) {
		t.Fatalf("%d calls observed, want %d", len(obs.calls), len(want))
	}
	for i, w := range want {
		c := obs.calls[i]
		if c.Stage != w.stage || c.op != w.op || len(c.In) != 1 || len(c.Out) != 1 || c.Err != nil || c.start.IsZero() {
			t.Errorf("call %d = %+v, want %s %s with one payload in and out", i, c, w.stage, w.op)
		}
	}
	if got := obs.calls[1].Out[0]; !proto.Equal(got, ps.Payloads[0]) {
		t.Error("the last encode's output is not what ToPayloads returned")
	}
	// Codecs are observed too, bound to no context, in NewCodecDataConverter order.
	codecs := p.Codecs()
	if len(codecs) != 2 {
		t.Fatalf("%d codecs", len(codecs))
	}
	if _, err := codecs[1].Encode(ps.Payloads); err != nil {
		t.Fatal(err)
	}
	if last := obs.calls[len(obs.calls)-1]; last.Stage != "first" || obs.binds[len(obs.binds)-1] != nil {
		t.Errorf("unbound codec call %+v with binding %v, want stage first and no context", last, obs.binds[len(obs.binds)-1])
	}
}

func TestNoObserverRunsStagesBare(t *testing.T) {
	a := newTagCodec("a")
	p := New(Options{Stages: []Stage{{Name: "a", Codec: a}}})
	if p.Codecs()[0] != converter.PayloadCodec(a) {
		t.Error("without an observer the stage's codec is not wrapped")
	}
}

func TestProbeReportsTheRealEncodeOnce(t *testing.T) {
	a := newTagCodec("a")
	dc := New(Options{Stages: []Stage{{Name: "a", Codec: a}}}).DataConverter()
	var sizes []int64
	ctx := WithProbe(context.Background(), func(size int64) error {
		sizes = append(sizes, size)
		return nil
	})
	ps, err := dc.(workflow.ContextAware).WithContext(ctx).ToPayloads("abc", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 1 || sizes[0] != int64(proto.Size(ps)) || a.log.count() != 1 {
		t.Fatalf("probe saw %v after %d encodes, want [%d] after 1", sizes, a.log.count(), proto.Size(ps))
	}
	// Single payloads (memos, summaries) and later encodes are not reported.
	if _, err := dc.(workflow.ContextAware).WithContext(ctx).ToPayload("memo"); err != nil {
		t.Fatal(err)
	}
	if _, err := dc.(workflow.ContextAware).WithContext(ctx).ToPayloads("again"); err != nil || len(sizes) != 1 {
		t.Errorf("probe reported again: %v, %v", sizes, err)
	}
	refuse := errors.New("too large")
	ctx = WithProbe(context.Background(), func(int64) error { return refuse })
	if ps, err := dc.(workflow.ContextAware).WithContext(ctx).ToPayloads("abc"); ps != nil || !errors.Is(err, refuse) {
		t.Errorf("refused encode = %v, %v; want nil and the probe's error", ps, err)
	}
}

func TestExpectResultByCancellationScope(t *testing.T) {
	dc := New(Options{Stages: []Stage{{Name: "a", Codec: newTagCodec("a")}}}).DataConverter()
	root, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The interceptor sees a context derived with values; the SDK binds the root.
	type k struct{}
	derived := context.WithValue(root, k{}, "span")
	var got []int64
	if !ExpectResult(derived, func(size int64) error { got = append(got, size); return nil }) {
		t.Fatal("ExpectResult refused a cancellable context")
	}
	// Another scope does not take it.
	other, cancelOther := context.WithCancel(context.Background())
	defer cancelOther()
	if _, err := dc.(workflow.ContextAware).WithContext(other).ToPayloads("x"); err != nil || len(got) != 0 {
		t.Fatalf("another scope took the probe: %v, %v", got, err)
	}
	ps, err := dc.(workflow.ContextAware).WithContext(root).ToPayloads("result")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != int64(proto.Size(ps)) {
		t.Errorf("result probe saw %v, want [%d]", got, proto.Size(ps))
	}
	if _, err := dc.(workflow.ContextAware).WithContext(root).ToPayloads("later"); err != nil || len(got) != 1 {
		t.Errorf("the result probe was taken twice: %v", got)
	}
	if ExpectResult(context.Background(), func(int64) error { return nil }) {
		t.Error("ExpectResult accepted a context that cannot be cancelled")
	}
	if n := pendingCount.Load(); n != 0 {
		t.Errorf("%d pending probes left", n)
	}
}

// TestDataConverterForKeepsItsNamespace: a serialization context without a namespace (the
// testsuite's activities, Nexus operations, none at all) keeps the default namespace; one with
// a namespace replaces it.
func TestDataConverterForKeepsItsNamespace(t *testing.T) {
	var seen []string
	stage := Stage{Name: "ns", Codec: nsRecorder{seen: &seen}}
	p := New(Options{Stages: []Stage{stage}})
	dc := p.DataConverterFor("orders")
	for _, sc := range []converter.SerializationContext{
		nil,
		converter.ActivitySerializationContext{},
		converter.WorkflowSerializationContext{WorkflowID: "wf"},
		converter.NexusSerializationContext{Endpoint: "e"},
		converter.WorkflowSerializationContext{Namespace: "billing"},
	} {
		d := dc
		if sc != nil {
			d = converter.WithDataConverterSerializationContext(dc, sc)
		}
		if _, err := d.ToPayload("x"); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"orders", "orders", "orders", "orders", "billing"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("namespaces seen by the stage: %v, want %v", seen, want)
	}
	// Without a default the stage sees what the SDK gives.
	seen = nil
	if _, err := p.DataConverter().ToPayload("x"); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seen) != "[]" {
		t.Fatalf("unbound: %v", seen)
	}
}

// nsRecorder records the namespace it is bound to on each Encode.
type nsRecorder struct {
	seen *[]string
	ns   *string
}

func (c nsRecorder) WithSerializationContext(sc converter.SerializationContext) converter.PayloadCodec {
	var ns string
	switch v := sc.(type) {
	case converter.WorkflowSerializationContext:
		ns = v.Namespace
	case converter.ActivitySerializationContext:
		ns = v.Namespace
	}
	return nsRecorder{seen: c.seen, ns: &ns}
}

func (c nsRecorder) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	if c.ns != nil {
		*c.seen = append(*c.seen, *c.ns)
	}
	return ps, nil
}

func (c nsRecorder) Decode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) { return ps, nil }
