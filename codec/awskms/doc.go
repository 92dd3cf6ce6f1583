// Package awskms is a payloadkit key provider backed by AWS KMS (aws-sdk-go-v2).
//
// A Provider generates AES-256 data keys with KMS GenerateDataKey under one configured KMS key
// (key id, key ARN, alias name, alias ARN or multi-region key) and decrypts them with KMS Decrypt.
// The master key id stored with each data key is the key ARN KMS returned, not the configured name,
// so decryption always names the exact key that encrypted it: moving an alias to another key, or
// configuring a different key, leaves older payloads decryptable. The encryption context given by
// the encryption codec (at least the namespace) is sent to KMS as EncryptionContext, so KMS refuses
// to decrypt a data key whose stored context was altered. A reader in another region than the
// writer decrypts multi-region keys with its local replica through WithMultiRegionKeyRegion.
//
// A Provider makes one KMS call per call of its methods; the encryption codec's data-key cache
// (codec.EncryptionOptions.Cache) keeps the number of calls to a few per cache window, not one per
// payload. Errors wrap the payloadkit sentinels of package codec: codec.ErrRetryable for throttling,
// KMS internal errors, timeouts and network failures; codec.ErrUnknownKey, codec.ErrKeyDisabled and
// codec.ErrDecrypt for the corresponding KMS answers.
package awskms
