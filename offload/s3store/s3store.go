package s3store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
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
	// DefaultPartSize is the size of multipart upload parts (16 MiB); objects of up to 1.25
	// times this size are written with one PutObject (see Options.PartSize).
	DefaultPartSize = 16 << 20
	// MinPartSize is the smallest part size S3 accepts (5 MiB).
	MinPartSize = 5 << 20
	// DefaultUploadConcurrency bounds the parts of one object uploaded, or the ranges of one
	// object downloaded, in parallel.
	DefaultUploadConcurrency = 4
)

// User metadata (x-amz-meta-*) of every object the store writes, for lifecycle rules, audits
// and cleanup tools.
const (
	// MetadataNamespace holds the namespace segment of the key, as escaped in the key
	// (offload.CodecKey, offload.DriverKey), or offload.UnknownNamespace for keys of another
	// layout.
	MetadataNamespace = "payloadkit-namespace"
	// MetadataWritten holds the write time, RFC 3339 in UTC.
	MetadataWritten = "payloadkit-written"
	// MetadataFormat holds the object format version, MetadataFormatVersion.
	MetadataFormat = "payloadkit-format"
	// MetadataFormatVersion is the format of the objects written: the bytes given to Put, for
	// the codec the deterministic proto marshalling of the payload.
	MetadataFormatVersion = "1"
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
	// PartSize is the multipart part size in bytes: objects larger than 1.25 times it are
	// uploaded in parts of at most PartSize. (The slack keeps a payload of exactly PartSize
	// bytes, which the codec's framing makes a few bytes larger, in one PutObject: a
	// multipart object is slower to write and read.) Defaults to DefaultPartSize; values below
	// MinPartSize are rejected.
	PartSize int64
	// UploadConcurrency bounds the parts of one object uploaded in parallel, and the ranges of
	// one object GetInto downloads in parallel. Defaults to DefaultUploadConcurrency; negative
	// values are rejected.
	UploadConcurrency int
	// RangeSize is the smallest range of GetInto's parallel ranged GETs: objects of less than
	// twice RangeSize are read with one GET, larger ones in ranges of one to two RangeSize.
	// Defaults to PartSize; negative values are rejected.
	RangeSize int64
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
	rangeSize         int64
}

// Store is an offload.Store in an S3 bucket (AWS S3 or a compatible service such as MinIO).
// Objects above the part size are uploaded in parts with bounded concurrency; a failed multipart
// upload is aborted. Parts are sections of the caller's bytes, never copies. GetInto reads an
// object of known size of twice the part size or more with parallel ranged GETs into the
// caller's buffer.
// Every object carries the user metadata MetadataNamespace, MetadataWritten and MetadataFormat.
// Failures that may succeed when retried (network errors, timeouts, throttling, 5xx) match
// offload.ErrRetryable. Exists and Stat use HeadObject, which needs s3:ListBucket permission to
// tell a missing object (404) from a forbidden one (403).
type Store struct {
	client Client
	bucket string
	cfg    config
	now    func() time.Time // the clock of MetadataWritten; tests replace it
}

var (
	_ offload.Store         = (*Store)(nil)
	_ offload.BoundedGetter = (*Store)(nil)
	_ offload.PartsPutter   = (*Store)(nil)
	_ offload.SizedGetter   = (*Store)(nil)
	_ offload.HashingGetter = (*Store)(nil)
	_ offload.Stater        = (*Store)(nil)
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
	case opts.RangeSize < 0:
		return nil, fmt.Errorf("s3store: RangeSize must not be negative, got %d", opts.RangeSize)
	case opts.RangeSize == 0:
		cfg.rangeSize = cfg.partSize
	default:
		cfg.rangeSize = opts.RangeSize
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
	return &Store{client: client, bucket: bucket, cfg: cfg, now: time.Now}, nil
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
// The AWS SDK computes the checksums of the request (with the client's settings).
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	return s.put(ctx, key, [][]byte{data}, nil)
}

