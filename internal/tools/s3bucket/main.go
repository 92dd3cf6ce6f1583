// Command s3bucket creates an S3 bucket (used by the test script to prepare MinIO).
//
// Usage: s3bucket -endpoint http://127.0.0.1:9000 -bucket name (credentials from
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or s3bucket -health URL to check that
// a MinIO endpoint is live.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func main() {
	endpoint := flag.String("endpoint", "", "S3 endpoint URL")
	bucket := flag.String("bucket", "", "bucket to create")
	region := flag.String("region", "us-east-1", "region")
	health := flag.String("health", "", "only check that the S3 endpoint at this URL is live")
	flag.Parse()
	if *health != "" {
		if err := live(*health); err != nil {
			os.Exit(1)
		}
		return
	}
	if err := run(*endpoint, *bucket, *region); err != nil {
		fmt.Fprintln(os.Stderr, "s3bucket:", err)
		os.Exit(1)
	}
}

func live(endpoint string) error {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(endpoint + "/minio/health/live")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func run(endpoint, bucket, region string) error {
	if endpoint == "" || bucket == "" {
		return errors.New("-endpoint and -bucket are required")
	}
	client := s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       region,
		UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(
			os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}
