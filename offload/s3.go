package offload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"
)

// S3Client is the part of *s3.Client the S3 store calls. *s3.Client implements it; tests may
// pass a fake.
type S3Client interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}

var _ S3Client = (*s3.Client)(nil)

// S3 store defaults.
const (
	// DefaultPartSize is the size of multipart upload parts; objects of this size or less are
	// written with one PutObject (16 MiB).
	DefaultPartSize = 16 << 20
	// MinPartSize is the smallest part size S3 accepts (5 MiB).
	MinPartSize = 5 << 20
	// DefaultUploadConcurrency bounds the parts of one object uploaded in parallel.
	DefaultUploadConcurrency = 4
	// maxParts is the most parts S3 accepts in one multipart upload.
	maxParts = 10000
)

// S3Option configures an S3Store.
type S3Option func(*s3Config)

type s3Config struct {
	name              string
	kmsKeyID          string
	storageClass      types.StorageClass
	tags              map[string]string
	partSize          int64
	uploadConcurrency int
	abortTimeout      time.Duration
}

// WithSSEKMS encrypts objects at rest with the AWS KMS key keyID (ServerSideEncryption aws:kms
// and SSEKMSKeyId). An empty keyID uses the bucket's AWS managed key.
func WithSSEKMS(keyID string) S3Option {
	return func(c *s3Config) {
		c.kmsKeyID = keyID
		if keyID == "" {
			c.kmsKeyID = "-" // aws:kms without a key id
		}
	}
}

// WithStorageClass sets the storage class of new objects. Defaults to the bucket's default.
func WithStorageClass(class types.StorageClass) S3Option {
	return func(c *s3Config) { c.storageClass = class }
}

// WithTags sets object tags on new objects (for example for lifecycle rules that expire
// offloaded payloads).
func WithTags(tags map[string]string) S3Option {
	return func(c *s3Config) {
		c.tags = make(map[string]string, len(tags))
		for k, v := range tags {
			c.tags[k] = v
		}
	}
}

// WithPartSize sets the multipart part size in bytes: objects larger than it are uploaded in
// parts. Defaults to DefaultPartSize; must be at least MinPartSize.
func WithPartSize(n int64) S3Option {
	return func(c *s3Config) { c.partSize = n }
}

// WithUploadConcurrency bounds the parts of one object uploaded in parallel. Defaults to
// DefaultUploadConcurrency.
func WithUploadConcurrency(n int) S3Option {
	return func(c *s3Config) { c.uploadConcurrency = n }
}

// WithStoreName sets the store name recorded in claims. Defaults to "s3/<bucket>". Changing it
// makes existing claims unreadable by the codec.
func WithStoreName(name string) S3Option {
	return func(c *s3Config) { c.name = name }
}

// S3Store is a Store in an S3 bucket (AWS S3 or a compatible service such as MinIO).
// Objects above the part size are uploaded in parts with bounded concurrency; a failed multipart
// upload is aborted. Failures that may succeed when retried (network errors, timeouts,
// throttling, 5xx) match ErrRetryable. Exists uses HeadObject, which needs s3:ListBucket
// permission to tell a missing object (404) from a forbidden one (403).
type S3Store struct {
	client S3Client
	bucket string
	cfg    s3Config
}

var (
	_ Store         = (*S3Store)(nil)
	_ BoundedGetter = (*S3Store)(nil)
)

// NewS3Store returns a store writing to bucket through client.
func NewS3Store(client S3Client, bucket string, opts ...S3Option) (*S3Store, error) {
	if client == nil {
		return nil, errors.New("offload: S3 client is required")
	}
	if bucket == "" {
		return nil, errors.New("offload: S3 bucket is required")
	}
	cfg := s3Config{partSize: DefaultPartSize, uploadConcurrency: DefaultUploadConcurrency, abortTimeout: 30 * time.Second}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.partSize < MinPartSize {
		return nil, fmt.Errorf("offload: S3 part size must be at least %d bytes, got %d", MinPartSize, cfg.partSize)
	}
	if cfg.uploadConcurrency < 1 {
		return nil, fmt.Errorf("offload: S3 upload concurrency must be at least 1, got %d", cfg.uploadConcurrency)
	}
	if cfg.name == "" {
		cfg.name = "s3/" + bucket
	}
	if len(cfg.name) > maxStoreNameSize {
		return nil, fmt.Errorf("offload: S3 store name is longer than %d bytes", maxStoreNameSize)
	}
	return &S3Store{client: client, bucket: bucket, cfg: cfg}, nil
}

