package codec

import (
	"bytes"
	"container/list"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"golang.org/x/sync/singleflight"

	"github.com/payloadkit/payloadkit/internal/pbwire"
)

// EnvelopeFormat selects the envelope format the encryption stage writes
// (EncryptionOptions.Format). Decoding always accepts every format.
type EnvelopeFormat int

const (
	// FormatDefault is the format used when EncryptionOptions.Format is not set: currently
	// FormatV1.
	FormatDefault EnvelopeFormat = iota
	// FormatV1 is envelope format version 1 (CipherAES256GCMCommitV1): self-contained
	// envelopes holding the master key id, the encrypted data key and the encryption context,
	// with three metadata entries.
	FormatV1
	// FormatV2 is envelope format version 2 (see CipherAES256GCMCommitV2): a 47-byte header
	// referring to a key object written once per data key to EncryptionOptions.KeyObjects, and
	// the encoding as the only metadata entry. A payload grows by 94 bytes plus the length of
	// its data's varint (30 for the metadata, 1 + varint for the data field's framing, 47 for
	// the header, 16 for the GCM tag), whatever the key provider: 95 or 96 bytes for marshalled
	// payloads under 16 KiB, 97 up to 2 MiB. Version 1 adds about 290 bytes with the static
	// keyring and 550 with AWS KMS.
	FormatV2
)

// String returns "default", "v1" or "v2".
func (f EnvelopeFormat) String() string {
	switch f {
	case FormatDefault:
		return "default"
	case FormatV1:
		return "v1"
	case FormatV2:
		return "v2"
	}
	return fmt.Sprintf("EnvelopeFormat(%d)", int(f))
}

// ObjectStore stores the key objects of envelope format v2 (EncryptionOptions.KeyObjects).
// offload.Store satisfies it, as does any store with these two methods. Get must fail for a
// missing object (offload stores fail with an error matching offload.ErrNotFound). A store
// that also has GetBounded(ctx, key, maxBytes) ([]byte, error), as offload.BoundedGetter,
// is read through it with the largest possible key-object size as the bound.
type ObjectStore interface {
	// Put stores data under key, replacing any object already there.
	Put(ctx context.Context, key string, data []byte) error
	// Get returns the object stored under key.
	Get(ctx context.Context, key string) ([]byte, error)
}

// boundedObjectGetter is offload.BoundedGetter, declared here so that codec does not import offload.
type boundedObjectGetter interface {
	GetBounded(ctx context.Context, key string, maxBytes int64) ([]byte, error)
}

