package offload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/internal/pbwire"
)

// ClaimStatus is the outcome of checking one claim found in a workflow history.
type ClaimStatus string

// Claim statuses reported by VerifyHistory.
const (
	// ClaimOK means the object exists with the claimed size and SHA-256.
	ClaimOK ClaimStatus = "ok"
	// ClaimMissing means the store has no object under the claimed key (ErrNotFound).
	ClaimMissing ClaimStatus = "missing"
	// ClaimCorrupt means the object differs from the claim: other size or SHA-256 (ErrIntegrity).
	ClaimCorrupt ClaimStatus = "corrupt"
	// ClaimMalformed means the claim payload itself does not parse (ErrIntegrity); no object was read.
	ClaimMalformed ClaimStatus = "malformed"
	// ClaimOtherStore means the claim names a store other than the one verified; no object was read.
	ClaimOtherStore ClaimStatus = "other-store"
	// ClaimError means the object could not be checked: the store failed or was unreachable,
	// the claimed size exceeds VerifyOptions.MaxObjectSize, or the context ended.
	ClaimError ClaimStatus = "error"
)

// CheckKind tells what a ClaimCheck checked.
type CheckKind string

// Check kinds reported by VerifyHistory.
const (
	// KindClaim is the check of a claim payload's object.
	KindClaim CheckKind = "claim"
	// KindKeyObject is the check of the key object of an envelope format v2 payload
	// (codec.IsEnvelopeV2): that the store holds it under codec.KeyObjectKey and that
	// codec.ReadKeyObject accepts it (its SHA-256 is the payload's reference and it parses).
	KindKeyObject CheckKind = "key-object"
)

// DefaultVerifyConcurrency is the default of VerifyOptions.Concurrency.
const DefaultVerifyConcurrency = DefaultConcurrency

// VerifyOptions configure VerifyHistory. A nil *VerifyOptions, and the zero value of every
// field, mean the default.
type VerifyOptions struct {
	// Concurrency bounds the objects read at once. Defaults to DefaultVerifyConcurrency.
	Concurrency int
	// Timeout bounds the read of each object. Defaults to DefaultTimeout.
	Timeout time.Duration
	// MaxObjectSize bounds, in bytes, the objects read: a claim of a larger object is reported
	// with ClaimError (matching ErrTooLarge) without reading it. Every read is also bounded by
	// the claimed size. Defaults to DefaultMaxPayloadSize.
	MaxObjectSize int64
	// KeyObjectPrefix is the prefix of the key objects of envelope format v2 payloads, as the
	// encryption codec's EncryptionOptions.KeyObjectPrefix: they are read under
	// codec.KeyObjectKey(KeyObjectPrefix, reference). Defaults to codec.DefaultKeyObjectPrefix.
	KeyObjectPrefix string
}

// ClaimCheck is the outcome for one claim payload of a history (Kind KindClaim), or for the key
// object of one envelope format v2 payload (Kind KindKeyObject).
type ClaimCheck struct {
	// Kind tells what was checked: the object of a claim, or the key object of a v2 payload.
	Kind CheckKind
	// EventID is the id of the history event holding the claim.
	EventID int64
	// EventType is the event's type, e.g. "WorkflowExecutionStarted".
	EventType string
	// Path locates the payload in the event, in protobuf JSON field names, e.g.
	// "workflowExecutionStartedEventAttributes.input.payloads[0]".
	Path string
	// Claim is the parsed claim. For a malformed claim only Store and Key are set, from the
	// payload's metadata when present (cut to 64 bytes). For a key-object check it names the
	// key object: the store verified, its key and, as SHA256, its reference in hexadecimal
	// (Size is 0: a key object's size is not known in advance).
	Claim Claim
	// InClaim is set for a key-object check of a v2 payload that was offloaded: read from the
	// object of the claim at the same EventID and Path (checked just before it). It is unset for
	// v2 payloads found in the history itself.
	InClaim bool
	// Status is the outcome. A key-object check is ClaimOK, ClaimMissing, ClaimCorrupt (the
	// object's SHA-256 differs from the reference, or it does not parse), ClaimMalformed (the
	// v2 payload is too short to hold a reference) or ClaimError.
	Status ClaimStatus
	// Err is the reason of any status but ClaimOK (nil for ClaimOK). It matches ErrNotFound for
	// ClaimMissing, ErrIntegrity for ClaimCorrupt and ClaimMalformed, and ErrStore for
	// ClaimOtherStore.
	Err error
}

