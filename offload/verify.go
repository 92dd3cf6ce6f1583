package offload

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/reflect/protoreflect"
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
}

// ClaimCheck is the outcome for one claim payload of a history.
type ClaimCheck struct {
	// EventID is the id of the history event holding the claim.
	EventID int64
	// EventType is the event's type, e.g. "WorkflowExecutionStarted".
	EventType string
	// Path locates the payload in the event, in protobuf JSON field names, e.g.
	// "workflowExecutionStartedEventAttributes.input.payloads[0]".
	Path string
	// Claim is the parsed claim. For a malformed claim only Store and Key are set, from the
	// payload's metadata when present (cut to 64 bytes).
	Claim Claim
	// Status is the outcome.
	Status ClaimStatus
	// Err is the reason of any status but ClaimOK (nil for ClaimOK). It matches ErrNotFound for
	// ClaimMissing, ErrIntegrity for ClaimCorrupt and ClaimMalformed, and ErrStore for
	// ClaimOtherStore.
	Err error
}

// VerifySummary counts the claims of a history by status. Claims that name the same object
// are each counted; Objects counts the distinct objects read.
type VerifySummary struct {
	// Claims is the number of claim payloads found.
	Claims int
	// Objects is the number of distinct objects read from the store (each read once).
	Objects int
	// OK, Missing, Corrupt, Malformed, OtherStore and Errors count claims by status.
	OK, Missing, Corrupt, Malformed, OtherStore, Errors int
}

// String returns the summary on one line: "claims=3 objects=2 ok=2 missing=1 ...".
func (s VerifySummary) String() string {
	return fmt.Sprintf("claims=%d objects=%d ok=%d missing=%d corrupt=%d malformed=%d other-store=%d errors=%d",
		s.Claims, s.Objects, s.OK, s.Missing, s.Corrupt, s.Malformed, s.OtherStore, s.Errors)
}

// VerifyReport is the result of VerifyHistory.
type VerifyReport struct {
	// Store is the name of the store verified.
	Store string
	// Checks holds one entry per claim payload, in history order.
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

// OK reports whether every claim was verified (true when the history holds no claim).
func (r *VerifyReport) OK() bool { return r.Summary.OK == r.Summary.Claims }

// Damaged reports whether some claim is known bad: missing, corrupt or malformed. (Claims that
// could not be checked, ClaimError and ClaimOtherStore, are not evidence of damage.)
func (r *VerifyReport) Damaged() bool {
	return r.Summary.Missing+r.Summary.Corrupt+r.Summary.Malformed > 0
}

// VerifyHistory finds every claim payload in h (in any field of any event: inputs, results,
// headers, memos, search attributes, failure details and causes, ...) and checks that store
// holds its object with the claimed size and SHA-256, reading it as the codec does. Run it
// before deleting or expiring objects, or after restoring a bucket, to learn which workflow
// histories still resolve.
//
// Each distinct claim is read once, with at most opts.Concurrency reads at once. Claims that
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

	storeName := store.Name()
	rep := &VerifyReport{Store: storeName}
	for _, ev := range h.GetEvents() {
		evType := ev.GetEventType().String()
		walkPayloads(ev.ProtoReflect(), "", func(path string, p *commonpb.Payload) {
			if !IsClaim(p) {
				return
			}
			rep.Checks = append(rep.Checks, checkClaim(ev.GetEventId(), evType, path, p, storeName))
		})
	}

	// Read each distinct claim once. Keys are content addressed, so two claims naming one key
	// with different sizes or digests are distinct claims; at most one of them can be right.
	type object struct {
		claim Claim
		err   error
	}
	objects := map[Claim]*object{}
	var order []*object
	keys := map[string]bool{}
	for _, c := range rep.Checks {
		if c.Status != "" {
			continue
		}
		if _, ok := objects[c.Claim]; !ok {
			obj := &object{claim: c.Claim}
			objects[c.Claim] = obj
			order = append(order, obj)
			keys[c.Claim.Key] = true
		}
	}
	rep.Summary.Objects = len(keys)
	g := errgroup.Group{}
	g.SetLimit(o.Concurrency)
	for _, obj := range order {
		g.Go(func() error {
			obj.err = verifyObject(ctx, store, obj.claim, o)
			return nil
		})
	}
	_ = g.Wait() // the functions return nil; errors are in the objects

	for i := range rep.Checks {
		c := &rep.Checks[i]
		if c.Status == "" {
			c.Err = objects[c.Claim].err
			c.Status = statusOf(c.Err)
		}
		rep.Summary.add(c.Status)
	}
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("offload: verify: %w", err)
	}
	return rep, nil
}

// checkClaim parses p. It returns a check with an empty Status when the object must be read.
func checkClaim(eventID int64, eventType, path string, p *commonpb.Payload, storeName string) ClaimCheck {
	c := ClaimCheck{EventID: eventID, EventType: eventType, Path: path}
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
// size, and returns nil when it matches.
func verifyObject(ctx context.Context, store Store, cl Claim, o VerifyOptions) error {
	if cl.Size > o.MaxObjectSize {
		return newError("verify", cl.Store, cl.Key, ErrTooLarge, nil,
			"claimed object of %d bytes exceeds MaxObjectSize %d", cl.Size, o.MaxObjectSize)
	}
	if err := ctx.Err(); err != nil {
		return contextError("get", cl.Store, cl.Key, err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	_, err := fetchVerified(ctx, store, cl.Key, cl.Size, cl.Size, cl.SHA256)
	return err
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

func (s *VerifySummary) add(st ClaimStatus) {
	s.Claims++
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