// Envelope format version 2 (all integers big endian).
//
// Payload: metadata holds only "encoding: binary/encrypted"; the data is
//
//	version 0x02                      (1 byte; v1 data starts with "PKE", so the first byte tells them apart)
//	key-object reference              (32 bytes: SHA-256 of the key object's bytes)
//	message id                        (14 bytes, random per payload; or deterministic, see below)
//	AES-256-GCM ciphertext and 16-byte tag of the marshalled inner Payload; nonce zero, AAD = the 47-byte header
//
// Key object, stored once per data key under KeyObjectKey(prefix, reference) and immutable:
//
//	magic "PKK" | version 0x02
//	u16 len | master key id           (1..MaxKeyIDLen bytes)
//	u16 len | encrypted data key      (1..MaxEncryptedDataKeyLen bytes)
//	data-key commitment               (32 bytes)
//	u16 n   | n × (u16 len | key, u16 len | value)   encryption context, keys strictly ascending, as in v1
//
// nothing after the context. With dk the data key and ref the reference:
//
//	commitment   = HKDF-SHA512(secret = dk, salt = none, info = "payloadkit/v2 COMMITKEY", 32 bytes)
//	message key  = HKDF-SHA512(secret = dk, salt = message id, info = "payloadkit/v2 MESSAGEKEY" | ref, 32 bytes)
//
// Security argument. The reference commits to the key object (SHA-256, collision work 2^128),
// the key object commits to the data key (the 32-byte commitment, collision work 2^128), and
// the message key is a function of the data key, message id and reference: so a payload
// decrypts under one key only, as in v1, and its header (version, reference, message id) is
// authenticated as the AAD. The namespace and static context are authenticated twice: by the
// key provider when it decrypts the data key (the context is its encryption context) and by the
// reference. A message key is unique per message unless two message ids under one data key
// collide: with at most q messages per data key, P(collision) <= q²/2^113; the codec caps q at
// MaxMessagesPerDataKeyV2 = 2^32 (CacheOptions.MaxMessages above it is refused with FormatV2),
// bounding the probability by 2^-49 per data key, and by 2^-73 with the default
// DefaultCacheMaxMessages (about 2^20). A deterministic message id
// (EncryptionOptions.DeterministicMinSize) is the first 14 bytes of HMAC-SHA256(K, ref |
// plaintext) with K = HKDF-SHA512(secret = dk, salt = none, info = "payloadkit/v2 MESSAGEID",
// 32 bytes); ref binds the encryption context. Equal plaintexts under one key object give equal
// envelopes; different ones collide with the same bound as random ids.
const (
	// CipherAES256GCMCommitV2 names envelope format version 2. It is not written to payloads
	// (their only metadata is the encoding); it names the format in logs and documentation.
	CipherAES256GCMCommitV2 = "AES256GCM-HKDF-SHA512-COMMIT/v2"
	// MaxMessagesPerDataKeyV2 is the largest CacheOptions.MaxMessages accepted with FormatV2:
	// the cap of the message-id collision bound.
	MaxMessagesPerDataKeyV2 = 1 << 32
	// DefaultKeyObjectPrefix is the default EncryptionOptions.KeyObjectPrefix; it equals the
	// offload stage's default prefix.
	DefaultKeyObjectPrefix = "payloadkit"
	// MaxKeyObjectSize is the size, in bytes, of the largest key object that parses (with
	// MaxKeyIDLen, MaxEncryptedDataKeyLen, MaxContextPairs and MaxContextBytes): tools reading
	// key objects bound their reads by it.
	MaxKeyObjectSize = maxKeyObjectSize
	// DefaultKeyObjectCacheEntries bounds the parsed key objects a codec keeps (an LRU shared
	// by the codec's serialization-context copies, also bounded to keyObjectCacheBytes, 16 MiB,
	// of key objects: a typical one is 150 to 400 bytes), and separately the references of the
	// key objects it wrote. A key object is immutable, so a cached one is never read again.
	DefaultKeyObjectCacheEntries = 10_000
	keyObjectCacheBytes          = 16 << 20

	formatVersionV2    = 0x02
	keyObjectMagic     = "PKK"
	keyObjectVersion   = 0x02
	keyObjectRefSize   = sha256.Size
	messageIDSizeV2    = 14
	headerSizeV2       = 1 + keyObjectRefSize + messageIDSizeV2
	labelV2CommitKey   = "payloadkit/v2 COMMITKEY"
	labelV2MessageKey  = "payloadkit/v2 MESSAGEKEY"
	labelV2MessageID   = "payloadkit/v2 MESSAGEID"
	maxKeyObjectSize   = len(keyObjectMagic) + 1 + 2 + MaxKeyIDLen + 2 + MaxEncryptedDataKeyLen + commitmentSize + 2 + 4*MaxContextPairs + MaxContextBytes
	keyObjectKeySuffix = "/keys/"
)

// KeyObjectKey returns the object key of the key object with reference ref under prefix:
// <prefix>/keys/<64 hex digits>. It has no namespace segment, since a decoder reads a v2
// payload before it knows its namespace (which the key object holds, and the codec checks);
// it cannot collide with the offload stage's <prefix>/<namespace>/sha256/<hex> keys.
func KeyObjectKey(prefix string, ref [sha256.Size]byte) string {
	return prefix + keyObjectKeySuffix + hex.EncodeToString(ref[:])
}