// VerifySummary counts the checks of a history by status: the claims, and the key objects of
// envelope format v2 payloads. Checks that name the same object are each counted; Objects
// counts the distinct objects read.
type VerifySummary struct {
	// Claims is the number of claim payloads found (checks of kind KindClaim).
	Claims int
	// KeyObjects is the number of key-object checks (KindKeyObject): one per v2 payload found in
	// the history or in a verified claim object, several of which may name one key object.
	KeyObjects int
	// Objects is the number of distinct objects read from the store (each read once): claim
	// objects and key objects.
	Objects int
	// OK, Missing, Corrupt, Malformed, OtherStore and Errors count the checks of both kinds by
	// status.
	OK, Missing, Corrupt, Malformed, OtherStore, Errors int
}

// String returns the summary on one line: "claims=3 key-objects=1 objects=3 ok=3 missing=1 ...".
func (s VerifySummary) String() string {
	return fmt.Sprintf("claims=%d key-objects=%d objects=%d ok=%d missing=%d corrupt=%d malformed=%d other-store=%d errors=%d",
		s.Claims, s.KeyObjects, s.Objects, s.OK, s.Missing, s.Corrupt, s.Malformed, s.OtherStore, s.Errors)
}

// VerifyReport is the result of VerifyHistory.
type VerifyReport struct {
	// Store is the name of the store verified.
	Store string
	// Checks holds one entry per claim payload and per v2 payload, in history order; the
	// key-object check of an offloaded v2 payload follows the check of its claim.
	Checks []ClaimCheck
	// Summary counts Checks by status.
	Summary VerifySummary
}

// Problems returns the checks whose status is not ClaimOK, in history order.
func (r *VerifyReport) Problems() []ClaimCheck {
	var out []ClaimCheck
	for _, c := range r.Checks {
		if c.Status != ClaimOK {
			out = append(out, c)
		}
	}
	return out
}

// OK reports whether every claim and key object was verified (true when the history holds
// neither claims nor v2 payloads).
func (r *VerifyReport) OK() bool { return r.Summary.OK == r.Summary.Claims+r.Summary.KeyObjects }

// Damaged reports whether some claim or key object is known bad: missing, corrupt or
// malformed. (Checks that could not be done, ClaimError and ClaimOtherStore, are not evidence
// of damage.)
func (r *VerifyReport) Damaged() bool {
	return r.Summary.Missing+r.Summary.Corrupt+r.Summary.Malformed > 0
}

