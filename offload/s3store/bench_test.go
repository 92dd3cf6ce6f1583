package s3store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/payloadkit/payloadkit/internal/benchutil"
	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/offload/s3store"
	"github.com/payloadkit/payloadkit/workflowtest"
)

// BenchmarkS3RoundTrip compares, on MinIO, a round trip through the claim-check codec on the S3
// store (framing, SHA-256, HeadObject, PutObject or multipart upload, GetObject (ranged above
// the part size), verify, parse) with the baseline a careful user would write by hand:
// PutObject then GetObject of the same bytes into a buffer of the response's Content-Length.
// All alternatives share one *s3.Client with the SDK's default settings (over plain HTTP the
// SDK hashes request bodies for SigV4 and adds CRC32 checksums, and validates response
// checksums), and run interleaved in each iteration, in an order rotating between iterations.
// Each iteration uses fresh bytes, so the codec never deduplicates. Reported per size: for each
// alternative (raw; offload with the default 16 MiB parts and ranged GETs from 32 MiB;
// offload-1get, the same parts but one GET whatever the size; offload-1put, the codec with one
// PutObject and one GET whatever the size; offload-hash-after, the default store hiding
// offload.HashingGetter, so that the codec hashes the object once it has all arrived) the time
// per round trip, its ratio to raw (-vs-raw-x), the peak heap in use above the pre-operation
// level, sampled inside the benchmark while the operation runs (MiB, and -heap-x, its ratio to
// the payload size), and the bytes allocated; a table follows. Times are medians over the iterations, and each ratio is the median of the
// per-iteration ratios to raw's time in the same iteration: MinIO shares the two cores with the
// benchmark, and a single slow write of MinIO's would otherwise decide a mean.
func BenchmarkS3RoundTrip(b *testing.B) {
	client, bucket := workflowtest.S3(b)
	newCodec := func(opts *s3store.Options) converter.PayloadCodec {
		store, err := s3store.New(client, bucket, opts)
		if err != nil {
			b.Fatal(err)
		}
		c, err := offload.NewCodec(&offload.Options{Store: store, Prefix: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	multipart := newCodec(nil)                                  // parts of up to 16 MiB, 4 in parallel; ranged GETs
	singleGet := newCodec(&s3store.Options{RangeSize: 1 << 30}) // the same parts, one GET whatever the size
	singlePut := newCodec(&s3store.Options{PartSize: 1 << 30})  // one PutObject and one GET whatever the size
	// The default store without offload.HashingGetter: the codec hashes the buffer once it is full.
	plainStore, err := s3store.New(client, bucket, nil)
	if err != nil {
		b.Fatal(err)
	}
	hashAfter, err := offload.NewCodec(&offload.Options{Store: hashAfterStore{plainStore}, Prefix: "bench"})
	if err != nil {
		b.Fatal(err)
	}

	type alt struct {
		name string
		run  func(data []byte, nonce uint64) error
	}
	raw := func(data []byte, nonce uint64) error {
		key := fmt.Sprintf("bench/raw/%d-%d", len(data), nonce)
		if _, err := client.PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(key),
			Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
		}); err != nil {
			return err
		}
		out, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			return err
		}
		defer out.Body.Close()
		if aws.ToInt64(out.ContentLength) != int64(len(data)) {
			return fmt.Errorf("raw get returned Content-Length %d", aws.ToInt64(out.ContentLength))
		}
		got := make([]byte, aws.ToInt64(out.ContentLength))
		_, err = io.ReadFull(out.Body, got)
		return err
	}
	viaCodec := func(c converter.PayloadCodec) func([]byte, uint64) error {
		return func(data []byte, _ uint64) error {
			p := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/plain")}, Data: data}
			enc, err := c.Encode([]*commonpb.Payload{p})
			if err != nil {
				return err
			}
			if !offload.IsClaim(enc[0]) {
				return fmt.Errorf("payload was not offloaded")
			}
			dec, err := c.Decode(enc)
			if err == nil && len(dec[0].Data) != len(data) {
				err = fmt.Errorf("decoded %d bytes", len(dec[0].Data))
			}
			return err
		}
	}
	alts := []alt{{"raw", raw}, {"offload", viaCodec(multipart)}, {"offload-1get", viaCodec(singleGet)}, {"offload-1put", viaCodec(singlePut)},
		{"offload-hash-after", viaCodec(hashAfter)}}

	type result struct {
		d           time.Duration // median of the iterations
		ratio       float64       // median of the per-iteration ratios to raw
		peak, alloc float64
	}
	table := map[int][]result{}
	sizes := []int{1 << 20, 16 << 20, 64 << 20}
	for _, size := range sizes {
		b.Run(fmt.Sprintf("size=%dMiB", size>>20), func(b *testing.B) {
			data := make([]byte, size)
			if _, err := rand.Read(data); err != nil {
				b.Fatal(err)
			}
			res := make([]result, len(alts))
			times := make([][]float64, len(alts))  // per iteration
			ratios := make([][]float64, len(alts)) // per iteration, to raw's time in that iteration
			nonce := uint64(time.Now().UnixNano())
			for i := 0; i < b.N; i++ {
				d := make([]time.Duration, len(alts))
				for k := range alts {
					j := (i + k) % len(alts) // rotate the order: no alternative always runs first
					a := alts[j]
					nonce++ // fresh bytes: the codec never deduplicates
					binary.LittleEndian.PutUint64(data, nonce)
					var peak, alloc float64
					d[j], peak, alloc = measure(b, func() error { return a.run(data, nonce) })
					res[j].peak = max(res[j].peak, peak)
					res[j].alloc += alloc
				}
				for j := range alts {
					times[j] = append(times[j], float64(d[j]))
					ratios[j] = append(ratios[j], float64(d[j])/float64(d[0]))
				}
			}
			n := float64(b.N)
			for j, a := range alts {
				res[j].d = time.Duration(benchutil.Median(times[j]))
				res[j].ratio = benchutil.Median(ratios[j])
				res[j].alloc /= n
				b.ReportMetric(float64(res[j].d.Microseconds())/1000, a.name+"-ms/op")
				b.ReportMetric(res[j].peak, a.name+"-peak-heap-MiB")
				b.ReportMetric(res[j].peak/float64(size>>20), a.name+"-heap-x")
				b.ReportMetric(res[j].alloc, a.name+"-alloc-MiB/op")
				if j > 0 {
					b.ReportMetric(res[j].ratio, a.name+"-vs-raw-x")
				}
			}
			table[size] = res // the measured run comes last and overwrites the b.N = 1 probe
		})
	}
	fmt.Fprintf(os.Stdout, "\nS3 round trip on MinIO, per operation (time, ratio to raw, peak heap above baseline and its ratio to the payload, allocated)\n")
	fmt.Fprintf(os.Stdout, "%-7s", "size")
	for _, a := range alts {
		fmt.Fprintf(os.Stdout, " | %-45s", a.name)
	}
	fmt.Fprintln(os.Stdout)
	for _, size := range sizes {
		res, ok := table[size]
		if !ok {
			continue
		}
		fmt.Fprintf(os.Stdout, "%-7s", fmt.Sprintf("%dMiB", size>>20))
		for _, r := range res {
			fmt.Fprintf(os.Stdout, " | %8s %5.2fx %6.1fMiB %5.2fx %6.1fMiB", r.d.Round(time.Millisecond),
				r.ratio, r.peak, r.peak/float64(size>>20), r.alloc)
		}
		fmt.Fprintln(os.Stdout)
	}
}

