package s3store

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

	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/offload/internal/objkey"
)

// Client is the part of *s3.Client the store calls. *s3.Client implements it; tests may pass a
// fake.
type Client interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}

var _ Client = (*s3.Client)(nil)

// Defaults and limits of Options.
const (
	// DefaultPartSize is the size of multipart upload parts; objects of this size or less are
	// written with one PutObject (16 MiB).
	DefaultPartSize = 16 << 20
	// MinPartSize is the smallest part size S3 accepts (5 MiB).
	MinPartSize = 5 << 20
	// DefaultUploadConcurrency bounds the parts of one object uploaded in parallel.
	DefaultUploadConcurrency = 4
)

const (
	// maxParts is the most parts S3 accepts in one multipart upload.
	maxParts = 10000
	// abortTimeout bounds the AbortMultipartUpload call made after a failed multipart upload.
	abortTimeout = 30 * time.Second
)

// Options configure a Store. A nil *Options, and the zero value of every field, mean the default.
type Options struct {
	// Name is the store name recorded in claims, at most 256 bytes. Defaults to "s3/<bucket>".
	// Changing it makes existing claims unreadable by the codec.
	Name string
	// SSEKMS encrypts new objects at rest with AWS KMS (ServerSideEncryption aws:kms), under
	// SSEKMSKeyID or, when that is empty, the bucket's AWS managed key. Defaults to false: the
	// bucket's default encryption applies.
	SSEKMS bool
	// SSEKMSKeyID is the id, ARN or alias of the KMS key of SSEKMS. Defaults to the bucket's AWS
	// managed key. Setting it without SSEKMS is rejected.
	SSEKMSKeyID string
	// StorageClass of new objects. Defaults to the bucket's default.
	StorageClass types.StorageClass
	// Tags are set on new objects (for example for lifecycle rules that expire offloaded
	// payloads). The map is copied. Defaults to none.
	Tags map[string]string
	// PartSize is the multipart part size in bytes: objects larger than it are uploaded in
	// parts. Defaults to DefaultPartSize; values below MinPartSize are rejected.
	PartSize int64
	// UploadConcurrency bounds the parts of one object uploaded in parallel. Defaults to
	// DefaultUploadConcurrency; negative values are rejected.
	UploadConcurrency int
}

// config is Options with defaults applied and values validated.
type config struct {
	name              string
	sse               types.ServerSideEncryption
	kmsKeyID          *string
	storageClass      types.StorageClass
	tagging           *string
	partSize          int64
	uploadConcurrency int
}

// Store is an offload.Store in an S3 bucket (AWS S3 or a compatible service such as MinIO).
// Objects above the part size are uploaded in parts with bounded concurrency; a failed multipart
// upload is aborted. Failures that may succeed when retried (network errors, timeouts,
// throttling, 5xx) match offload.ErrRetryable. Exists uses HeadObject, which needs s3:ListBucket
// permission to tell a missing object (404) from a forbidden one (403).
type Store struct {
	client Client
	bucket string
	cfg    config
}

var (
	_ offload.Store         = (*Store)(nil)
	_ offload.BoundedGetter = (*Store)(nil)
)

// New returns a store writing to bucket through client. Client and bucket are required; opts
// may be nil.
func New(client Client, bucket string, opts *Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("s3store: client is required")
	}
	if bucket == "" {
		return nil, errors.New("s3store: bucket is required")
	}
	if opts == nil {
		opts = &Options{}
	}
	cfg := config{
		name:              opts.Name,
		storageClass:      opts.StorageClass,
		partSize:          opts.PartSize,
		uploadConcurrency: opts.UploadConcurrency,
	}
	switch {
	case cfg.partSize < 0:
		return nil, fmt.Errorf("s3store: PartSize must not be negative, got %d", cfg.partSize)
	case cfg.partSize == 0:
		cfg.partSize = DefaultPartSize
	case cfg.partSize < MinPartSize:
		return nil, fmt.Errorf("s3store: PartSize must be at least MinPartSize (%d bytes), got %d", MinPartSize, cfg.partSize)
	}
	switch {
	case cfg.uploadConcurrency < 0:
		return nil, fmt.Errorf("s3store: UploadConcurrency must not be negative, got %d", cfg.uploadConcurrency)
	case cfg.uploadConcurrency == 0:
		cfg.uploadConcurrency = DefaultUploadConcurrency
	}
	if cfg.name == "" {
		cfg.name = "s3/" + bucket
	}
	if len(cfg.name) > objkey.MaxStoreNameSize {
		return nil, fmt.Errorf("s3store: Name is longer than %d bytes", objkey.MaxStoreNameSize)
	}
	switch {
	case opts.SSEKMS:
		cfg.sse = types.ServerSideEncryptionAwsKms
		if opts.SSEKMSKeyID != "" {
			cfg.kmsKeyID = aws.String(opts.SSEKMSKeyID)
		}
	case opts.SSEKMSKeyID != "":
		return nil, errors.New("s3store: SSEKMSKeyID is set but SSEKMS is false")
	}
	cfg.tagging = tagging(opts.Tags)
	return &Store{client: client, bucket: bucket, cfg: cfg}, nil
}

