package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"

	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/samples/internal/history"
	"github.com/payloadkit/payloadkit/workflowtest"
)

type report struct {
	p            params
	faults       []faultResult
	started      int
	completed    int
	expectedFail int
	unexpected   []string // workflows failed though they should not have
	lost         []string
	wrong        []string
	peakInFlight int

	objects, referenced, dangling, distinctOffloaded int
	retries                                          map[string]int // "<activity|workflow task>: <cause>"

	kmsGenerate, kmsDecrypt, kmsTotal int
	throttled, unavailable            int64
	codec                             map[int]int
	codecRequests, codecUnexpected    int
	heap                              map[string]uint64
	duration                          time.Duration
}

func (r *report) ok() bool {
	for _, f := range r.faults {
		if !f.OK {
			return false
		}
	}
	return len(r.lost) == 0 && len(r.wrong) == 0 && len(r.unexpected) == 0 && r.dangling == 0 &&
		r.referenced >= r.distinctOffloaded && r.expectedFail == 1
}

func (e *env) classify(f *failurepb.Failure) string {
	if ti := f.GetTimeoutFailureInfo(); ti != nil {
		return "timeout (" + strings.ToLower(strings.TrimPrefix(ti.GetTimeoutType().String(), "TIMEOUT_TYPE_")) + ")"
	}
	msg := e.kit.FailureConverter().FailureToError(f).Error()
	switch {
	case strings.Contains(msg, "ThrottlingException"):
		return "KMS throttled"
	case strings.Contains(msg, "awskms") || strings.Contains(msg, "KMS"):
		return "KMS unavailable"
	case strings.Contains(msg, "offload"):
		return "store unavailable"
	}
	if len(msg) > 80 {
		msg = msg[:80] + "..."
	}
	return "other: " + msg
}

func (e *env) verify(ctx context.Context) (*report, error) {
	r := &report{p: e.p, faults: e.faults, retries: map[string]int{}, heap: map[string]uint64{}}
	referenced := map[string]bool{}
	distinct := map[string]bool{}
	for _, w := range e.wfs {
		for i, size := range w.spec.Sizes {
			if size >= offloadMin {
				distinct[w.stepDigests[i]] = true
			}
		}
		runID, done, failed, result, failure, _, _ := w.snapshot()
		if runID != "" {
			r.started++
		}
		switch {
		case !done:
			r.lost = append(r.lost, w.spec.ID)
		case w.expectFail && failed && strings.Contains(failure, "integrity"):
			r.expectedFail++
		case failed:
			r.unexpected = append(r.unexpected, w.spec.ID+": "+failure)
		case w.expectFail:
			r.wrong = append(r.wrong, w.spec.ID+": completed though its object was corrupted")
		case result != w.want:
			r.wrong = append(r.wrong, fmt.Sprintf("%s: digest %s, want %s", w.spec.ID, result, w.want))
		default:
			r.completed++
		}
		if runID == "" {
			continue
		}
		events, err := history.Events(ctx, e.client, w.spec.ID, runID)
		if err != nil {
			return nil, fmt.Errorf("verifying %s: %w", w.spec.ID, err)
		}
		for _, p := range history.FromEvents(events) {
			if offload.IsClaim(p.Payload) {
				c, err := offload.ParseClaim(p.Payload)
				if err != nil {
					return nil, fmt.Errorf("verifying %s: %w", w.spec.ID, err)
				}
				referenced[c.Key] = true
			}
		}
		for _, ev := range events {
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
				if a := ev.GetActivityTaskStartedEventAttributes(); a.GetAttempt() > 1 && a.GetLastFailure() != nil {
					r.retries["activity retried after: "+e.classify(a.GetLastFailure())]++
				}
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED:
				r.retries["workflow task retried after: "+e.classify(ev.GetWorkflowTaskFailedEventAttributes().GetFailure())]++
			}
		}
	}
	r.distinctOffloaded = len(distinct)
	r.referenced = len(referenced)
	present := map[string]bool{}
	pager := s3.NewListObjectsV2Paginator(e.minio.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(e.minio.Bucket())})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing objects: %w", err)
		}
		for _, o := range page.Contents {
			present[aws.ToString(o.Key)] = true
		}
	}
	r.objects = len(present)
	for k := range referenced {
		if !present[k] {
			r.dangling++
		}
	}
	r.kmsGenerate = e.kms.Calls(workflowtest.KMSGenerateDataKey)
	r.kmsDecrypt = e.kms.Calls(workflowtest.KMSDecrypt)
	r.kmsTotal = e.kms.Calls(workflowtest.KMSAnyOperation)
	r.throttled, r.unavailable = e.proxy.throttled.Load(), e.proxy.unavailable.Load()
	if cc := e.codecCounts; cc != nil {
		cc.mu.Lock()
		r.codec, r.codecRequests, r.codecUnexpected = cc.byStatus, cc.requests, cc.unexpected
		cc.mu.Unlock()
	}
	for _, w := range e.fleet.snapshot() {
		w.mu.Lock()
		r.heap[w.name] = w.heapPeak
		w.mu.Unlock()
	}
	// The MinIO and SIGKILL faults are judged by the retries they caused.
	for i := range r.faults {
		f := &r.faults[i]
		switch {
		case strings.HasPrefix(f.Fault, "MinIO"):
			// Judged by the store errors the workers saw (faultMinIO); histories keep only the
			// last failure of each activity, so their count is a lower bound.
			n := r.retries["activity retried after: store unavailable"] + r.retries["workflow task retried after: store unavailable"]
			f.Observed += fmt.Sprintf("; %d attempts retried after a store error seen in histories", n)
		case strings.HasPrefix(f.Fault, "worker SIGKILLed"):
			n := r.retries["activity retried after: timeout (heartbeat)"]
			f.Observed += fmt.Sprintf("; %d activity attempts retried after a heartbeat timeout", n)
			f.OK = f.OK && n > 0
		}
	}
	return r, nil
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func check(ok bool) string {
	if ok {
		return "ok"
	}
	return "**FAILED**"
}

