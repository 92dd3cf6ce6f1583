package offload

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors, for errors.Is. Every error returned by the stores, the codec and the storage
// driver of this package is an *Error that matches exactly one of ErrNotFound, ErrIntegrity,
// ErrTooLarge, ErrNamespace or ErrStore, and additionally ErrRetryable when retrying the
// operation may succeed.
var (
	// ErrNotFound means the object is missing from the store.
	ErrNotFound = errors.New("offload: object not found")
	// ErrIntegrity means stored bytes or a claim do not match: wrong size or SHA-256, a malformed
	// claim, or claim metadata that disagrees with the claim data.
	ErrIntegrity = errors.New("offload: integrity check failed")
	// ErrTooLarge means a payload or object exceeds the configured maximum size.
	ErrTooLarge = errors.New("offload: too large")
	// ErrNamespace means a claim names an object outside the namespace the codec is bound to:
	// it is refused before any store call.
	ErrNamespace = errors.New("offload: claim outside the namespace")
	// ErrStore means any other store failure (network, permissions, invalid key, ...).
	ErrStore = errors.New("offload: store failure")
	// ErrRetryable marks failures that may succeed when retried: network errors, timeouts,
	// throttling and 5xx responses. It is matched in addition to the error's kind.
	ErrRetryable = errors.New("offload: retryable")
)

// Error describes a failed operation on one object. It is returned (possibly wrapped) by every
// store, the codec and the storage driver; use errors.As to read the key.
type Error struct {
	// Op is the operation: "put", "get", "exists", "encode" or "decode".
	Op string
	// Store is the name of the store.
	Store string
	// Key is the object key ("" when none could be derived, for example for a malformed claim).
	Key string
	// Kind is one of ErrNotFound, ErrIntegrity, ErrTooLarge, ErrNamespace or ErrStore.
	Kind error
	// Retryable reports whether retrying may succeed; errors.Is(err, ErrRetryable) then holds.
	Retryable bool
	// Detail describes the failure in words (may be empty).
	Detail string
	// Err is the underlying cause (may be nil).
	Err error
}

// Error implements error: "offload: get payloadkit/default/sha256/ab.. [store=memory]: object not found: detail: cause".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("offload: ")
	b.WriteString(e.Op)
	if e.Key != "" {
		b.WriteString(" ")
		b.WriteString(e.Key)
	}
	if e.Store != "" {
		b.WriteString(" [store=")
		b.WriteString(e.Store)
		b.WriteString("]")
	}
	if e.Kind != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Kind.Error(), "offload: "))
	}
	if e.Retryable {
		b.WriteString(" (retryable)")
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the kind, ErrRetryable when retryable, and the cause.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 3)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Retryable {
		errs = append(errs, ErrRetryable)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// newError builds an *Error; detail is formatted with args.
func newError(op, store, key string, kind error, cause error, detail string, args ...any) *Error {
	if len(args) > 0 {
		detail = fmt.Sprintf(detail, args...)
	}
	return &Error{Op: op, Store: store, Key: key, Kind: kind, Detail: detail, Err: cause}
}

// asOffloadError reports whether err already is (or wraps) an *Error, so that it is not wrapped twice.
func asOffloadError(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// contextError classifies a context error: a deadline is retryable, a cancellation is not.
func contextError(op, store, key string, err error) *Error {
	e := newError(op, store, key, ErrStore, err, "")
	e.Retryable = errors.Is(err, context.DeadlineExceeded)
	return e
}
