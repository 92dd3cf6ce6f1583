// Package offload is payloadkit's claim-check stage: payloads larger than a threshold are stored
// in a Store (S3, a local directory, or memory) and replaced in Temporal history by a small claim
// that records the store, object key, size and SHA-256 of the stored bytes.
package offload
