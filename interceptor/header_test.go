package interceptor

import (
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// testHeaderKey is the Temporal header field of the SDK tracer's spans, as New learns it.
var testHeaderKey = func() string {
	tel, err := New(&Options{DisableSDKTracing: true})
	if err != nil {
		panic(err)
	}
	return tel.headerKey
}()

const testTraceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

func headerWith(t testing.TB, carrier map[string]string) map[string]*commonpb.Payload {
	p, err := converter.GetDefaultDataConverter().ToPayload(carrier)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*commonpb.Payload{testHeaderKey: p}
}

func TestHeaderSpanContext(t *testing.T) {
	sc := headerSpanContext(headerWith(t, map[string]string{"traceparent": testTraceparent}), testHeaderKey)
	if !sc.IsValid() || !sc.IsRemote() || sc.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" || sc.SpanID().String() != "b7ad6b7169203331" {
		t.Fatalf("span context %+v", sc)
	}
	for name, h := range map[string]map[string]*commonpb.Payload{
		"nil":         nil,
		"no parent":   headerWith(t, map[string]string{"baggage": "a=b"}),
		"bad parent":  headerWith(t, map[string]string{"traceparent": "00-zz-yy-01"}),
		"not json":    {testHeaderKey: {Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte("{")}},
		"other codec": {testHeaderKey: {Metadata: map[string][]byte{"encoding": []byte("binary/zstd")}, Data: []byte(`{"traceparent":"` + testTraceparent + `"}`)}},
		"oversized":   {testHeaderKey: {Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: make([]byte, maxTracingHeaderSize+1)}},
	} {
		if sc := headerSpanContext(h, testHeaderKey); sc.IsValid() {
			t.Errorf("%s: got a valid span context %v", name, sc)
		}
	}
}

// FuzzHeaderSpanContext feeds arbitrary header payloads (they come from workflow history) to
// the header parser: it must never panic.
func FuzzHeaderSpanContext(f *testing.F) {
	f.Add([]byte(`{"traceparent":"`+testTraceparent+`"}`), "json/plain")
	f.Add([]byte(`{"traceparent":"00-00000000000000000000000000000000-0000000000000000-00"}`), "json/plain")
	f.Add([]byte(`{"traceparent":5}`), "json/plain")
	f.Add([]byte(`null`), "json/plain")
	f.Add([]byte{0xff, 0x00}, "binary/plain")
	f.Fuzz(func(t *testing.T, data []byte, encoding string) {
		sc := headerSpanContext(map[string]*commonpb.Payload{testHeaderKey: {
			Metadata: map[string][]byte{"encoding": []byte(encoding)}, Data: data,
		}}, testHeaderKey)
		if sc.IsValid() && !sc.IsRemote() {
			t.Fatal("a span context read from a header must be remote")
		}
	})
}
