package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/server/temporaltest"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codecserver"
	"github.com/payloadkit/payloadkit/workflowtest"
)

const (
	taskQueue    = "chaos"
	primaryAlias = "alias/chaos-primary"
	// offloadMin is the smallest value size the scenario offloads: sizes are drawn below
	// smallMax or at or above offloadMin, away from the 256 KiB threshold.
	smallMax   = 128 << 10
	offloadMin = 320 << 10
)

// wf tracks one workflow.
type wf struct {
	spec        Spec
	want        string
	stepDigests []string
	expectFail  bool // the corrupted object's workflow

	mu       sync.Mutex
	runID    string
	started  time.Time
	closed   time.Time
	done     bool
	result   string
	failure  string
	failed   bool
	startErr error
}

func (w *wf) snapshot() (runID string, done, failed bool, result, failure string, started, closed time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.runID, w.done, w.failed, w.result, w.failure, w.started, w.closed
}

// env is what the phases act on.
type env struct {
	p           params
	tb          *fakeTB
	kms         *workflowtest.KMS
	keyA        string
	keyB        string
	proxy       *kmsProxy
	minio       *workflowtest.MinIO
	ts          *temporaltest.TestServer
	ns          string
	kit         *payloadkit.Kit
	client      client.Client
	fleet       *fleet
	codec       *httptest.Server
	tokens      map[string]string // "valid", "other" -> bearer token
	wfs         []*wf
	victim      *wf
	control     *wf
	faults      []faultResult
	codecCounts *codecCounts
}

// faultResult is one row of the faults table.
type faultResult struct {
	Fault    string
	Injected string
	Expected string
	Observed string
	OK       bool
}

func orchestrate(p params, runDir, docPath string) (code int) {
	ctx, stop := signalContext()
	defer stop()
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	dir, err := os.MkdirTemp(runDir, "run-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	tb := &fakeTB{dir: dir}
	e := &env{p: p, tb: tb}
	defer func() {
		if code == 0 {
			_ = os.RemoveAll(dir) // MinIO data and logs; kept when the run fails
		}
	}()
	defer func() {
		if e.fleet != nil {
			e.fleet.stopAll()
		}
		if e.client != nil {
			e.client.Close()
		}
		if e.codec != nil {
			e.codec.Close()
		}
		if e.ts != nil {
			e.ts.Stop()
		}
		tb.cleanup()
	}()
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "chaos: FAILED: %v\n", r)
			code = 1
		}
	}()
	logf("run directory %s (worker logs, MinIO data)", dir)
	if err := e.setup(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: setup:", err)
		return 1
	}
	rep, err := e.run(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	table := rep.markdown()
	fmt.Println(table)
	if docPath != "" {
		if err := os.WriteFile(docPath, []byte(rep.document(table)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "chaos: writing the report:", err)
			return 1
		}
		logf("wrote %s", docPath)
	}
	if !rep.ok() {
		fmt.Fprintln(os.Stderr, "chaos: FAILED: see the table above")
		return 1
	}
	logf("chaos scenario passed")
	return 0
}