// IsEnvelopeV2 reports whether p is a binary/encrypted payload in envelope format v2 (by its
// metadata and first byte; nothing is checked further).
func IsEnvelopeV2(p *commonpb.Payload) bool {
	md := p.GetMetadata()
	if string(md[converter.MetadataEncoding]) != EncodingEncrypted {
		return false
	}
	_, v1 := md[MetadataEncryptionCipher]
	d := p.GetData()
	return !v1 && len(d) > 0 && d[0] == formatVersionV2
}

// ReadKeyObjectRef returns the key-object reference of a v2 payload, for tools that check
// or keep key objects (the reference is authenticated only when the payload decodes).
func ReadKeyObjectRef(p *commonpb.Payload) ([sha256.Size]byte, error) {
	var ref [sha256.Size]byte
	if !IsEnvelopeV2(p) {
		return ref, fmt.Errorf("%w: not an envelope format v2 payload", ErrMalformed)
	}
	if len(p.GetData()) < headerSizeV2+gcmTagSize {
		return ref, fmt.Errorf("%w: v2 envelope is %d bytes, shorter than header and tag (%d)", ErrMalformed, len(p.GetData()), headerSizeV2+gcmTagSize)
	}
	copy(ref[:], p.GetData()[1:1+keyObjectRefSize])
	return ref, nil
}

// ReadKeyObject parses a key object of envelope format v2, with the same bounds as decoding,
// after checking that its SHA-256 is ref, and returns it as an Envelope with Version 2 and
// KeyObjectRef ref. It decrypts nothing: the data key behind it, and so the commitment, are
// checked only when a payload decodes.
func ReadKeyObject(ref [sha256.Size]byte, obj []byte) (Envelope, error) {
	if sha256.Sum256(obj) != ref {
		return Envelope{}, fmt.Errorf("%w: SHA-256 of the key object differs from its reference", ErrKeyObject)
	}
	h, err := parseKeyObject(obj)
	if err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrKeyObject, err)
	}
	return Envelope{Version: 2, KeyObjectRef: ref, KeyID: h.keyID, EncryptedDataKey: bytes.Clone(h.edk), Context: cloneContext(h.context)}, nil
}

// appendKeyObject appends the key object of a data key to dst. ctx is the canonical context.
func appendKeyObject(dst []byte, keyID string, edk, commitment, ctx []byte) []byte {
	dst = append(dst, keyObjectMagic...)
	dst = append(dst, keyObjectVersion)
	dst = appendString16(dst, keyID)
	dst = appendString16(dst, string(edk))
	dst = append(dst, commitment...)
	return append(dst, ctx...)
}

// parseKeyObject parses a key object into a header holding its key id, encrypted data key,
// commitment and context, with the cache key of the data-key cache (equal to v1's for the same
// data key and context). Byte slices alias obj.
func parseKeyObject(obj []byte) (*envelopeHeader, error) {
	if len(obj) > maxKeyObjectSize {
		return nil, fmt.Errorf("%w: key object is %d bytes, limit %d", ErrMalformed, len(obj), maxKeyObjectSize)
	}
	r := &headerReader{b: obj}
	magic := r.bytes(len(keyObjectMagic)+1, "key object magic")
	if r.err != nil {
		return nil, r.err
	}
	if string(magic[:len(keyObjectMagic)]) != keyObjectMagic {
		return nil, fmt.Errorf("%w: bad key object magic", ErrMalformed)
	}
	if magic[len(keyObjectMagic)] != keyObjectVersion {
		return nil, fmt.Errorf("%w: unsupported key object version %d", ErrMalformed, magic[len(keyObjectMagic)])
	}
	h := &envelopeHeader{}
	keyStart := r.off
	h.keyID = string(r.field("key id", 1, MaxKeyIDLen))
	h.edk = r.field("encrypted data key", 1, MaxEncryptedDataKeyLen)
	keyEnd := r.off
	h.commitment = r.bytes(commitmentSize, "data-key commitment")
	if r.err != nil {
		return nil, r.err
	}
	ctxStart := r.off
	// The context as in parseHeader, with the same bounds.
	h.context = r.context()
	if r.err != nil {
		return nil, r.err
	}
	if r.off != len(obj) {
		return nil, fmt.Errorf("%w: %d bytes after the key object's encryption context", ErrMalformed, len(obj)-r.off)
	}
	h.cacheKey = string(obj[keyStart:keyEnd]) + string(obj[ctxStart:])
	h.raw = obj
	return h, nil
}

