package offload

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"
	"time"

	"go.temporal.io/sdk/converter"
	"golang.org/x/sync/singleflight"
)

// Store holds offloaded payload bytes under content-addressed keys. Implementations must be safe
// for concurrent use, must copy the bytes they are given and return bytes the caller may keep,
// and must return *Error values matching ErrNotFound, ErrTooLarge, ErrStore and (where it
// applies) ErrRetryable. Every store in this package passes the storetest conformance suite.
type Store interface {
	// Name identifies the store in claims. It must be stable across restarts.
	Name() string
	// Put stores data under key, replacing any object already there.
	Put(ctx context.Context, key string, data []byte) error
	// Get returns the object stored under key, or an error matching ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Exists reports whether an object is stored under key.
	Exists(ctx context.Context, key string) (bool, error)
}

// BoundedGetter is implemented by stores that can refuse an object larger than a limit without
// reading it whole. The codec and the storage driver use it, when available, so that a tampered
// or unexpected object cannot exhaust memory. All stores of this package implement it.
type BoundedGetter interface {
	// GetBounded is Get, but fails with an error matching ErrTooLarge, without reading the
	// object whole, when it is larger than maxBytes.
	GetBounded(ctx context.Context, key string, maxBytes int64) ([]byte, error)
}

// PartsPutter is implemented by stores that can write an object given as consecutive byte
// slices without first joining them into one buffer. The codec uses it, when available, to store
// a payload as its small proto framing followed by the payload's own data bytes, so that a large
// payload is never copied on its way to the store. All stores of this package implement it.
type PartsPutter interface {
	// PutParts stores the concatenation of parts under key, as Put stores data. sum is the
	// SHA-256 of that concatenation, computed by the caller: stores may send it for the server to
	// check, and must not use it otherwise. The store must not modify parts, nor keep a
	// reference to them after returning.
	PutParts(ctx context.Context, key string, parts [][]byte, sum [sha256.Size]byte) error
}

// SizedGetter is implemented by stores that can read an object of a known size straight into a
// buffer of the caller. The codec and the storage driver use it, when available, to fetch an
// object of the size its claim names into one buffer of exactly that size (remote stores may
// fill it with several ranged reads in parallel), never allocating more. The S3 store
// implements it; the memory and file stores already read an object in one allocation of its
// size through BoundedGetter.
type SizedGetter interface {
	// GetInto reads the object under key into buf when the object is exactly len(buf) bytes
	// long. An object of another size fails with an error matching ErrIntegrity, after reading
	// at most len(buf) bytes of it into buf; a missing object fails with an error matching
	// ErrNotFound. The content is not verified: callers check its digest.
	GetInto(ctx context.Context, key string, buf []byte) error
}

// HashingGetter is implemented by SizedGetters that can feed what they read to a hash while it
// arrives, so that checking a large object's digest does not wait for its last byte. The codec
// and the storage driver use it, when available, in place of GetInto followed by a SHA-256 of
// the buffer. The S3 store implements it.
type HashingGetter interface {
	SizedGetter
	// GetIntoHashing reads the object under key into buf as GetInto does, and writes to h every
	// byte of buf exactly once, in order, each as soon as it and all the bytes before it have
	// arrived. When it returns nil, h has been written exactly buf; otherwise h is to be
	// discarded.
	GetIntoHashing(ctx context.Context, key string, buf []byte, h io.Writer) error
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	// Size is the object size in bytes.
	Size int64
	// Modified is the time the object was last written; the zero Time when the store cannot
	// tell.
	Modified time.Time
}

// Stater is implemented by stores that can tell the size and write time of an object in one
// call. The codec uses Stat instead of Exists, when available, to decide whether an object that
// is already stored must be written again (see Options.RefreshAge). All stores of this package
// implement it.
type Stater interface {
	// Stat returns the size and write time of the object under key, or an error matching
	// ErrNotFound when there is none.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
}

// Mode selects where offloading happens.
type Mode string

const (
	// ModeCodec offloads in a payload codec (default): works in clients, workers, testsuite tests and the Codec Server.
	ModeCodec Mode = "codec"
	// ModeExternalStorage offloads through the Temporal SDK's experimental ExternalStorage.
	ModeExternalStorage Mode = "external-storage"
)

