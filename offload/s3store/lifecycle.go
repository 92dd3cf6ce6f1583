package s3store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/payloadkit/payloadkit/offload"
)

// Lifecycle of offloaded objects.
//
// The codec writes each object once per content and namespace and deduplicates later writes of
// the same content, rewriting an object only when it is older than the codec's refresh age
// (offload.Options.RefreshAge, 24 hours by default). A workflow history may reference an object
// until the workflow is deleted: its run time plus the namespace's retention period after it
// closes. So an object is referenced for at most
//
//	refresh age + longest workflow run + retention
//
// after it was last written, and an S3 lifecycle rule expiring the objects of the namespace's key
// prefix (<prefix>/<namespace>/) that many days after their creation, rounded up, never deletes
// an object a retained history still needs. LifecycleRule builds that rule; ApplyLifecycle
// installs it in the bucket next to the bucket's other rules. The rule also aborts incomplete
// multipart uploads (left by interrupted writes of large objects) one day after they began
// (MinIO accepts but ignores that part: it removes stale uploads itself).
//
// Verify a sample of histories (offload.VerifyHistory, `payloadkit offload verify`) after
// changing the rule or the codec's settings: an object missing from a retained history cannot be
// recreated.

const (
	// LifecycleRuleIDPrefix starts the ID of the rules built by LifecycleRule.
	LifecycleRuleIDPrefix = "payloadkit-"
	// AbortIncompleteUploadDays is the age, in days, at which the rule of LifecycleRule aborts
	// incomplete multipart uploads.
	AbortIncompleteUploadDays = 1
	// MaxLifecycleRules is the most rules S3 accepts in one bucket lifecycle configuration.
	MaxLifecycleRules = 1000

	// maxRuleIDSize is the longest rule ID S3 accepts.
	maxRuleIDSize = 255
	// maxPrefixSize bounds the key prefix, as offload.Options.Prefix.
	maxPrefixSize = 256
	// maxNamespaceSize bounds namespace names (Temporal's limit is far lower).
	maxNamespaceSize = 1000
	day              = 24 * time.Hour
)

// LifecycleClient is the part of *s3.Client that GetLifecycle and ApplyLifecycle call.
type LifecycleClient interface {
	GetBucketLifecycleConfiguration(ctx context.Context, in *s3.GetBucketLifecycleConfigurationInput, optFns ...func(*s3.Options)) (*s3.GetBucketLifecycleConfigurationOutput, error)
	PutBucketLifecycleConfiguration(ctx context.Context, in *s3.PutBucketLifecycleConfigurationInput, optFns ...func(*s3.Options)) (*s3.PutBucketLifecycleConfigurationOutput, error)
}

var _ LifecycleClient = (*s3.Client)(nil)

// LifecycleExpirationDays returns the days after which the lifecycle rule expires an object:
// ceil((retention + longestRun + refreshAge) / 24h). Retention and refreshAge must be positive
// (without a refresh age, deduplication keeps referencing old objects and no expiration is
// safe) and longestRun must not be negative.
func LifecycleExpirationDays(retention, longestRun, refreshAge time.Duration) (int32, error) {
	switch {
	case retention <= 0:
		return 0, fmt.Errorf("s3store: lifecycle: retention must be positive, got %v", retention)
	case longestRun < 0:
		return 0, fmt.Errorf("s3store: lifecycle: longest run must not be negative, got %v", longestRun)
	case refreshAge <= 0:
		return 0, fmt.Errorf("s3store: lifecycle: refresh age must be positive, got %v (objects never rewritten may be referenced forever)", refreshAge)
	}
	total := retention
	for _, d := range []time.Duration{longestRun, refreshAge} {
		if total > math.MaxInt64-d {
			return 0, errors.New("s3store: lifecycle: retention + longest run + refresh age overflows")
		}
		total += d
	}
	days := (total + day - 1) / day
	if days > math.MaxInt32 {
		return 0, fmt.Errorf("s3store: lifecycle: %d days exceeds the largest expiration S3 accepts", days)
	}
	return int32(days), nil
}

// LifecycleRuleID returns the ID of the rule of LifecycleRule for prefix (offload.DefaultPrefix
// when empty) and namespace: "payloadkit-<prefix>/<namespace>", the namespace escaped as in
// object keys, so that rules for different prefixes or namespaces of one bucket never collide.
func LifecycleRuleID(prefix, namespace string) (string, error) {
	keyPrefix, err := lifecyclePrefix(prefix, namespace)
	if err != nil {
		return "", err
	}
	id := LifecycleRuleIDPrefix + strings.TrimSuffix(keyPrefix, "/")
	if len(id) > maxRuleIDSize {
		return "", fmt.Errorf("s3store: lifecycle: rule ID for prefix %q and namespace %q is longer than %d bytes", prefix, namespace, maxRuleIDSize)
	}
	return id, nil
}