// VerifyHistory finds every claim payload in h (in any field of any event: inputs, results,
// headers, memos, search attributes, failure details and causes, ...) and checks that store
// holds its object with the claimed size and SHA-256, reading it as the codec does. Run it
// before deleting or expiring objects, or after restoring a bucket, to learn which workflow
// histories still resolve.
//
// It also checks the key object of every envelope format v2 payload (codec.IsEnvelopeV2) found
// in the history, or in the object of a claim that verified: that store holds it under
// codec.KeyObjectKey(opts.KeyObjectPrefix, reference) and that codec.ReadKeyObject accepts it.
// These checks have Kind KindKeyObject; a v2 payload cannot decode without its key object.
//
// Each distinct claim and key object is read once, with at most opts.Concurrency reads at once. Claims that
// name another store or do not parse are reported, not skipped. Failures of individual objects
// are reported in the VerifyReport; the error is non-nil only for invalid arguments or when ctx
// ends, in which case the report is still returned with the unchecked objects as ClaimError.
func VerifyHistory(ctx context.Context, store Store, h *historypb.History, opts *VerifyOptions) (*VerifyReport, error) {
	if store == nil {
		return nil, errors.New("offload: verify: store is required")
	}
	if h == nil {
		return nil, errors.New("offload: verify: history is required")
	}
	var o VerifyOptions
	if opts != nil {
		o = *opts
	}
	for _, err := range []error{
		defaultNonNegative("VerifyOptions.Concurrency", &o.Concurrency, DefaultVerifyConcurrency),
		defaultNonNegative("VerifyOptions.Timeout", &o.Timeout, DefaultTimeout),
		defaultNonNegative("VerifyOptions.MaxObjectSize", &o.MaxObjectSize, DefaultMaxPayloadSize),
	} {
		if err != nil {
			return nil, err
		}
	}
	if o.KeyObjectPrefix == "" {
		o.KeyObjectPrefix = codec.DefaultKeyObjectPrefix
	}
	if strings.HasPrefix(o.KeyObjectPrefix, "/") || strings.HasSuffix(o.KeyObjectPrefix, "/") {
		return nil, fmt.Errorf("offload: verify: VerifyOptions.KeyObjectPrefix %q must not start or end with '/'", o.KeyObjectPrefix)
	}

	storeName := store.Name()
	rep := &VerifyReport{Store: storeName}
	var checks []ClaimCheck
	for _, ev := range h.GetEvents() {
		evType := ev.GetEventType().String()
		walkPayloads(ev.ProtoReflect(), "", func(path string, p *commonpb.Payload) {
			switch {
			case IsClaim(p):
				checks = append(checks, checkClaim(ev.GetEventId(), evType, path, p, storeName))
			case codec.IsEnvelopeV2(p):
				checks = append(checks, checkV2Payload(ev.GetEventId(), evType, path, p, storeName, o.KeyObjectPrefix))
			}
		})
	}

	// Read each distinct claim once. Keys are content addressed, so two claims naming one key
	// with different sizes or digests are distinct claims; at most one of them can be right.
	type object struct {
		claim Claim
		err   error
		// v2 and ref: the object holds a v2 payload with this key-object reference.
		v2  bool
		ref [sha256.Size]byte
	}
	objects := map[Claim]*object{}
	var order []*object
	keys := map[string]bool{}
	for _, c := range checks {
		if c.Status != "" || c.Kind != KindClaim {
			continue
		}
		if _, ok := objects[c.Claim]; !ok {
			obj := &object{claim: c.Claim}
			objects[c.Claim] = obj
			order = append(order, obj)
			keys[c.Claim.Key] = true
		}
	}
	g := errgroup.Group{}
	g.SetLimit(o.Concurrency)
	for _, obj := range order {
		g.Go(func() error {
			var data []byte
			data, obj.err = verifyObject(ctx, store, obj.claim, o)
			if obj.err == nil {
				// An offloaded v2 payload: its key object is checked too. An object that does
				// not parse is left to the codec, which reports it on decode.
				if p, err := pbwire.Unmarshal(data); err == nil && codec.IsEnvelopeV2(p) {
					obj.ref, err = codec.ReadKeyObjectRef(p)
					obj.v2 = err == nil
				}
			}
			return nil
		})
	}
	_ = g.Wait() // the functions return nil; errors are in the objects

	// The claim checks are complete; the key-object check of an offloaded v2 payload follows its
	// claim's check.
	rep.Checks = make([]ClaimCheck, 0, len(checks))
	for _, c := range checks {
		if c.Kind == KindClaim && c.Status == "" {
			obj := objects[c.Claim]
			c.Err = obj.err
			c.Status = statusOf(c.Err)
			rep.Checks = append(rep.Checks, c)
			if obj.v2 {
				rep.Checks = append(rep.Checks, ClaimCheck{Kind: KindKeyObject, EventID: c.EventID, EventType: c.EventType,
					Path: c.Path, Claim: keyObjectClaim(storeName, o.KeyObjectPrefix, obj.ref), InClaim: true})
			}
			continue
		}
		rep.Checks = append(rep.Checks, c)
	}

	// Read each distinct key object once.
	keyObjects := map[[sha256.Size]byte]*error{}
	var refs [][sha256.Size]byte
	for _, c := range rep.Checks {
		if c.Status != "" || c.Kind != KindKeyObject {
			continue
		}
		ref := keyObjectRef(c.Claim)
		if _, ok := keyObjects[ref]; !ok {
			keyObjects[ref] = new(error)
			refs = append(refs, ref)
			keys[c.Claim.Key] = true
		}
	}
	for _, ref := range refs {
		g.Go(func() error {
			*keyObjects[ref] = verifyKeyObject(ctx, store, o.KeyObjectPrefix, ref, o)
			return nil
		})
	}
	_ = g.Wait()
	rep.Summary.Objects = len(keys)

	for i := range rep.Checks {
		c := &rep.Checks[i]
		if c.Status == "" && c.Kind == KindKeyObject {
			c.Err = *keyObjects[keyObjectRef(c.Claim)]
			c.Status = statusOf(c.Err)
		}
		rep.Summary.add(c.Kind, c.Status)
	}
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("offload: verify: %w", err)
	}
	return rep, nil
}

