package s3store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/offload/s3store"
	"github.com/payloadkit/payloadkit/workflowtest"
)

func TestLifecycleExpirationDays(t *testing.T) {
	const d = 24 * time.Hour
	for _, tc := range []struct {
		retention, run, refresh time.Duration
		want                    int32
	}{
		{30 * d, 7 * d, d, 38},
		{30 * d, 0, d, 31},
		{720 * time.Hour, 168 * time.Hour, 24 * time.Hour, 38},
		{30 * d, time.Hour, d, 32}, // rounded up
		{time.Nanosecond, 0, time.Nanosecond, 1},
	} {
		got, err := s3store.LifecycleExpirationDays(tc.retention, tc.run, tc.refresh)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "%v + %v + %v", tc.retention, tc.run, tc.refresh)
	}
	for _, tc := range []struct {
		retention, run, refresh time.Duration
		msg                     string
	}{
		{0, 0, d, "retention must be positive"},
		{-d, 0, d, "retention must be positive"},
		{d, -1, d, "longest run must not be negative"},
		{d, 0, 0, "refresh age must be positive"},
		{time.Duration(1 << 62), time.Duration(1 << 62), d, "overflows"},
	} {
		_, err := s3store.LifecycleExpirationDays(tc.retention, tc.run, tc.refresh)
		assert.ErrorContains(t, err, tc.msg)
	}
}

func TestLifecycleRule(t *testing.T) {
	r, err := s3store.LifecycleRule("", "payments", 720*time.Hour, 168*time.Hour, 24*time.Hour)
	require.NoError(t, err)
	assert.Equal(t, "payloadkit-payloadkit/payments", aws.ToString(r.ID))
	assert.Equal(t, types.ExpirationStatusEnabled, r.Status)
	assert.Equal(t, "payloadkit/payments/", aws.ToString(r.Filter.Prefix))
	assert.Equal(t, int32(38), aws.ToInt32(r.Expiration.Days))
	assert.Equal(t, int32(1), aws.ToInt32(r.AbortIncompleteMultipartUpload.DaysAfterInitiation))
	// The filter covers exactly the codec's keys of the namespace.
	key := offload.CodecKey(offload.DefaultPrefix, "payments", strings.Repeat("a", 64))
	assert.True(t, strings.HasPrefix(key, aws.ToString(r.Filter.Prefix)))
	other := offload.CodecKey(offload.DefaultPrefix, "payments-eu", strings.Repeat("a", 64))
	assert.False(t, strings.HasPrefix(other, aws.ToString(r.Filter.Prefix)))

	// Namespaces are escaped as in keys; prefixes keep rule IDs apart.
	r, err = s3store.LifecycleRule("team/pk", "a b/c", 24*time.Hour, 0, 24*time.Hour)
	require.NoError(t, err)
	assert.Equal(t, "team/pk/a%20b%2Fc/", aws.ToString(r.Filter.Prefix))
	assert.Equal(t, "payloadkit-team/pk/a%20b%2Fc", aws.ToString(r.ID))
	assert.Equal(t, int32(2), aws.ToInt32(r.Expiration.Days))

	for _, tc := range []struct{ prefix, ns, msg string }{
		{"", "", "namespace is required"},
		{"/pk", "ns", "must not start or end"},
		{"pk/../x", "ns", "must not start or end"},
		{"pk", strings.Repeat("n", 1001), "namespace is longer"},
		{"pk", strings.Repeat("n", 300), "rule ID"},
	} {
		_, err := s3store.LifecycleRule(tc.prefix, tc.ns, 24*time.Hour, 0, 24*time.Hour)
		assert.ErrorContains(t, err, tc.msg, "%q %q", tc.prefix, tc.ns)
	}
}

// fakeLifecycle is a LifecycleClient holding one configuration in memory.
type fakeLifecycle struct {
	rules []types.LifecycleRule
	puts  int
}

func (f *fakeLifecycle) GetBucketLifecycleConfiguration(context.Context, *s3.GetBucketLifecycleConfigurationInput, ...func(*s3.Options)) (*s3.GetBucketLifecycleConfigurationOutput, error) {
	if f.rules == nil {
		return nil, &smithy.GenericAPIError{Code: "NoSuchLifecycleConfiguration", Message: "no configuration"}
	}
	return &s3.GetBucketLifecycleConfigurationOutput{Rules: f.rules}, nil
}

