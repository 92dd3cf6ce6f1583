package offload_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/offload/storetest"
	"github.com/payloadkit/payloadkit/workflowtest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.RunConformance(t, func(t *testing.T) offload.Store { return offload.NewMemoryStore() })
}

func TestFileStoreConformance(t *testing.T) {
	dir := t.TempDir() // shared by every subtest, as by several workers on one machine
	storetest.RunConformance(t, func(t *testing.T) offload.Store {
		s, err := offload.NewFileStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
	// No temporary file is left behind.
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".pk-tmp-") {
			t.Errorf("temporary file left behind: %s", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestS3StoreConformance(t *testing.T) {
	client, bucket := workflowtest.S3(t)
	storetest.RunConformance(t, func(t *testing.T) offload.Store {
		s, err := offload.NewS3Store(client, bucket)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestFileStorePaths(t *testing.T) {
	dir := t.TempDir()
	s, err := offload.NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Path("payloadkit/ns%2Fx/sha256/ab")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "payloadkit", "ns%252Fx", "sha256", "ab"); p != want {
		t.Fatalf("Path = %s, want %s", p, want)
	}
	p, err = s.Path(".hidden/a b/..x")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "%2Ehidden", "a%20b", "%2E.x"); p != want {
		t.Fatalf("Path = %s, want %s (no file name may start with '.')", p, want)
	}
	for _, key := range []string{"../escape", "a/../../b", "/etc/passwd", "a/..", "..", "a\\..\\b/../c"} {
		if _, err := s.Path(key); err == nil {
			t.Errorf("Path(%q) accepted a key escaping the directory", key)
		}
		err := s.Put(context.Background(), key, []byte("x"))
		if !errors.Is(err, offload.ErrStore) || !strings.Contains(err.Error(), "invalid key") {
			t.Errorf("Put(%q) err = %v, want ErrStore for an invalid key", key, err)
		}
	}
	// A backslash is an ordinary, escaped byte: it cannot climb directories on any platform.
	p, err = s.Path(`a\..\b`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p, dir+string(filepath.Separator)) || strings.Contains(p, `\`) {
		t.Fatalf("Path with backslashes = %s", p)
	}
}

func TestFileStoreSharedBetweenInstances(t *testing.T) {
	dir := t.TempDir()
	a, _ := offload.NewFileStore(dir)
	b, _ := offload.NewFileStore(dir)
	ca := newCodec(t, &offload.Options{Store: a, Threshold: 100})
	cb := newCodec(t, &offload.Options{Store: b, Threshold: 100})
	p := bigPayload(1000, 20)
	enc, err := ca.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := cb.Decode(enc)
	if err != nil || !proto.Equal(dec[0], p) {
		t.Fatalf("a second FileStore on the same directory could not read the object: %v", err)
	}
}

// fakeS3 is an in-memory S3Client recording requests.
type fakeS3 struct {
	mu         sync.Mutex
	objects    map[string][]byte
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
	return &fakeS3{objects: map[string][]byte{}, uploads: map[string]map[int32][]byte{}}
}

func (f *fakeS3) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	b, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts = append(f.puts, in)
	f.objects[*in.Key] = b
	return &s3.PutObjectOutput{}, nil
}

func (f *fakeS3) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.objects[*in.Key]
	if !ok {
		return nil, &types.NoSuchKey{}
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(b)), ContentLength: aws.Int64(int64(len(b)))}, nil
}

func (f *fakeS3) HeadObject(_ context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.objects[*in.Key]; !ok {
		return nil, &types.NotFound{}
	}
	return &s3.HeadObjectOutput{}, nil
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
	f.objects[*in.Key] = all
	f.completed = append(f.completed, *in.UploadId)
	return &s3.CompleteMultipartUploadOutput{}, nil
}

func (f *fakeS3) AbortMultipartUpload(_ context.Context, in *s3.AbortMultipartUploadInput, _ ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.aborted = append(f.aborted, *in.UploadId)
	return &s3.AbortMultipartUploadOutput{}, nil
}

func TestS3StoreOptions(t *testing.T) {
	fake := newFakeS3()
	s, err := offload.NewS3Store(fake, "bk",
		offload.WithSSEKMS("arn:aws:kms:us-east-1:111122223333:key/k1"),
		offload.WithStorageClass(types.StorageClassIntelligentTiering),
		offload.WithTags(map[string]string{"app": "payloadkit", "ttl": "30 days"}))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "s3/bk" || !s.Remote() || s.Bucket() != "bk" {
		t.Fatalf("Name/Remote/Bucket = %s/%v/%s", s.Name(), s.Remote(), s.Bucket())
	}
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
	tags, err := url.ParseQuery(aws.ToString(in.Tagging))
	if err != nil || tags.Get("app") != "payloadkit" || tags.Get("ttl") != "30 days" {
		t.Errorf("Tagging = %q (%v)", aws.ToString(in.Tagging), err)
	}
	if aws.ToString(in.Bucket) != "bk" || aws.ToInt64(in.ContentLength) != 4 {
		t.Errorf("Bucket/ContentLength = %s/%d", aws.ToString(in.Bucket), aws.ToInt64(in.ContentLength))
	}

	// SSE-KMS with the bucket's default key: aws:kms without a key id.
	fake2 := newFakeS3()
	s2, _ := offload.NewS3Store(fake2, "bk", offload.WithSSEKMS(""))
	if err := s2.Put(context.Background(), "k", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if fake2.puts[0].ServerSideEncryption != types.ServerSideEncryptionAwsKms || fake2.puts[0].SSEKMSKeyId != nil {
		t.Errorf("WithSSEKMS(\"\"): SSE = %s, key id %v", fake2.puts[0].ServerSideEncryption, fake2.puts[0].SSEKMSKeyId)
	}
}

func TestS3StoreMultipart(t *testing.T) {
	const part = offload.MinPartSize
	fake := newFakeS3()
	fake.partGate = make(chan struct{})
	s, err := offload.NewS3Store(fake, "bk", offload.WithPartSize(part), offload.WithUploadConcurrency(2),
		offload.WithSSEKMS("k2"), offload.WithTags(map[string]string{"a": "b"}))
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

func TestS3StoreMultipartAbortsOnFailure(t *testing.T) {
	fake := newFakeS3()
	fake.failPart = 2
	s, _ := offload.NewS3Store(fake, "bk", offload.WithPartSize(offload.MinPartSize))
	err := s.Put(context.Background(), "big", make([]byte, 3*offload.MinPartSize))
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

func TestNewS3StoreValidation(t *testing.T) {
	fake := newFakeS3()
	if _, err := offload.NewS3Store(nil, "b"); err == nil {
		t.Error("nil client accepted")
	}
	if _, err := offload.NewS3Store(fake, ""); err == nil {
		t.Error("empty bucket accepted")
	}
	if _, err := offload.NewS3Store(fake, "b", offload.WithPartSize(offload.MinPartSize-1)); err == nil {
		t.Error("part size below 5 MiB accepted")
	}
	if _, err := offload.NewS3Store(fake, "b", offload.WithUploadConcurrency(0)); err == nil {
		t.Error("upload concurrency 0 accepted")
	}
	s, err := offload.NewS3Store(fake, "b", offload.WithStoreName("archive"))
	if err != nil || s.Name() != "archive" {
		t.Errorf("WithStoreName: %v %v", s, err)
	}
}

// With MinIO down, S3 errors are retryable; once it is back, the same call succeeds.
func TestS3StoreRetryableWhenMinIODown(t *testing.T) {
	m := workflowtest.StartMinIO(t)
	s, err := offload.NewS3Store(m.Client(), m.Bucket())
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
	s, err := offload.NewS3Store(client, bucket)
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
