package workflowtest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/offload"
)

// TB is the part of testing.TB the assertions use, so that they can be checked with fakes.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
}

func encodingOf(p *commonpb.Payload) string {
	return string(p.GetMetadata()[converter.MetadataEncoding])
}

// EncryptionProblems returns one line for every payload that left the Kit's pipeline neither
// encrypted (encoding codec.EncodingEncrypted) nor as a claim whose stored object is encrypted,
// and for every failure sent with a message or stack trace not moved into encoded attributes.
func (k *Kit) EncryptionProblems() []string {
	var problems []string
	for i, r := range k.recorder.Payloads(Outbound) {
		p := r.Payload
		switch enc := encodingOf(p); {
		case enc == codec.EncodingEncrypted:
		case offload.IsClaim(p):
			if err := k.claimEncrypted(p); err != nil {
				problems = append(problems, fmt.Sprintf("payload %d [namespace=%s]: %v", i, r.Namespace(), err))
			}
		default:
			problems = append(problems, fmt.Sprintf("payload %d [namespace=%s]: encoding %q, %d bytes, not encrypted",
				i, r.Namespace(), enc, len(p.GetData())))
		}
	}
	for i, r := range k.recorder.Failures() {
		depth := 0
		for f := r.Failure; f != nil; f = f.GetCause() {
			if f.GetEncodedAttributes() == nil && (f.GetMessage() != "" || f.GetStackTrace() != "") {
				problems = append(problems, fmt.Sprintf("failure %d, cause depth %d [namespace=%s]: message %q sent without encoded attributes",
					i, depth, namespaceOf(r.Context), f.GetMessage()))
			}
			depth++
		}
	}
	return problems
}

func (k *Kit) claimEncrypted(p *commonpb.Payload) error {
	c, err := offload.ParseClaim(p)
	if err != nil {
		return err
	}
	if k.store == nil {
		return fmt.Errorf("claim [key=%s]: the Kit has no offload store", c.Key)
	}
	data, err := k.store.Get(context.Background(), c.Key)
	if err != nil {
		return fmt.Errorf("claim [key=%s]: reading the stored object: %w", c.Key, err)
	}
	var stored commonpb.Payload
	if err := proto.Unmarshal(data, &stored); err != nil {
		return fmt.Errorf("claim [key=%s]: stored object is not a payload: %w", c.Key, err)
	}
	if enc := encodingOf(&stored); enc != codec.EncodingEncrypted {
		return fmt.Errorf("claim [key=%s]: stored object has encoding %q, not encrypted", c.Key, enc)
	}
	return nil
}

// AssertAllEncrypted checks that every payload that left the Kit's pipeline so far was
// encrypted, or was a claim whose stored object is encrypted, and that every failure sent had its
// message and stack trace in encoded attributes. It reports each problem with t.Errorf and
// returns whether there was none. It also fails when no payload was recorded at all.
func (k *Kit) AssertAllEncrypted(t TB) bool {
	t.Helper()
	if len(k.recorder.Payloads(Outbound)) == 0 {
		t.Errorf("workflowtest: no payload left the pipeline: is the Kit applied to the test environment?")
		return false
	}
	problems := k.EncryptionProblems()
	for _, p := range problems {
		t.Errorf("workflowtest: %s", p)
	}
	return len(problems) == 0
}