// LifecycleRule returns the lifecycle rule for the codec's objects of namespace under prefix
// (offload.DefaultPrefix when empty): enabled, ID LifecycleRuleID(prefix, namespace), filter
// prefix "<prefix>/<namespace>/" (the namespace escaped as in offload.CodecKey), expiration
// after LifecycleExpirationDays(retention, longestRun, refreshAge) days, and abort of
// incomplete multipart uploads after AbortIncompleteUploadDays. refreshAge must be the codec's
// refresh age (offload.Options.RefreshAge, 24h by default).
func LifecycleRule(prefix, namespace string, retention, longestRun, refreshAge time.Duration) (types.LifecycleRule, error) {
	keyPrefix, err := lifecyclePrefix(prefix, namespace)
	if err != nil {
		return types.LifecycleRule{}, err
	}
	id, err := LifecycleRuleID(prefix, namespace)
	if err != nil {
		return types.LifecycleRule{}, err
	}
	days, err := LifecycleExpirationDays(retention, longestRun, refreshAge)
	if err != nil {
		return types.LifecycleRule{}, err
	}
	return types.LifecycleRule{
		ID:                             aws.String(id),
		Status:                         types.ExpirationStatusEnabled,
		Filter:                         &types.LifecycleRuleFilter{Prefix: aws.String(keyPrefix)},
		Expiration:                     &types.LifecycleExpiration{Days: aws.Int32(days)},
		AbortIncompleteMultipartUpload: &types.AbortIncompleteMultipartUpload{DaysAfterInitiation: aws.Int32(AbortIncompleteUploadDays)},
	}, nil
}

// lifecyclePrefix validates prefix and namespace and returns "<prefix>/<escaped namespace>/".
func lifecyclePrefix(prefix, namespace string) (string, error) {
	if prefix == "" {
		prefix = offload.DefaultPrefix
	}
	if len(prefix) > maxPrefixSize {
		return "", fmt.Errorf("s3store: lifecycle: prefix is longer than %d bytes", maxPrefixSize)
	}
	for _, seg := range strings.Split(prefix, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("s3store: lifecycle: prefix %q must not start or end with \"/\" nor contain empty, \".\" or \"..\" segments", prefix)
		}
	}
	switch {
	case namespace == "":
		return "", errors.New("s3store: lifecycle: namespace is required")
	case len(namespace) > maxNamespaceSize:
		return "", fmt.Errorf("s3store: lifecycle: namespace is longer than %d bytes", maxNamespaceSize)
	}
	// CodecKey escapes the namespace as the codec does; drop the digest part.
	keyPrefix := strings.TrimSuffix(offload.CodecKey(prefix, namespace, ""), "sha256/")
	if keyPrefix == prefix+"/keys/" {
		// The rule would also expire the key objects of envelope v2 (<prefix>/keys/<hex>),
		// which must live as long as any payload under their data key.
		return "", fmt.Errorf("s3store: lifecycle: namespace %q shares its prefix %q with the key objects of envelope v2; use another offload prefix for it", namespace, keyPrefix)
	}
	return keyPrefix, nil
}

// GetLifecycle returns the lifecycle rules of bucket, or none when it has no lifecycle
// configuration.
func GetLifecycle(ctx context.Context, client LifecycleClient, bucket string) ([]types.LifecycleRule, error) {
	out, err := getLifecycle(ctx, client, bucket)
	if err != nil {
		return nil, err
	}
	return out.Rules, nil
}

func getLifecycle(ctx context.Context, client LifecycleClient, bucket string) (*s3.GetBucketLifecycleConfigurationOutput, error) {
	if client == nil || bucket == "" {
		return nil, errors.New("s3store: lifecycle: client and bucket are required")
	}
	out, err := client.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(bucket)})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchLifecycleConfiguration" {
		return &s3.GetBucketLifecycleConfigurationOutput{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("s3store: reading the lifecycle configuration of bucket %s: %w", bucket, err)
	}
	return out, nil
}

// ApplyLifecycle installs rules in the lifecycle configuration of bucket: it reads the bucket's
// configuration, replaces the rules with the IDs of rules, keeps every other rule, and writes the
// configuration back. Every rule needs a distinct ID. Applying the same rules twice leaves one
// copy of each.
//
// The read and the write are two requests: a concurrent change of the bucket's lifecycle
// configuration between them is lost. Needs s3:GetLifecycleConfiguration and
// s3:PutLifecycleConfiguration permissions.
func ApplyLifecycle(ctx context.Context, client LifecycleClient, bucket string, rules ...types.LifecycleRule) error {
	if len(rules) == 0 {
		return errors.New("s3store: lifecycle: no rule to apply")
	}
	ids := map[string]bool{}
	for _, r := range rules {
		id := aws.ToString(r.ID)
		switch {
		case id == "":
			return errors.New("s3store: lifecycle: every rule needs an ID")
		case ids[id]:
			return fmt.Errorf("s3store: lifecycle: rule ID %q is given twice", id)
		}
		ids[id] = true
	}
	cur, err := getLifecycle(ctx, client, bucket)
	if err != nil {
		return err
	}
	merged := make([]types.LifecycleRule, 0, len(cur.Rules)+len(rules))
	for _, r := range cur.Rules {
		if !ids[aws.ToString(r.ID)] {
			merged = append(merged, r)
		}
	}
	merged = append(merged, rules...)
	if len(merged) > MaxLifecycleRules {
		return fmt.Errorf("s3store: lifecycle: bucket %s would have %d rules, more than the %d S3 accepts", bucket, len(merged), MaxLifecycleRules)
	}
	_, err = client.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
		Bucket:                             aws.String(bucket),
		LifecycleConfiguration:             &types.BucketLifecycleConfiguration{Rules: merged},
		TransitionDefaultMinimumObjectSize: cur.TransitionDefaultMinimumObjectSize,
		// S3 requires an integrity checksum on this request; the SDK computes it.
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
	})
	if err != nil {
		return fmt.Errorf("s3store: writing the lifecycle configuration of bucket %s: %w", bucket, err)
	}
	return nil
}
