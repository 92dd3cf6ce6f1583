package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/payloadkit/payloadkit/workflowtest"
)

// TestQuickstart runs the quickstart as a user would and checks its report: every large payload
// is stored compressed and encrypted, the invoice document is offloaded, and the span tree shows
// the codec stages.
func TestQuickstart(t *testing.T) {
	t.Setenv("PAYLOADKIT_QUICKSTART_DIR", t.TempDir())
	t.Setenv("PAYLOADKIT_KMS_KEY_ID", "")
	t.Setenv("PAYLOADKIT_S3_BUCKET", "")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("quickstart: %v\n%s", err, out.String())
	}
	report := out.String()
	t.Log("\n" + report)

	for _, want := range []string{
		"pipeline  compression -> encryption -> offload",
		"static keyring",
		"file store",
		"binary/claim-check",
		"payloadkit.encode",
		"payloadkit.decode",
		"(compression ",
		", encryption ",
		", offload ",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// The workflow input (about 1 MiB of JSON) must be stored compressed and encrypted.
	input := regexp.MustCompile(`workflowexecutionstarted\s+input\.payloads\[0\]\s+(\d+)\s+(\d+)\s+\S+\s+binary/encrypted`).FindStringSubmatch(report)
	if input == nil {
		t.Fatalf("report has no encrypted workflow input row")
	}
	if raw, stored := atoi(t, input[1]), atoi(t, input[2]); raw < 1<<20 || stored*4 > raw {
		t.Errorf("workflow input: raw %d, stored %d bytes: want >= 1 MiB raw stored at most a quarter of that", raw, stored)
	}
	// No payload is stored in plain JSON, except the SDK's tracing headers.
	for _, line := range strings.Split(report, "\n") {
		if strings.Contains(line, "json/plain") && !strings.Contains(line, "_tracer-data") {
			t.Errorf("plain payload in history: %s", line)
		}
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestQuickstartWithKMSAndS3 runs the quickstart configured as the README says for real
// services: AWS KMS (the project's KMS test server over HTTP) and S3 (the MinIO the test command
// starts). It checks that the invoice document landed in the bucket and that KMS was asked for
// data keys, not once per payload.
func TestQuickstartWithKMSAndS3(t *testing.T) {
	s3c, bucket := workflowtest.S3(t) // skips without MinIO, fails when CI is set
	kms := workflowtest.StartKMS(t)
	key := kms.NewKey()

	t.Setenv("PAYLOADKIT_QUICKSTART_DIR", t.TempDir())
	t.Setenv("PAYLOADKIT_KMS_KEY_ID", key)
	t.Setenv("PAYLOADKIT_KMS_ENDPOINT", kms.Endpoint())
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "quickstart")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "quickstart-secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("PAYLOADKIT_S3_BUCKET", bucket)
	// PAYLOADKIT_S3_ENDPOINT and the S3 credentials come from the test command's environment.

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("quickstart: %v\n%s", err, out.String())
	}
	report := out.String()
	t.Log("\n" + report)
	for _, want := range []string{"AWS KMS key " + key, "S3 bucket " + bucket, "binary/claim-check"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Every claim in the report names an object that exists in the bucket.
	keys := regexp.MustCompile(`binary/claim-check …([0-9a-f]+)`).FindAllStringSubmatch(report, -1)
	if len(keys) == 0 {
		t.Fatal("no offloaded payload in the report")
	}
	list, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		found := false
		for _, obj := range list.Contents {
			if strings.HasSuffix(aws.ToString(obj.Key), k[1]) {
				found = true
			}
		}
		if !found {
			t.Errorf("claimed object …%s is not in bucket %s", k[1], bucket)
		}
	}
	if n := kms.Calls("GenerateDataKey"); n < 1 || n > 3 {
		t.Errorf("GenerateDataKey calls = %d, want 1 to 3 for the whole run", n)
	}
}