// Offloaded returns the claims among the payloads that left the Kit's pipeline, in order. A
// payload sent twice gives two claims with the same key.
func (k *Kit) Offloaded() []offload.Claim {
	var out []offload.Claim
	for _, r := range k.recorder.Payloads(Outbound) {
		if offload.IsClaim(r.Payload) {
			if c, err := offload.ParseClaim(r.Payload); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// AssertOffloaded checks that n payloads left the Kit's pipeline as claims and that each claim's
// object is in the store. It reports problems with t.Errorf and returns whether there was none.
func (k *Kit) AssertOffloaded(t TB, n int) bool {
	t.Helper()
	claims := k.Offloaded()
	ok := true
	if len(claims) != n {
		t.Errorf("workflowtest: %d payloads offloaded, want %d", len(claims), n)
		ok = false
	}
	for _, c := range claims {
		if k.store == nil {
			t.Errorf("workflowtest: claim [key=%s] but the Kit has no offload store", c.Key)
			return false
		}
		exists, err := k.store.Exists(context.Background(), c.Key)
		if err != nil || !exists {
			t.Errorf("workflowtest: claim [key=%s]: object not in the store (err=%v)", c.Key, err)
			ok = false
		}
	}
	return ok
}

// KMSCalls returns the number of requests of operation (for example KMSGenerateDataKey) the
// Kit's KMS test server received; 0 when the Kit has none.
func (k *Kit) KMSCalls(operation string) int {
	if k.kms == nil {
		return 0
	}
	return k.kms.Calls(operation)
}

// AssertKMSCalls checks that the Kit's KMS test server received n requests of operation. It
// reports a mismatch with t.Errorf and returns whether the count matched.
func (k *Kit) AssertKMSCalls(t TB, operation string, n int) bool {
	t.Helper()
	if k.kms == nil {
		t.Errorf("workflowtest: the Kit has no KMS test server (encryption off or another key provider)")
		return false
	}
	if got := k.kms.Calls(operation); got != n {
		t.Errorf("workflowtest: %d KMS %s calls, want %d", got, operation, n)
		return false
	}
	return true
}

// FindSpans returns the ended spans named name that carry all of attrs.
func (k *Kit) FindSpans(name string, attrs ...attribute.KeyValue) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range k.spans.Ended() {
		if s.Name() == name && hasAll(s.Attributes(), attrs) {
			out = append(out, s)
		}
	}
	return out
}

// AssertSpan checks that an ended span named name carries all of attrs, and returns the first
// such span. Otherwise it reports the names of the spans that did end with t.Errorf and returns nil.
func (k *Kit) AssertSpan(t TB, name string, attrs ...attribute.KeyValue) sdktrace.ReadOnlySpan {
	t.Helper()
	if found := k.FindSpans(name, attrs...); len(found) > 0 {
		return found[0]
	}
	seen := map[string]bool{}
	for _, s := range k.spans.Ended() {
		seen[s.Name()] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Errorf("workflowtest: no ended span %q with attributes %v; ended spans: %s", name, attrs, strings.Join(names, ", "))
	return nil
}

func hasAll(have []attribute.KeyValue, want []attribute.KeyValue) bool {
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h attribute.KeyValue) bool { return h.Key == w.Key && h.Value == w.Value }) {
			return false
		}
	}
	return true
}

// MetricValue collects the Kit's metrics and returns the value of the metric named name over the
// data points carrying all of attrs: the sum of counter (Sum) points, the sum of gauge points,
// or the sum of the values recorded in histogram points. found is false when no data point matched.
func (k *Kit) MetricValue(name string, attrs ...attribute.KeyValue) (value float64, found bool) {
	v, _, found := k.metric(name, attrs)
	return v, found
}

// MetricCount returns the number of values recorded in the histogram named name over the data
// points carrying all of attrs (for counters and gauges: the number of matching data points).
func (k *Kit) MetricCount(name string, attrs ...attribute.KeyValue) (count uint64, found bool) {
	_, c, found := k.metric(name, attrs)
	return c, found
}

// AssertMetric checks that MetricValue(name, attrs...) is want. It reports a mismatch with
// t.Errorf and returns whether the value matched.
func (k *Kit) AssertMetric(t TB, name string, want float64, attrs ...attribute.KeyValue) bool {
	t.Helper()
	got, found := k.MetricValue(name, attrs...)
	switch {
	case !found:
		t.Errorf("workflowtest: no data point of metric %q with attributes %v; metrics: %s", name, attrs, strings.Join(k.metricNames(), ", "))
		return false
	case got != want:
		t.Errorf("workflowtest: metric %q with attributes %v is %v, want %v", name, attrs, got, want)
		return false
	}
	return true
}

func (k *Kit) collect() metricdata.ResourceMetrics {
	var rm metricdata.ResourceMetrics
	_ = k.metrics.Collect(context.Background(), &rm)
	return rm
}

func (k *Kit) metricNames() []string {
	var names []string
	for _, sm := range k.collect().ScopeMetrics {
		for _, m := range sm.Metrics {
			names = append(names, m.Name)
		}
	}
	sort.Strings(names)
	return names
}

func (k *Kit) metric(name string, attrs []attribute.KeyValue) (value float64, count uint64, found bool) {
	set := func(s attribute.Set) bool { return hasAll(s.ToSlice(), attrs) }
	for _, sm := range k.collect().ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					if set(p.Attributes) {
						value, count, found = value+float64(p.Value), count+1, true
					}
				}
			case metricdata.Sum[float64]:
				for _, p := range d.DataPoints {
					if set(p.Attributes) {
						value, count, found = value+p.Value, count+1, true
					}
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					if set(p.Attributes) {
						value, count, found = value+float64(p.Value), count+1, true
					}
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					if set(p.Attributes) {
						value, count, found = value+p.Value, count+1, true
					}
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					if set(p.Attributes) {
						value, count, found = value+float64(p.Sum), count+p.Count, true
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					if set(p.Attributes) {
						value, count, found = value+p.Sum, count+p.Count, true
					}
				}
			}
		}
	}
	return value, count, found
}
