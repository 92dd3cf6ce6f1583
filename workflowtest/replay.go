package workflowtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
)

// MaxHistoryFileSize bounds, in bytes, the history JSON files ReplayHistoryFile reads (256 MiB;
// the Temporal server's default history size limit is 50 MiB).
const MaxHistoryFileSize = 256 << 20

// ErrHistoryFile is returned (wrapped) when a history JSON file cannot be read.
var ErrHistoryFile = errors.New("workflowtest: unreadable history file")

// replayNamespace is the namespace the SDK's WorkflowReplayer gives every replayed workflow.
const replayNamespace = "ReplayNamespace"

// ReplayHistoryFile replays the history in the JSON file at path (as `temporal workflow show
// -o json` writes it) against workflows, with the Kit's DataConverter, FailureConverter and
// worker interceptors. It returns the replay error, for example a nondeterminism error; when a
// payload could not be decoded during the replay, the error also wraps the first decoding error
// (so errors.Is finds codec.ErrDecrypt, codec.ErrUnknownKey and the like).
//
// The SDK's replayer gives every workflow the namespace "ReplayNamespace"; ReplayHistoryFile
// gives the codecs an unknown (empty) namespace instead, so that payloads bound to the namespace
// they were written in still decode.
func (k *Kit) ReplayHistoryFile(path string, workflows ...any) error {
	h, err := readHistoryFile(path)
	if err != nil {
		return err
	}
	return k.ReplayHistory(h, nil, workflows...)
}

// Replay is ReplayHistoryFile for tests: it logs the replayer's output with t.Logf and fails t
// (t.Fatalf) when the history cannot be read or replayed.
func (k *Kit) Replay(t testing.TB, historyJSONPath string, workflows ...any) {
	t.Helper()
	h, err := readHistoryFile(historyJSONPath)
	if err != nil {
		t.Fatalf("workflowtest: %v", err)
	}
	logger := log.NewStructuredLogger(slog.New(slog.NewTextHandler(tbWriter{t}, nil)))
	if err := k.ReplayHistory(h, logger, workflows...); err != nil {
		t.Fatalf("workflowtest: replaying %s: %v", historyJSONPath, err)
	}
}

// ReplayHistory replays h against workflows as ReplayHistoryFile does; logger may be nil
// (nothing is logged).
func (k *Kit) ReplayHistory(h *historypb.History, logger log.Logger, workflows ...any) error {
	if len(workflows) == 0 {
		return errors.New("workflowtest: replay: no workflow given")
	}
	dc := &replayDataConverter{DataConverter: k.replayDC, firstErr: &firstError{}}
	fc := &replayFailureConverter{FailureConverter: k.replayFC}
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
		DataConverter:    dc,
		FailureConverter: fc,
		Interceptors:     k.kit.WorkerInterceptors(),
	})
	if err != nil {
		return fmt.Errorf("workflowtest: creating the replayer: %w", err)
	}
	for _, w := range workflows {
		r.RegisterWorkflow(w)
	}
	if logger == nil {
		logger = log.NewStructuredLogger(slog.New(slog.DiscardHandler))
	}
	err = r.ReplayWorkflowHistory(logger, h)
	if decErr := dc.firstErr.get(); err != nil && decErr != nil {
		return fmt.Errorf("%w; first payload that did not decode: %w", err, decErr)
	}
	return err
}

func readHistoryFile(path string) (*historypb.History, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w [path=%s]: %w", ErrHistoryFile, path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxHistoryFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w [path=%s]: %w", ErrHistoryFile, path, err)
	}
	if len(data) > MaxHistoryFileSize {
		return nil, fmt.Errorf("%w [path=%s]: larger than %d bytes", ErrHistoryFile, path, MaxHistoryFileSize)
	}
	h, err := client.HistoryFromJSON(strings.NewReader(string(data)), client.HistoryJSONOptions{})
	if err != nil {
		return nil, fmt.Errorf("%w [path=%s]: %w", ErrHistoryFile, path, err)
	}
	return h, nil
}

// unknownNamespace replaces the replayer's namespace with the empty (unknown) one.
func unknownNamespace(ctx converter.SerializationContext) converter.SerializationContext {
	switch c := ctx.(type) {
	case converter.WorkflowSerializationContext:
		if c.Namespace == replayNamespace {
			c.Namespace = ""
		}
		return c
	case converter.ActivitySerializationContext:
		if c.Namespace == replayNamespace {
			c.Namespace = ""
		}
		return c
	}
	return ctx
}

// replayDataConverter passes serialization and workflow contexts on with the replayer's namespace
// made unknown, and keeps the first decoding error: the replayer reports only its consequence
// (for example a command that does not match history).
type replayDataConverter struct {
	converter.DataConverter
	firstErr *firstError
}

type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (d *replayDataConverter) with(dc converter.DataConverter) *replayDataConverter {
	return &replayDataConverter{DataConverter: dc, firstErr: d.firstErr}
}

func (d *replayDataConverter) FromPayload(p *commonpb.Payload, valuePtr any) error {
	err := d.DataConverter.FromPayload(p, valuePtr)
	if err != nil {
		d.firstErr.set(err)
	}
	return err
}

func (d *replayDataConverter) FromPayloads(ps *commonpb.Payloads, valuePtrs ...any) error {
	err := d.DataConverter.FromPayloads(ps, valuePtrs...)
	if err != nil {
		d.firstErr.set(err)
	}
	return err
}

func (d *replayDataConverter) WithSerializationContext(ctx converter.SerializationContext) converter.DataConverter {
	return d.with(converter.WithDataConverterSerializationContext(d.DataConverter, unknownNamespace(ctx)))
}

func (d *replayDataConverter) WithWorkflowContext(ctx converter.WorkflowContext) converter.DataConverter {
	if ca, ok := d.DataConverter.(converter.ContextAware); ok {
		return d.with(ca.WithWorkflowContext(ctx))
	}
	return d
}

func (d *replayDataConverter) WithContext(ctx context.Context) converter.DataConverter {
	if ca, ok := d.DataConverter.(converter.ContextAware); ok {
		return d.with(ca.WithContext(ctx))
	}
	return d
}

type replayFailureConverter struct{ converter.FailureConverter }

func (f *replayFailureConverter) WithSerializationContext(ctx converter.SerializationContext) converter.FailureConverter {
	return converter.WithFailureConverterSerializationContext(f.FailureConverter, unknownNamespace(ctx))
}

// tbWriter writes each line it is given with t.Logf.
type tbWriter struct{ t testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
