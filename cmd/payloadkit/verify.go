package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/offload"
)

// defaultMaxHistoryBytes bounds the history JSON read (256 MiB; the Temporal server's default
// history size limit is 50 MiB of protobuf).
const defaultMaxHistoryBytes = 256 << 20

type verifyFlags struct {
	store           storeFlags
	history         string
	concurrency     int
	timeout         time.Duration
	maxHistoryBytes int64
	maxObjectBytes  int64
	keyObjectPrefix string
}

func newVerifyCommand(s streams) *cobra.Command {
	f := &verifyFlags{}
	cmd := &cobra.Command{
		Use:   "verify --history FILE|- (--offload-dir DIR | --s3-bucket BUCKET [S3 flags])",
		Short: "Check that every claim and v2 key object of a workflow history resolves to an intact object",
		Long: `verify reads a workflow history exported with

    temporal workflow show --workflow-id ID -o json > history.json

(--history - reads standard input), finds every claim-check payload in it
(inputs, results, headers, memos, search attributes, failure details, ...) and
checks that the store holds each object with the claimed size and SHA-256.
It also checks the key object of every encrypted payload in envelope format v2
(in the history, or inside a claimed object): that the store holds it under
<key-object-prefix>/keys/<reference> and that it hashes to its reference and
parses. Each distinct object is read once. It prints one line per claim or
key object that is not ok:

    <status> event <id> <field path> key=<key> size=<bytes>: <error>
    <status> event <id> <field path> key-object=<key>[ (offloaded)]: <error>

and then a summary line. Run it on sample histories before deleting objects,
changing lifecycle rules or moving buckets.

Exit codes:
  0  every claim verified (or the history holds none)
  1  some object or key object is missing or corrupt, or some claim or v2
     payload is malformed
  2  usage or configuration error, or the history cannot be read
  3  nothing found wrong, but some claims could not be checked
     (store errors, claims naming another store)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runVerify(cmd, s, f) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.history, "history", "", "history JSON file (temporal workflow show -o json), - for standard input (required)")
	fs.IntVar(&f.concurrency, "concurrency", offload.DefaultVerifyConcurrency, "objects read at once")
	fs.DurationVar(&f.timeout, "timeout", offload.DefaultTimeout, "bound of each object read")
	fs.Int64Var(&f.maxHistoryBytes, "max-history-bytes", defaultMaxHistoryBytes, "largest history file read, in bytes")
	fs.Int64Var(&f.maxObjectBytes, "max-object-bytes", offload.DefaultMaxPayloadSize, "largest object read, in bytes (larger claims are reported as errors)")
	fs.StringVar(&f.keyObjectPrefix, "key-object-prefix", codec.DefaultKeyObjectPrefix, "prefix of the key objects of envelope format v2 payloads (the encryption codec's KeyObjectPrefix)")
	f.store.register(fs, true)
	_ = cmd.MarkFlagRequired("history") // the flag exists: cannot fail
	return cmd
}

func runVerify(cmd *cobra.Command, s streams, f *verifyFlags) error {
	switch {
	case f.history == "":
		return usageErrorf("--history is required")
	case f.concurrency < 1:
		return usageErrorf("--concurrency must be at least 1")
	case f.timeout <= 0:
		return usageErrorf("--timeout must be positive")
	case f.maxHistoryBytes < 1:
		return usageErrorf("--max-history-bytes must be positive")
	case f.maxObjectBytes < 1:
		return usageErrorf("--max-object-bytes must be positive")
	case f.keyObjectPrefix == "" || strings.HasPrefix(f.keyObjectPrefix, "/") || strings.HasSuffix(f.keyObjectPrefix, "/"):
		return usageErrorf("--key-object-prefix must be non-empty and must not start or end with '/'")
	}
	ctx := cmd.Context()
	_, h, err := readHistory(f.history, s.in, f.maxHistoryBytes, "--history", "--max-history-bytes")
	if err != nil {
		return err
	}
	store, err := f.store.store(ctx)
	if err != nil {
		return err
	}
	rep, err := offload.VerifyHistory(ctx, store, h, &offload.VerifyOptions{
		Concurrency:     f.concurrency,
		Timeout:         f.timeout,
		MaxObjectSize:   f.maxObjectBytes,
		KeyObjectPrefix: f.keyObjectPrefix,
	})
	if rep == nil {
		return usageErrorf("verify: %w", err)
	}
	printReport(s.out, rep, f.store.describe(store))
	switch {
	case err != nil: // interrupted
		return &exitError{code: exitUnverified, err: err}
	case rep.Damaged():
		return &exitError{code: exitProblem}
	case !rep.OK():
		return &exitError{code: exitUnverified}
	}
	return nil
}

// printReport writes one line per problem and the summary.
func printReport(w io.Writer, rep *offload.VerifyReport, store string) {
	for _, c := range rep.Problems() {
		if c.Kind == offload.KindKeyObject {
			where := ""
			if c.InClaim {
				where = " (offloaded)"
			}
			fmt.Fprintf(w, "%s event %d %s key-object=%s%s: %v\n", c.Status, c.EventID, c.Path, c.Claim.Key, where, c.Err)
			continue
		}
		fmt.Fprintf(w, "%s event %d %s key=%s size=%d: %v\n", c.Status, c.EventID, c.Path, c.Claim.Key, c.Claim.Size, c.Err)
	}
	verdict := "OK"
	switch {
	case rep.Damaged():
		verdict = "DAMAGED"
	case !rep.OK():
		verdict = "UNVERIFIED"
	}
	fmt.Fprintf(w, "%s: store=%s %s\n", verdict, store, rep.Summary)
}
