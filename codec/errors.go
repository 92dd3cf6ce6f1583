package codec

import "errors"

// Sentinel errors of the encryption stage and of key providers. Errors returned by the
// encryption codec, the static keyring and other KeyProvider implementations wrap these, so
// callers can test them with errors.Is.
var (
	// ErrMalformed reports an encrypted payload or header that is malformed, truncated, or
	// declares a length out of bounds.
	ErrMalformed = errors.New("payloadkit: malformed encrypted payload")
	// ErrDecrypt reports failed authentication: wrong key, tampered data or metadata, or a key
	// commitment mismatch.
	ErrDecrypt = errors.New("payloadkit: decryption failed")
	// ErrUnknownKey reports a master key id the key provider does not know.
	ErrUnknownKey = errors.New("payloadkit: unknown master key")
	// ErrKeyDisabled reports a master key that exists but is disabled.
	ErrKeyDisabled = errors.New("payloadkit: master key disabled")
	// ErrNamespaceMismatch reports a payload whose stored namespace differs from the current one.
	ErrNamespaceMismatch = errors.New("payloadkit: encryption context namespace mismatch")
	// ErrKeyCommitment reports an envelope whose key commitment does not match the data key the
	// key provider returned: the payload was built to decrypt differently under two keys, or
	// its header was tampered with. Errors matching it also match ErrDecrypt.
	ErrKeyCommitment = errors.New("payloadkit: key commitment mismatch")
	// ErrKeyNotAllowed reports a payload sealed under a master key that is not in
	// EncryptionOptions.AllowedKeyIDs. It is returned before any key-provider call.
	ErrKeyNotAllowed = errors.New("payloadkit: master key not allowed")
	// ErrContextMismatch reports a payload whose encryption context lacks a configured static
	// pair (EncryptionOptions.Context) or holds it with another value.
	ErrContextMismatch = errors.New("payloadkit: encryption context mismatch")
	// ErrNotEncrypted reports a payload that is not encrypted, refused on decode because
	// EncryptionOptions.RequireEncryption is set.
	ErrNotEncrypted = errors.New("payloadkit: payload is not encrypted")
	// ErrKeyObject reports a key object of envelope format v2 that could not be written or
	// read (missing, or the store failed: the error also wraps the store's error), or that is
	// corrupt (its SHA-256 differs from the payload's reference, or it does not parse: then the
	// error also matches ErrMalformed), or a v2 payload decoded without
	// EncryptionOptions.KeyObjects. Decode errors name the key object's key.
	ErrKeyObject = errors.New("payloadkit: key object unavailable or corrupt")
	// ErrRetryable reports a key-provider call that failed transiently (throttled, unavailable,
	// timed out); retrying may succeed.
	ErrRetryable = errors.New("payloadkit: key provider temporarily unavailable")
)