// PutParts writes the concatenation of parts under key, as Put, without joining them: request
// bodies read the caller's slices. Up to the part size, the object is one PutObject whose SigV4
// payload hash is sum, so that the SDK does not compute a SHA-256 of the body again (over plain
// HTTP it would; S3 checks the body against it), only its CRC32 checksum; above it, a multipart
// upload whose parts the SDK hashes (SHA-256) in parallel.
func (s *Store) PutParts(ctx context.Context, key string, parts [][]byte, sum [sha256.Size]byte) error {
	return s.put(ctx, key, parts, &sum)
}

func (s *Store) put(ctx context.Context, key string, parts [][]byte, sum *[sha256.Size]byte) error {
	if err := objkey.Validate(key); err != nil {
		return s.newError("put", key, offload.ErrStore, err, "")
	}
	body := newPartsReader(parts)
	if body.size > singlePutMax(s.cfg.partSize) {
		return s.putMultipart(ctx, key, body)
	}
	in := &s3.PutObjectInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(key),
		Body:                 body,
		ContentLength:        aws.Int64(body.size),
		ContentType:          aws.String("application/octet-stream"),
		ServerSideEncryption: s.cfg.sse,
		SSEKMSKeyId:          s.cfg.kmsKeyID,
		StorageClass:         s.cfg.storageClass,
		Tagging:              s.cfg.tagging,
		Metadata:             s.metadata(key),
	}
	var optFns []func(*s3.Options)
	if sum != nil {
		// The caller's digest signs the body, so the SDK reads it only for its CRC32
		// checksum (cheap), not for a SHA-256 of its own.
		in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32
		optFns = append(optFns, withPayloadHash(hex.EncodeToString(sum[:])))
	}
	if _, err := s.client.PutObject(ctx, in, optFns...); err != nil {
		return s.error("put", key, err)
	}
	return nil
}

// withPayloadHash gives the SigV4 signer the SHA-256 of the request body, computed by the
// caller, so that the SDK does not read the body to compute it (it does over plain HTTP).
func withPayloadHash(hexSum string) func(*s3.Options) {
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("payloadkit.PayloadHash",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					return next.HandleFinalize(v4.SetPayloadHash(ctx, hexSum), in)
				}), middleware.Before)
		})
	}
}

// metadata returns the user metadata of a new object under key.
func (s *Store) metadata(key string) map[string]string {
	return map[string]string{
		MetadataNamespace: keyNamespace(key),
		MetadataWritten:   s.now().UTC().Format(time.RFC3339),
		MetadataFormat:    MetadataFormatVersion,
	}
}

// keyNamespace returns the namespace segment of a codec key (<prefix>/<namespace>/sha256/<hex>)
// or of a storage driver key (v0/ns/<namespace>/...), as escaped in the key, and
// offload.UnknownNamespace for other keys.
func keyNamespace(key string) string {
	segs := strings.Split(key, "/")
	n := len(segs)
	switch {
	case n == 12 && segs[0] == "v0" && segs[1] == "ns" && (segs[3] == "wt" || segs[3] == "at") &&
		(segs[5] == "wi" || segs[5] == "ai") && segs[7] == "ri" && segs[9] == "d" && segs[10] == "sha256":
		return segs[2]
	case n == 4 && segs[0] == "v0" && segs[1] == "d":
		return offload.UnknownNamespace // a driver key without a target
	case n >= 4 && segs[n-2] == "sha256" && isSHA256Hex(segs[n-1]):
		return segs[n-3]
	}
	return offload.UnknownNamespace
}

func isSHA256Hex(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// singlePutMax is the largest object written with one PutObject for a part size.
func singlePutMax(partSize int64) int64 { return partSize + partSize/4 }

func (s *Store) putMultipart(ctx context.Context, key string, body *partsReader) error {
	// Split into the fewest parts of at most the part size (and at most maxParts), all of about
	// the same size, so that no tiny trailing part costs a request of its own.
	size := body.size
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
		Metadata:             s.metadata(key),
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
				Body:              body.section(start, end),
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
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}, quietSkippedChecksums)
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

