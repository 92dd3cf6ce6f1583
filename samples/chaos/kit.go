package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/codec/awskms"
	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/offload/s3store"
	"github.com/payloadkit/payloadkit/workflowtest"
)

// Environment of the worker processes, set by the orchestrator.
const (
	envTemporal  = "CHAOS_TEMPORAL_ADDRESS"
	envNamespace = "CHAOS_NAMESPACE"
	envQueue     = "CHAOS_TASK_QUEUE"
	envKMS       = "CHAOS_KMS_ENDPOINT"
	envKMSKey    = "CHAOS_KMS_KEY"
	envS3        = "CHAOS_S3_ENDPOINT"
	envS3Access  = "CHAOS_S3_ACCESS_KEY"
	envS3Secret  = "CHAOS_S3_SECRET_KEY"
	envS3Bucket  = "CHAOS_S3_BUCKET"
	envSlots     = "CHAOS_ACTIVITY_SLOTS"
)

// kitConfig is what a Kit of the fleet needs; the orchestrator and the workers build the same Kit.
type kitConfig struct {
	KMSEndpoint string
	KMSKey      string // an alias: rotating the primary key points it at another key
	S3Endpoint  string
	S3Access    string
	S3Secret    string
	S3Bucket    string
}

func kitConfigFromEnv() (kitConfig, error) {
	c := kitConfig{
		KMSEndpoint: os.Getenv(envKMS),
		KMSKey:      os.Getenv(envKMSKey),
		S3Endpoint:  os.Getenv(envS3),
		S3Access:    os.Getenv(envS3Access),
		S3Secret:    os.Getenv(envS3Secret),
		S3Bucket:    os.Getenv(envS3Bucket),
	}
	for name, v := range map[string]string{envKMS: c.KMSEndpoint, envKMSKey: c.KMSKey, envS3: c.S3Endpoint,
		envS3Access: c.S3Access, envS3Secret: c.S3Secret, envS3Bucket: c.S3Bucket} {
		if v == "" {
			return c, fmt.Errorf("environment variable %s is not set", name)
		}
	}
	return c, nil
}

func (c kitConfig) env() []string {
	return []string{
		envKMS + "=" + c.KMSEndpoint, envKMSKey + "=" + c.KMSKey, envS3 + "=" + c.S3Endpoint,
		envS3Access + "=" + c.S3Access, envS3Secret + "=" + c.S3Secret, envS3Bucket + "=" + c.S3Bucket,
	}
}

// cacheMaxAge bounds how long a data key is reused, so that a rotated primary key is used soon.
const cacheMaxAge = 10 * time.Second

// newKit builds the fleet's Kit: zstd compression, AES-GCM envelope encryption under the KMS
// key c.KMSKey, and offload to S3 above the default threshold.
//
// onKeyEvent, if not nil, receives every KMS call and data-key cache lookup.
func newKit(ctx context.Context, c kitConfig, onKeyEvent func(codec.KeyEvent), onObject func(offload.ObjectEvent)) (*payloadkit.Kit, error) {
	kmsClient := kms.New(kms.Options{
		Region:       workflowtest.KMSRegion,
		BaseEndpoint: aws.String(c.KMSEndpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDPAYLOADKITCHAOS", "payloadkit-chaos-secret", ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 2
			o.RateLimiter = ratelimit.None
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) {
				return 50 * time.Millisecond, nil
			})
		}),
	})
	provider, err := awskms.New(kmsClient, c.KMSKey)
	if err != nil {
		return nil, fmt.Errorf("KMS key provider: %w", err)
	}
	store, err := s3store.New(workflowtest.NewS3Client(c.S3Endpoint, "us-east-1", c.S3Access, c.S3Secret), c.S3Bucket, nil)
	if err != nil {
		return nil, fmt.Errorf("S3 store: %w", err)
	}
	kit, err := payloadkit.New(ctx, payloadkit.Options{
		Encryption: &codec.EncryptionOptions{
			Keys:        provider,
			CallTimeout: 5 * time.Second,
			Cache:       &codec.CacheOptions{MaxAge: cacheMaxAge},
			OnKeyEvent:  onKeyEvent,
		},
		Offload: &offload.Options{Store: store, Timeout: 10 * time.Second, OnObject: onObject},
	})
	if err != nil {
		return nil, fmt.Errorf("building the Kit: %w", err)
	}
	return kit, nil
}
