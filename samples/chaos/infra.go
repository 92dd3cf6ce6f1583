package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeTB lets the orchestrator use workflowtest's KMS and MinIO helpers outside a test: Fatalf
// panics with a fatalError, recovered by the orchestrator, and Cleanup functions run at exit.
type fakeTB struct {
	testing.TB // nil: only the methods below are called
	dir        string
	mu         sync.Mutex
	cleanups   []func()
	n          int
}

type fatalError struct{ msg string }

func (e fatalError) Error() string { return e.msg }

func (t *fakeTB) Helper()      {}
func (t *fakeTB) Name() string { return "chaos" }
func (t *fakeTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}
func (t *fakeTB) Fatalf(format string, args ...any) { panic(fatalError{fmt.Sprintf(format, args...)}) }
func (t *fakeTB) Fatal(args ...any)                 { panic(fatalError{fmt.Sprint(args...)}) }
func (t *fakeTB) Errorf(format string, args ...any) { panic(fatalError{fmt.Sprintf(format, args...)}) }
func (t *fakeTB) Skip(args ...any)                  { panic(fatalError{fmt.Sprint(args...)}) }
func (t *fakeTB) Skipf(format string, args ...any)  { panic(fatalError{fmt.Sprintf(format, args...)}) }
func (t *fakeTB) Logf(format string, args ...any)   { logf(format, args...) }
func (t *fakeTB) TempDir() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n++
	dir := filepath.Join(t.dir, "tmp"+strconv.Itoa(t.n))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		panic(fatalError{fmt.Sprintf("creating %s: %v", dir, err)})
	}
	return dir
}

// cleanup runs the Cleanup functions, last first.
func (t *fakeTB) cleanup() {
	t.mu.Lock()
	fs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

var start = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

// kmsProxy stands between the workers and the KMS test server: it answers a share of the calls
// with ThrottlingException itself, and counts answers by status and the key each
// GenerateDataKey and Decrypt answer names.
type kmsProxy struct {
	rp            *httputil.ReverseProxy
	throttleShare atomic.Uint64 // math.Float64bits
	throttled     atomic.Int64
	unavailable   atomic.Int64 // 503 answers from the KMS test server (outage)
	rotated       atomic.Bool  // set when the primary key is rotated
	mu            sync.Mutex
	byKey         map[string]int // "<before|after>/<op>/<key ARN>" -> answers
}

func newKMSProxy(target string) (*kmsProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("KMS endpoint %q: %w", target, err)
	}
	p := &kmsProxy{byKey: make(map[string]int)}
	p.rp = httputil.NewSingleHostReverseProxy(u)
	p.rp.ErrorLog = nil
	p.rp.ModifyResponse = p.observe
	return p, nil
}

func (p *kmsProxy) setThrottle(share float64) { p.throttleShare.Store(mathFloat64bits(share)) }

