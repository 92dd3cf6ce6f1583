package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/metrics"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/offload"
)

// Lines a worker writes to stdout, read by the orchestrator:
//
//	READY
//	HEAP <bytes of heap objects in use>
//	ACT start|done|fail
//	KEY cache-hit|cache-miss|kms-ok|kms-error
var stdoutMu sync.Mutex

func emit(format string, args ...any) {
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

// runWorker is the worker process: one Temporal worker with the fleet's Kit, until SIGTERM.
func runWorker() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cfg, err := kitConfigFromEnv()
	if err != nil {
		return err
	}
	kit, err := newKit(ctx, cfg, func(e codec.KeyEvent) {
		switch {
		case e.Kind == "cache" && e.Hit:
			emit("KEY cache-hit")
		case e.Kind == "cache":
			emit("KEY cache-miss")
		case e.Err != nil:
			emit("KEY kms-error")
		default:
			emit("KEY kms-ok")
		}
	}, func(e offload.ObjectEvent) {
		if e.Err != nil {
			emit("STORE error")
		}
	})
	if err != nil {
		return err
	}
	defer kit.Close()
	slots, _ := strconv.Atoi(os.Getenv(envSlots))
	if slots <= 0 {
		slots = 32
	}
	logger := log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	c, err := client.Dial(kit.ClientOptions(client.Options{
		HostPort:  os.Getenv(envTemporal),
		Namespace: os.Getenv(envNamespace),
		Logger:    logger,
	}))
	if err != nil {
		return fmt.Errorf("connecting to Temporal at %s: %w", os.Getenv(envTemporal), err)
	}
	defer c.Close()
	w := worker.New(c, os.Getenv(envQueue), kit.WorkerOptions(worker.Options{
		MaxConcurrentActivityExecutionSize:     slots,
		MaxConcurrentWorkflowTaskExecutionSize: 16,
	}))
	w.RegisterWorkflowWithOptions(chaosWorkflow, workflow.RegisterOptions{Name: workflowName})
	w.RegisterActivityWithOptions(func(ctx context.Context, meta StepMeta, prev []byte) ([]byte, error) {
		emit("ACT start")
		out, err := stepActivity(ctx, meta, prev)
		if err != nil {
			emit("ACT fail")
		} else {
			emit("ACT done")
		}
		return out, err
	}, activity.RegisterOptions{Name: activityName})
	if err := w.Start(); err != nil {
		return fmt.Errorf("starting the worker: %w", err)
	}
	emit("READY")
	go reportHeap(ctx)
	<-ctx.Done()
	w.Stop()
	return nil
}

// reportHeap writes the heap in use (runtime/metrics /memory/classes/heap/objects:bytes) every 250ms.
func reportHeap(ctx context.Context) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		metrics.Read(sample)
		emit("HEAP %d", sample[0].Value.Uint64())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
