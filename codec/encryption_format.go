package codec

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// Metadata written by the encryption codec on every encrypted payload.
const (
	// EncodingEncrypted is the encoding of payloads written by the encryption codec.
	EncodingEncrypted = "binary/encrypted"
	// MetadataEncryptionCipher is the metadata key holding the cipher (envelope format) name.
	MetadataEncryptionCipher = "encryption-cipher"
	// MetadataEncryptionKeyID is the metadata key holding the master key id; it must equal the
	// key id stored in the authenticated header.
	MetadataEncryptionKeyID = "encryption-key-id"
	// CipherAES256GCMCommitV1 names envelope format version 1: AES-256-GCM with a per-message key
	// and a key commitment derived with HKDF-SHA512 from the data key and a 256-bit message id
	// (random, or deterministic for large payloads: see EncryptionOptions.DeterministicMinSize).
	CipherAES256GCMCommitV1 = "AES256GCM-HKDF-SHA512-COMMIT/v1"
)

// ContextKeyNamespace is the encryption-context key holding the Temporal namespace.
const ContextKeyNamespace = "namespace"

// Bounds checked on every header before anything is sliced or allocated. Key providers and
// the codec reject data keys and contexts that exceed them.
const (
	// MaxKeyIDLen is the largest master key id, in bytes.
	MaxKeyIDLen = 2048
	// MaxEncryptedDataKeyLen is the largest encrypted data key, in bytes.
	MaxEncryptedDataKeyLen = 1024
	// MaxContextPairs is the largest number of encryption-context pairs.
	MaxContextPairs = 64
	// MaxContextBytes bounds the sum of the lengths of all encryption-context keys and values.
	MaxContextBytes = 8 << 10
	// DataKeySize is the size of plaintext data keys and master keys, in bytes (AES-256).
	DataKeySize = 32
)

// Envelope format version 1 (all integers big endian):
//
//	magic "PKE" | version 0x01
//	u16 len | master key id           (1..MaxKeyIDLen bytes)
//	u16 len | encrypted data key      (1..MaxEncryptedDataKeyLen bytes)
//	message id                        (32 bytes, random per payload; or deterministic, see below)
//	key commitment                    (32 bytes)
//	u16 n   | n × (u16 len | key, u16 len | value)   encryption context, keys strictly ascending
//	AES-256-GCM ciphertext and 16-byte tag of the marshalled inner Payload; nonce zero, AAD = header
//
// The per-message AES key and the commitment key are HKDF-SHA512 expansions of
// Extract(salt = message id, secret = data key) with the labels below. The key is unique per
// message, so the all-zero nonce is never reused under one key. A deterministic message id
// (EncryptionOptions.DeterministicMinSize) is HMAC-SHA256(K, u32 len(ctx) | ctx | plaintext)
// with K = HKDF-SHA512(salt none, secret = data key, info = "payloadkit/v1 MESSAGEID"), 32 bytes,
// and ctx the canonical encryption context; decoders treat both kinds alike.
const (
	formatMagic     = "PKE"
	formatVersionV1 = 0x01
	messageIDSize   = 32
	commitmentSize  = 32
	gcmTagSize      = 16
	labelDeriveKey  = "payloadkit/v1 DERIVEKEY"
	labelCommitKey  = "payloadkit/v1 COMMITKEY"
	labelMessageID  = "payloadkit/v1 MESSAGEID"
)

var zeroNonce [12]byte

// envelopeHeader is a parsed envelope header. Byte slices alias the parsed input.
type envelopeHeader struct {
	keyID      string
	edk        []byte
	messageID  []byte
	commitment []byte
	context    map[string]string
	// cacheKey identifies (key id, encrypted data key, context) unambiguously.
	cacheKey string
	// raw is the whole header, the GCM additional data.
	raw []byte
}

// appendContext appends the canonical serialization of m (count, then pairs sorted by key) to
// dst, checking the context bounds.
func appendContext(dst []byte, m map[string]string) ([]byte, error) {
	if len(m) > MaxContextPairs {
		return nil, fmt.Errorf("encryption context has %d pairs, limit %d", len(m), MaxContextPairs)
	}
	keys := make([]string, 0, len(m))
	total := 0
	for k, v := range m {
		if k == "" {
			return nil, fmt.Errorf("encryption context has an empty key")
		}
		total += len(k) + len(v)
		keys = append(keys, k)
	}
	if total > MaxContextBytes {
		return nil, fmt.Errorf("encryption context is %d bytes, limit %d", total, MaxContextBytes)
	}
	slices.Sort(keys)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(keys)))
	for _, k := range keys {
		dst = appendString16(dst, k)
		dst = appendString16(dst, m[k])
	}
	return dst, nil
}

// canonicalContext returns the canonical serialization of m.
func canonicalContext(m map[string]string) ([]byte, error) {
	return appendContext(nil, m)
}