// Defaults of Options.
const (
	// DefaultThreshold is the encoded payload size, in bytes, above which payloads are offloaded (256 KiB).
	DefaultThreshold = 256 << 10
	// DefaultPrefix is the first segment of codec object keys.
	DefaultPrefix = "payloadkit"
	// DefaultMaxPayloadSize is the largest encoded payload, in bytes, the stage stores or fetches (512 MiB).
	DefaultMaxPayloadSize = 512 << 20
	// DefaultConcurrency is the number of store calls one batch of payloads runs in parallel.
	DefaultConcurrency = 8
	// DefaultTimeout bounds each store call.
	DefaultTimeout = 30 * time.Second
	// DefaultDriverName is the storage driver name used in ModeExternalStorage.
	DefaultDriverName = "payloadkit.offload"
	// DefaultRefreshAge is the age above which the codec writes an object again instead of
	// deduplicating it (24 hours).
	DefaultRefreshAge = 24 * time.Hour
)

// Options configure the offload stage. The zero value of every field but Store means its default.
type Options struct {
	// Store receives offloaded payloads. Required.
	Store Store
	// Threshold in bytes: payloads whose marshalled size (proto) is at or under it stay inline.
	// Defaults to DefaultThreshold. In ModeExternalStorage it becomes the SDK's
	// PayloadSizeThreshold, which offloads payloads of Threshold bytes or more.
	Threshold int
	// Mode defaults to ModeCodec.
	Mode Mode
	// Prefix is the first segment of object keys written by the codec
	// (<Prefix>/<namespace>/sha256/<hex>). Defaults to DefaultPrefix. It must not start or end
	// with "/" nor contain empty, "." or ".." segments.
	Prefix string
	// MaxPayloadSize bounds, in bytes, the marshalled payloads stored and the objects fetched.
	// Larger payloads fail with ErrTooLarge. Defaults to DefaultMaxPayloadSize.
	MaxPayloadSize int64
	// MaxBatchSize bounds, in bytes, the sum of the claimed sizes of the objects one Decode
	// call fetches (a workflow's arguments, a Codec Server request), checked before any store
	// call; a larger batch fails with ErrTooLarge naming MaxBatchSize. Defaults to
	// MaxPayloadSize. Values below MaxPayloadSize are rejected.
	MaxBatchSize int64
	// Concurrency bounds the store calls run in parallel for one batch of payloads.
	// Defaults to DefaultConcurrency. (In ModeExternalStorage the SDK's limits apply instead.)
	Concurrency int
	// Timeout bounds each store call. Defaults to DefaultTimeout.
	Timeout time.Duration
	// DriverName is the storage driver name in ModeExternalStorage; it is recorded in history and
	// must not change once used. Defaults to DefaultDriverName.
	DriverName string
	// OnObject, if set, is called after each store operation (the Kit sets it to record
	// telemetry). It must be fast and safe for concurrent use.
	OnObject func(ObjectEvent)
	// RefreshAge bounds the age of the objects the codec deduplicates. Before storing a payload
	// the codec looks for its object (keys are content addressed); when the object exists and
	// was written at most RefreshAge ago, the upload is skipped and reported as
	// OpDeduplicated. When it was written longer ago, the codec writes it again (reported as
	// OpPut), which resets its age: an S3 lifecycle rule expiring objects some days after
	// their write time then cannot expire an object that a new workflow has just claimed, as
	// long as the rule's expiry is longer than RefreshAge plus the longest time a claim must
	// stay readable. An existing object whose size differs from the claim is also written
	// again. This needs a store implementing Stater (all stores of this package do); with
	// other stores every existing object is deduplicated. Defaults to DefaultRefreshAge;
	// negative values are rejected. (In ModeExternalStorage the driver deduplicates every
	// existing object.)
	RefreshAge time.Duration
}

// ObjectEvent reports one store operation of the offload stage.
type ObjectEvent struct {
	// Operation is "put", "get" or "deduplicated" (a put skipped because the object existed,
	// written at most Options.RefreshAge ago).
	Operation string
	// Key is the object key.
	Key string
	// Bytes is the object size.
	Bytes int64
	// Err is the operation's error, if any.
	Err error
}

