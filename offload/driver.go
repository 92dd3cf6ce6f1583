package offload

import (
	"context"
	"strconv"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/offload/internal/objkey"
)

// DriverType is the StorageDriver.Type of the driver returned by NewStorageDriver.
const DriverType = "payloadkit.offload"

// Claim data keys of the storage driver. They match those of the Temporal SDKs' S3 storage
// drivers (bucket, key, hash_algorithm, hash_value), so that claims written by a driver over an
// s3store.Store can be read by those drivers and the other way round; size is added and optional.
const (
	DriverClaimBucket        = "bucket"
	DriverClaimKey           = "key"
	DriverClaimHashAlgorithm = "hash_algorithm"
	DriverClaimHashValue     = "hash_value"
	DriverClaimSize          = "size"
)

// StorageDriver implements the Temporal SDK's experimental converter.StorageDriver over a Store,
// with the object key layout of DriverKey. Store marshals every payload and checks its size before
// uploading anything, skips the upload of objects that already exist, and runs each store call
// inside the SDK's limiter permit (StorageDriverStoreContext.Limiter), so the SDK's
// ExternalStorageConcurrency limits apply. Retrieve bounds, fetches and verifies each object.
type StorageDriver struct {
	store          Store
	name           string
	maxPayloadSize int64
	timeout        time.Duration
	onObject       func(ObjectEvent)
	refreshAge     time.Duration
	now            func() time.Time
}

var _ converter.StorageDriver = (*StorageDriver)(nil)

// StorageDriverOptions configure NewStorageDriver. A nil *StorageDriverOptions, and the zero
// value of every field, mean the default.
type StorageDriverOptions struct {
	// Name is the driver name recorded in history with every reference. It must not change once
	// used. Defaults to DefaultDriverName.
	Name string
	// MaxPayloadSize bounds, in bytes, the marshalled payloads stored and the objects fetched.
	// Larger payloads fail with ErrTooLarge. Defaults to DefaultMaxPayloadSize; negative values
	// are rejected.
	MaxPayloadSize int64
	// Timeout bounds each store call. Defaults to DefaultTimeout; negative values are rejected.
	Timeout time.Duration
	// OnObject, if set, is called after each store operation. It must be fast and safe for
	// concurrent use.
	OnObject func(ObjectEvent)
	// RefreshAge bounds the age of the objects the driver deduplicates, as Options.RefreshAge
	// does for the codec: on a Stater store (the S3 store is one), an object written more than
	// RefreshAge ago is written again rather than referenced, so that a lifecycle rule expiring
	// objects (s3store.LifecycleRule) never deletes one a new reference needs. Defaults to
	// DefaultRefreshAge; negative values are rejected.
	RefreshAge time.Duration
}

// NewStorageDriver returns a converter.StorageDriver storing payloads in store, which is
// required; opts may be nil.
func NewStorageDriver(store Store, opts *StorageDriverOptions) (*StorageDriver, error) {
	if opts == nil {
		opts = &StorageDriverOptions{}
	}
	r, err := resolve(&Options{
		Store:          store,
		DriverName:     opts.Name,
		MaxPayloadSize: opts.MaxPayloadSize,
		Timeout:        opts.Timeout,
		OnObject:       opts.OnObject,
		RefreshAge:     opts.RefreshAge,
	})
	if err != nil {
		return nil, err
	}
	return newStorageDriver(r), nil
}

func newStorageDriver(r resolved) *StorageDriver {
	return &StorageDriver{store: r.store, name: r.driverName, maxPayloadSize: r.maxPayloadSize, timeout: r.timeout,
		onObject: r.onObject, refreshAge: r.refreshAge, now: r.now}
}

// Name returns the driver name.
func (d *StorageDriver) Name() string { return d.name }

// Type returns DriverType.
func (d *StorageDriver) Type() string { return DriverType }

type driverObject struct {
	data []byte
	key  string
	sum  string
}