// keyObjectMemSize approximates the memory a parsed key object holds: the object it aliases,
// its cache key and its context.
func keyObjectMemSize(h *envelopeHeader) int {
	return 2*len(h.raw) + len(h.keyID)
}

// dataKeyCommitmentV2 returns the v2 data-key commitment of dataKey.
func dataKeyCommitmentV2(dataKey []byte) ([]byte, error) {
	return hkdf.Key(sha512.New, dataKey, nil, labelV2CommitKey, commitmentSize)
}

// messageKeyV2 returns the v2 per-message AES-256 key.
func messageKeyV2(dataKey, messageID, ref []byte) ([]byte, error) {
	return hkdf.Key(sha512.New, dataKey, messageID, labelV2MessageKey+string(ref), DataKeySize)
}

// deterministicMessageIDV2 writes the deterministic v2 message id of plaintext to dst
// (messageIDSizeV2 bytes).
func deterministicMessageIDV2(dst, dataKey, ref, plaintext []byte) error {
	macKey, err := hkdf.Key(sha512.New, dataKey, nil, labelV2MessageID, sha256.Size)
	if err != nil {
		return err
	}
	defer clear(macKey)
	m := hmac.New(sha256.New, macKey)
	m.Write(ref)
	m.Write(plaintext)
	var sum [sha256.Size]byte
	copy(dst[:messageIDSizeV2], m.Sum(sum[:0]))
	return nil
}

// lru is a least-recently-used map bounded to max entries and maxBytes of entry sizes; its
// owner locks it.
type lru[V any] struct {
	max      int
	maxBytes int
	bytes    int
	m        map[string]*list.Element
	l        *list.List
}

type lruEntry[V any] struct {
	key  string
	val  V
	size int
}

func newLRU[V any](max, maxBytes int) *lru[V] {
	return &lru[V]{max: max, maxBytes: maxBytes, m: make(map[string]*list.Element), l: list.New()}
}

func (c *lru[V]) get(key string) (V, bool) {
	el, ok := c.m[key]
	if !ok {
		var zero V
		return zero, false
	}
	c.l.MoveToFront(el)
	return el.Value.(*lruEntry[V]).val, true
}

// put adds or replaces key, whose value accounts for size bytes, evicting the least recently
// used entries as needed.
func (c *lru[V]) put(key string, val V, size int) {
	if el, ok := c.m[key]; ok {
		c.remove(el)
	}
	for c.l.Len() > 0 && (c.l.Len() >= c.max || c.bytes+size > c.maxBytes) {
		c.remove(c.l.Back())
	}
	c.bytes += size
	c.m[key] = c.l.PushFront(&lruEntry[V]{key: key, val: val, size: size})
}

func (c *lru[V]) remove(el *list.Element) {
	e := el.Value.(*lruEntry[V])
	delete(c.m, e.key)
	c.bytes -= e.size
	c.l.Remove(el)
}

// v2State holds the key-object store and caches shared by a codec and its copies.
type v2State struct {
	store   ObjectStore
	prefix  string
	timeout time.Duration

	mu      sync.Mutex
	written *lru[[sha256.Size]byte] // data-key cache key -> reference of the key object written
	objects *lru[*envelopeHeader]   // reference -> parsed, verified key object

	putFlight singleflight.Group // one Put per data key at a time
	getFlight singleflight.Group // one Get per reference at a time
}

