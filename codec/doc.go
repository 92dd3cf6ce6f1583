// Package codec holds payloadkit's payload codecs: compression (zstd, s2, gzip; reading the
// Temporal SDK's zlib and the samples' snappy payloads) and AES-256-GCM envelope encryption
// with data keys from a KeyProvider (a static keyring, or AWS KMS in codec/awskms).
//
// Every codec passes through payloads whose encoding it does not own and never mutates its inputs.
package codec
