// Package cli tests the payloadkit command (cmd/payloadkit) as a subprocess against an
// in-process Temporal server, the KMS test server and MinIO.
package cli
