// Package codecserver is a Temporal Codec Server: an http.Handler that encodes and decodes payloads
// for the Temporal Web UI and CLI, with authentication, CORS, namespace isolation and limits.
package codecserver