func (e *env) setup(ctx context.Context, dir string) error {
	if os.Getenv(workflowtest.EnvMinIOBin) == "" {
		if bin, err := filepath.Abs("../.cache/bin/minio"); err == nil {
			if _, err := os.Stat(bin); err == nil {
				os.Setenv(workflowtest.EnvMinIOBin, bin)
			}
		}
	}
	if os.Getenv(workflowtest.EnvMinIOBin) == "" {
		return fmt.Errorf("%s is not set and ../.cache/bin/minio does not exist (scripts/chaos.sh installs MinIO)", workflowtest.EnvMinIOBin)
	}
	e.kms = workflowtest.StartKMS(e.tb)
	e.keyA, e.keyB = e.kms.NewKey(), e.kms.NewKey()
	e.kms.SetAlias(primaryAlias, e.keyA)
	proxy, err := newKMSProxy(e.kms.Endpoint())
	if err != nil {
		return err
	}
	e.proxy = proxy
	proxySrv := httptest.NewServer(proxy)
	e.tb.Cleanup(proxySrv.Close)
	logf("KMS test server %s, behind the fault proxy %s", e.kms.Endpoint(), proxySrv.URL)

	e.minio = workflowtest.StartMinIO(e.tb)
	logf("MinIO %s, bucket %s", e.minio.Endpoint(), e.minio.Bucket())

	e.ts = temporaltest.NewServer()
	e.ns = e.ts.GetDefaultNamespace()
	logf("Temporal server %s, namespace %s", e.ts.GetFrontendHostPort(), e.ns)

	access, secret := e.minio.Credentials()
	cfg := kitConfig{KMSEndpoint: proxySrv.URL, KMSKey: primaryAlias, S3Endpoint: e.minio.Endpoint(),
		S3Access: access, S3Secret: secret, S3Bucket: e.minio.Bucket()}
	kit, err := newKit(ctx, cfg, nil, nil)
	if err != nil {
		return err
	}
	e.tb.Cleanup(func() { _ = kit.Close() })
	e.kit = kit
	quiet := log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	c, err := client.Dial(kit.ClientOptions(client.Options{HostPort: e.ts.GetFrontendHostPort(), Namespace: e.ns, Logger: quiet}))
	if err != nil {
		return fmt.Errorf("connecting to Temporal: %w", err)
	}
	e.client = c

	e.tokens = map[string]string{"valid": "chaos-valid-" + randHex(16), "other": "chaos-other-" + randHex(16)}
	auth, err := codecserver.StaticTokens(map[string]codecserver.Principal{
		e.tokens["valid"]: {Subject: "chaos-operator", Namespaces: []string{e.ns}, CanDecode: true},
		e.tokens["other"]: {Subject: "chaos-other-team", Namespaces: []string{"other-namespace"}, CanDecode: true},
	})
	if err != nil {
		return fmt.Errorf("codec server tokens: %w", err)
	}
	h, err := codecserver.New(codecserver.Config{
		Namespaces: codecserver.FromKit(kit, e.ns),
		Auth:       auth,
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return fmt.Errorf("codec server: %w", err)
	}
	e.codec = httptest.NewServer(h)
	logf("Codec Server %s", e.codec.URL)

	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding the executable: %w", err)
	}
	e.fleet = &fleet{
		exe:    exe,
		logDir: dir,
		env: append(cfg.env(), envTemporal+"="+e.ts.GetFrontendHostPort(), envNamespace+"="+e.ns,
			envQueue+"="+taskQueue, fmt.Sprintf("%s=%d", envSlots, e.p.InFlight)),
		live: make(map[int]*workerProc),
		gen:  make(map[int]int),
	}
	e.fleet.setPhase("setup")
	for i := range e.p.Workers {
		if _, err := e.fleet.start(i); err != nil {
			return err
		}
	}
	return nil
}

// specs builds the workflows: mixed sizes, a quarter of the values shared between workflows
// (so offload deduplicates them), and two gated workflows for the corruption fault.
func (e *env) specs() {
	r := rand.New(rand.NewPCG(1, 2))
	perWorkflow := time.Duration(float64(e.p.InFlight) * float64(e.p.timeline()) / float64(e.p.Workflows))
	distinct := max(1, e.p.Workflows*3/4)
	for i := range e.p.Workflows {
		vr := rand.New(rand.NewPCG(uint64(i%distinct), 7))
		steps := 1 + vr.IntN(3)
		sizes := make([]int, steps)
		for s := range sizes {
			sizes[s] = drawSize(vr)
		}
		work := time.Duration(float64(perWorkflow) / float64(steps) * (0.5 + r.Float64()))
		if i < e.p.InFlight {
			// The first wave starts at once: stagger its work so that completions (and KMS and
			// store calls) are spread from the start.
			work = work * time.Duration(i+1) / time.Duration(e.p.InFlight)
		}
		e.add(Spec{ID: fmt.Sprintf("chaos-%03d", i), Seed: uint64(i % distinct), Sizes: sizes, Work: work}, false)
	}
	e.victim = e.add(Spec{ID: "chaos-victim", Seed: 1 << 40, Sizes: []int{1 << 20, 64 << 10}, Work: time.Second, Gate: true}, true)
	e.control = e.add(Spec{ID: "chaos-control", Seed: 1<<40 + 1, Sizes: []int{1 << 20, 64 << 10}, Work: time.Second, Gate: true}, false)
}

func (e *env) add(s Spec, expectFail bool) *wf {
	want, steps := expected(s)
	w := &wf{spec: s, want: want, stepDigests: steps, expectFail: expectFail}
	e.wfs = append(e.wfs, w)
	return w
}

