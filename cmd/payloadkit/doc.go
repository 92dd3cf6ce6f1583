// Command payloadkit is the operator tool of payloadkit. Install it with
//
//	go install github.com/payloadkit/payloadkit/cmd/payloadkit@latest
//
// Usage:
//
//	payloadkit serve     [--config FILE] [server and pipeline flags]      the Codec Server
//	payloadkit decode    (--history FILE|- | --payloads FILE|- | --workflow-id ID --address HOST:PORT)
//	                     [--config FILE] [--namespace NS] [pipeline flags] [-o table|json]
//	payloadkit inspect   (same input flags) [-o table|json]               key ids, ciphers, claims, totals
//	payloadkit keys generate|rotate|list --keyring-file FILE [--key-id ID] [--show-key-material]
//	payloadkit offload verify    --history FILE|- (--offload-dir DIR | --s3-bucket BUCKET [S3 flags])
//	                             [--concurrency N] [--timeout 30s] [--max-history-bytes N]
//	payloadkit offload lifecycle --namespace NS --retention 720h --longest-run 168h
//	                             [--refresh-age 24h] [--offload-prefix PREFIX]
//	                             [--apply --s3-bucket BUCKET [S3 flags]]
//
// serve, decode and inspect share the Codec Server's configuration (package internal/cliconfig):
// the JSON file of --config, the environment variables PAYLOADKIT_CODEC_<FLAG> and flags, flags
// winning. decode and inspect take --namespace (default "default") to pick the namespace's
// pipeline, and the connection flags of the Temporal CLI to fetch a history: --address,
// --workflow-id, --run-id, --tls, --tls-cert-path, --tls-key-path, --tls-ca-path,
// --tls-server-name, --tls-disable-host-verification, --api-key (or TEMPORAL_ADDRESS and
// TEMPORAL_API_KEY). Exit codes of decode and inspect: 0 success; 1 some payload could not be
// decoded (decode) or is malformed (inspect), or the server could not be reached; 2 usage,
// configuration or input error. keys: 0 success; 1 the file could not be written; 2 usage error
// or invalid keyring. serve: 0 after a graceful shutdown; 1 the server failed; 2 configuration
// error. Progress bars are drawn on standard error only when it is a terminal (and not --quiet).
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
