package s3store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/offload/s3store"
	"github.com/payloadkit/payloadkit/workflowtest"
)

const testDigest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// Up to the part size, PutParts is one PutObject with a CRC32 checksum and the object metadata;
// above it, a multipart upload with the metadata and CRC32 parts.
func TestPutPartsRequests(t *testing.T) {
	fake := newFakeS3()
	s, err := s3store.New(fake, "bk", &s3store.Options{PartSize: s3store.MinPartSize})
	if err != nil {
		t.Fatal(err)
	}
	key := offload.CodecKey("pk", "payments", testDigest)
	parts := [][]byte{[]byte("header"), bytes.Repeat([]byte("d"), 1000)}
	sum := sha256.Sum256(bytes.Join(parts, nil))
	before := time.Now().Add(-time.Second)
	if err := s.PutParts(context.Background(), key, parts, sum); err != nil {
		t.Fatal(err)
	}
	in := fake.puts[0]
	if in.ChecksumAlgorithm != types.ChecksumAlgorithmCrc32 {
		t.Errorf("ChecksumAlgorithm = %q, want CRC32", in.ChecksumAlgorithm)
	}
	if !bytes.Equal(fake.objects[key], bytes.Join(parts, nil)) || aws.ToInt64(in.ContentLength) != 1006 {
		t.Errorf("stored %d bytes, ContentLength %d; want the 1006 bytes of the parts", len(fake.objects[key]), aws.ToInt64(in.ContentLength))
	}
	checkMetadata(t, in.Metadata, "payments", before)

	big := [][]byte{[]byte("header"), make([]byte, 2*s3store.MinPartSize+10)}
	driverKey := "v0/ns/prod/wt/W/wi/id/ri/run/d/sha256/" + testDigest
	if err := s.PutParts(context.Background(), driverKey, big, sha256.Sum256(bytes.Join(big, nil))); err != nil {
		t.Fatal(err)
	}
	if len(fake.creates) != 1 || len(fake.partSizes) != 3 {
		t.Fatalf("creates/parts = %d/%d, want 1/3", len(fake.creates), len(fake.partSizes))
	}
	if fake.creates[0].ChecksumAlgorithm != types.ChecksumAlgorithmCrc32 {
		t.Errorf("multipart ChecksumAlgorithm = %q, want CRC32", fake.creates[0].ChecksumAlgorithm)
	}
	checkMetadata(t, fake.creates[0].Metadata, "prod", before)
	if !bytes.Equal(fake.objects[driverKey], bytes.Join(big, nil)) {
		t.Fatal("multipart object from parts corrupted")
	}

	// Plain Put writes the same metadata (namespace of another key layout: "_").
	if err := s.Put(context.Background(), "other/key", []byte("x")); err != nil {
		t.Fatal(err)
	}
	checkMetadata(t, fake.puts[1].Metadata, offload.UnknownNamespace, before)
}

func checkMetadata(t *testing.T, md map[string]string, namespace string, after time.Time) {
	t.Helper()
	if md[s3store.MetadataNamespace] != namespace || md[s3store.MetadataFormat] != "1" {
		t.Errorf("metadata %v: want namespace %q and format 1", md, namespace)
	}
	w, err := time.Parse(time.RFC3339, md[s3store.MetadataWritten])
	if err != nil || !strings.HasSuffix(md[s3store.MetadataWritten], "Z") || w.Before(after.Truncate(time.Second)) || w.After(time.Now()) {
		t.Errorf("metadata %s = %q (%v): want the RFC 3339 UTC write time", s3store.MetadataWritten, md[s3store.MetadataWritten], err)
	}
	if len(md) != 3 {
		t.Errorf("metadata %v: want exactly 3 entries", md)
	}
}