func newV2State(opts *EncryptionOptions, timeout time.Duration) (*v2State, error) {
	prefix := opts.KeyObjectPrefix
	if prefix == "" {
		prefix = DefaultKeyObjectPrefix
	}
	if strings.HasPrefix(prefix, "/") || strings.HasSuffix(prefix, "/") {
		return nil, fmt.Errorf("Encryption.KeyObjectPrefix %q must not start or end with '/'", prefix)
	}
	return &v2State{
		store:   opts.KeyObjects,
		prefix:  prefix,
		timeout: timeout,
		written: newLRU[[sha256.Size]byte](DefaultKeyObjectCacheEntries, keyObjectCacheBytes),
		objects: newLRU[*envelopeHeader](DefaultKeyObjectCacheEntries, keyObjectCacheBytes),
	}, nil
}

// keyObjectRef returns the reference of the key object of dk under the codec's context,
// writing the object first if this process has not written it yet. Concurrent callers for one
// data key share one write; a failed write is not remembered, so the next payload retries it.
func (c *Encryption) keyObjectRef(dk DataKey) ([sha256.Size]byte, error) {
	s := c.v2
	id := dataKeyCacheKey(dk.KeyID, dk.Encrypted, c.ctxBytes)
	s.mu.Lock()
	ref, ok := s.written.get(id)
	s.mu.Unlock()
	if ok {
		return ref, nil
	}
	v, err, _ := s.putFlight.Do(id, func() (any, error) {
		s.mu.Lock()
		ref, ok := s.written.get(id)
		s.mu.Unlock()
		if ok {
			return ref, nil
		}
		commitment, err := dataKeyCommitmentV2(dk.Plaintext)
		if err != nil {
			return nil, err
		}
		obj := appendKeyObject(make([]byte, 0, 4+4+len(dk.KeyID)+len(dk.Encrypted)+commitmentSize+len(c.ctxBytes)),
			dk.KeyID, dk.Encrypted, commitment, c.ctxBytes)
		ref = sha256.Sum256(obj)
		key := KeyObjectKey(s.prefix, ref)
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		defer cancel()
		if err := s.store.Put(ctx, key, obj); err != nil {
			return nil, fmt.Errorf("%w: writing %s: %w", ErrKeyObject, key, err)
		}
		h, err := parseKeyObject(obj)
		if err != nil { // cannot happen: the codec checked every bound
			return nil, fmt.Errorf("%w: %s: %w", ErrKeyObject, key, err)
		}
		s.mu.Lock()
		s.written.put(id, ref, len(id))
		s.objects.put(string(ref[:]), h, keyObjectMemSize(h))
		s.mu.Unlock()
		return ref, nil
	})
	if err != nil {
		return ref, err
	}
	return v.([sha256.Size]byte), nil
}

// sealV2 builds a v2 envelope for one marshalled payload, in one exact-size allocation, after
// making sure the key object of dk is stored.
func (c *Encryption) sealV2(dk DataKey, plaintext []byte, deterministic bool) ([]byte, error) {
	ref, err := c.keyObjectRef(dk)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, headerSizeV2, headerSizeV2+len(plaintext)+gcmTagSize)
	buf[0] = formatVersionV2
	copy(buf[1:], ref[:])
	messageID := buf[1+keyObjectRefSize : headerSizeV2]
	if deterministic {
		if err := deterministicMessageIDV2(messageID, dk.Plaintext, ref[:], plaintext); err != nil {
			return nil, err
		}
	} else if _, err := io.ReadFull(c.rand, messageID); err != nil {
		return nil, fmt.Errorf("reading message id: %w", err)
	}
	aesKey, err := messageKeyV2(dk.Plaintext, messageID, ref[:])
	if err != nil {
		return nil, err
	}
	defer clear(aesKey)
	aead, err := newGCM(aesKey)
	if err != nil {
		return nil, err
	}
	return aead.Seal(buf, zeroNonce[:], plaintext, buf), nil
}