// Name returns the store name ("s3/<bucket>" unless set with WithStoreName).
func (s *S3Store) Name() string { return s.cfg.name }

// Bucket returns the bucket name.
func (s *S3Store) Bucket() string { return s.bucket }

// Remote returns true: calls leave the process, so the Kit turns off the SDK's deadlock
// detector around the DataConverter and relies on the per-call timeout.
func (s *S3Store) Remote() bool { return true }

// PartSize returns the multipart part size in bytes.
func (s *S3Store) PartSize() int64 { return s.cfg.partSize }

func (s *S3Store) tagging() *string {
	if len(s.cfg.tags) == 0 {
		return nil
	}
	keys := make([]string, 0, len(s.cfg.tags))
	for k := range s.cfg.tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	v := url.Values{}
	for _, k := range keys {
		v.Set(k, s.cfg.tags[k])
	}
	return aws.String(v.Encode())
}

func (s *S3Store) sse() (types.ServerSideEncryption, *string) {
	switch s.cfg.kmsKeyID {
	case "":
		return "", nil
	case "-":
		return types.ServerSideEncryptionAwsKms, nil
	default:
		return types.ServerSideEncryptionAwsKms, aws.String(s.cfg.kmsKeyID)
	}
}

// Put writes data under key: one PutObject up to the part size, a multipart upload above it.
func (s *S3Store) Put(ctx context.Context, key string, data []byte) error {
	if err := validateKey(key); err != nil {
		return newError("put", s.Name(), key, ErrStore, err, "")
	}
	if int64(len(data)) > s.cfg.partSize {
		return s.putMultipart(ctx, key, data)
	}
	sse, kmsKey := s.sse()
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(key),
		Body:                 bytes.NewReader(data),
		ContentLength:        aws.Int64(int64(len(data))),
		ContentType:          aws.String("application/octet-stream"),
		ServerSideEncryption: sse,
		SSEKMSKeyId:          kmsKey,
		StorageClass:         s.cfg.storageClass,
		Tagging:              s.tagging(),
	})
	if err != nil {
		return s.error("put", key, err)
	}
	return nil
}

func (s *S3Store) putMultipart(ctx context.Context, key string, data []byte) error {
	// Split into the fewest parts of at most the part size (and at most maxParts), all of about
	// the same size, so that no tiny trailing part costs a request of its own.
	size := int64(len(data))
	nParts := max((size+s.cfg.partSize-1)/s.cfg.partSize, (size+maxParts-1)/maxParts)
	nParts = min(nParts, maxParts)
	partSize := max((size+nParts-1)/nParts, MinPartSize)
	sse, kmsKey := s.sse()
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(key),
		ContentType:          aws.String("application/octet-stream"),
		ServerSideEncryption: sse,
		SSEKMSKeyId:          kmsKey,
		StorageClass:         s.cfg.storageClass,
		Tagging:              s.tagging(),
		ChecksumAlgorithm:    types.ChecksumAlgorithmCrc32,
	})
	if err != nil {
		return s.error("put", key, err)
	}
	uploadID := created.UploadId

	nParts = (size + partSize - 1) / partSize
	parts := make([]types.CompletedPart, nParts)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.uploadConcurrency)
	for i := range nParts {
		start := i * partSize
		end := min(start+partSize, size)
		g.Go(func() error {
			out, err := s.client.UploadPart(gctx, &s3.UploadPartInput{
				Bucket:            aws.String(s.bucket),
				Key:               aws.String(key),
				UploadId:          uploadID,
				PartNumber:        aws.Int32(int32(i + 1)),
				Body:              bytes.NewReader(data[start:end]),
				ContentLength:     aws.Int64(end - start),
				ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
			})
			if err != nil {
				return err
			}
			parts[i] = types.CompletedPart{
				PartNumber:    aws.Int32(int32(i + 1)),
				ETag:          out.ETag,
				ChecksumCRC32: out.ChecksumCRC32,
			}
			return nil
		})
	}
	err = g.Wait()
	if err == nil {
		_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket:          aws.String(s.bucket),
			Key:             aws.String(key),
			UploadId:        uploadID,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		})
	}
	if err != nil {
		// Abort even when ctx is done, so that no parts are left billed in the bucket.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.abortTimeout)
		defer cancel()
		_, abortErr := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket:   aws.String(s.bucket),
			Key:      aws.String(key),
			UploadId: uploadID,
		})
		e := s.error("put", key, err)
		detail := fmt.Sprintf("multipart upload %s failed and was aborted", aws.ToString(uploadID))
		if abortErr != nil {
			detail = fmt.Sprintf("multipart upload %s failed and could not be aborted (%v)", aws.ToString(uploadID), abortErr)
		}
		if e.Detail != "" {
			detail = e.Detail + ", " + detail
		}
		e.Detail = detail
		return e
	}
	return nil
}