// keyObjectClaim describes the key object with reference ref as a Claim (without size).
func keyObjectClaim(storeName, prefix string, ref [sha256.Size]byte) Claim {
	return Claim{Store: storeName, Key: codec.KeyObjectKey(prefix, ref), SHA256: hex.EncodeToString(ref[:])}
}

// keyObjectRef returns the reference of a claim built by keyObjectClaim.
func keyObjectRef(cl Claim) [sha256.Size]byte {
	var ref [sha256.Size]byte
	_, _ = hex.Decode(ref[:], []byte(cl.SHA256)) // written by keyObjectClaim: valid
	return ref
}

// checkV2Payload reads the key-object reference of a v2 payload. It returns a check with an
// empty Status when the key object must be read.
func checkV2Payload(eventID int64, eventType, path string, p *commonpb.Payload, storeName, prefix string) ClaimCheck {
	ref, err := codec.ReadKeyObjectRef(p)
	if err != nil {
		return ClaimCheck{Kind: KindKeyObject, EventID: eventID, EventType: eventType, Path: path,
			Claim: Claim{Store: storeName}, Status: ClaimMalformed,
			Err: newError("verify", storeName, "", ErrIntegrity, err, "envelope format v2 payload")}
	}
	return ClaimCheck{Kind: KindKeyObject, EventID: eventID, EventType: eventType, Path: path,
		Claim: keyObjectClaim(storeName, prefix, ref)}
}

