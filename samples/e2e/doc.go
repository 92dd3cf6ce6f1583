// Package e2e holds payloadkit's end-to-end tests: real workflows on an in-process Temporal server
// with real MinIO, the KMS test server, the Codec Server and the Temporal Web UI.
package e2e