// drawSize returns a value size: 55% 1-128 KiB, 30% 320 KiB-1 MiB, 15% 1-8 MiB (log-uniform).
func drawSize(r *rand.Rand) int {
	logUniform := func(lo, hi float64) int {
		return int(lo * pow(hi/lo, r.Float64()))
	}
	switch x := r.Float64(); {
	case x < 0.55:
		return logUniform(1<<10, smallMax)
	case x < 0.85:
		return logUniform(offloadMin, 1<<20)
	default:
		return logUniform(1<<20, 8<<20)
	}
}

// runWorkflow starts w (retrying until it is accepted) and waits for its result.
func (e *env) runWorkflow(ctx context.Context, w *wf) {
	var run client.WorkflowRun
	for {
		var err error
		run, err = e.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: w.spec.ID, TaskQueue: taskQueue}, workflowName, w.spec)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			w.mu.Lock()
			w.startErr = err
			w.mu.Unlock()
			return
		}
		time.Sleep(time.Second)
	}
	w.mu.Lock()
	w.runID, w.started = run.GetRunID(), time.Now()
	w.mu.Unlock()
	for {
		var res string
		err := run.Get(ctx, &res)
		var wee *temporal.WorkflowExecutionError
		switch {
		case err == nil:
			w.mu.Lock()
			w.done, w.result, w.closed = true, res, time.Now()
			w.mu.Unlock()
			return
		case errors.As(err, &wee):
			w.mu.Lock()
			w.done, w.failed, w.failure, w.closed = true, true, err.Error(), time.Now()
			w.mu.Unlock()
			return
		case ctx.Err() != nil:
			return // lost
		}
		time.Sleep(time.Second) // the result could not be read or decoded yet (KMS or MinIO down)
	}
}

func (e *env) run(ctx context.Context) (*report, error) {
	e.specs()
	runStart := time.Now()
	loadCtx, cancelLoad := context.WithTimeout(ctx, e.p.timeline()+10*time.Minute)
	defer cancelLoad()
	var wg sync.WaitGroup
	for _, w := range []*wf{e.victim, e.control} {
		wg.Go(func() { e.runWorkflow(loadCtx, w) })
	}
	maxInFlight := make(chan struct{}, e.p.InFlight)
	var peakMu sync.Mutex
	peak, cur := 0, 0
	wg.Go(func() {
		var inner sync.WaitGroup
		for _, w := range e.wfs {
			if w == e.victim || w == e.control {
				continue
			}
			select {
			case maxInFlight <- struct{}{}:
			case <-loadCtx.Done():
				return
			}
			peakMu.Lock()
			cur++
			peak = max(peak, cur)
			peakMu.Unlock()
			inner.Go(func() {
				defer func() {
					peakMu.Lock()
					cur--
					peakMu.Unlock()
					<-maxInFlight
				}()
				e.runWorkflow(loadCtx, w)
			})
		}
		inner.Wait()
	})

	if err := e.faultPhases(ctx); err != nil {
		return nil, err
	}
	e.fleet.setPhase("drain")
	logf("faults done; waiting for the remaining workflows")
	wg.Wait()
	logf("every workflow closed or timed out; verifying")
	rep, err := e.verify(ctx)
	if err != nil {
		return nil, err
	}
	peakMu.Lock()
	rep.peakInFlight = peak + 2 // the victim and the control workflow are in flight throughout
	peakMu.Unlock()
	rep.duration = time.Since(runStart)
	return rep, nil
}

