package interceptor

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/internal/pipeline"
)

// recorder bundles a Telemetry with an in-memory span recorder and a manual metric reader.
type recorder struct {
	tel    *Telemetry
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
}

func newRecorder(t *testing.T, opts Options) *recorder {
	t.Helper()
	r := &recorder{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	opts.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans))
	opts.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	tel, err := New(&opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r.tel = tel
	return r
}

// stage is a pipeline stage for the tests.
func stage(name string, c converter.PayloadCodec) pipeline.Stage {
	return pipeline.Stage{Name: name, Codec: c}
}

// dataConverter returns the DataConverter of a pipeline of stages (in encode order) observed by
// the recorder's Telemetry, as the Kit builds it.
func (r *recorder) dataConverter(stages ...pipeline.Stage) converter.DataConverter {
	return pipeline.New(pipeline.Options{Stages: stages, Observer: r.tel}).DataConverter()
}

// codec returns the observed codec of one stage, bound to no context.
func (r *recorder) codec(name string, c converter.PayloadCodec) converter.PayloadCodec {
	return pipeline.New(pipeline.Options{Stages: []pipeline.Stage{stage(name, c)}, Observer: r.tel}).Codecs()[0]
}

// all returns every ended span, after ending the codec spans still waiting (Telemetry.Flush).
func (r *recorder) all() []sdktrace.ReadOnlySpan {
	r.tel.Flush()
	return r.spans.Ended()
}

// ended returns the ended spans named name (all of them for ""), as all does.
func (r *recorder) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range r.all() {
		if name == "" || s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func (r *recorder) metrics(t *testing.T) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// attrsMatch reports whether set holds every key=value of want.
func attrsMatch(get func(string) (string, bool), want map[string]string) bool {
	for k, v := range want {
		if got, ok := get(k); !ok || got != v {
			return false
		}
	}
	return true
}

// histInt returns the data points of an Int64 histogram whose attributes include want.
func histInt(t *testing.T, data metricdata.Aggregation, want map[string]string) []metricdata.HistogramDataPoint[int64] {
	t.Helper()
	return hist[int64](t, data, want)
}

// histFloat returns the data points of a Float64 histogram whose attributes include want.
func histFloat(t *testing.T, data metricdata.Aggregation, want map[string]string) []metricdata.HistogramDataPoint[float64] {
	t.Helper()
	return hist[float64](t, data, want)
}

func hist[N int64 | float64](t *testing.T, data metricdata.Aggregation, want map[string]string) []metricdata.HistogramDataPoint[N] {
	t.Helper()
	h, ok := data.(metricdata.Histogram[N])
	if !ok {
		t.Fatalf("aggregation %T, want %T", data, h)
	}
	var out []metricdata.HistogramDataPoint[N]
	for _, dp := range h.DataPoints {
		if attrsMatch(func(k string) (string, bool) {
			v, ok := dp.Attributes.Value(attrKey(k))
			return v.Emit(), ok
		}, want) {
			out = append(out, dp)
		}
	}
	return out
}

func sumInt(t *testing.T, data metricdata.Aggregation, want map[string]string) int64 {
	t.Helper()
	s, ok := data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("aggregation %T, want Sum[int64]", data)
	}
	var n int64
	for _, dp := range s.DataPoints {
		if attrsMatch(func(k string) (string, bool) {
			v, ok := dp.Attributes.Value(attrKey(k))
			return v.Emit(), ok
		}, want) {
			n += dp.Value
		}
	}
	return n
}

func spanAttr(s sdktrace.ReadOnlySpan, key string) (string, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit(), true
		}
	}
	return "", false
}

func payloadsSize(ps []*commonpb.Payload) int64 {
	var n int64
	for _, p := range ps {
		n += int64(proto.Size(p))
	}
	return n
}

// xorCodec is a test codec: it owns encoding "binary/xor", XORs the marshalled payload with a
// key, records every serialization context it is given, and can be told to fail.
type xorCodec struct {
	key  byte
	fail error
	sc   converter.SerializationContext
	log  *scLog
}

type scLog struct {
	mu   sync.Mutex
	seen []converter.SerializationContext
	enc  int
}

func newXorCodec() *xorCodec { return &xorCodec{key: 0x5a, log: &scLog{}} }

func (c *xorCodec) WithSerializationContext(sc converter.SerializationContext) converter.PayloadCodec {
	cp := *c
	cp.sc = sc
	return &cp
}

func (c *xorCodec) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	c.log.mu.Lock()
	c.log.seen = append(c.log.seen, c.sc)
	c.log.enc++
	c.log.mu.Unlock()
	if c.fail != nil {
		return nil, c.fail
	}
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		b, err := proto.Marshal(p)
		if err != nil {
			return nil, err
		}
		// Expand the data so that encoded sizes differ from decoded ones.
		data := append(bytes.Repeat([]byte{0}, 7), b...)
		for j := range data {
			data[j] ^= c.key
		}
		out[i] = &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/xor")}, Data: data}
	}
	return out, nil
}

func (c *xorCodec) Decode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	c.log.mu.Lock()
	c.log.seen = append(c.log.seen, c.sc)
	c.log.mu.Unlock()
	if c.fail != nil {
		return nil, c.fail
	}
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		if string(p.GetMetadata()["encoding"]) != "binary/xor" {
			out[i] = p
			continue
		}
		if len(p.Data) < 7 {
			return nil, errors.New("xor: short payload")
		}
		data := append([]byte(nil), p.Data...)
		for j := range data {
			data[j] ^= c.key
		}
		var inner commonpb.Payload
		if err := proto.Unmarshal(data[7:], &inner); err != nil {
			return nil, err
		}
		out[i] = &inner
	}
	return out, nil
}

func (l *scLog) contexts() []converter.SerializationContext {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]converter.SerializationContext(nil), l.seen...)
}

func (l *scLog) encodes() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.enc
}

func attrKey(k string) attribute.Key { return attribute.Key(k) }