// GetInto reads the object under key into buf when it is exactly len(buf) bytes long (see
// offload.SizedGetter): with one GetObject below twice Options.RangeSize (by default the part
// size), and above it with ranged GetObjects of about equal sizes between one and two
// RangeSize, UploadConcurrency in parallel, each reading straight into its section of buf.
// Ranges of different versions of the object (overwritten while it was read) fail with a
// retryable error. GetInto does not ask S3 for the object's checksums: its callers (the codec,
// the storage driver) check the SHA-256 the claim names.
func (s *Store) GetInto(ctx context.Context, key string, buf []byte) error {
	return s.getInto(ctx, key, buf, nil)
}

// GetIntoHashing reads the object under key into buf as GetInto does, and writes buf to h in
// order while the ranges arrive (see offload.HashingGetter): each reader tells how far it got
// every hashChunk bytes, and the calling goroutine hashes the part of buf that is complete
// from its start, so that the hash of a large object is done soon after its last byte arrives.
func (s *Store) GetIntoHashing(ctx context.Context, key string, buf []byte, h io.Writer) error {
	return s.getInto(ctx, key, buf, h)
}

// hashChunk is how many bytes a reader of GetIntoHashing reads between two reports of its
// progress.
const hashChunk = 1 << 20

// getInto implements GetInto, and GetIntoHashing when h is not nil.
func (s *Store) getInto(ctx context.Context, key string, buf []byte, h io.Writer) error {
	if err := objkey.Validate(key); err != nil {
		return s.newError("get", key, offload.ErrStore, err, "")
	}
	size := int64(len(buf))
	// Ranges of about the same size, at least the part size: an object just above the part size
	// (a payload of exactly the part size plus its framing) is not split into a tiny range.
	n := max(size/s.cfg.rangeSize, 1)
	if n == 1 && h == nil {
		_, err := s.getRange(ctx, key, buf, 0, size, false, nil)
		return err
	}
	rangeSize := (size + n - 1) / n
	etags := make([]string, n)
	var feed *hashFeed
	if h != nil {
		feed = &hashFeed{read: make([]atomic.Int64, n), wake: make(chan struct{}, 1)}
	}
	done := make(chan error, 1)
	go func() {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(s.cfg.uploadConcurrency)
		for i := range n {
			start := i * rangeSize
			end := min(start+rangeSize, size)
			g.Go(func() error {
				var err error
				etags[i], err = s.getRange(gctx, key, buf[start:end], start, size, n > 1, feed.reporter(int(i)))
				return err
			})
		}
		done <- g.Wait()
	}()
	var err error
	if feed == nil {
		err = <-done
	} else {
		// Hash what is complete from the start of buf, until the readers are done.
		var pos int64
		for finished := false; ; {
			for pos < size {
				r := pos / rangeSize
				avail := r*rangeSize + feed.read[r].Load()
				if avail <= pos {
					break
				}
				h.Write(buf[pos:avail])
				pos = avail
			}
			if finished {
				break
			}
			select {
			case <-feed.wake:
			case err = <-done:
				finished = true
			}
		}
		if err == nil && pos != size {
			err = s.newError("get", key, offload.ErrStore, nil, fmt.Sprintf("read %d of %d bytes", pos, size))
		}
	}
	if err != nil {
		return err
	}
	for _, e := range etags[1:] {
		if e != etags[0] {
			e := s.newError("get", key, offload.ErrStore, nil, "object changed while it was read")
			e.Retryable = true
			return e
		}
	}
	return nil
}

// hashFeed tells GetIntoHashing's hashing loop how far each range has been read.
type hashFeed struct {
	read []atomic.Int64 // bytes of each range read so far
	wake chan struct{}  // signalled (without blocking) after every report
}

