package workflowtest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Environment variables read by S3 and StartMinIO. The test script (scripts/test.sh) sets them.
const (
	EnvS3Endpoint  = "PAYLOADKIT_S3_ENDPOINT"   // e.g. http://127.0.0.1:9000
	EnvS3AccessKey = "PAYLOADKIT_S3_ACCESS_KEY" // access key id
	EnvS3SecretKey = "PAYLOADKIT_S3_SECRET_KEY" // secret access key
	EnvS3Bucket    = "PAYLOADKIT_S3_BUCKET"     // an existing bucket
	EnvS3Region    = "PAYLOADKIT_S3_REGION"     // defaults to us-east-1
	EnvMinIOBin    = "PAYLOADKIT_MINIO_BIN"     // path of the minio server binary
	// EnvCI, when non-empty, turns every missing S3 prerequisite into a test failure instead of a skip.
	EnvCI = "CI"
)

// S3 returns a path-style S3 client for the MinIO (or other S3-compatible) endpoint named by the
// PAYLOADKIT_S3_* environment variables, and the bucket to use. When the variables are missing or
// the endpoint does not answer its /minio/health/live probe, the test is skipped with the reason,
// except when the CI environment variable is non-empty: then it fails, so that S3 tests never
// silently skip in CI.
func S3(t testing.TB) (client *s3.Client, bucket string) {
	t.Helper()
	endpoint := os.Getenv(EnvS3Endpoint)
	access, secret := os.Getenv(EnvS3AccessKey), os.Getenv(EnvS3SecretKey)
	bucket = os.Getenv(EnvS3Bucket)
	var missing []string
	for name, v := range map[string]string{EnvS3Endpoint: endpoint, EnvS3AccessKey: access, EnvS3SecretKey: secret, EnvS3Bucket: bucket} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		skipOrFatal(t, "S3 test needs %s (run scripts/test.sh, which starts MinIO)", strings.Join(missing, ", "))
	}
	if err := minioLive(endpoint); err != nil {
		skipOrFatal(t, "S3 endpoint %s is not live: %v", endpoint, err)
	}
	region := os.Getenv(EnvS3Region)
	if region == "" {
		region = "us-east-1"
	}
	return NewS3Client(endpoint, region, access, secret), bucket
}

// NewS3Client returns a path-style S3 client for an S3-compatible endpoint with static credentials.
func NewS3Client(endpoint, region, accessKey, secretKey string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
	})
}

// skipOrFatal skips t with the formatted reason, or fails it when the CI variable is set.
func skipOrFatal(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(EnvCI) != "" {
		t.Fatalf("%s (CI is set: S3 tests must not be skipped)", msg)
	}
	t.Skip(msg)
}

// minioLive probes endpoint's /minio/health/live.
func minioLive(endpoint string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(endpoint, "/")+"/minio/health/live", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health probe answered %s", resp.Status)
	}
	return nil
}