// Get returns the object under key.
func (s *S3Store) Get(ctx context.Context, key string) ([]byte, error) {
	return s.GetBounded(ctx, key, -1)
}

// GetBounded returns the object under key, or an error matching ErrTooLarge, without reading the
// body, when it is larger than maxBytes (a negative maxBytes means no bound).
func (s *S3Store) GetBounded(ctx context.Context, key string, maxBytes int64) ([]byte, error) {
	if err := validateKey(key); err != nil {
		return nil, newError("get", s.Name(), key, ErrStore, err, "")
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, s.error("get", key, err)
	}
	defer out.Body.Close()
	size := aws.ToInt64(out.ContentLength)
	if out.ContentLength != nil && maxBytes >= 0 && size > maxBytes {
		return nil, newError("get", s.Name(), key, ErrTooLarge, nil, "object is larger than the limit of %d bytes", maxBytes)
	}
	var data []byte
	if out.ContentLength != nil && size >= 0 {
		data = make([]byte, size)
		if _, err := io.ReadFull(out.Body, data); err != nil {
			return nil, s.error("get", key, err)
		}
	} else {
		r := io.Reader(out.Body)
		if maxBytes >= 0 {
			r = io.LimitReader(out.Body, maxBytes+1)
		}
		data, err = io.ReadAll(r)
		if err != nil {
			return nil, s.error("get", key, err)
		}
		if maxBytes >= 0 && int64(len(data)) > maxBytes {
			return nil, newError("get", s.Name(), key, ErrTooLarge, nil, "object is larger than the limit of %d bytes", maxBytes)
		}
	}
	return data, nil
}

// Exists reports whether an object is stored under key (HeadObject).
func (s *S3Store) Exists(ctx context.Context, key string) (bool, error) {
	if err := validateKey(key); err != nil {
		return false, newError("exists", s.Name(), key, ErrStore, err, "")
	}
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err == nil {
		return true, nil
	}
	e := s.error("exists", key, err)
	if errors.Is(e, ErrNotFound) {
		return false, nil
	}
	return false, e
}

// error classifies an S3 error: not found, retryable (network, timeout, throttling, 5xx), or other.
func (s *S3Store) error(op, key string, err error) *Error {
	e := newError(op, s.Name(), key, ErrStore, err, "")
	if s.cfg.name != "s3/"+s.bucket {
		e.Detail = "bucket " + s.bucket
	}
	if isS3NotFound(err) {
		e.Kind = ErrNotFound
		e.Err = nil
		return e
	}
	e.Retryable = isRetryable(err)
	return e
}

func isS3NotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == 404
}

// retryables are the AWS SDK's own checks (connection errors, 5xx, request timeouts) plus throttling.
var retryables = retry.IsErrorRetryables(append(append([]retry.IsErrorRetryable{}, retry.DefaultRetryables...),
	retry.RetryableErrorCode{Codes: retry.DefaultThrottleErrorCodes}))

func isRetryable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		if c := re.HTTPStatusCode(); c >= 500 || c == 429 {
			return true
		}
	}
	return retryables.IsErrorRetryable(err) == aws.TrueTernary
}
