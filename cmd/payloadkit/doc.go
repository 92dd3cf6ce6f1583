// Command payloadkit is the operator tool of payloadkit.
//
// Usage:
//
//	payloadkit offload verify    --history FILE|- (--offload-dir DIR | --s3-bucket BUCKET [S3 flags])
//	                             [--concurrency N] [--timeout 30s] [--max-history-bytes N]
//	payloadkit offload lifecycle --namespace NS --retention 720h --longest-run 168h
//	                             [--refresh-age 24h] [--offload-prefix PREFIX]
//	                             [--apply --s3-bucket BUCKET [S3 flags]]
//
// S3 flags, as in cmd/codec-server: --s3-region, --s3-endpoint (S3-compatible services such as
// MinIO), --s3-path-style and --s3-store-name (the store name recorded in claims, default
// "s3/<bucket>"). AWS credentials come from the standard chain (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance roles, ...); they are never printed.
//
// "offload verify" reads a workflow history exported with
//
//	temporal workflow show --workflow-id ID -o json > history.json
//
// finds every claim-check payload in it (inputs, results, headers, memos, search attributes,
// failure details, ...) and checks that the store holds each object with the claimed size and
// SHA-256. It prints one line per claim that is not ok and a summary. Run it on sample histories
// before deleting objects, changing lifecycle rules or moving buckets. Exit codes: 0 every claim
// verified; 1 some object is missing or corrupt, or some claim is malformed; 2 usage or
// configuration error (including an unreadable history); 3 nothing found wrong, but some claims
// could not be checked (store errors, claims naming another store).
//
// "offload lifecycle" prints, as JSON in the shape `aws s3api put-bucket-lifecycle-configuration`
// accepts, the S3 lifecycle rule that expires the namespace's offloaded objects
// (<prefix>/<namespace>/) after ceil((retention + longest run + refresh age) / 24h) days and
// aborts incomplete multipart uploads after one day. With --apply it installs the rule in the
// bucket (replacing a previous payloadkit rule of the same namespace and prefix, keeping every
// other rule) and prints the rule read back. Exit codes: 0 success; 1 an S3 request failed;
// 2 usage or configuration error.
package main
