// Command chaos runs payloadkit's chaos scenario: a fleet of worker processes runs hundreds of
// workflows with payloads from 1 KiB to 8 MiB (compressed, encrypted under AWS KMS, offloaded to
// S3 above 256 KiB) while the orchestrator injects, one after another, KMS throttling, a KMS
// outage (with a worker restarted during it), a MinIO outage, a corrupted stored object, a
// SIGKILLed worker, a rotation of the primary key and Codec Server load. It then verifies every
// result and prints a table; the full run (make chaos) writes it to docs/CHAOS.md.
//
//	go run ./chaos          # full run: 300 workflows, writes ../docs/CHAOS.md
//	go run ./chaos -short   # about two minutes: 60 workflows, table on stdout only
//
// The same binary started with -worker is a worker process (the orchestrator starts them).
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

// params are the scenario's sizes and durations.
type params struct {
	Short         bool
	Workflows     int
	InFlight      int
	Workers       int
	Warmup        time.Duration
	Throttle      time.Duration
	ThrottleShare float64
	Outage        time.Duration
	MinIODown     time.Duration
	Gap           time.Duration
	CodecLoad     time.Duration
	CodecClients  int
}

// timeline estimates how long the fault phases last, to spread the workflows over them.
func (p params) timeline() time.Duration {
	return p.Warmup + p.Throttle + p.Outage + p.MinIODown + p.CodecLoad + 6*p.Gap + 20*time.Second
}

func main() {
	workerMode := flag.Bool("worker", false, "run as a worker process (started by the orchestrator)")
	short := flag.Bool("short", false, "short run (about two minutes): fewer workflows, shorter faults")
	workflows := flag.Int("workflows", 0, "workflows to run (default 300, 60 with -short)")
	inflight := flag.Int("inflight", 0, "workflows kept in flight (default 40, 32 with -short)")
	workers := flag.Int("workers", 2, "worker processes")
	doc := flag.String("doc", "", "write the report to this file (default ../docs/CHAOS.md for the full run; none with -short)")
	runDir := flag.String("dir", "../.cache/chaos", "directory for logs and MinIO data")
	flag.Parse()
	if *workerMode {
		if err := runWorker(); err != nil {
			fmt.Fprintln(os.Stderr, "chaos worker:", err)
			os.Exit(1)
		}
		return
	}
	p := params{
		Short: false, Workflows: 300, InFlight: 40, Workers: *workers,
		Warmup: 15 * time.Second, Throttle: 25 * time.Second, ThrottleShare: 0.5,
		Outage: 12 * time.Second, MinIODown: 12 * time.Second, Gap: 5 * time.Second,
		CodecLoad: 20 * time.Second, CodecClients: 32,
	}
	if *short {
		p = params{
			Short: true, Workflows: 60, InFlight: 32, Workers: *workers,
			Warmup: 8 * time.Second, Throttle: 12 * time.Second, ThrottleShare: 0.5,
			Outage: 6 * time.Second, MinIODown: 5 * time.Second, Gap: 3 * time.Second,
			CodecLoad: 8 * time.Second, CodecClients: 24,
		}
	}
	if *workflows > 0 {
		p.Workflows = *workflows
	}
	if *inflight > 0 {
		p.InFlight = *inflight
	}
	if p.Workers < 2 {
		fmt.Fprintln(os.Stderr, "chaos: -workers must be at least 2")
		os.Exit(2)
	}
	out := *doc
	if out == "" && !p.Short {
		out = "../docs/CHAOS.md"
	}
	os.Exit(orchestrate(p, *runDir, out))
}