func (f *fakeLifecycle) PutBucketLifecycleConfiguration(_ context.Context, in *s3.PutBucketLifecycleConfigurationInput, _ ...func(*s3.Options)) (*s3.PutBucketLifecycleConfigurationOutput, error) {
	f.puts++
	f.rules = in.LifecycleConfiguration.Rules
	return &s3.PutBucketLifecycleConfigurationOutput{}, nil
}

func rule(id, prefix string, days int32) types.LifecycleRule {
	return types.LifecycleRule{
		ID:         aws.String(id),
		Status:     types.ExpirationStatusEnabled,
		Filter:     &types.LifecycleRuleFilter{Prefix: aws.String(prefix)},
		Expiration: &types.LifecycleExpiration{Days: aws.Int32(days)},
	}
}

func ruleIDs(rules []types.LifecycleRule) []string {
	var ids []string
	for _, r := range rules {
		ids = append(ids, aws.ToString(r.ID))
	}
	return ids
}

func TestApplyLifecycleMerges(t *testing.T) {
	ctx := context.Background()
	f := &fakeLifecycle{}
	rules, err := s3store.GetLifecycle(ctx, f, "b")
	require.NoError(t, err)
	assert.Empty(t, rules, "no configuration reads as no rules")

	a, err := s3store.LifecycleRule("", "a", 24*time.Hour, 0, 24*time.Hour)
	require.NoError(t, err)
	require.NoError(t, s3store.ApplyLifecycle(ctx, f, "b", a))
	assert.Equal(t, []string{"payloadkit-payloadkit/a"}, ruleIDs(f.rules))

	f.rules = append(f.rules, rule("foreign", "logs/", 7))
	a2, err := s3store.LifecycleRule("", "a", 48*time.Hour, 0, 24*time.Hour)
	require.NoError(t, err)
	require.NoError(t, s3store.ApplyLifecycle(ctx, f, "b", a2))
	assert.Equal(t, []string{"foreign", "payloadkit-payloadkit/a"}, ruleIDs(f.rules))
	assert.Equal(t, int32(3), aws.ToInt32(f.rules[1].Expiration.Days))

	assert.ErrorContains(t, s3store.ApplyLifecycle(ctx, f, "b"), "no rule")
	assert.ErrorContains(t, s3store.ApplyLifecycle(ctx, f, "b", rule("", "x/", 1)), "needs an ID")
	assert.ErrorContains(t, s3store.ApplyLifecycle(ctx, f, "b", a, a), "given twice")
	assert.ErrorContains(t, s3store.ApplyLifecycle(ctx, nil, "b", a), "client and bucket are required")
	assert.Equal(t, 2, f.puts, "invalid calls write nothing")
}

func TestLifecycleMinIO(t *testing.T) {
	client, _ := workflowtest.S3(t)
	ctx := context.Background()
	// A bucket of the test's own, so that lifecycle changes do not race with other tests
	// sharing the MinIO bucket.
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	bucket := "pk-lifecycle-" + hex.EncodeToString(rnd[:])
	_, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = client.DeleteBucketLifecycle(context.Background(), &s3.DeleteBucketLifecycleInput{Bucket: aws.String(bucket)})
		_, _ = client.DeleteBucket(context.Background(), &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
	})

	rules, err := s3store.GetLifecycle(ctx, client, bucket)
	require.NoError(t, err)
	assert.Empty(t, rules)

	// A rule someone else owns.
	_, err = client.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
		Bucket:                 aws.String(bucket),
		LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: []types.LifecycleRule{rule("foreign-logs", "logs/", 7)}},
		ChecksumAlgorithm:      types.ChecksumAlgorithmCrc32,
	})
	require.NoError(t, err)

	r, err := s3store.LifecycleRule("", "payments", 720*time.Hour, 168*time.Hour, offload.DefaultRefreshAge)
	require.NoError(t, err)
	require.NoError(t, s3store.ApplyLifecycle(ctx, client, bucket, r))
	got := readRules(t, client, bucket)
	require.Contains(t, got, "payloadkit-payloadkit/payments")
	p := got["payloadkit-payloadkit/payments"]
	assert.Equal(t, int32(38), aws.ToInt32(p.Expiration.Days))
	require.NotNil(t, p.Filter)
	assert.Equal(t, "payloadkit/payments/", aws.ToString(p.Filter.Prefix))
	assert.Equal(t, types.ExpirationStatusEnabled, p.Status)
	// MinIO accepts AbortIncompleteMultipartUpload but does not keep it (it removes stale
	// uploads itself); S3 keeps it.
	if p.AbortIncompleteMultipartUpload != nil {
		assert.Equal(t, int32(1), aws.ToInt32(p.AbortIncompleteMultipartUpload.DaysAfterInitiation))
	}
	require.Contains(t, got, "foreign-logs")

	// Applying again with other days replaces the rule.
	r2, err := s3store.LifecycleRule("", "payments", 90*24*time.Hour, 168*time.Hour, offload.DefaultRefreshAge)
	require.NoError(t, err)
	require.NoError(t, s3store.ApplyLifecycle(ctx, client, bucket, r2))
	rules, err = s3store.GetLifecycle(ctx, client, bucket)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"foreign-logs", "payloadkit-payloadkit/payments"}, ruleIDs(rules))
	got = readRules(t, client, bucket)
	assert.Equal(t, int32(98), aws.ToInt32(got["payloadkit-payloadkit/payments"].Expiration.Days))
	assert.Equal(t, int32(7), aws.ToInt32(got["foreign-logs"].Expiration.Days))
	assert.Equal(t, "logs/", aws.ToString(got["foreign-logs"].Filter.Prefix))

	// A missing bucket fails with the bucket named.
	err = s3store.ApplyLifecycle(ctx, client, bucket+"-missing", r2)
	require.Error(t, err)
	assert.Contains(t, err.Error(), bucket+"-missing")
	var apiErr smithy.APIError
	assert.True(t, errors.As(err, &apiErr), "the S3 error is wrapped: %v", err)
}