// tagging encodes tags as the Tagging header of PutObject and CreateMultipartUpload, sorted by key.
func tagging(tags map[string]string) *string {
	if len(tags) == 0 {
		return nil
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	v := url.Values{}
	for _, k := range keys {
		v.Set(k, tags[k])
	}
	return aws.String(v.Encode())
}

// Name returns the store name ("s3/<bucket>" unless Options.Name is set).
func (s *Store) Name() string { return s.cfg.name }

// Bucket returns the bucket name. The offload storage driver records it in its claims.
func (s *Store) Bucket() string { return s.bucket }

// Remote returns true: calls leave the process, so the Kit turns off the SDK's deadlock
// detector around the DataConverter and relies on the per-call timeout.
func (s *Store) Remote() bool { return true }

// PartSize returns the multipart part size in bytes.
func (s *Store) PartSize() int64 { return s.cfg.partSize }

// Put writes data under key: one PutObject up to the part size, a multipart upload above it.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	if err := objkey.Validate(key); err != nil {
		return s.newError("put", key, offload.ErrStore, err, "")
	}
	if int64(len(data)) > s.cfg.partSize {
		return s.putMultipart(ctx, key, data)
	}
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(key),
		Body:                 bytes.NewReader(data),
		ContentLength:        aws.Int64(int64(len(data))),
		ContentType:          aws.String("application/octet-stream"),
		ServerSideEncryption: s.cfg.sse,
		SSEKMSKeyId:          s.cfg.kmsKeyID,
		StorageClass:         s.cfg.storageClass,
		Tagging:              s.cfg.tagging,
	})
	if err != nil {
		return s.error("put", key, err)
	}
	return nil
}

func (s *Store) putMultipart(ctx context.Context, key string, data []byte) error {
	// Split into the fewest parts of at most the part size (and at most maxParts), all of about
	// the same size, so that no tiny trailing part costs a request of its own.
	size := int64(len(data))
	nParts := max((size+s.cfg.partSize-1)/s.cfg.partSize, (size+maxParts-1)/maxParts)
	nParts = min(nParts, maxParts)
	partSize := max((size+nParts-1)/nParts, MinPartSize)
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(key),
		ContentType:          aws.String("application/octet-stream"),
		ServerSideEncryption: s.cfg.sse,
		SSEKMSKeyId:          s.cfg.kmsKeyID,
		StorageClass:         s.cfg.storageClass,
		Tagging:              s.cfg.tagging,
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
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
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
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	return s.GetBounded(ctx, key, -1)
}

// GetBounded returns the object under key, or an error matching offload.ErrTooLarge, without
// reading the body, when it is larger than maxBytes (a negative maxBytes means no bound).
func (s *Store) GetBounded(ctx context.Context, key string, maxBytes int64) ([]byte, error) {
	if err := objkey.Validate(key); err != nil {
		return nil, s.newError("get", key, offload.ErrStore, err, "")
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, s.error("get", key, err)
	}
	defer out.Body.Close()
	tooLarge := func() error {
		return s.newError("get", key, offload.ErrTooLarge, nil, fmt.Sprintf("object is larger than the limit of %d bytes", maxBytes))
	}
	size := aws.ToInt64(out.ContentLength)
	if out.ContentLength != nil && maxBytes >= 0 && size > maxBytes {
		return nil, tooLarge()
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
			return nil, tooLarge()
		}
	}
	return data, nil
}

// Exists reports whether an object is stored under key (HeadObject).
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	if err := objkey.Validate(key); err != nil {
		return false, s.newError("exists", key, offload.ErrStore, err, "")
	}
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err == nil {
		return true, nil
	}
	e := s.error("exists", key, err)
	if errors.Is(e, offload.ErrNotFound) {
		return false, nil
	}
	return false, e
}

// newError returns the *offload.Error of an operation on key in this store.
func (s *Store) newError(op, key string, kind, cause error, detail string) *offload.Error {
	return &offload.Error{Op: op, Store: s.cfg.name, Key: key, Kind: kind, Err: cause, Detail: detail}
}

// error classifies an S3 error: not found, retryable (network, timeout, throttling, 5xx), or other.
func (s *Store) error(op, key string, err error) *offload.Error {
	e := s.newError(op, key, offload.ErrStore, err, "")
	if s.cfg.name != "s3/"+s.bucket {
		e.Detail = "bucket " + s.bucket
	}
	if isNotFound(err) {
		e.Kind = offload.ErrNotFound
		e.Err = nil
		return e
	}
	e.Retryable = isRetryable(err)
	return e
}

func isNotFound(err error) bool {
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