// hashAfterStore is an S3 store seen without its GetIntoHashing: the codec then reads the
// object with GetInto and hashes it afterwards, as before offload.HashingGetter.
type hashAfterStore struct {
	sizedStore
}

type sizedStore interface {
	offload.Store
	offload.BoundedGetter
	offload.PartsPutter
	offload.SizedGetter
	offload.Stater
	Remote() bool
}

// measure runs fn after a GC and returns its duration, the peak heap in use above the starting
// level (sampled every millisecond, in MiB) and the bytes it allocated (MiB).
func measure(b *testing.B, fn func() error) (time.Duration, float64, float64) {
	b.StopTimer()
	runtime.GC()
	base := heapObjects()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	allocBefore := ms.TotalAlloc
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if h := heapObjects(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	b.StartTimer()
	start := time.Now()
	err := fn()
	d := time.Since(start)
	b.StopTimer()
	close(stop)
	wg.Wait()
	if err != nil {
		b.Fatal(err)
	}
	runtime.ReadMemStats(&ms)
	p := float64(0)
	if pk := peak.Load(); pk > base {
		p = float64(pk-base) / (1 << 20)
	}
	b.StartTimer()
	return d, p, float64(ms.TotalAlloc-allocBefore) / (1 << 20)
}

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
var heapMu sync.Mutex

func heapObjects() uint64 {
	heapMu.Lock()
	defer heapMu.Unlock()
	metrics.Read(heapSample)
	return heapSample[0].Value.Uint64()
}