// reporter returns the progress callback of range i, or nil for a nil feed.
func (f *hashFeed) reporter(i int) func(int64) {
	if f == nil {
		return nil
	}
	return func(n int64) {
		f.read[i].Store(n)
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// getRange reads the bytes [off, off+len(dst)) of an object expected to be total bytes long
// into dst: the whole object when ranged is false, else with a Range request whose
// Content-Range must name exactly that range and total. It returns the object's ETag. When
// report is not nil, it reads dst in pieces of hashChunk bytes and calls report with the
// number of bytes of dst read so far after each.
func (s *Store) getRange(ctx context.Context, key string, dst []byte, off, total int64, ranged bool, report func(int64)) (string, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}
	last := off + int64(len(dst)) - 1
	if ranged {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, last))
	}
	out, err := s.client.GetObject(ctx, in, withoutResponseChecksums)
	if err != nil {
		if isInvalidRange(err) {
			return "", s.sizeMismatch(key, total)
		}
		return "", s.error("get", key, err)
	}
	defer out.Body.Close()
	if ranged {
		start, end, size, ok := parseContentRange(aws.ToString(out.ContentRange))
		switch {
		case ok && size != total:
			return "", s.sizeMismatch(key, total)
		case !ok || start != off || end != last:
			return "", s.newError("get", key, offload.ErrStore, nil,
				fmt.Sprintf("unexpected Content-Range %q for the range %d-%d", aws.ToString(out.ContentRange), off, last))
		}
	} else if out.ContentLength != nil && aws.ToInt64(out.ContentLength) != total {
		return "", s.sizeMismatch(key, total)
	}
	if err := readFull(out.Body, dst, report); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			if !ranged && out.ContentLength == nil {
				return "", s.sizeMismatch(key, total)
			}
		}
		return "", s.error("get", key, err)
	}
	// Without a length to trust, one more byte tells a larger object.
	if !ranged && out.ContentLength == nil {
		if n, _ := io.ReadFull(out.Body, make([]byte, 1)); n != 0 {
			return "", s.sizeMismatch(key, total)
		}
	}
	return aws.ToString(out.ETag), nil
}

// readFull fills dst from r as io.ReadFull does; with a report function, in pieces of
// hashChunk bytes, reporting the bytes read so far after each.
func readFull(r io.Reader, dst []byte, report func(int64)) error {
	if report == nil {
		_, err := io.ReadFull(r, dst)
		return err
	}
	for pos := 0; pos < len(dst); {
		end := min(pos+hashChunk, len(dst))
		if _, err := io.ReadFull(r, dst[pos:end]); err != nil {
			return err
		}
		pos = end
		report(int64(pos))
	}
	return nil
}

// sizeMismatch is the error of an object whose size is not the expected one. Its message does
// not name the real size.
func (s *Store) sizeMismatch(key string, want int64) *offload.Error {
	return s.newError("get", key, offload.ErrIntegrity, nil, fmt.Sprintf("object size differs from the expected %d bytes", want))
}

// withoutResponseChecksums keeps the SDK from validating the checksum of a GetObject response:
// GetInto's callers check the SHA-256 of the whole object.
func withoutResponseChecksums(o *s3.Options) {
	o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	quietSkippedChecksums(o)
}

// quietSkippedChecksums keeps the SDK from logging each GetObject response that carries no
// checksum (objects written in parts, S3-compatible stores): the callers verify the object's
// SHA-256 themselves, and the log line would reach a command's or a worker's stderr.
func quietSkippedChecksums(o *s3.Options) {
	o.DisableLogOutputChecksumValidationSkipped = true
}

// parseContentRange parses "bytes <start>-<end>/<size>".
func parseContentRange(v string) (start, end, size int64, ok bool) {
	r, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, total, found := strings.Cut(r, "/")
	if !found {
		return 0, 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	var err1, err2, err3 error
	start, err1 = strconv.ParseInt(a, 10, 64)
	end, err2 = strconv.ParseInt(b, 10, 64)
	size, err3 = strconv.ParseInt(total, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || start < 0 || end < start || size <= end {
		return 0, 0, 0, false
	}
	return start, end, size, true
}

func isInvalidRange(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "InvalidRange" {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == 416
}

// Stat returns the size and last-modified time of the object under key (HeadObject), or an
// error matching offload.ErrNotFound.
func (s *Store) Stat(ctx context.Context, key string) (offload.ObjectInfo, error) {
	if err := objkey.Validate(key); err != nil {
		return offload.ObjectInfo{}, s.newError("stat", key, offload.ErrStore, err, "")
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return offload.ObjectInfo{}, s.error("stat", key, err)
	}
	return offload.ObjectInfo{Size: aws.ToInt64(out.ContentLength), Modified: aws.ToTime(out.LastModified)}, nil
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