func appendString16(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

// appendHeader appends a version 1 header to dst. ctx is the canonical context serialization.
func appendHeader(dst []byte, keyID string, edk, messageID, commitment, ctx []byte) []byte {
	dst = append(dst, formatMagic...)
	dst = append(dst, formatVersionV1)
	dst = appendString16(dst, keyID)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(edk)))
	dst = append(dst, edk...)
	dst = append(dst, messageID...)
	dst = append(dst, commitment...)
	return append(dst, ctx...)
}

// headerReader reads bounded fields from a byte slice; the first failure sticks.
type headerReader struct {
	b   []byte
	off int
	err error
}

func (r *headerReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

func (r *headerReader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail("%s: need %d bytes at offset %d, have %d", what, n, r.off, len(r.b)-r.off)
		return nil
	}
	out := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return out
}

func (r *headerReader) u16(what string) int {
	if r.err != nil {
		return 0
	}
	if len(r.b)-r.off < 2 {
		// The label is built only here: concatenating it up front allocates on every field.
		r.fail("%s: need %d bytes at offset %d, have %d", what+" length", 2, r.off, len(r.b)-r.off)
		return 0
	}
	n := int(binary.BigEndian.Uint16(r.b[r.off:]))
	r.off += 2
	return n
}

// field reads a u16 length-prefixed field of min..max bytes, checking the bound before slicing.
func (r *headerReader) field(what string, minLen, maxLen int) []byte {
	n := r.u16(what)
	if r.err != nil {
		return nil
	}
	if n < minLen || n > maxLen {
		r.fail("%s length %d out of bounds [%d, %d]", what, n, minLen, maxLen)
		return nil
	}
	return r.bytes(n, what)
}

// context reads a canonical encryption context (see appendContext): a u16 count of at most
// MaxContextPairs, then that many length-prefixed keys and values, keys non-empty and strictly
// ascending, all of them within MaxContextBytes. It returns nil for an empty context.
func (r *headerReader) context() map[string]string {
	n := r.u16("encryption context")
	if r.err == nil && n > MaxContextPairs {
		r.fail("encryption context has %d pairs, limit %d", n, MaxContextPairs)
	}
	if r.err != nil || n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	total := 0
	prev := ""
	for i := 0; i < n; i++ {
		k := r.field("context key", 1, MaxContextBytes-total)
		if r.err != nil {
			return nil
		}
		total += len(k)
		v := r.field("context value", 0, MaxContextBytes-total)
		total += len(v)
		if r.err != nil {
			return nil
		}
		if i > 0 && string(k) <= prev {
			r.fail("encryption context keys not strictly ascending")
			return nil
		}
		prev = string(k)
		m[prev] = string(v)
	}
	return m
}

// parseHeader parses the header at the start of data and returns it with the ciphertext.
func parseHeader(data []byte) (*envelopeHeader, []byte, error) {
	r := &headerReader{b: data}
	magic := r.bytes(len(formatMagic)+1, "magic")
	if r.err != nil {
		return nil, nil, r.err
	}
	if string(magic[:len(formatMagic)]) != formatMagic {
		return nil, nil, fmt.Errorf("%w: bad magic", ErrMalformed)
	}
	if magic[len(formatMagic)] != formatVersionV1 {
		return nil, nil, fmt.Errorf("%w: unsupported format version %d", ErrMalformed, magic[len(formatMagic)])
	}
	h := &envelopeHeader{}
	keyStart := r.off
	h.keyID = string(r.field("key id", 1, MaxKeyIDLen))
	h.edk = r.field("encrypted data key", 1, MaxEncryptedDataKeyLen)
	keyEnd := r.off
	h.messageID = r.bytes(messageIDSize, "message id")
	h.commitment = r.bytes(commitmentSize, "key commitment")
	ctxStart := r.off
	h.context = r.context()
	if r.err != nil {
		return nil, nil, r.err
	}
	h.raw = data[:r.off:r.off]
	ct := data[r.off:]
	if len(ct) < gcmTagSize {
		return nil, nil, fmt.Errorf("%w: ciphertext is %d bytes, shorter than the %d-byte tag", ErrMalformed, len(ct), gcmTagSize)
	}
	h.cacheKey = string(data[keyStart:keyEnd]) + string(data[ctxStart:r.off])
	return h, ct, nil
}

// deriveKeys derives the per-message AES key and the key commitment from a data key:
// HKDF-SHA512 (RFC 5869, crypto/hkdf) with salt = message id and secret = data key, one
// expansion per label.
func deriveKeys(dataKey, messageID []byte) (aesKey, commitment []byte, err error) {
	prk, err := hkdf.Extract(sha512.New, dataKey, messageID)
	if err != nil {
		return nil, nil, err
	}
	defer clear(prk)
	aesKey, err = hkdf.Expand(sha512.New, prk, labelDeriveKey, DataKeySize)
	if err != nil {
		return nil, nil, err
	}
	commitment, err = hkdf.Expand(sha512.New, prk, labelCommitKey, commitmentSize)
	if err != nil {
		clear(aesKey)
		return nil, nil, err
	}
	return aesKey, commitment, nil
}