// Store implements converter.StorageDriver.
func (d *StorageDriver) Store(ctx converter.StorageDriverStoreContext, payloads []*commonpb.Payload) ([]converter.StorageDriverClaim, error) {
	storeName := d.store.Name()
	objects := make([]driverObject, len(payloads))
	for i, p := range payloads {
		if size := proto.Size(p); int64(size) > d.maxPayloadSize {
			return nil, newError("put", storeName, "", ErrTooLarge, nil, "payload of %d bytes exceeds the maximum %d", size, d.maxPayloadSize)
		}
		data, err := marshalOptions.Marshal(p)
		if err != nil {
			return nil, newError("put", storeName, "", ErrStore, err, "marshalling payload")
		}
		sum := sha256Hex(data)
		objects[i] = driverObject{data: data, key: DriverKey(ctx.Target, sum), sum: sum}
	}
	bucket := ""
	if b, ok := d.store.(interface{ Bucket() string }); ok {
		bucket = b.Bucket()
	}
	parent := ctx.Context
	if parent == nil {
		parent = context.Background()
	}
	limiter := ctx.GetLimiter()
	claims := make([]converter.StorageDriverClaim, len(payloads))
	g, gctx := errgroup.WithContext(parent)
	for i, p := range payloads {
		obj := objects[i]
		g.Go(func() error {
			return limiter.Permit(gctx, p, func() error { return d.put(gctx, obj) })
		})
		cd := map[string]string{
			DriverClaimKey:           obj.key,
			DriverClaimHashAlgorithm: "sha256",
			DriverClaimHashValue:     obj.sum,
			DriverClaimSize:          strconv.Itoa(len(obj.data)),
		}
		if bucket != "" {
			cd[DriverClaimBucket] = bucket
		}
		claims[i] = converter.StorageDriverClaim{ClaimData: cd}
	}
	if err := g.Wait(); err != nil {
		return nil, wrapStoreError("put", storeName, "", err)
	}
	return claims, nil
}

func (d *StorageDriver) put(ctx context.Context, obj driverObject) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	size := int64(len(obj.data))
	write, err := needsWrite(ctx, d.store, obj.key, size, d.now, d.refreshAge)
	if err != nil {
		d.report(OpPut, obj.key, size, err)
		return err
	}
	if !write {
		d.report(OpDeduplicated, obj.key, size, nil)
		return nil
	}
	err = wrapStoreError("put", d.store.Name(), obj.key, d.store.Put(ctx, obj.key, obj.data))
	d.report(OpPut, obj.key, size, err)
	return err
}

// Retrieve implements converter.StorageDriver.
func (d *StorageDriver) Retrieve(ctx converter.StorageDriverRetrieveContext, claims []converter.StorageDriverClaim) ([]*commonpb.Payload, error) {
	storeName := d.store.Name()
	bucket := ""
	if b, ok := d.store.(interface{ Bucket() string }); ok {
		bucket = b.Bucket()
	}
	type want struct {
		key  string
		sum  string
		size int64
	}
	wants := make([]want, len(claims))
	for i, c := range claims {
		key := c.ClaimData[DriverClaimKey]
		fail := func(format string, args ...any) error {
			return newError("get", storeName, key, ErrIntegrity, nil, "malformed storage claim: "+format, args...)
		}
		if err := objkey.Validate(key); err != nil {
			return nil, fail("%v", err)
		}
		if algo := c.ClaimData[DriverClaimHashAlgorithm]; algo != "sha256" {
			return nil, fail("unsupported hash algorithm %q", boundedString([]byte(algo)))
		}
		sum := c.ClaimData[DriverClaimHashValue]
		if !isSHA256Hex(sum) {
			return nil, fail("hash value is not 64 lowercase hex digits")
		}
		if b, ok := c.ClaimData[DriverClaimBucket]; ok && bucket != "" && b != bucket {
			return nil, newError("get", storeName, key, ErrStore, nil, "the claim names bucket %q, this driver's store uses %q", boundedString([]byte(b)), bucket)
		}
		size := int64(-1)
		if s, ok := c.ClaimData[DriverClaimSize]; ok {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				return nil, fail("size %q is not a non-negative integer", boundedString([]byte(s)))
			}
			if n > d.maxPayloadSize {
				return nil, newError("get", storeName, key, ErrTooLarge, nil, "claimed object of %d bytes exceeds the maximum %d", n, d.maxPayloadSize)
			}
			size = n
		}
		wants[i] = want{key: key, sum: sum, size: size}
	}
	parent := ctx.Context
	if parent == nil {
		parent = context.Background()
	}
	limiter := ctx.GetLimiter()
	out := make([]*commonpb.Payload, len(claims))
	g, gctx := errgroup.WithContext(parent)
	for i, c := range claims {
		w := wants[i]
		g.Go(func() error {
			return limiter.Permit(gctx, c, func() error {
				cctx, cancel := context.WithTimeout(gctx, d.timeout)
				defer cancel()
				data, err := fetchVerified(cctx, d.store, w.key, w.size, d.maxPayloadSize, w.sum)
				if err == nil {
					p := &commonpb.Payload{}
					if uerr := proto.Unmarshal(data, p); uerr != nil {
						err = newError("get", storeName, w.key, ErrIntegrity, uerr, "unmarshalling stored payload")
					} else {
						out[i] = p
					}
				}
				d.report(OpGet, w.key, int64(len(data)), err)
				return err
			})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, wrapStoreError("get", storeName, "", err)
	}
	return out, nil
}

func (d *StorageDriver) report(op, key string, size int64, err error) {
	if d.onObject != nil {
		d.onObject(ObjectEvent{Operation: op, Key: key, Bytes: size, Err: err})
	}
}
