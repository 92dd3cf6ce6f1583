package e2e

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/server/temporaltest"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/samples/internal/history"
)

// server is an in-process Temporal server whose default client and workers use a Kit.
type server struct {
	*temporaltest.TestServer
	kit *payloadkit.Kit
}

// newKit builds a Kit from opts, closed with the test.
func newKit(t *testing.T, opts payloadkit.Options) *payloadkit.Kit {
	t.Helper()
	kit, err := payloadkit.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kit.Close() })
	return kit
}

// staticKeyring returns a keyring holding one new random key, id.
func staticKeyring(t *testing.T, id string) *codec.StaticKeyring {
	t.Helper()
	ring, err := codec.NewStaticKeyring(id, map[string][]byte{id: codec.GenerateKey()})
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// startServer starts an in-process Temporal server wired to kit; it stops with the test.
func startServer(t *testing.T, kit *payloadkit.Kit) *server {
	t.Helper()
	ts := temporaltest.NewServer(
		temporaltest.WithT(t),
		temporaltest.WithBaseClientOptions(kit.ClientOptions(client.Options{})),
	)
	return &server{TestServer: ts, kit: kit}
}

// worker starts a worker on queue with the Kit's worker options.
func (s *server) worker(queue string, register func(worker.Registry)) worker.Worker {
	return s.NewWorkerWithOptions(queue, register, s.kit.WorkerOptions(worker.Options{}))
}

// historyPayloads returns every payload stored in the history of run.
func (s *server) historyPayloads(t *testing.T, run client.WorkflowRun) []history.Payload {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ps, err := history.Payloads(ctx, s.GetDefaultClient(), run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) == 0 {
		t.Fatal("history holds no payloads")
	}
	return ps
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
