package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Names registered by the workers.
const (
	workflowName = "chaosWorkflow"
	activityName = "chaosStep"
	signalName   = "proceed"
)

// Spec is a workflow's input: the steps it runs and how long each one works.
type Spec struct {
	ID    string
	Seed  uint64
	Sizes []int         // output size of each step, in bytes (1 to 3 steps)
	Work  time.Duration // simulated work of each step (heartbeating)
	// Gate makes the workflow wait for the "proceed" signal before reading the result of step 0,
	// so that the orchestrator can corrupt that result's stored object first.
	Gate bool
}

// StepMeta identifies one step; the previous step's output is passed as a second argument so that
// it is the same payload (and, offloaded, the same object) as that step's result.
type StepMeta struct {
	Seed uint64
	Step int
	Size int
	Work time.Duration
}

// chaosWorkflow runs the steps of spec, each producing a value from the previous one, and returns
// the hex SHA-256 of the last value.
//
// It handles no codec error itself. A transient one (KMS or the store unavailable) never reaches
// it: the Kit's DataConverter panics instead of returning it in workflow code, which fails the
// workflow task, and the server retries it once the fault is over; that holds for the workflow's
// input and result too, which the SDK decodes and encodes. A result whose stored object fails
// its integrity check is returned as the workflow's error, naming the key.
func chaosWorkflow(ctx workflow.Context, spec Spec) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		HeartbeatTimeout:    5 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    500 * time.Millisecond,
			BackoffCoefficient: 1.5,
			MaximumInterval:    3 * time.Second,
		},
	})
	var prev []byte
	for i, size := range spec.Sizes {
		f := workflow.ExecuteActivity(ctx, activityName, StepMeta{Seed: spec.Seed, Step: i, Size: size, Work: spec.Work}, prev)
		if i == 0 && spec.Gate {
			workflow.GetSignalChannel(ctx, signalName).Receive(ctx, nil)
		}
		var out []byte
		if err := f.Get(ctx, &out); err != nil {
			var actErr *temporal.ActivityError
			if errors.As(err, &actErr) {
				return "", fmt.Errorf("step %d: %w", i, err)
			}
			return "", fmt.Errorf("step %d result: %w", i, err)
		}
		prev = out
	}
	return digest(prev), nil
}

// stepActivity works for meta.Work (heartbeating), then returns the value of step meta.Step.
func stepActivity(ctx context.Context, meta StepMeta, prev []byte) ([]byte, error) {
	work := meta.Work
	if activity.GetInfo(ctx).Attempt > 1 {
		work = min(work, time.Second) // a retry does not redo the simulated work
	}
	deadline := time.Now().Add(work)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		activity.RecordHeartbeat(ctx)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("step %d: %w", meta.Step, ctx.Err())
		case <-tick.C:
		case <-time.After(time.Until(deadline)):
		}
	}
	return stepValue(meta.Seed, meta.Step, meta.Size, prev), nil
}

// stepValue derives a step's output from the seed, the step and the previous output:
// size pseudo-random (incompressible) bytes.
func stepValue(seed uint64, step, size int, prev []byte) []byte {
	h := sha256.New()
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], seed)
	binary.BigEndian.PutUint64(b[8:], uint64(step))
	h.Write(b[:])
	h.Write(prev)
	var key [32]byte
	copy(key[:], h.Sum(nil))
	out := make([]byte, size)
	_, _ = rand.NewChaCha8(key).Read(out)
	return out
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// expected returns the digest spec's workflow must return and the digest of each step's value.
func expected(spec Spec) (string, []string) {
	var prev []byte
	steps := make([]string, 0, len(spec.Sizes))
	for i, size := range spec.Sizes {
		prev = stepValue(spec.Seed, i, size, prev)
		steps = append(steps, digest(prev))
	}
	return digest(prev), steps
}
