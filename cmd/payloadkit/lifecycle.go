package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/spf13/cobra"

	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/offload/s3store"
)

type lifecycleFlags struct {
	store                             storeFlags
	namespace, prefix                 string
	retention, longestRun, refreshAge time.Duration
	timeout                           time.Duration
	apply                             bool
}

func newLifecycleCommand(s streams) *cobra.Command {
	f := &lifecycleFlags{}
	cmd := &cobra.Command{
		Use:   "lifecycle --namespace NS --retention DURATION --longest-run DURATION [--refresh-age 24h] [--apply --s3-bucket BUCKET]",
		Short: "Print, or apply to the bucket, the S3 lifecycle rule expiring a namespace's offloaded objects",
		Long: `lifecycle prints the S3 lifecycle rule for the offloaded objects of a namespace,
as JSON in the shape 'aws s3api put-bucket-lifecycle-configuration
--lifecycle-configuration' accepts. The rule:

  - applies to the keys <prefix>/<namespace>/ (--offload-prefix, default
    "payloadkit", must match the workers' offload.Options.Prefix);
  - expires objects ceil((retention + longest run + refresh age) / 24h) days
    after they were written: a history references an object for at most the
    workflow's run plus the namespace's retention, and the codec writes an
    object again instead of deduplicating it once it is older than the refresh
    age (offload.Options.RefreshAge, default 24h);
  - aborts incomplete multipart uploads one day after they began.

--retention is the namespace's retention period; --longest-run the longest time
any workflow of the namespace runs (across continue-as-new, a history is
retained from its own run's start). Durations are Go durations: 720h, 168h.

With --apply it installs the rule in --s3-bucket (replacing a previous rule of
the same ID, keeping every other rule of the bucket) and prints the rule read
back from the bucket.

Exit codes:
  0  success
  1  an S3 request failed
  2  usage or configuration error`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runLifecycle(cmd.Context(), s, f) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.namespace, "namespace", "", "Temporal namespace (required)")
	fs.StringVar(&f.prefix, "offload-prefix", offload.DefaultPrefix, "object key prefix (offload.Options.Prefix)")
	fs.DurationVar(&f.retention, "retention", 0, "namespace retention period, e.g. 720h (required)")
	fs.DurationVar(&f.longestRun, "longest-run", 0, "longest workflow run of the namespace, e.g. 168h (required)")
	fs.DurationVar(&f.refreshAge, "refresh-age", offload.DefaultRefreshAge, "the codec's refresh age (offload.Options.RefreshAge)")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "bound of the S3 requests of --apply")
	fs.BoolVar(&f.apply, "apply", false, "apply the rule to --s3-bucket and print it read back")
	f.store.register(fs, false)
	for _, name := range []string{"namespace", "retention", "longest-run"} {
		_ = cmd.MarkFlagRequired(name) // the flags exist: cannot fail
	}
	return cmd
}

func runLifecycle(ctx context.Context, s streams, f *lifecycleFlags) error {
	switch {
	case f.namespace == "":
		return usageErrorf("--namespace is required")
	case f.retention == 0:
		return usageErrorf("--retention is required")
	case f.timeout <= 0:
		return usageErrorf("--timeout must be positive")
	case !f.apply && f.store.bucket != "":
		return usageErrorf("--s3-bucket is used with --apply only")
	case f.apply && f.store.bucket == "":
		return usageErrorf("--apply needs --s3-bucket")
	}
	rule, err := s3store.LifecycleRule(f.prefix, f.namespace, f.retention, f.longestRun, f.refreshAge)
	if err != nil {
		return usageErrorf("%w", err)
	}
	if err := writeRules(s.out, rule); err != nil {
		return &exitError{code: exitProblem, err: err}
	}
	if !f.apply {
		return nil
	}
	client, err := f.store.s3Client(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if err := s3store.ApplyLifecycle(ctx, client, f.store.bucket, rule); err != nil {
		return &exitError{code: exitProblem, err: err}
	}
	rules, err := s3store.GetLifecycle(ctx, client, f.store.bucket)
	if err != nil {
		return &exitError{code: exitProblem, err: err}
	}
	id := aws.ToString(rule.ID)
	for _, r := range rules {
		if aws.ToString(r.ID) == id {
			fmt.Fprintf(s.err, "applied rule %s to bucket %s (%d rules in the bucket); read back:\n", id, f.store.bucket, len(rules))
			if err := writeRules(s.out, r); err != nil {
				return &exitError{code: exitProblem, err: err}
			}
			return nil
		}
	}
	return &exitError{code: exitProblem, err: fmt.Errorf("rule %s not found in bucket %s after applying it", id, f.store.bucket)}
}

// Lifecycle configuration JSON, in the shape of the AWS CLI's --lifecycle-configuration.
type (
	lifecycleJSON struct {
		Rules []ruleJSON `json:"Rules"`
	}
	ruleJSON struct {
		ID                             string          `json:"ID"`
		Status                         string          `json:"Status"`
		Filter                         *filterJSON     `json:"Filter,omitempty"`
		Expiration                     *expirationJSON `json:"Expiration,omitempty"`
		AbortIncompleteMultipartUpload *abortJSON      `json:"AbortIncompleteMultipartUpload,omitempty"`
	}
	filterJSON struct {
		Prefix string `json:"Prefix"`
	}
	expirationJSON struct {
		Days int32 `json:"Days"`
	}
	abortJSON struct {
		DaysAfterInitiation int32 `json:"DaysAfterInitiation"`
	}
)

// writeRules writes rules as an indented lifecycle configuration document.
func writeRules(w io.Writer, rules ...types.LifecycleRule) error {
	doc := lifecycleJSON{Rules: make([]ruleJSON, 0, len(rules))}
	for _, r := range rules {
		rj := ruleJSON{ID: aws.ToString(r.ID), Status: string(r.Status)}
		if r.Filter != nil {
			rj.Filter = &filterJSON{Prefix: aws.ToString(r.Filter.Prefix)}
		}
		if r.Expiration != nil && r.Expiration.Days != nil {
			rj.Expiration = &expirationJSON{Days: *r.Expiration.Days}
		}
		if a := r.AbortIncompleteMultipartUpload; a != nil && a.DaysAfterInitiation != nil {
			rj.AbortIncompleteMultipartUpload = &abortJSON{DaysAfterInitiation: *a.DaysAfterInitiation}
		}
		doc.Rules = append(doc.Rules, rj)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the lifecycle rule: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
