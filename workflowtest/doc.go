// Package workflowtest helps test Temporal workflows with the real payloadkit pipeline: a Kit on
// in-memory parts, an AWS-KMS-compatible test server, span and metric recorders, assertions and replay.
package workflowtest