// GetInto reads an object of twice the part size or more with ranged GETs of at least the part
// size, into the caller's buffer, and a smaller one with one GET; a smaller or larger object
// than the buffer, or one overwritten while it is read, fails.
func TestGetIntoRanges(t *testing.T) {
	fake := newFakeS3()
	s, err := s3store.New(fake, "bk", &s3store.Options{PartSize: s3store.MinPartSize, UploadConcurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := make([]byte, 3*s3store.MinPartSize+5)
	for i := range data {
		data[i] = byte(i * 31)
	}
	fake.objects["k"], fake.etags["k"] = data, "e1"
	buf := make([]byte, len(data))
	if err := s.GetInto(ctx, "k", buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, data) {
		t.Fatal("ranged GetInto returned other bytes")
	}
	if len(fake.gets) != 3 {
		t.Fatalf("GETs = %d, want 3 ranges", len(fake.gets))
	}
	for _, g := range fake.gets {
		if g.Range == nil {
			t.Fatal("a GET of an object of three part sizes was not ranged")
		}
	}
	// Below twice the part size: one GET, no range.
	fake.gets = nil
	fake.objects["small"], fake.etags["small"] = data[:2*s3store.MinPartSize-1], "e1"
	small := make([]byte, 2*s3store.MinPartSize-1)
	if err := s.GetInto(ctx, "small", small); err != nil || !bytes.Equal(small, data[:len(small)]) {
		t.Fatalf("GetInto below twice the part size: %v", err)
	}
	if len(fake.gets) != 1 || fake.gets[0].Range != nil {
		t.Fatalf("GETs below twice the part size = %d (first ranged: %v), want one whole GET", len(fake.gets), fake.gets[0].Range != nil)
	}
	// RangeSize sets the ranges apart from the part size.
	fake.gets = nil
	byRange, err := s3store.New(fake, "bk", &s3store.Options{PartSize: s3store.MinPartSize, RangeSize: s3store.MinPartSize / 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := byRange.GetInto(ctx, "small", small); err != nil || !bytes.Equal(small, data[:len(small)]) || len(fake.gets) != 3 {
		t.Fatalf("GetInto with RangeSize of half a part: %d GETs, %v; want 3 ranges", len(fake.gets), err)
	}
	for _, size := range []int{len(data) - 1, len(data) + 1, len(data) + 2*s3store.MinPartSize, s3store.MinPartSize} {
		err := s.GetInto(ctx, "k", make([]byte, size))
		if !errors.Is(err, offload.ErrIntegrity) || strings.Contains(err.Error(), "15728645") {
			t.Fatalf("GetInto into %d bytes: err = %v, want ErrIntegrity not naming the real size", size, err)
		}
	}

	// The object changes between the ranges (read one at a time here, so that the change falls
	// between two of them): a retryable error, not a torn buffer.
	s, err = s3store.New(fake, "bk", &s3store.Options{PartSize: s3store.MinPartSize, UploadConcurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	changeOnSecondGet(fake, "k")
	err = s.GetInto(ctx, "k", make([]byte, len(data)))
	if !errors.Is(err, offload.ErrStore) || !errors.Is(err, offload.ErrRetryable) || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("GetInto of an object overwritten meanwhile: err = %v, want a retryable ErrStore", err)
	}
	fake.onGet = nil
	if err := s.GetInto(ctx, "missing", make([]byte, len(data))); !errors.Is(err, offload.ErrNotFound) {
		t.Fatalf("GetInto of a missing object: err = %v, want ErrNotFound", err)
	}
}

// changeOnSecondGet makes the fake give key a new ETag when its second GET arrives, as if the
// object were overwritten between two ranged reads.
func changeOnSecondGet(fake *fakeS3, key string) {
	var n atomic.Int64
	fake.onGet = func(*s3.GetObjectInput) {
		if n.Add(1) == 2 {
			fake.mu.Lock()
			fake.etags[key] = "e2"
			fake.mu.Unlock()
		}
	}
}

// orderedHash is the io.Writer given to GetIntoHashing in tests: a SHA-256 that also counts the
// bytes written and signals once it has seen at least signalAt of them.
type orderedHash struct {
	h        hash.Hash
	n        atomic.Int64
	signalAt int64
	reached  chan struct{}
}

func newOrderedHash(signalAt int64) *orderedHash {
	return &orderedHash{h: sha256.New(), signalAt: signalAt, reached: make(chan struct{})}
}

func (o *orderedHash) Write(p []byte) (int, error) {
	o.h.Write(p)
	if n := o.n.Add(int64(len(p))); n >= o.signalAt && n-int64(len(p)) < o.signalAt {
		close(o.reached)
	}
	return len(p), nil
}

// GetIntoHashing writes the object to the hash exactly once and in order, with one GET or with
// ranges, and hashes the first range while a later one has not arrived yet; a size mismatch or
// an object changed between its ranges fails as GetInto does.
func TestGetIntoHashing(t *testing.T) {
	ctx := context.Background()
	data := make([]byte, 3*s3store.MinPartSize+5)
	for i := range data {
		data[i] = byte(i * 31)
	}
	want := sha256.Sum256(data)
	for _, tc := range []struct {
		name string
		opts s3store.Options
		gets int
	}{
		{"one GET", s3store.Options{PartSize: s3store.MinPartSize, RangeSize: 1 << 30}, 1},
		{"3 ranges, 1 at a time", s3store.Options{PartSize: s3store.MinPartSize, UploadConcurrency: 1}, 3},
		{"3 ranges, 3 at a time", s3store.Options{PartSize: s3store.MinPartSize, UploadConcurrency: 3}, 3},
		{"6 ranges, 2 at a time", s3store.Options{PartSize: s3store.MinPartSize, RangeSize: s3store.MinPartSize / 2, UploadConcurrency: 2}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFakeS3()
			fake.objects["k"], fake.etags["k"] = data, "e1"
			s, err := s3store.New(fake, "bk", &tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, len(data))
			h := newOrderedHash(int64(len(data)))
			if err := s.GetIntoHashing(ctx, "k", buf, h); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf, data) || h.n.Load() != int64(len(data)) || !bytes.Equal(h.h.Sum(nil), want[:]) {
				t.Fatalf("hashed %d bytes, digest %x; want %d bytes, %x and the object in buf", h.n.Load(), h.h.Sum(nil), len(data), want)
			}
			if len(fake.gets) != tc.gets {
				t.Fatalf("GETs = %d, want %d", len(fake.gets), tc.gets)
			}
		})
	}

	// The last range is served only once the hash has seen the whole first range.
	fake := newFakeS3()
	fake.objects["k"], fake.etags["k"] = data, "e1"
	s, err := s3store.New(fake, "bk", &s3store.Options{PartSize: s3store.MinPartSize, UploadConcurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	rangeSize := int64(len(data)+2) / 3
	h := newOrderedHash(rangeSize)
	fake.onGet = func(in *s3.GetObjectInput) {
		if strings.HasPrefix(aws.ToString(in.Range), fmt.Sprintf("bytes=%d-", 2*rangeSize)) {
			select {
			case <-h.reached:
			case <-time.After(10 * time.Second):
				t.Error("the first range was not hashed while the last one was held back")
			}
		}
	}
	if err := s.GetIntoHashing(ctx, "k", make([]byte, len(data)), h); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h.h.Sum(nil), want[:]) {
		t.Fatal("the hash differs from the object's SHA-256")
	}

	// Errors are GetInto's.
	err = s.GetIntoHashing(ctx, "k", make([]byte, len(data)+1), sha256.New())
	if !errors.Is(err, offload.ErrIntegrity) {
		t.Fatalf("GetIntoHashing into a larger buffer: err = %v, want ErrIntegrity", err)
	}
	changeOnSecondGet(fake, "k")
	err = s.GetIntoHashing(ctx, "k", make([]byte, len(data)), sha256.New())
	if !errors.Is(err, offload.ErrRetryable) || !strings.Contains(err.Error(), "changed") {
		t.Fatalf("GetIntoHashing of an object overwritten meanwhile: err = %v, want a retryable ErrStore", err)
	}
	fake.onGet = nil
	if err := s.GetIntoHashing(ctx, "missing", make([]byte, 10), sha256.New()); !errors.Is(err, offload.ErrNotFound) {
		t.Fatalf("GetIntoHashing of a missing object: err = %v, want ErrNotFound", err)
	}
}

// On MinIO, single-put and multipart objects carry the metadata, Stat reports their size and
// write time, and the codec round-trips a payload larger than the part size.
func TestMetadataOnS3(t *testing.T) {
	client, bucket := workflowtest.S3(t)
	s, err := s3store.New(client, bucket, &s3store.Options{PartSize: s3store.MinPartSize})
	if err != nil {
		t.Fatal(err)
	}
	c := newCodec(t, &offload.Options{Store: s, Threshold: 1000, Prefix: "metadata-test"})
	for _, tc := range []struct {
		name string
		size int
	}{{"single put", 100 << 10}, {"multipart", 3*s3store.MinPartSize + 7}} {
		before := time.Now().Add(-2 * time.Second)
		p := bigPayload(tc.size, byte(time.Now().UnixNano()))
		p.Data[1] = byte(time.Now().UnixNano() >> 8)
		enc, err := c.Encode([]*commonpb.Payload{p})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		cl, _ := offload.ParseClaim(enc[0])
		head, err := client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(cl.Key)})
		if err != nil {
			t.Fatalf("%s: HeadObject: %v", tc.name, err)
		}
		checkMetadata(t, head.Metadata, offload.UnknownNamespace, before)
		info, err := s.Stat(context.Background(), cl.Key)
		if err != nil || info.Size != cl.Size || info.Modified.Before(before) {
			t.Fatalf("%s: Stat = %+v, %v; want size %d written now", tc.name, info, err, cl.Size)
		}
		dec, err := c.Decode(enc)
		if err != nil || !proto.Equal(dec[0], p) {
			t.Fatalf("%s: round trip: %v", tc.name, err)
		}
	}
}

// On MinIO, PutParts signs the body with the caller's SHA-256: a wrong digest is refused by
// the server and leaves no object, the right one stores the concatenation.
func TestPutPartsSignsWithCallerDigestOnS3(t *testing.T) {
	client, bucket := workflowtest.S3(t)
	s, err := s3store.New(client, bucket, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := "putparts-test/" + strconvNano() + "/sha256/" + testDigest
	parts := [][]byte{[]byte("header "), bytes.Repeat([]byte("body"), 1000)}
	wrong := sha256.Sum256([]byte("something else"))
	if err := s.PutParts(ctx, key, parts, wrong); !errors.Is(err, offload.ErrStore) {
		t.Fatalf("PutParts with a wrong digest: err = %v, want the server's refusal", err)
	}
	if _, err := s.Stat(ctx, key); !errors.Is(err, offload.ErrNotFound) {
		t.Fatalf("a refused PutParts left an object (Stat err = %v)", err)
	}
	if err := s.PutParts(ctx, key, parts, sha256.Sum256(bytes.Join(parts, nil))); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, key)
	if err != nil || !bytes.Equal(got, bytes.Join(parts, nil)) {
		t.Fatalf("Get after PutParts: %d bytes, %v", len(got), err)
	}
}

func strconvNano() string { return time.Now().Format("20060102T150405.000000000") }

// On MinIO, an object older than RefreshAge is written again (its write time and metadata
// change); a younger one is deduplicated.
func TestRefreshAgeOnS3(t *testing.T) {
	client, bucket := workflowtest.S3(t)
	s, err := s3store.New(client, bucket, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	record := func(e offload.ObjectEvent) { ops = append(ops, e.Operation) }
	refreshing := newCodec(t, &offload.Options{Store: s, Threshold: 1000, Prefix: "refresh-test", RefreshAge: time.Second, OnObject: record})
	keeping := newCodec(t, &offload.Options{Store: s, Threshold: 1000, Prefix: "refresh-test", RefreshAge: time.Hour, OnObject: record})
	p := bigPayload(50<<10, byte(time.Now().UnixNano()))
	p.Metadata["nonce"] = []byte(time.Now().String())
	enc, err := refreshing.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := offload.ParseClaim(enc[0])
	head := func() *s3.HeadObjectOutput {
		out, err := client.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(cl.Key)})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	first := head()
	time.Sleep(2100 * time.Millisecond) // S3 write times count in seconds
	if _, err := keeping.Encode([]*commonpb.Payload{p}); err != nil {
		t.Fatal(err)
	}
	if _, err := refreshing.Encode([]*commonpb.Payload{p}); err != nil {
		t.Fatal(err)
	}
	if want := []string{offload.OpPut, offload.OpDeduplicated, offload.OpPut}; strings.Join(ops, ",") != strings.Join(want, ",") {
		t.Fatalf("operations = %v, want %v", ops, want)
	}
	second := head()
	if !second.LastModified.After(*first.LastModified) || second.Metadata[s3store.MetadataWritten] == first.Metadata[s3store.MetadataWritten] {
		t.Fatalf("the refreshed object kept its write time: %v / %q", second.LastModified, second.Metadata[s3store.MetadataWritten])
	}
	dec, err := keeping.Decode(enc)
	if err != nil || !proto.Equal(dec[0], p) {
		t.Fatalf("Decode after the refresh: %v", err)
	}
}