func readRules(t *testing.T, client *s3.Client, bucket string) map[string]types.LifecycleRule {
	t.Helper()
	rules, err := s3store.GetLifecycle(context.Background(), client, bucket)
	require.NoError(t, err)
	m := map[string]types.LifecycleRule{}
	for _, r := range rules {
		m[aws.ToString(r.ID)] = r
	}
	return m
}

// TestLifecycleRuleSparesKeyObjects: no namespace's rule covers the key objects of envelope v2
// (<prefix>/keys/<hex>): the rule's prefix never contains them, and the one namespace whose
// prefix would be theirs is refused.
func TestLifecycleRuleSparesKeyObjects(t *testing.T) {
	keyObject := codec.KeyObjectKey(offload.DefaultPrefix, [32]byte{1})
	for _, ns := range []string{"payments", "default", "k", "keys-archive", "_"} {
		r, err := s3store.LifecycleRule("", ns, 720*time.Hour, 168*time.Hour, offload.DefaultRefreshAge)
		require.NoError(t, err)
		assert.False(t, strings.HasPrefix(keyObject, aws.ToString(r.Filter.Prefix)), "the rule of %s covers key object %s", ns, keyObject)
	}
	_, err := s3store.LifecycleRule("", "keys", 720*time.Hour, 168*time.Hour, offload.DefaultRefreshAge)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "key objects")
}

// With the prefix "v0/ns", the rule covers the storage driver's objects of its namespace (keys
// v0/ns/<namespace>/...) and no other namespace's, as the README says.
func TestLifecycleRuleForDriverKeys(t *testing.T) {
	for _, ns := range []string{"orders", "orders-prod.eu", "default"} {
		rule, err := s3store.LifecycleRule("v0/ns", ns, 720*time.Hour, 24*time.Hour, offload.DefaultRefreshAge)
		require.NoError(t, err)
		prefix := aws.ToString(rule.Filter.Prefix)
		for _, target := range []converter.StorageDriverTargetInfo{
			converter.StorageDriverWorkflowInfo{Namespace: ns, WorkflowType: "Order", WorkflowID: "o-1", RunID: "r1"},
			converter.StorageDriverActivityInfo{Namespace: ns, ActivityType: "Charge", ActivityID: "a-1", RunID: "r1"},
		} {
			assert.True(t, strings.HasPrefix(offload.DriverKey(target, strings.Repeat("ab", 32)), prefix), "%s does not cover %v", prefix, target)
		}
		other := offload.DriverKey(converter.StorageDriverWorkflowInfo{Namespace: ns + "x", WorkflowType: "Order", WorkflowID: "o-1", RunID: "r1"}, strings.Repeat("ab", 32))
		assert.False(t, strings.HasPrefix(other, prefix), "%s covers another namespace's key %s", prefix, other)
	}
}
