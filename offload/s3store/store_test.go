package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/offload/s3store"
	"github.com/payloadkit/payloadkit/offload/storetest"
	"github.com/payloadkit/payloadkit/workflowtest"
)

func newCodec(t *testing.T, opts *offload.Options) *offload.Codec {
	t.Helper()
	c, err := offload.NewCodec(opts)
	if err != nil {
		t.Fatalf("NewCodec: %v", err)
	}
	return c
}

// bigPayload returns a JSON-like payload whose marshalled size is about n bytes, varied by seed.
func bigPayload(n int, seed byte) *commonpb.Payload {
	data := bytes.Repeat([]byte{'a' + seed%26}, n)
	data[0] = seed
	return &commonpb.Payload{
		Metadata: map[string][]byte{"encoding": []byte("json/plain"), "x-seed": {seed}},
		Data:     data,
	}
}

// TestConformance runs offload/storetest on MinIO (the PAYLOADKIT_S3_* environment variables; skipped
// without them, failing instead when CI is set).
func TestConformance(t *testing.T) {
	client, bucket := workflowtest.S3(t)
	storetest.RunConformance(t, func(t *testing.T) offload.Store {
		s, err := s3store.New(client, bucket, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// fakeS3 is an in-memory s3store.Client recording requests.
type fakeS3 struct {
	mu         sync.Mutex
	objects    map[string][]byte
	meta       map[string]map[string]string
	modified   map[string]time.Time
	etags      map[string]string
	gets       []*s3.GetObjectInput
	onGet      func(in *s3.GetObjectInput) // called before a GetObject is served, without the lock
	puts       []*s3.PutObjectInput
	creates    []*s3.CreateMultipartUploadInput
	uploads    map[string]map[int32][]byte
	partSizes  []int64
	completed  []string
	aborted    []string
	failPart   int32
	inFlight   atomic.Int64
	maxIn      atomic.Int64
	partGate   chan struct{}
	partsSeen  atomic.Int64
	nextUpload int
}

func newFakeS3() *fakeS3 {
	return &fakeS3{objects: map[string][]byte{}, uploads: map[string]map[int32][]byte{},
		meta: map[string]map[string]string{}, modified: map[string]time.Time{}, etags: map[string]string{}}
}

// setObject records an object written now, with a new ETag; f.mu is held.
func (f *fakeS3) setObject(key string, data []byte, meta map[string]string) {
	f.objects[key] = data
	f.meta[key] = meta
	f.modified[key] = time.Now()
	f.etags[key] = strconv.Itoa(len(f.etags) + 1)
}

func (f *fakeS3) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts = append(f.puts, in)
	f.setObject(*in.Key, b, in.Metadata)
	return &s3.PutObjectOutput{}, nil
}

// GetObject serves whole objects and single byte ranges ("bytes=a-b"), as S3 does.
func (f *fakeS3) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if f.onGet != nil {
		f.onGet(in)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets = append(f.gets, in)
	b, ok := f.objects[*in.Key]
	if !ok {
		return nil, &types.NoSuchKey{}
	}
	out := &s3.GetObjectOutput{ETag: aws.String(f.etags[*in.Key])}
	if in.Range != nil {
		var start, end int64
		if _, err := fmt.Sscanf(*in.Range, "bytes=%d-%d", &start, &end); err != nil {
			return nil, err
		}
		if start >= int64(len(b)) {
			return nil, &smithy.GenericAPIError{Code: "InvalidRange", Message: "range not satisfiable"}
		}
		end = min(end, int64(len(b))-1)
		out.ContentRange = aws.String(fmt.Sprintf("bytes %d-%d/%d", start, end, len(b)))
		b = b[start : end+1]
	}
	out.Body = io.NopCloser(bytes.NewReader(b))
	out.ContentLength = aws.Int64(int64(len(b)))
	return out, nil
}

func (f *fakeS3) HeadObject(_ context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.objects[*in.Key]
	if !ok {
		return nil, &types.NotFound{}
	}
	return &s3.HeadObjectOutput{ContentLength: aws.Int64(int64(len(b))), LastModified: aws.Time(f.modified[*in.Key]),
		Metadata: f.meta[*in.Key], ETag: aws.String(f.etags[*in.Key])}, nil
}

func (f *fakeS3) CreateMultipartUpload(_ context.Context, in *s3.CreateMultipartUploadInput, _ ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextUpload++
	id := "upload-" + strconv.Itoa(f.nextUpload)
	f.creates = append(f.creates, in)
	f.uploads[id] = map[int32][]byte{}
	return &s3.CreateMultipartUploadOutput{UploadId: aws.String(id)}, nil
}

func (f *fakeS3) UploadPart(_ context.Context, in *s3.UploadPartInput, _ ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxIn.Load()
		if n <= m || f.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	f.partsSeen.Add(1)
	if f.partGate != nil {
		<-f.partGate
	}
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	if *in.PartNumber == f.failPart {
		return nil, errors.New("injected part failure")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uploads[*in.UploadId][*in.PartNumber] = b
	f.partSizes = append(f.partSizes, int64(len(b)))
	return &s3.UploadPartOutput{ETag: aws.String("etag")}, nil
}

func (f *fakeS3) CompleteMultipartUpload(_ context.Context, in *s3.CompleteMultipartUploadInput, _ ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	parts := f.uploads[*in.UploadId]
	var all []byte
	for i, p := range in.MultipartUpload.Parts {
		if *p.PartNumber != int32(i+1) {
			return nil, errors.New("parts out of order")
		}
		all = append(all, parts[*p.PartNumber]...)
	}
	var meta map[string]string
	for _, c := range f.creates {
		if aws.ToString(c.Key) == *in.Key {
			meta = c.Metadata
		}
	}
	f.setObject(*in.Key, all, meta)
	f.completed = append(f.completed, *in.UploadId)
	return &s3.CompleteMultipartUploadOutput{}, nil
}

func (f *fakeS3) AbortMultipartUpload(_ context.Context, in *s3.AbortMultipartUploadInput, _ ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.aborted = append(f.aborted, *in.UploadId)
	return &s3.AbortMultipartUploadOutput{}, nil
}

func TestOptions(t *testing.T) {
	fake := newFakeS3()
	tags := map[string]string{"app": "payloadkit", "ttl": "30 days"}
	s, err := s3store.New(fake, "bk", &s3store.Options{
		SSEKMS:       true,
		SSEKMSKeyID:  "arn:aws:kms:us-east-1:111122223333:key/k1",
		StorageClass: types.StorageClassIntelligentTiering,
		Tags:         tags,
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "s3/bk" || !s.Remote() || s.Bucket() != "bk" || s.PartSize() != s3store.DefaultPartSize {
		t.Fatalf("Name/Remote/Bucket/PartSize = %s/%v/%s/%d", s.Name(), s.Remote(), s.Bucket(), s.PartSize())
	}
	tags["app"] = "changed after New" // the store keeps its own copy
	if err := s.Put(context.Background(), "k/1", []byte("data")); err != nil {
		t.Fatal(err)
	}
	in := fake.puts[0]
	if in.ServerSideEncryption != types.ServerSideEncryptionAwsKms || aws.ToString(in.SSEKMSKeyId) != "arn:aws:kms:us-east-1:111122223333:key/k1" {
		t.Errorf("SSE = %s %s", in.ServerSideEncryption, aws.ToString(in.SSEKMSKeyId))
	}
	if in.StorageClass != types.StorageClassIntelligentTiering {
		t.Errorf("StorageClass = %s", in.StorageClass)
	}
	got, err := url.ParseQuery(aws.ToString(in.Tagging))
	if err != nil || got.Get("app") != "payloadkit" || got.Get("ttl") != "30 days" {
		t.Errorf("Tagging = %q (%v)", aws.ToString(in.Tagging), err)
	}
	if aws.ToString(in.Bucket) != "bk" || aws.ToInt64(in.ContentLength) != 4 {
		t.Errorf("Bucket/ContentLength = %s/%d", aws.ToString(in.Bucket), aws.ToInt64(in.ContentLength))
	}

	// SSE-KMS with the bucket's default key: aws:kms without a key id.
	fake2 := newFakeS3()
	s2, _ := s3store.New(fake2, "bk", &s3store.Options{SSEKMS: true})
	if err := s2.Put(context.Background(), "k", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if fake2.puts[0].ServerSideEncryption != types.ServerSideEncryptionAwsKms || fake2.puts[0].SSEKMSKeyId != nil {
		t.Errorf("SSEKMS without a key id: SSE = %s, key id %v", fake2.puts[0].ServerSideEncryption, fake2.puts[0].SSEKMSKeyId)
	}
}

func TestMultipart(t *testing.T) {
	const part = s3store.MinPartSize
	fake := newFakeS3()
	fake.partGate = make(chan struct{})
	s, err := s3store.New(fake, "bk", &s3store.Options{
		PartSize: part, UploadConcurrency: 2,
		SSEKMS: true, SSEKMSKeyID: "k2", Tags: map[string]string{"a": "b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 5*part+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	done := make(chan error, 1)
	go func() { done <- s.Put(context.Background(), "big", data) }()
	for fake.inFlight.Load() < 2 { // wait until the bounded pool is full
		time.Sleep(time.Millisecond)
	}
	close(fake.partGate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := fake.maxIn.Load(); got != 2 {
		t.Fatalf("max parts in flight = %d, want the upload concurrency 2", got)
	}
	if len(fake.puts) != 0 || len(fake.creates) != 1 || len(fake.completed) != 1 {
		t.Fatalf("puts/creates/completes = %d/%d/%d, want 0/1/1", len(fake.puts), len(fake.creates), len(fake.completed))
	}
	c := fake.creates[0]
	if c.ServerSideEncryption != types.ServerSideEncryptionAwsKms || aws.ToString(c.SSEKMSKeyId) != "k2" || aws.ToString(c.Tagging) != "a=b" {
		t.Errorf("multipart upload lost options: %s %s %s", c.ServerSideEncryption, aws.ToString(c.SSEKMSKeyId), aws.ToString(c.Tagging))
	}
	if len(fake.partSizes) != 6 {
		t.Fatalf("parts = %d, want 6", len(fake.partSizes))
	}
	got, err := s.Get(context.Background(), "big")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("multipart object corrupted (%v)", err)
	}

	// An object exactly at the part size is one PutObject.
	if err := s.Put(context.Background(), "edge", make([]byte, part)); err != nil {
		t.Fatal(err)
	}
	if len(fake.puts) != 1 || len(fake.creates) != 1 {
		t.Fatalf("object of exactly the part size: puts/creates = %d/%d, want 1/1", len(fake.puts), len(fake.creates))
	}
}

func TestMultipartAbortsOnFailure(t *testing.T) {
	fake := newFakeS3()
	fake.failPart = 2
	s, _ := s3store.New(fake, "bk", &s3store.Options{PartSize: s3store.MinPartSize})
	err := s.Put(context.Background(), "big", make([]byte, 3*s3store.MinPartSize))
	if !errors.Is(err, offload.ErrStore) || !strings.Contains(err.Error(), "big") || !strings.Contains(err.Error(), "aborted") {
		t.Fatalf("Put with a failing part: err = %v, want ErrStore naming the key and the abort", err)
	}
	if len(fake.aborted) != 1 || len(fake.completed) != 0 {
		t.Fatalf("aborted/completed = %d/%d, want 1/0", len(fake.aborted), len(fake.completed))
	}
	if _, ok := fake.objects["big"]; ok {
		t.Fatal("a failed multipart upload left an object")
	}
}

func TestNewValidation(t *testing.T) {
	fake := newFakeS3()
	for _, tc := range []struct {
		name   string
		client s3store.Client
		bucket string
		opts   *s3store.Options
		want   string
	}{
		{"nil client", nil, "b", nil, "client is required"},
		{"empty bucket", fake, "", nil, "bucket is required"},
		{"part size below 5 MiB", fake, "b", &s3store.Options{PartSize: s3store.MinPartSize - 1}, "PartSize must be at least"},
		{"negative part size", fake, "b", &s3store.Options{PartSize: -1}, "PartSize must not be negative"},
		{"negative upload concurrency", fake, "b", &s3store.Options{UploadConcurrency: -1}, "UploadConcurrency must not be negative"},
		{"negative range size", fake, "b", &s3store.Options{RangeSize: -1}, "RangeSize must not be negative"},
		{"name too long", fake, "b", &s3store.Options{Name: strings.Repeat("n", 257)}, "Name is longer than 256 bytes"},
		{"key id without SSE-KMS", fake, "b", &s3store.Options{SSEKMSKeyID: "k"}, "SSEKMSKeyID is set but SSEKMS is false"},
	} {
		if _, err := s3store.New(tc.client, tc.bucket, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	s, err := s3store.New(fake, "b", &s3store.Options{Name: "archive"})
	if err != nil || s.Name() != "archive" {
		t.Errorf("Options.Name: %v %v", s, err)
	}
	s, err = s3store.New(fake, "b", &s3store.Options{})
	if err != nil || s.Name() != "s3/b" || s.PartSize() != s3store.DefaultPartSize {
		t.Errorf("zero Options: %v %v, want the defaults", s, err)
	}
}

// With MinIO down, S3 errors are retryable; once it is back, the same call succeeds.
func TestRetryableWhenMinIODown(t *testing.T) {
	m := workflowtest.StartMinIO(t)
	s, err := s3store.New(m.Client(), m.Bucket(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := newCodec(t, &offload.Options{Store: s, Threshold: 100})
	p := bigPayload(2000, 30)
	enc, err := c.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatalf("Encode with MinIO up: %v", err)
	}

	m.Stop()
	p2 := bigPayload(2000, 31)
	_, err = c.Encode([]*commonpb.Payload{p2})
	if !errors.Is(err, offload.ErrRetryable) || !errors.Is(err, offload.ErrStore) {
		t.Fatalf("Encode with MinIO down: err = %v, want ErrStore and ErrRetryable", err)
	}
	if !strings.Contains(err.Error(), "payloadkit/_/sha256/") {
		t.Fatalf("error %q does not name the key", err)
	}
	t.Logf("Encode with MinIO down: %v", err)
	_, err = c.Decode(enc)
	if !errors.Is(err, offload.ErrRetryable) {
		t.Fatalf("Decode with MinIO down: err = %v, want ErrRetryable", err)
	}
	if errors.Is(err, offload.ErrNotFound) {
		t.Fatalf("an unreachable store must not look like a missing object: %v", err)
	}

	m.Start()
	if _, err := c.Encode([]*commonpb.Payload{p2}); err != nil {
		t.Fatalf("Encode after MinIO restarted: %v", err)
	}
	dec, err := c.Decode(enc)
	if err != nil || !proto.Equal(dec[0], p) {
		t.Fatalf("Decode after MinIO restarted: %v", err)
	}
}

// The codec on the S3 store: integrity and missing objects against a real server.
func TestCodecOnS3(t *testing.T) {
	client, bucket := workflowtest.S3(t)
	s, err := s3store.New(client, bucket, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := newCodec(t, &offload.Options{Store: s, Threshold: 1000, Prefix: "codec-s3-test"})
	p := bigPayload(20<<20, byte(os.Getpid()))
	enc, err := c.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := c.Decode(enc)
	if err != nil || !proto.Equal(dec[0], p) {
		t.Fatalf("round trip of 20 MiB through S3: %v", err)
	}
	cl, _ := offload.ParseClaim(enc[0])
	// A same-size object differing in one byte: only the SHA-256, computed while the bytes
	// arrive (one GET, and ranged GETs), refuses it.
	obj, err := s.Get(context.Background(), cl.Key)
	if err != nil {
		t.Fatal(err)
	}
	obj[len(obj)/2] ^= 1
	if err := s.Put(context.Background(), cl.Key, obj); err != nil {
		t.Fatal(err)
	}
	ranged, err := s3store.New(client, bucket, &s3store.Options{RangeSize: s3store.MinPartSize})
	if err != nil {
		t.Fatal(err)
	}
	for _, store := range []*s3store.Store{s, ranged} {
		rc := newCodec(t, &offload.Options{Store: store, Threshold: 1000, Prefix: "codec-s3-test"})
		if _, err := rc.Decode(enc); !errors.Is(err, offload.ErrIntegrity) || !strings.Contains(err.Error(), "SHA-256") {
			t.Fatalf("same-size substitute: err = %v, want ErrIntegrity on the digest", err)
		}
	}
	if err := s.Put(context.Background(), cl.Key, []byte("tampered")); err != nil {
		t.Fatal(err)
	}
	_, err = c.Decode(enc)
	if !errors.Is(err, offload.ErrIntegrity) || !strings.Contains(err.Error(), cl.Key) {
		t.Fatalf("tampered object: err = %v, want ErrIntegrity naming %s", err, cl.Key)
	}
	missing, _ := offload.Claim{Store: s.Name(), Key: "codec-s3-test/none/sha256/" + cl.SHA256, Size: cl.Size, SHA256: cl.SHA256}.Payload()
	_, err = c.Decode([]*commonpb.Payload{missing})
	if !errors.Is(err, offload.ErrNotFound) || errors.Is(err, offload.ErrRetryable) {
		t.Fatalf("missing object: err = %v, want ErrNotFound, not retryable", err)
	}
}

// On an S3 store the claims carry the bucket, as the SDK's S3 driver's claims do.
func TestStorageDriverOnS3(t *testing.T) {
	client, bucket := workflowtest.S3(t)
	s, err := s3store.New(client, bucket, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := offload.NewStorageDriver(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	target := converter.StorageDriverWorkflowInfo{Namespace: "default", WorkflowType: "W", WorkflowID: "driver-test", RunID: "run"}
	in := []*commonpb.Payload{bigPayload(1<<20, 6), bigPayload(1<<20, 7)}
	claims, err := d.Store(converter.StorageDriverStoreContext{Context: context.Background(), Target: target}, in)
	if err != nil {
		t.Fatal(err)
	}
	if claims[0].ClaimData[offload.DriverClaimBucket] != bucket {
		t.Fatalf("claim bucket = %q, want %q", claims[0].ClaimData[offload.DriverClaimBucket], bucket)
	}
	out, err := d.Retrieve(converter.StorageDriverRetrieveContext{Context: context.Background()}, claims)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if !proto.Equal(out[i], in[i]) {
			t.Fatalf("payload %d did not round-trip through S3", i)
		}
	}
	other := []converter.StorageDriverClaim{{ClaimData: map[string]string{}}}
	for k, v := range claims[0].ClaimData {
		other[0].ClaimData[k] = v
	}
	other[0].ClaimData[offload.DriverClaimBucket] = "another-bucket"
	if _, err := d.Retrieve(converter.StorageDriverRetrieveContext{Context: context.Background()}, other); !errors.Is(err, offload.ErrStore) {
		t.Fatalf("claim of another bucket: err = %v, want ErrStore", err)
	}
}

// TestSinglePutSlack: objects of up to 1.25 times the part size are one PutObject (a payload
// of exactly the part size, framed by the codec, stays one object); larger ones are multipart.
func TestSinglePutSlack(t *testing.T) {
	const part = s3store.MinPartSize
	for _, tc := range []struct {
		size      int
		multipart bool
	}{{part + 64, false}, {part + part/4, false}, {part + part/4 + 1, true}} {
		fake := newFakeS3()
		s, err := s3store.New(fake, "bk", &s3store.Options{PartSize: part})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Put(context.Background(), "k", make([]byte, tc.size)); err != nil {
			t.Fatal(err)
		}
		if got := len(fake.creates) == 1; got != tc.multipart || len(fake.puts) == len(fake.creates) {
			t.Errorf("%d bytes: %d PutObject, %d multipart uploads; want multipart %v", tc.size, len(fake.puts), len(fake.creates), tc.multipart)
		}
	}
}