// verifyKeyObject reads the key object with reference ref, bounded by the largest key object,
// and returns nil when codec.ReadKeyObject accepts it. A key object that is larger than any
// valid one, differs from its reference or does not parse fails with ErrIntegrity.
func verifyKeyObject(ctx context.Context, store Store, prefix string, ref [sha256.Size]byte, o VerifyOptions) error {
	name, key := store.Name(), codec.KeyObjectKey(prefix, ref)
	if err := ctx.Err(); err != nil {
		return contextError("get", name, key, err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	data, err := fetchVerified(ctx, store, key, -1, int64(codec.MaxKeyObjectSize), hex.EncodeToString(ref[:]))
	if errors.Is(err, ErrTooLarge) {
		return newError("get", name, key, ErrIntegrity, nil, "key object is larger than the largest valid one (%d bytes)", codec.MaxKeyObjectSize)
	}
	if err != nil {
		return err
	}
	if _, err := codec.ReadKeyObject(ref, data); err != nil {
		return newError("get", name, key, ErrIntegrity, err, "")
	}
	return nil
}

// checkClaim parses p. It returns a check with an empty Status when the object must be read.
func checkClaim(eventID int64, eventType, path string, p *commonpb.Payload, storeName string) ClaimCheck {
	c := ClaimCheck{Kind: KindClaim, EventID: eventID, EventType: eventType, Path: path}
	cl, err := ParseClaim(p)
	if err != nil {
		md := p.GetMetadata()
		c.Claim = Claim{Store: boundedString(md[MetadataClaimStore]), Key: boundedString(md[MetadataClaimKey])}
		c.Status, c.Err = ClaimMalformed, err
		return c
	}
	c.Claim = cl
	if cl.Store != storeName {
		c.Status = ClaimOtherStore
		c.Err = newError("verify", storeName, cl.Key, ErrStore, nil,
			"the claim names store %q, the store verified is %q", cl.Store, storeName)
	}
	return c
}

// verifyObject reads the object of cl with the codec's verified read, bounded by the claimed
// size, and returns it when it matches.
func verifyObject(ctx context.Context, store Store, cl Claim, o VerifyOptions) ([]byte, error) {
	if cl.Size > o.MaxObjectSize {
		return nil, newError("verify", cl.Store, cl.Key, ErrTooLarge, nil,
			"claimed object of %d bytes exceeds MaxObjectSize %d", cl.Size, o.MaxObjectSize)
	}
	if err := ctx.Err(); err != nil {
		return nil, contextError("get", cl.Store, cl.Key, err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	return fetchVerified(ctx, store, cl.Key, cl.Size, cl.Size, cl.SHA256)
}

// statusOf classifies the error of an object read.
func statusOf(err error) ClaimStatus {
	switch {
	case err == nil:
		return ClaimOK
	case errors.Is(err, ErrNotFound):
		return ClaimMissing
	case errors.Is(err, ErrIntegrity):
		return ClaimCorrupt
	default:
		return ClaimError
	}
}

func (s *VerifySummary) add(kind CheckKind, st ClaimStatus) {
	if kind == KindKeyObject {
		s.KeyObjects++
	} else {
		s.Claims++
	}
	switch st {
	case ClaimOK:
		s.OK++
	case ClaimMissing:
		s.Missing++
	case ClaimCorrupt:
		s.Corrupt++
	case ClaimMalformed:
		s.Malformed++
	case ClaimOtherStore:
		s.OtherStore++
	default:
		s.Errors++
	}
}

// WalkPayloads calls fn for every Payload message reachable from m (in singular, repeated and
// map fields, at any depth: a history event's inputs, results, headers, memo, search
// attributes, failure details and causes), with its path in protobuf JSON field names, such as
// "workflowExecutionStartedEventAttributes.input.payloads[0]" or `memo.fields["order"]`.
// Payloads are not descended into. Fields are visited in declaration order, map entries in key
// order. VerifyHistory and the payloadkit command use it.
func WalkPayloads(m proto.Message, fn func(path string, p *commonpb.Payload)) {
	walkPayloads(m.ProtoReflect(), "", fn)
}

// payloadFullName is the protobuf name of commonpb.Payload.
var payloadFullName = (&commonpb.Payload{}).ProtoReflect().Descriptor().FullName()

// walkPayloads calls fn for every Payload message reachable from m (in singular, repeated and
// map fields, at any depth), with its path in protobuf JSON field names. Payloads are not
// descended into. Fields are visited in declaration order, map entries in key order.
func walkPayloads(m protoreflect.Message, path string, fn func(path string, p *commonpb.Payload)) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		walkField(m.Get(fd), fd, path, fn)
	}
}

// walkField walks the value v of field fd.
func walkField(v protoreflect.Value, fd protoreflect.FieldDescriptor, path string, fn func(path string, p *commonpb.Payload)) {
	name := fd.JSONName()
	if path != "" {
		name = path + "." + name
	}
	switch {
	case fd.IsMap():
		if fd.MapValue().Kind() != protoreflect.MessageKind {
			return
		}
		mp := v.Map()
		var keys []protoreflect.MapKey
		mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
			keys = append(keys, k)
			return true
		})
		// Map order is random: sort for a stable report.
		sortMapKeys(keys)
		for _, k := range keys {
			visit(mp.Get(k).Message(), name+"["+strconv.Quote(boundedString([]byte(k.String())))+"]", fn)
		}
	case fd.IsList():
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return
		}
		l := v.List()
		for i := 0; i < l.Len(); i++ {
			visit(l.Get(i).Message(), name+"["+strconv.Itoa(i)+"]", fn)
		}
	case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
		visit(v.Message(), name, fn)
	}
}

// visit calls fn for a Payload, and walks any other message.
func visit(m protoreflect.Message, path string, fn func(string, *commonpb.Payload)) {
	if m.Descriptor().FullName() == payloadFullName {
		if p, ok := m.Interface().(*commonpb.Payload); ok {
			fn(path, p)
			return
		}
	}
	walkPayloads(m, path, fn)
}

func sortMapKeys(keys []protoreflect.MapKey) {
	slices.SortFunc(keys, func(a, b protoreflect.MapKey) int { return strings.Compare(a.String(), b.String()) })
}