// Operation names reported in ObjectEvent.Operation.
const (
	OpPut          = "put"
	OpGet          = "get"
	OpDeduplicated = "deduplicated"
)

// resolved is Options with defaults applied and values validated.
type resolved struct {
	store          Store
	threshold      int
	prefix         string
	maxPayloadSize int64
	maxBatchSize   int64
	concurrency    int
	timeout        time.Duration
	driverName     string
	onObject       func(ObjectEvent)
	refreshAge     time.Duration
	now            func() time.Time    // the codec's clock; tests replace it
	flights        *singleflight.Group // puts in progress, by key, shared by the codec's copies
}

// resolve validates opts and applies defaults.
func resolve(opts *Options) (resolved, error) {
	if opts == nil {
		return resolved{}, fmt.Errorf("offload: Options are required")
	}
	r := resolved{
		store:          opts.Store,
		threshold:      opts.Threshold,
		prefix:         opts.Prefix,
		maxPayloadSize: opts.MaxPayloadSize,
		maxBatchSize:   opts.MaxBatchSize,
		concurrency:    opts.Concurrency,
		timeout:        opts.Timeout,
		driverName:     opts.DriverName,
		onObject:       opts.OnObject,
		refreshAge:     opts.RefreshAge,
		now:            time.Now,
		flights:        new(singleflight.Group),
	}
	if r.store == nil {
		return resolved{}, fmt.Errorf("offload: Store is required")
	}
	for _, err := range []error{
		defaultNonNegative("Threshold", &r.threshold, DefaultThreshold),
		defaultNonNegative("MaxPayloadSize", &r.maxPayloadSize, DefaultMaxPayloadSize),
		defaultNonNegative("Concurrency", &r.concurrency, DefaultConcurrency),
		defaultNonNegative("Timeout", &r.timeout, DefaultTimeout),
		defaultNonNegative("RefreshAge", &r.refreshAge, DefaultRefreshAge),
	} {
		if err != nil {
			return resolved{}, err
		}
	}
	switch {
	case r.maxBatchSize < 0:
		return resolved{}, fmt.Errorf("offload: MaxBatchSize must not be negative, got %d", r.maxBatchSize)
	case r.maxBatchSize == 0:
		r.maxBatchSize = r.maxPayloadSize
	case r.maxBatchSize < r.maxPayloadSize:
		return resolved{}, fmt.Errorf("offload: MaxBatchSize %d is below MaxPayloadSize %d", r.maxBatchSize, r.maxPayloadSize)
	}
	if r.prefix == "" {
		r.prefix = DefaultPrefix
	}
	if err := validatePrefix(r.prefix); err != nil {
		return resolved{}, err
	}
	if r.driverName == "" {
		r.driverName = DefaultDriverName
	}
	return r, nil
}

// defaultNonNegative rejects a negative *v and replaces zero with def.
func defaultNonNegative[T int | int64 | time.Duration](field string, v *T, def T) error {
	switch {
	case *v < 0:
		return fmt.Errorf("offload: %s must not be negative, got %v", field, *v)
	case *v == 0:
		*v = def
	}
	return nil
}

func validatePrefix(p string) error {
	if len(p) > 256 {
		return fmt.Errorf("offload: Prefix is longer than 256 bytes")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("offload: Prefix %q must not start or end with \"/\" nor contain empty, \".\" or \"..\" segments", p)
		}
	}
	return nil
}

// NewCodec returns the claim-check codec for opts. The codec implements converter.PayloadCodec
// and converter.PayloadCodecWithSerializationContext, so that object keys carry the namespace.
func NewCodec(opts *Options) (*Codec, error) {
	r, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	return &Codec{cfg: r, namespace: UnknownNamespace}, nil
}

// NewExternalStorage returns the SDK ExternalStorage configuration for opts (ModeExternalStorage):
// one driver from NewStorageDriver over opts.Store, and PayloadSizeThreshold = opts.Threshold
// (or DefaultThreshold).
func NewExternalStorage(opts *Options) (converter.ExternalStorage, error) {
	r, err := resolve(opts)
	if err != nil {
		return converter.ExternalStorage{}, err
	}
	d := newStorageDriver(r)
	return converter.ExternalStorage{
		Drivers:              []converter.StorageDriver{d},
		PayloadSizeThreshold: r.threshold,
	}, nil
}
