package interceptor

import (
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// encodeN runs n encodes through a one-stage pipeline observed by r and returns the time the
// last one returned.
func encodeN(t *testing.T, r *recorder, n int) time.Time {
	t.Helper()
	c := r.codec(stageCompression, converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true}))
	in := []*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`{"a":1}`)}}
	for range n {
		if _, err := c.Encode(in); err != nil {
			t.Fatal(err)
		}
	}
	return time.Now()
}

// endedNow counts the codec spans the recorder has received, without flushing.
func endedNow(r *recorder) int {
	n := 0
	for _, s := range r.spans.Ended() {
		if s.Name() == SpanEncode {
			n++
		}
	}
	return n
}

// Codec spans wait to be ended: Flush ends them, the spanBatchSize-th waiting span ends the
// whole batch at once, the timer ends the rest after the delay, and every span keeps the end
// time of its chain run, not the time it was ended.
func TestCodecSpansEndInBatches(t *testing.T) {
	r := newRecorder(t, Options{DisableSDKTracing: true})
	r.tel.ender.delay = time.Hour // only Flush and the batch size end spans

	last := encodeN(t, r, 3)
	if n := endedNow(r); n != 0 {
		t.Fatalf("%d codec spans ended before Flush, want 0 (they wait)", n)
	}
	time.Sleep(20 * time.Millisecond)
	r.tel.Flush()
	spans := r.ended(SpanEncode)
	if len(spans) != 3 {
		t.Fatalf("%d codec spans after Flush, want 3", len(spans))
	}
	for _, s := range spans {
		if s.EndTime().After(last) || s.EndTime().Before(s.StartTime()) {
			t.Fatalf("span ended at %v (started %v): want its chain run's end, before %v", s.EndTime(), s.StartTime(), last)
		}
	}

	encodeN(t, r, spanBatchSize-1)
	if n := endedNow(r); n != 3 {
		t.Fatalf("%d codec spans ended with %d waiting, want 3", n, spanBatchSize-1)
	}
	encodeN(t, r, 1)
	if n := endedNow(r); n != 3+spanBatchSize {
		t.Fatalf("%d codec spans ended after the %dth waiting one, want %d", n, spanBatchSize, 3+spanBatchSize)
	}

	// The timer ends waiting spans without Flush.
	r.tel.ender.delay = 10 * time.Millisecond
	encodeN(t, r, 2)
	deadline := time.Now().Add(5 * time.Second)
	for endedNow(r) != 5+spanBatchSize {
		if time.Now().After(deadline) {
			t.Fatalf("%d codec spans ended 5s after the last encode, want %d", endedNow(r), 5+spanBatchSize)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// With EndSpansImmediately, each codec span ends as its chain run returns.
func TestCodecSpansEndImmediately(t *testing.T) {
	r := newRecorder(t, Options{DisableSDKTracing: true, EndSpansImmediately: true})
	r.tel.ender.delay = time.Hour
	encodeN(t, r, 2)
	if n := endedNow(r); n != 2 {
		t.Fatalf("%d codec spans ended, want 2", n)
	}
}
