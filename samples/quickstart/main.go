// Command quickstart runs a workflow through payloadkit's whole pipeline on an in-process Temporal
// server and prints what Temporal stored: payload sizes in history against their raw sizes, which
// payloads were encrypted and offloaded, and a span tree of the codec stages.
//
//	go run ./quickstart        (from samples/)
//
// Defaults need nothing outside the process: a static keyring and a file store under a
// temporary directory. Environment variables switch to real services:
//
//	PAYLOADKIT_KMS_KEY_ID    AWS KMS key id, ARN or alias: encrypt with AWS KMS
//	PAYLOADKIT_KMS_ENDPOINT  optional KMS endpoint URL (a KMS-compatible server)
//	PAYLOADKIT_S3_BUCKET     offload to this S3 bucket
//	PAYLOADKIT_S3_ENDPOINT   optional S3 endpoint URL (for MinIO; path-style addressing)
//	PAYLOADKIT_S3_ACCESS_KEY, PAYLOADKIT_S3_SECRET_KEY  optional static S3 credentials
//	PAYLOADKIT_QUICKSTART_DIR  where the default keyring and file store live
package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}
