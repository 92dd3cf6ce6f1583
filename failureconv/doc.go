// Package failureconv is a Temporal FailureConverter that moves failure messages and stack traces
// into an encoded payload that passes through payloadkit's codecs, so history never shows them in plain text.
package failureconv
