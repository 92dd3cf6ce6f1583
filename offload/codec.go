package offload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/internal/pbwire"
)

// Codec is the claim-check payload codec returned by NewCodec.
//
// Encode replaces each payload whose marshalled size is above the threshold by a claim (see
// EncodingClaimCheck) after storing the marshalled payload under
// <prefix>/<namespace>/sha256/<hex>; an object already present is not uploaded again unless it
// was written more than Options.RefreshAge ago. Decode fetches the object of each claim, checks
// its size and SHA-256, and restores the payload; other payloads pass through. Inputs are never
// mutated. A Codec is safe for concurrent use.
//
// Large payloads are not copied: the stored object (the deterministic proto marshalling of the
// payload) is handed to stores implementing PartsPutter as its framing followed by the
// payload's own data bytes, and read from stores implementing SizedGetter into one buffer of
// the claimed size, of which the decoded payload's Data is a sub-slice.
type Codec struct {
	cfg       resolved
	namespace string
}

var (
	_ converter.PayloadCodec                         = (*Codec)(nil)
	_ converter.PayloadCodecWithSerializationContext = (*Codec)(nil)
)

// marshalOptions makes the stored bytes, hence the keys, independent of map iteration order.
var marshalOptions = proto.MarshalOptions{Deterministic: true}

// WithSerializationContext returns a codec bound to the namespace of sc (workflow and activity
// contexts): it writes keys under <prefix>/<namespace>/ and decodes only claims whose key is
// under that prefix, refusing any other with ErrNamespace before a store call. Other contexts
// give an unbound codec, which writes under UnknownNamespace and decodes every claim.
func (c *Codec) WithSerializationContext(sc converter.SerializationContext) converter.PayloadCodec {
	ns := UnknownNamespace
	switch s := sc.(type) {
	case converter.WorkflowSerializationContext:
		ns = s.Namespace
	case converter.ActivitySerializationContext:
		ns = s.Namespace
	}
	if ns == "" {
		ns = UnknownNamespace
	}
	return &Codec{cfg: c.cfg, namespace: ns}
}

// Namespace returns the namespace segment of the keys this codec writes.
func (c *Codec) Namespace() string { return c.namespace }

type putJob struct {
	indices []int
	parts   [][]byte // the object, as objectParts: framing and the payload's own data bytes
	sum     [sha256.Size]byte
	claim   Claim
}