// deterministicMessageID writes to dst (messageIDSize bytes) the deterministic message id of
// EncryptionOptions.DeterministicMinSize: HMAC-SHA256 under HKDF-SHA512(data key, label
// labelMessageID) of the length-prefixed canonical encryption context, then the plaintext.
// Being a PRF of (context, plaintext) under a secret key, it is unpredictable without the data
// key and repeats only for an equal plaintext in an equal context, where the whole envelope
// repeats; so the per-message key and zero nonce are never used for two different plaintexts.
func deterministicMessageID(dst, dataKey, ctxBytes, plaintext []byte) error {
	macKey, err := hkdf.Key(sha512.New, dataKey, nil, labelMessageID, sha256.Size)
	if err != nil {
		return err
	}
	defer clear(macKey)
	m := hmac.New(sha256.New, macKey)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(ctxBytes)))
	m.Write(n[:])
	m.Write(ctxBytes)
	m.Write(plaintext)
	m.Sum(dst[:0])
	return nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Envelope is what the header of an encrypted payload says, readable without any key: for
// audits, tests and tools that check which master key, data key and encryption context a
// stored payload uses.
//
// A version 1 envelope holds everything itself. A version 2 envelope (see
// CipherAES256GCMCommitV2) holds only the reference of its key object: ReadEnvelope then
// returns KeyID, EncryptedDataKey and Context empty, and WithKeyObject fills them from the key
// object (read from the store under KeyObjectKey(prefix, KeyObjectRef)).
type Envelope struct {
	// Version is the envelope format version: 1 (CipherAES256GCMCommitV1) or 2
	// (CipherAES256GCMCommitV2).
	Version int
	// KeyObjectRef is, for version 2, the reference of the key object: the SHA-256 of its
	// bytes, stored under KeyObjectKey(prefix, KeyObjectRef). Zero for version 1.
	KeyObjectRef [sha256.Size]byte
	// KeyID is the master key id that encrypted the data key. For version 2 it is in the key
	// object: empty until WithKeyObject.
	KeyID string
	// EncryptedDataKey is the data key as the key provider encrypted it. For version 2 it is in
	// the key object: nil until WithKeyObject.
	EncryptedDataKey []byte
	// Context is the encryption context (the namespace under ContextKeyNamespace, and static
	// pairs). For version 2 it is in the key object: nil until WithKeyObject.
	Context map[string]string
}

// KeyObjectRefHex returns KeyObjectRef in hexadecimal, as in key-object keys; "" for version 1.
func (e *Envelope) KeyObjectRefHex() string {
	if e.Version != 2 {
		return ""
	}
	return hex.EncodeToString(e.KeyObjectRef[:])
}

// WithKeyObject fills KeyID, EncryptedDataKey and Context of a version 2 envelope from its key
// object obj (the bytes stored under KeyObjectKey(prefix, e.KeyObjectRef)), after checking
// with ReadKeyObject that obj hashes to the reference and parses. It fails with an error
// matching ErrKeyObject for a key object that does not, and with ErrMalformed for a version 1
// envelope; e is unchanged on failure. As with ReadEnvelope, nothing is decrypted: the data key
// behind the key object is checked only when the payload decodes.
func (e *Envelope) WithKeyObject(obj []byte) error {
	if e.Version != 2 {
		return fmt.Errorf("%w: envelope format version %d has no key object", ErrMalformed, e.Version)
	}
	k, err := ReadKeyObject(e.KeyObjectRef, obj)
	if err != nil {
		return err
	}
	e.KeyID, e.EncryptedDataKey, e.Context = k.KeyID, k.EncryptedDataKey, k.Context
	return nil
}

// ReadEnvelope parses the header of a binary/encrypted payload, with the same bounds as
// decoding. It decrypts nothing and so does not authenticate the header: trust what it
// returns only after the payload decoded.
//
// For an envelope format v2 payload (IsEnvelopeV2) it returns Version 2 and KeyObjectRef, with
// KeyID, EncryptedDataKey and Context empty: those are in the key object, which
// Envelope.WithKeyObject reads.
func ReadEnvelope(p *commonpb.Payload) (Envelope, error) {
	if enc := string(p.GetMetadata()[converter.MetadataEncoding]); enc != EncodingEncrypted {
		return Envelope{}, fmt.Errorf("%w: encoding %q, want %q", ErrMalformed, enc, EncodingEncrypted)
	}
	if IsEnvelopeV2(p) {
		ref, err := ReadKeyObjectRef(p)
		if err != nil {
			return Envelope{}, err
		}
		return Envelope{Version: 2, KeyObjectRef: ref}, nil
	}
	h, _, err := parseHeader(p.GetData())
	if err != nil {
		return Envelope{}, err
	}
	return Envelope{Version: 1, KeyID: h.keyID, EncryptedDataKey: bytes.Clone(h.edk), Context: h.context}, nil
}
