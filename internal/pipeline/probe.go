package pipeline

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/workflow"
)

// A Probe learns the encoded size of one workflow or activity input or result from the
// DataConverter that encodes it, so that nothing is ever encoded twice to be measured: size is
// the proto size, in bytes, of the Payloads message produced, what the SDK sends to the server.
// It returns a non-nil error to refuse the payloads (a size limit): ToPayloads then returns
// that error instead. A probe is called at most once.
type Probe func(size int64) error

type probeKey struct{}

// probeState makes a probe report once.
type probeState struct {
	fn   Probe
	used atomic.Bool
}

func (s *probeState) call(size int64) error {
	if s == nil || !s.used.CompareAndSwap(false, true) {
		return nil
	}
	return s.fn(size)
}

// WithProbe returns a copy of ctx carrying p: the first ToPayloads of a pipeline DataConverter
// bound to ctx, or to a context derived from it, with WithContext reports to p. A client
// interceptor uses it around the SDK's encoding of a workflow's input.
func WithProbe(ctx context.Context, p Probe) context.Context {
	return context.WithValue(ctx, probeKey{}, &probeState{fn: p})
}

// WithWorkflowProbe is WithProbe for workflow contexts (WithWorkflowContext). A workflow
// outbound interceptor uses it around the SDK's encoding of an activity's input.
func WithWorkflowProbe(ctx workflow.Context, p Probe) workflow.Context {
	return workflow.WithValue(ctx, probeKey{}, &probeState{fn: p})
}

// ExpectResult arranges for p to learn the size of an activity's result. The SDK encodes a
// result after the interceptors return, with the DataConverter bound to the context it handed
// them, before any interceptor added values: so ctx cannot carry the probe. The probe is
// instead keyed by ctx's cancellation scope (ctx.Done(), which contexts derived with values
// share), and the next ToPayloads of a pipeline DataConverter bound to a context of that scope
// reports to it. Call it last, just before returning the result. It returns false, and p is
// never called, when ctx cannot be cancelled.
func ExpectResult(ctx context.Context, p Probe) bool {
	done := ctx.Done()
	if done == nil {
		return false
	}
	expect(goScope{done}, p)
	return true
}

// ExpectWorkflowResult is ExpectResult for a workflow's result, keyed by the workflow
// context's cancellation scope.
func ExpectWorkflowResult(ctx workflow.Context, p Probe) bool {
	key, ok := workflowScope(ctx)
	if !ok {
		return false
	}
	expect(key, p)
	return true
}

// Scope keys of pending result probes.
type (
	goScope struct{ done <-chan struct{} }
	wfScope struct{ done any }
)

func workflowScope(ctx workflow.Context) (wfScope, bool) {
	done := ctx.Done()
	if done == nil || !reflect.TypeOf(done).Comparable() {
		return wfScope{}, false
	}
	return wfScope{done}, true
}

// Pending result probes: normally taken by the encode that follows at once. An entry nobody
// takes (the worker's DataConverter is not a pipeline's) is swept after maxPendingAge.
const (
	sweepAbove    = 256
	maxPendingAge = time.Minute
)

type pendingProbe struct {
	s  *probeState
	at time.Time
}

var (
	pending      sync.Map // scope key -> pendingProbe
	pendingCount atomic.Int64
)

func expect(key any, p Probe) {
	now := time.Now()
	if _, loaded := pending.Swap(key, pendingProbe{s: &probeState{fn: p}, at: now}); !loaded {
		if pendingCount.Add(1) > sweepAbove {
			pending.Range(func(k, v any) bool {
				if now.Sub(v.(pendingProbe).at) > maxPendingAge && pending.CompareAndDelete(k, v) {
					pendingCount.Add(-1)
				}
				return true
			})
		}
	}
}

func take(key any) *probeState {
	v, ok := pending.LoadAndDelete(key)
	if !ok {
		return nil
	}
	pendingCount.Add(-1)
	return v.(pendingProbe).s
}

// findProbe returns the probe for a ToPayloads of a DataConverter bound to ctx and wctx: an
// unused one carried by either context, else one expecting a result in their cancellation scope.
func findProbe(ctx context.Context, wctx workflow.Context) Probe {
	// A used probe is skipped: the test environment, for one, encodes an activity's result
	// with a DataConverter bound both to the activity's context and to the workflow context
	// that carried the probe of the activity's input.
	if ctx != nil {
		if s, _ := ctx.Value(probeKey{}).(*probeState); s != nil && !s.used.Load() {
			return s.call
		}
	}
	if wctx != nil {
		if s, _ := wctx.Value(probeKey{}).(*probeState); s != nil && !s.used.Load() {
			return s.call
		}
	}
	if pendingCount.Load() == 0 {
		return nil
	}
	if ctx != nil {
		if done := ctx.Done(); done != nil {
			if s := take(goScope{done}); s != nil {
				return s.call
			}
		}
	}
	if wctx != nil {
		if key, ok := workflowScope(wctx); ok {
			if s := take(key); s != nil {
				return s.call
			}
		}
	}
	return nil
}
