// Package interceptor is payloadkit's OpenTelemetry instrumentation: traced codecs that record
// codec latency and payload sizes, payload-size interceptors for clients and workers, and metrics.
package interceptor