// keyObject returns the parsed, verified key object of ref: from the cache, else read from the
// store (one read per reference at a time), checked against ref, parsed and cached.
func (c *Encryption) keyObject(ref []byte, key string) (*envelopeHeader, error) {
	s := c.v2
	s.mu.Lock()
	h, ok := s.objects.get(string(ref))
	s.mu.Unlock()
	if ok {
		return h, nil
	}
	v, err, _ := s.getFlight.Do(string(ref), func() (any, error) {
		s.mu.Lock()
		h, ok := s.objects.get(string(ref))
		s.mu.Unlock()
		if ok {
			return h, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		defer cancel()
		var obj []byte
		var err error
		if bg, ok := s.store.(boundedObjectGetter); ok {
			obj, err = bg.GetBounded(ctx, key, int64(maxKeyObjectSize))
		} else {
			obj, err = s.store.Get(ctx, key)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reading: %w", ErrKeyObject, err)
		}
		if sum := sha256.Sum256(obj); !bytes.Equal(sum[:], ref) {
			return nil, fmt.Errorf("%w: corrupt: its SHA-256 is %x, not its reference", ErrKeyObject, sum)
		}
		if h, err = parseKeyObject(obj); err != nil {
			return nil, fmt.Errorf("%w: corrupt: %w", ErrKeyObject, err)
		}
		s.mu.Lock()
		s.objects.put(string(ref), h, keyObjectMemSize(h))
		s.mu.Unlock()
		return h, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*envelopeHeader), nil
}

// openV2 decrypts one v2 payload; batch holds the data keys of a Decode call when caching is
// disabled. label names the key object and master key for error context, as far as known.
func (c *Encryption) openV2(p *commonpb.Payload, batch *map[string][]byte) (_ *commonpb.Payload, label string, _ error) {
	data := p.GetData()
	if len(data) < headerSizeV2+gcmTagSize {
		return nil, "", fmt.Errorf("%w: v2 envelope is %d bytes, shorter than header and tag (%d)", ErrMalformed, len(data), headerSizeV2+gcmTagSize)
	}
	if c.v2 == nil {
		return nil, "", fmt.Errorf("%w: an envelope format v2 payload needs EncryptionOptions.KeyObjects", ErrKeyObject)
	}
	header, ct := data[:headerSizeV2:headerSizeV2], data[headerSizeV2:]
	ref := header[1 : 1+keyObjectRefSize]
	messageID := header[1+keyObjectRefSize:]
	key := c.v2.prefix + keyObjectKeySuffix + hex.EncodeToString(ref)
	label = ", key object=" + key
	h, err := c.keyObject(ref, key)
	if err != nil {
		return nil, label, err
	}
	label += ", key=" + h.keyID
	if err := c.checkHeader(h); err != nil {
		return nil, label, err
	}

	var dataKey []byte
	if c.state.cache.Disabled {
		if *batch == nil {
			*batch = make(map[string][]byte)
		}
		if dataKey = (*batch)[h.cacheKey]; dataKey == nil {
			if dataKey, err = c.state.decrypt(h); err != nil {
				return nil, label, err
			}
			(*batch)[h.cacheKey] = dataKey
		}
	} else {
		if dataKey, err = c.state.decryptionKey(h); err != nil {
			return nil, label, err
		}
		defer clear(dataKey)
	}

	commitment, err := dataKeyCommitmentV2(dataKey)
	if err != nil {
		return nil, label, err
	}
	if subtle.ConstantTimeCompare(commitment, h.commitment) != 1 {
		return nil, label, fmt.Errorf("%w: %w", ErrDecrypt, ErrKeyCommitment)
	}
	aesKey, err := messageKeyV2(dataKey, messageID, ref)
	if err != nil {
		return nil, label, err
	}
	defer clear(aesKey)
	aead, err := newGCM(aesKey)
	if err != nil {
		return nil, label, err
	}
	// As in v1: an exact-size plaintext that the inner payload keeps.
	plaintext, err := aead.Open(nil, zeroNonce[:], ct, header)
	if err != nil {
		return nil, label, fmt.Errorf("%w: ciphertext authentication failed", ErrDecrypt)
	}
	inner, err := pbwire.Unmarshal(plaintext)
	if err != nil {
		clear(plaintext)
		return nil, label, fmt.Errorf("%w: inner payload: %w", ErrMalformed, err)
	}
	return inner, label, nil
}