func (e *env) record(f faultResult) {
	status := "ok"
	if !f.OK {
		status = "FAILED"
	}
	logf("fault %q: %s; observed %s (%s)", f.Fault, f.Injected, f.Observed, status)
	e.faults = append(e.faults, f)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("interrupted: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}

func (e *env) faultPhases(ctx context.Context) error {
	p := e.p
	e.fleet.setPhase("warmup")
	if err := sleepCtx(ctx, p.Warmup); err != nil {
		return err
	}
	steps := []func(context.Context) error{
		e.faultThrottle, e.faultKMSOutage, e.faultMinIO, e.faultCorrupt, e.faultKill, e.faultRotate, e.faultCodecLoad,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
		e.fleet.setPhase("gap")
		if err := sleepCtx(ctx, p.Gap); err != nil {
			return err
		}
	}
	return nil
}

func (e *env) faultThrottle(ctx context.Context) error {
	e.fleet.setPhase("throttle")
	before := e.proxy.throttled.Load()
	calls := e.kms.Calls(workflowtest.KMSAnyOperation)
	throttleStart := time.Now()
	e.proxy.setThrottle(e.p.ThrottleShare)
	err := sleepCtx(ctx, e.p.Throttle)
	// KMS traffic depends on the data-key caches: extend the phase (up to three times) until
	// a few calls have been throttled.
	for extra := time.Duration(0); err == nil && e.proxy.throttled.Load()-before < 5 && extra < 2*e.p.Throttle; extra += time.Second {
		err = sleepCtx(ctx, time.Second)
	}
	e.proxy.setThrottle(0)
	n := e.proxy.throttled.Load() - before
	passed := e.kms.Calls(workflowtest.KMSAnyOperation) - calls
	e.record(faultResult{
		Fault:    "KMS throttling",
		Injected: fmt.Sprintf("%.0f%% of KMS calls answered ThrottlingException for %s", e.p.ThrottleShare*100, time.Since(throttleStart).Round(time.Second)),
		Expected: "some calls throttled; every workflow still completes",
		Observed: fmt.Sprintf("%d calls throttled, %d passed", n, passed),
		OK:       n > 0,
	})
	return err
}

func (e *env) faultKMSOutage(ctx context.Context) error {
	e.fleet.setPhase("outage")
	before := e.proxy.unavailable.Load()
	e.kms.SetUnavailable(true)
	logf("KMS outage begins")
	restartAt := min(2*time.Second, e.p.Outage/3)
	err := sleepCtx(ctx, restartAt)
	cold := e.p.Workers - 1
	if err == nil {
		e.fleet.stop(cold, syscall.SIGTERM)
		_, err = e.fleet.start(cold) // its data-key caches are cold
	}
	if err == nil {
		err = sleepCtx(ctx, e.p.Outage-restartAt)
	}
	e.kms.SetUnavailable(false)
	logf("KMS outage ends")
	n := e.proxy.unavailable.Load() - before
	warm := e.fleet.get(0)
	coldW := e.fleet.get(cold)
	var warmHits, coldErrs, coldHits int
	if warm != nil {
		warmHits = warm.count("outage/KEY cache-hit")
	}
	if coldW != nil {
		coldErrs, coldHits = coldW.count("outage/KEY kms-error"), coldW.count("outage/KEY cache-hit")
	}
	e.record(faultResult{
		Fault:    "KMS outage, caches warm and cold",
		Injected: fmt.Sprintf("KMS answers 503 for %s; worker %d restarted %s into it", e.p.Outage, cold+1, restartAt),
		Expected: "warm worker keeps using cached data keys; restarted (cold) worker's KMS calls fail until KMS is back",
		Observed: fmt.Sprintf("%d calls answered 503; warm worker: %d cache hits; cold worker: %d failed KMS calls, %d cache hits",
			n, warmHits, coldErrs, coldHits),
		OK: n > 0 && warmHits > 0 && coldErrs > 0,
	})
	return err
}

func (e *env) faultMinIO(ctx context.Context) error {
	e.fleet.setPhase("minio-down")
	e.minio.Stop()
	logf("MinIO stopped")
	start := time.Now()
	storeErrors := func() (n int) {
		for _, w := range e.fleet.snapshot() {
			n += w.count("minio-down/STORE error")
		}
		return n
	}
	// Down for MinIODown, longer (up to three times) until some store call has failed: with
	// few large values in flight, a short outage may see no store call at all.
	err := sleepCtx(ctx, e.p.MinIODown)
	for err == nil && storeErrors() == 0 && time.Since(start) < 3*e.p.MinIODown {
		err = sleepCtx(ctx, 250*time.Millisecond)
	}
	down := time.Since(start).Round(100 * time.Millisecond)
	e.minio.Start()
	logf("MinIO restarted")
	var done int
	for _, w := range e.fleet.snapshot() {
		done += w.count("minio-down/ACT done")
	}
	n := storeErrors()
	e.record(faultResult{
		Fault:    "MinIO stopped and restarted",
		Injected: fmt.Sprintf("MinIO down for %s, restarted on the same port and data", down),
		Expected: "offload calls fail (retryable) and are retried; no workflow lost",
		Observed: fmt.Sprintf("%d store calls failed; %d activities finished their work while MinIO was down", n, done),
		OK:       n > 0,
	})
	return err
}