func (p *kmsProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if share := mathFloat64frombits(p.throttleShare.Load()); share > 0 && rand.Float64() < share {
		p.throttled.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"__type":"ThrottlingException","message":"Rate exceeded (injected by the chaos scenario)"}`)
		return
	}
	p.rp.ServeHTTP(w, r)
}

func (p *kmsProxy) observe(resp *http.Response) error {
	if resp.StatusCode == http.StatusServiceUnavailable {
		p.unavailable.Add(1)
	}
	op := strings.TrimPrefix(resp.Request.Header.Get("X-Amz-Target"), "TrentService.")
	if resp.StatusCode != http.StatusOK || (op != "GenerateDataKey" && op != "Decrypt") {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("reading KMS answer: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var out struct{ KeyId string }
	if json.Unmarshal(body, &out) == nil && out.KeyId != "" {
		when := "before"
		if p.rotated.Load() {
			when = "after"
		}
		p.mu.Lock()
		p.byKey[when+"/"+op+"/"+out.KeyId]++
		p.mu.Unlock()
	}
	return nil
}

func (p *kmsProxy) answers(when, op, key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byKey[when+"/"+op+"/"+key]
}

// workerProc is one worker process (one incarnation: a restart makes a new one).
type workerProc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}

	mu       sync.Mutex
	inflight int
	heapPeak uint64
	counts   map[string]int // "<phase>/<event>" -> count, events from the worker's stdout
}

// fleet starts and stops worker processes and collects what they report.
type fleet struct {
	exe    string
	env    []string
	logDir string
	phase  atomic.Value // string: the current phase, for the counters

	mu    sync.Mutex
	procs []*workerProc // every incarnation
	live  map[int]*workerProc
	gen   map[int]int
}

func (f *fleet) setPhase(p string) { f.phase.Store(p) }

// start starts worker slot i and waits until it reports READY.
func (f *fleet) start(i int) (*workerProc, error) {
	f.mu.Lock()
	f.gen[i]++
	name := fmt.Sprintf("worker-%d#%d", i+1, f.gen[i])
	f.mu.Unlock()
	logFile, err := os.Create(filepath.Join(f.logDir, strings.ReplaceAll(name, "#", "-")+".log"))
	if err != nil {
		return nil, fmt.Errorf("worker log: %w", err)
	}
	cmd := exec.Command(f.exe, "-worker")
	cmd.Env = append(os.Environ(), f.env...)
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("worker stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	w := &workerProc{name: name, cmd: cmd, done: make(chan struct{}), counts: make(map[string]int)}
	ready := make(chan struct{})
	go func() {
		defer close(w.done)
		defer logFile.Close()
		var once sync.Once
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			phase, _ := f.phase.Load().(string)
			w.mu.Lock()
			switch {
			case line == "READY":
				once.Do(func() { close(ready) })
			case strings.HasPrefix(line, "HEAP "):
				if n, err := strconv.ParseUint(line[5:], 10, 64); err == nil && n > w.heapPeak {
					w.heapPeak = n
				}
			case line == "ACT start":
				w.inflight++
			case line == "ACT done" || line == "ACT fail":
				w.inflight--
			}
			if !strings.HasPrefix(line, "HEAP ") {
				w.counts[phase+"/"+line]++
				w.counts["all/"+line]++
			}
			w.mu.Unlock()
		}
		_ = cmd.Wait()
		once.Do(func() {})
	}()
	select {
	case <-ready:
	case <-w.done:
		return nil, fmt.Errorf("%s exited before it was ready (see %s)", name, logFile.Name())
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s not ready after 60s (see %s)", name, logFile.Name())
	}
	f.mu.Lock()
	f.procs = append(f.procs, w)
	f.live[i] = w
	f.mu.Unlock()
	logf("%s started (pid %d)", name, cmd.Process.Pid)
	return w, nil
}

// stop stops worker slot i with sig and waits for it to exit.
func (f *fleet) stop(i int, sig syscall.Signal) *workerProc {
	f.mu.Lock()
	w := f.live[i]
	delete(f.live, i)
	f.mu.Unlock()
	if w == nil {
		return nil
	}
	_ = w.cmd.Process.Signal(sig)
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
	logf("%s stopped (%s)", w.name, sig)
	return w
}

func (f *fleet) stopAll() {
	f.mu.Lock()
	var slots []int
	for i := range f.live {
		slots = append(slots, i)
	}
	f.mu.Unlock()
	for _, i := range slots {
		f.stop(i, syscall.SIGTERM)
	}
}

func (f *fleet) get(i int) *workerProc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live[i]
}

func (w *workerProc) count(key string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counts[key]
}

func (w *workerProc) activities() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.inflight
}

func mathFloat64bits(f float64) uint64     { return math.Float64bits(f) }
func mathFloat64frombits(b uint64) float64 { return math.Float64frombits(b) }

// signalContext is canceled on SIGINT or SIGTERM, so the orchestrator stops what it started.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
