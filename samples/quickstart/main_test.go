package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
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
		"payloadkit.compression.encode",
		"payloadkit.encryption.encode",
		"payloadkit.offload.encode",
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