// Encode implements converter.PayloadCodec.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	var jobs []*putJob
	byKey := map[string]*putJob{}
	storeName := c.cfg.store.Name()
	for i, p := range payloads {
		size := pbwire.Size(p)
		if size <= c.cfg.threshold {
			out[i] = p
			continue
		}
		if int64(size) > c.cfg.maxPayloadSize {
			return nil, newError("encode", storeName, "", ErrTooLarge, nil,
				"payload of %d bytes exceeds MaxPayloadSize %d", size, c.cfg.maxPayloadSize)
		}
		// The object is the deterministic marshalling of p, framed here without copying p.Data.
		parts, err := objectParts(p, size)
		if err != nil {
			return nil, newError("encode", storeName, "", ErrStore, err, "marshalling payload")
		}
		sum := partsSHA256(parts)
		hexSum := hex.EncodeToString(sum[:])
		key := CodecKey(c.cfg.prefix, c.namespace, hexSum)
		if j, ok := byKey[key]; ok {
			j.indices = append(j.indices, i)
			continue
		}
		j := &putJob{indices: []int{i}, parts: parts, sum: sum,
			claim: Claim{Store: storeName, Key: key, Size: int64(size), SHA256: hexSum}}
		byKey[key] = j
		jobs = append(jobs, j)
	}
	if len(jobs) == 0 {
		return out, nil
	}
	g := errgroup.Group{}
	g.SetLimit(c.cfg.concurrency)
	for _, j := range jobs {
		g.Go(func() error { return c.put(j) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, j := range jobs {
		for _, i := range j.indices {
			cp, err := j.claim.Payload()
			if err != nil {
				return nil, err
			}
			out[i] = cp
		}
	}
	return out, nil
}

// put stores one object unless an up-to-date copy exists, reporting "put" or "deduplicated".
// Concurrent puts of one key in this process (a retried activity whose late first attempt
// returns alongside the retry, equal values in parallel encodes) share one store call: the
// first makes it, the others wait for it and report "deduplicated" (or its error).
func (c *Codec) put(j *putJob) error {
	ran := false
	_, err, _ := c.cfg.flights.Do(j.claim.Key, func() (any, error) {
		ran = true
		return nil, c.putOnce(j)
	})
	if !ran {
		if err == nil {
			c.report(OpDeduplicated, j.claim.Key, j.claim.Size, nil)
		}
		return err
	}
	return err
}

// putOnce is put's store work: Stat (or Exists), then the upload when needed.
func (c *Codec) putOnce(j *putJob) error {
	key := j.claim.Key
	sctx, scancel := context.WithTimeout(context.Background(), c.cfg.timeout)
	write, err := needsWrite(sctx, c.cfg.store, key, j.claim.Size, c.cfg.now, c.cfg.refreshAge)
	scancel()
	if err != nil {
		c.report(OpPut, key, j.claim.Size, err)
		return err
	}
	if !write {
		c.report(OpDeduplicated, key, j.claim.Size, nil)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.timeout)
	defer cancel()
	if pp, ok := c.cfg.store.(PartsPutter); ok {
		err = pp.PutParts(ctx, key, j.parts, j.sum)
	} else {
		err = c.cfg.store.Put(ctx, key, joinParts(j.parts))
	}
	err = wrapStoreError("put", c.cfg.store.Name(), key, err)
	c.report(OpPut, key, j.claim.Size, err)
	return err
}

// needsWrite reports whether the object under key must be written: it is missing, or (for a
// Stater store) it was written more than refreshAge before now() or its size is not the
// claimed size. It makes one store call, Stat when the store has it and Exists otherwise. The
// codec and the storage driver share it.
func needsWrite(ctx context.Context, store Store, key string, size int64, now func() time.Time, refreshAge time.Duration) (bool, error) {
	st, ok := store.(Stater)
	if !ok {
		exists, err := store.Exists(ctx, key)
		return !exists, wrapStoreError("exists", store.Name(), key, err)
	}
	info, err := st.Stat(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return true, nil
	case err != nil:
		return false, wrapStoreError("stat", store.Name(), key, err)
	case info.Size != size:
		// Keys are content addressed: an object of another size is damaged; replace it.
		return true, nil
	case !info.Modified.IsZero() && now().Sub(info.Modified) > refreshAge:
		// Written again, its age restarts, so lifecycle expiry does not catch a new claim.
		return true, nil
	}
	return false, nil
}

type getJob struct {
	indices []int
	claim   Claim
	payload *commonpb.Payload
}

// Decode implements converter.PayloadCodec.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	var jobs []*getJob
	byKey := map[string]*getJob{}
	storeName := c.cfg.store.Name()
	nsPrefix := CodecKey(c.cfg.prefix, c.namespace, "")
	var batch int64 // claimed bytes of distinct objects, against maxBatchSize
	for i, p := range payloads {
		if !IsClaim(p) {
			out[i] = p
			continue
		}
		cl, err := ParseClaim(p)
		if err != nil {
			return nil, err
		}
		if cl.Store != storeName {
			return nil, newError("decode", storeName, cl.Key, ErrStore, nil,
				"the claim names store %q, this codec's store is %q", cl.Store, storeName)
		}
		// Keys are content addressed, so a bound codec knows the one key a claim may name.
		if c.namespace != UnknownNamespace && cl.Key != CodecKey(c.cfg.prefix, c.namespace, cl.SHA256) {
			return nil, newError("decode", storeName, cl.Key, ErrNamespace, nil,
				"the codec is bound to namespace %q and reads only keys %s<sha256>", c.namespace, nsPrefix)
		}
		if cl.Size > c.cfg.maxPayloadSize {
			return nil, newError("decode", storeName, cl.Key, ErrTooLarge, nil,
				"claimed object of %d bytes exceeds MaxPayloadSize %d", cl.Size, c.cfg.maxPayloadSize)
		}
		if j, ok := byKey[cl.Key]; ok {
			if j.claim != cl {
				return nil, newError("decode", storeName, cl.Key, ErrIntegrity, nil,
					"two claims name the same key with different sizes or digests")
			}
			j.indices = append(j.indices, i)
			continue
		}
		if batch += cl.Size; batch > c.cfg.maxBatchSize {
			return nil, newError("decode", storeName, cl.Key, ErrTooLarge, nil,
				"the claims of one Decode call add up to more than MaxBatchSize %d bytes", c.cfg.maxBatchSize)
		}
		j := &getJob{indices: []int{i}, claim: cl}
		byKey[cl.Key] = j
		jobs = append(jobs, j)
	}
	if len(jobs) == 0 {
		return out, nil
	}
	g := errgroup.Group{}
	g.SetLimit(c.cfg.concurrency)
	for _, j := range jobs {
		g.Go(func() error {
			var err error
			j.payload, err = c.get(j.claim)
			c.report(OpGet, j.claim.Key, j.claim.Size, err)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, j := range jobs {
		for n, i := range j.indices {
			if n == 0 {
				out[i] = j.payload
			} else {
				out[i] = proto.Clone(j.payload).(*commonpb.Payload)
			}
		}
	}
	return out, nil
}

// get fetches, verifies and unmarshals the object of cl.
func (c *Codec) get(cl Claim) (*commonpb.Payload, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.timeout)
	defer cancel()
	data, err := fetchVerified(ctx, c.cfg.store, cl.Key, cl.Size, c.cfg.maxPayloadSize, cl.SHA256)
	if err != nil {
		return nil, err
	}
	// The payload's Data is a sub-slice of data, which nothing else references.
	p, err := pbwire.Unmarshal(data)
	if err != nil {
		return nil, newError("decode", cl.Store, cl.Key, ErrIntegrity, err, "unmarshalling stored payload")
	}
	return p, nil
}

// fetchVerified reads the object under key and checks its size and SHA-256. A known size (not
// negative) is read, from stores implementing SizedGetter, into one buffer of exactly that
// size, and hashed while it arrives by stores implementing HashingGetter. When size is
// negative (unknown) the object is bounded by limit instead; stores implementing BoundedGetter
// then refuse a larger object without reading it whole.
func fetchVerified(ctx context.Context, store Store, key string, size, limit int64, sum string) ([]byte, error) {
	name := store.Name()
	if size >= 0 {
		limit = size
	}
	var data []byte
	var err error
	var hashed []byte // the SHA-256 of data, when the store computed it while reading
	if sg, ok := store.(SizedGetter); ok && size >= 0 {
		data = make([]byte, size)
		if hg, ok := store.(HashingGetter); ok {
			h := sha256.New()
			if err = hg.GetIntoHashing(ctx, key, data, h); err == nil {
				hashed = h.Sum(nil)
			}
		} else {
			err = sg.GetInto(ctx, key, data)
		}
		if err != nil {
			if errors.Is(err, ErrIntegrity) {
				// The store's message may not be as careful as the ones below.
				return nil, newError("get", name, key, ErrIntegrity, nil, "object size differs from the claimed %d bytes", size)
			}
			return nil, wrapStoreError("get", name, key, err)
		}
	} else if bg, ok := store.(BoundedGetter); ok {
		data, err = bg.GetBounded(ctx, key, limit)
	} else {
		data, err = store.Get(ctx, key)
		if err == nil && int64(len(data)) > limit {
			err = newError("get", name, key, ErrTooLarge, nil, "object is larger than the limit of %d bytes", limit)
		}
	}
	if errors.Is(err, ErrTooLarge) && size >= 0 {
		return nil, newError("get", name, key, ErrIntegrity, nil, "object is larger than the claimed %d bytes", size)
	}
	if err != nil {
		return nil, wrapStoreError("get", name, key, err)
	}
	// The messages name neither the object's real size nor its digest: they reach whoever sent
	// the claim (a Codec Server caller, a workflow's history), and would let a forged claim
	// probe any object of the store.
	if size >= 0 && int64(len(data)) != size {
		return nil, newError("get", name, key, ErrIntegrity, nil, "object size differs from the claimed %d bytes", size)
	}
	got := hex.EncodeToString(hashed)
	if hashed == nil {
		got = sha256Hex(data)
	}
	if got != sum {
		return nil, newError("get", name, key, ErrIntegrity, nil, "object SHA-256 differs from the claimed digest")
	}
	return data, nil
}

func (c *Codec) report(op, key string, size int64, err error) {
	if c.cfg.onObject != nil {
		c.cfg.onObject(ObjectEvent{Operation: op, Key: key, Bytes: size, Err: err})
	}
}

// wrapStoreError returns nil for nil, err itself when it already is an *Error, and otherwise an
// *Error of kind ErrStore (retryable for deadlines) naming op, store and key.
func wrapStoreError(op, store, key string, err error) error {
	if err == nil || asOffloadError(err) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return contextError(op, store, key, err)
	}
	return newError(op, store, key, ErrStore, err, "")
}