// markdown renders the report as Markdown tables.
func (r *report) markdown() string {
	var b strings.Builder
	mode := "full"
	if r.p.Short {
		mode = "short (-short)"
	}
	fmt.Fprintf(&b, "Run: %s; %d workflows + 2 gated (corruption victim and control), up to %d in flight (peak %d), %d worker processes; "+
		"values 1 KiB-8 MiB (55%% <=128 KiB, 30%% 320 KiB-1 MiB, 15%% 1-8 MiB), 1-3 activities each, offload above 256 KiB; "+
		"%s on %s/%s with %d CPUs, %s.\n\n",
		mode, r.p.Workflows, r.p.InFlight, r.peakInFlight, r.p.Workers, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(),
		r.duration.Round(time.Second))
	b.WriteString("| Fault injected | Expected | Observed | |\n|---|---|---|---|\n")
	for _, f := range r.faults {
		fmt.Fprintf(&b, "| %s: %s | %s | %s | %s |\n", f.Fault, f.Injected, f.Expected, f.Observed, check(f.OK))
	}
	b.WriteString("\n| Measure | Value | |\n|---|---|---|\n")
	row := func(name, value string, ok ...bool) {
		mark := ""
		if len(ok) > 0 {
			mark = check(ok[0])
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", name, value, mark)
	}
	row("workflows started", fmt.Sprint(r.started))
	row("workflows completed, digest verified", fmt.Sprint(r.completed))
	row("workflows failed as expected (integrity error naming the corrupted key)", fmt.Sprint(r.expectedFail), r.expectedFail == 1)
	row("workflows failed unexpectedly", fmt.Sprint(len(r.unexpected)), len(r.unexpected) == 0)
	row("workflows lost (not closed)", fmt.Sprint(len(r.lost)), len(r.lost) == 0)
	row("results wrong", fmt.Sprint(len(r.wrong)), len(r.wrong) == 0)
	row("distinct offloaded values", fmt.Sprint(r.distinctOffloaded))
	row("objects referenced by claims in the histories (all present in the store)", fmt.Sprintf("%d (%d missing)", r.referenced, r.dangling),
		r.dangling == 0 && r.referenced >= r.distinctOffloaded)
	row("objects in the store (the rest: results of attempts that failed after their upload)", fmt.Sprint(r.objects))
	row("KMS calls received (GenerateDataKey / Decrypt / all)", fmt.Sprintf("%d / %d / %d", r.kmsGenerate, r.kmsDecrypt, r.kmsTotal))
	row("KMS calls refused (ThrottlingException / 503 outage)", fmt.Sprintf("%d / %d", r.throttled, r.unavailable))
	other := r.codecRequests - r.codec[200] - r.codec[401] - r.codec[403]
	row("Codec Server answers 2xx / 401 / 403 / other", fmt.Sprintf("%d / %d / %d / %d", r.codec[200], r.codec[401], r.codec[403], other),
		r.codecUnexpected == 0)
	names := make([]string, 0, len(r.heap))
	var peak uint64
	for n, h := range r.heap {
		names = append(names, n)
		peak = max(peak, h)
	}
	slices.Sort(names)
	var per []string
	for _, n := range names {
		per = append(per, n+" "+mib(r.heap[n]))
	}
	row("worker heap peak (heap objects in use)", mib(peak)+" ("+strings.Join(per, ", ")+")")
	causes := make([]string, 0, len(r.retries))
	for c := range r.retries {
		causes = append(causes, c)
	}
	slices.Sort(causes)
	for _, c := range causes {
		row(c, fmt.Sprint(r.retries[c]))
	}
	for _, s := range r.lost {
		fmt.Fprintf(&b, "\nlost: %s", s)
	}
	for _, s := range r.wrong {
		fmt.Fprintf(&b, "\nwrong: %s", s)
	}
	for _, s := range r.unexpected {
		fmt.Fprintf(&b, "\nfailed unexpectedly: %s", s)
	}
	return b.String()
}

// document is docs/CHAOS.md.
func (r *report) document(table string) string {
	return "# Chaos scenario\n\n" +
		"<!-- Generated by `make chaos` (samples/chaos, from a real run); do not edit by hand. -->\n\n" +
		"Generated " + time.Now().UTC().Format("2006-01-02 15:04 UTC") + " by `make chaos` (`cd samples && go run ./chaos`). " +
		"Worker processes run workflows against an in-process Temporal server, the KMS test server of package workflowtest " +
		"(behind a proxy that injects throttling) and MinIO, while the faults below are injected one after another; " +
		"then every result is checked against its expected SHA-256, the claims in every history are checked against the store, " +
		"and the KMS calls, Codec Server answers and worker heaps are counted. `make chaos` fails when a row is marked FAILED.\n\n" +
		table + "\n"
}
