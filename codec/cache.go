package codec

import (
	"bytes"
	"container/list"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Defaults of CacheOptions and EncryptionOptions.
const (
	// DefaultCacheMaxAge is how long a data key is reused for encryption and kept for decryption.
	DefaultCacheMaxAge = 5 * time.Minute
	// DefaultCacheMaxMessages is how many payloads one cached data key encrypts before a new one
	// is generated. Every payload gets its own key derived from a random 256-bit message id, so
	// this is far below the 2^32 messages AWS guidance allows per data key for this construction.
	DefaultCacheMaxMessages = 1_000_000
	// DefaultCacheMaxBytes is how many plaintext bytes one cached data key encrypts (64 GiB).
	DefaultCacheMaxBytes = 64 << 30
	// DefaultCacheMaxEntries bounds the number of cached data keys, for encryption (one per
	// encryption context) and for decryption (one per encrypted data key and context) each.
	DefaultCacheMaxEntries = 1000
	// DefaultCallTimeout bounds each key-provider call.
	DefaultCallTimeout = 10 * time.Second
)

// CacheOptions configure data-key caching. A nil *CacheOptions means the defaults. Caching
// follows the AWS Encryption SDK's caching cryptographic materials manager: on encryption one
// data key serves many payloads of the same encryption context until a limit is reached; on
// decryption a bounded LRU maps (master key id, encrypted data key, context) to the plaintext
// data key. Errors are never cached.
type CacheOptions struct {
	// Disabled turns caching off: each Encode call then generates one data key for its batch,
	// and each Decode call decrypts each distinct encrypted data key of its batch once.
	Disabled bool
	// MaxAge is how long a cached data key is used. Defaults to DefaultCacheMaxAge.
	// Negative values are rejected.
	MaxAge time.Duration
	// MaxMessages is how many payloads one data key encrypts. Defaults to DefaultCacheMaxMessages.
	// Negative values are rejected.
	MaxMessages int64
	// MaxBytes is how many plaintext bytes one data key encrypts. Defaults to DefaultCacheMaxBytes.
	// A payload larger than MaxBytes gets a data key of its own. Negative values are rejected.
	MaxBytes int64
	// MaxEntries bounds each of the encryption and decryption caches. Defaults to
	// DefaultCacheMaxEntries. Negative values are rejected.
	MaxEntries int
}

// resolve validates o and applies defaults.
func (o *CacheOptions) resolve() (CacheOptions, error) {
	var r CacheOptions
	if o != nil {
		r = *o
	}
	switch {
	case r.MaxAge < 0:
		return r, fmt.Errorf("Encryption.Cache.MaxAge is negative (%s)", r.MaxAge)
	case r.MaxMessages < 0:
		return r, fmt.Errorf("Encryption.Cache.MaxMessages is negative (%d)", r.MaxMessages)
	case r.MaxBytes < 0:
		return r, fmt.Errorf("Encryption.Cache.MaxBytes is negative (%d)", r.MaxBytes)
	case r.MaxEntries < 0:
		return r, fmt.Errorf("Encryption.Cache.MaxEntries is negative (%d)", r.MaxEntries)
	}
	if r.MaxAge == 0 {
		r.MaxAge = DefaultCacheMaxAge
	}
	if r.MaxMessages == 0 {
		r.MaxMessages = DefaultCacheMaxMessages
	}
	if r.MaxBytes == 0 {
		r.MaxBytes = DefaultCacheMaxBytes
	}
	if r.MaxEntries == 0 {
		r.MaxEntries = DefaultCacheMaxEntries
	}
	return r, nil
}

// encEntry is a data key cached for encryption under one encryption context.
type encEntry struct {
	key      DataKey
	created  time.Time
	messages int64
	bytes    int64
	retired  bool
}

// decEntry is a plaintext data key cached for decryption.
type decEntry struct {
	key       string
	plaintext []byte
	created   time.Time
}

// keyState holds the key provider, the caches and the hooks shared by a codec and all its
// serialization-context copies.
type keyState struct {
	keys    KeyProvider
	cache   CacheOptions
	timeout time.Duration
	onEvent func(KeyEvent)
	now     func() time.Time

	mu      sync.Mutex
	enc     map[string]*encEntry
	dec     map[string]*list.Element
	decList *list.List

	// encFlight and decFlight let concurrent callers that missed the cache share one provider
	// call. Each flight checks the cache again before it calls the provider, so a caller that
	// arrives just after a flight has ended finds its result instead of starting another call.
	encFlight singleflight.Group
	decFlight singleflight.Group
}

func (s *keyState) event(e KeyEvent) {
	if s.onEvent != nil {
		s.onEvent(e)
	}
}

// dataKeyCacheKey identifies an encrypted data key with its context; it equals header.cacheKey.
func dataKeyCacheKey(keyID string, edk, ctx []byte) string {
	b := make([]byte, 0, 4+len(keyID)+len(edk)+len(ctx))
	b = appendString16(b, keyID)
	b = binary.BigEndian.AppendUint16(b, uint16(len(edk)))
	b = append(b, edk...)
	return string(append(b, ctx...))
}

// generate calls the provider's GenerateDataKey with a timeout and checks its result.
func (s *keyState) generate(encCtx map[string]string) (DataKey, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	start := time.Now()
	dk, err := s.keys.GenerateDataKey(ctx, cloneContext(encCtx))
	if err == nil {
		err = checkDataKey(dk)
	}
	s.event(KeyEvent{Kind: "kms", Operation: "GenerateDataKey", KeyID: dk.KeyID, Err: err, Duration: time.Since(start)})
	if err != nil {
		clear(dk.Plaintext)
		return DataKey{}, fmt.Errorf("GenerateDataKey: %w", err)
	}
	return DataKey{KeyID: dk.KeyID, Plaintext: bytes.Clone(dk.Plaintext), Encrypted: bytes.Clone(dk.Encrypted)}, nil
}

func checkDataKey(dk DataKey) error {
	switch {
	case len(dk.Plaintext) != DataKeySize:
		return fmt.Errorf("key provider returned a %d-byte data key, want %d", len(dk.Plaintext), DataKeySize)
	case dk.KeyID == "" || len(dk.KeyID) > MaxKeyIDLen:
		return fmt.Errorf("key provider returned a key id of %d bytes, want 1..%d", len(dk.KeyID), MaxKeyIDLen)
	case len(dk.Encrypted) == 0 || len(dk.Encrypted) > MaxEncryptedDataKeyLen:
		return fmt.Errorf("key provider returned an encrypted data key of %d bytes, want 1..%d", len(dk.Encrypted), MaxEncryptedDataKeyLen)
	}
	return nil
}

// decrypt calls the provider's DecryptDataKey with a timeout and checks its result.
func (s *keyState) decrypt(h *envelopeHeader) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	start := time.Now()
	pt, err := s.keys.DecryptDataKey(ctx, h.keyID, bytes.Clone(h.edk), cloneContext(h.context))
	if err == nil && len(pt) != DataKeySize {
		err = fmt.Errorf("%w: key provider returned a %d-byte data key, want %d", ErrDecrypt, len(pt), DataKeySize)
	}
	s.event(KeyEvent{Kind: "kms", Operation: "Decrypt", KeyID: h.keyID, Err: err, Duration: time.Since(start)})
	if err != nil {
		clear(pt)
		return nil, fmt.Errorf("DecryptDataKey: %w", err)
	}
	return pt, nil
}

// hasRoomLocked reports whether e may still encrypt one message of n bytes.
func (s *keyState) hasRoomLocked(e *encEntry, n int64, now time.Time) bool {
	return !e.retired && now.Sub(e.created) < s.cache.MaxAge && e.messages < s.cache.MaxMessages &&
		(e.messages == 0 || (e.bytes+n <= s.cache.MaxBytes && e.bytes < s.cache.MaxBytes))
}

// reserveLocked counts one message of n bytes against e if e may still encrypt it.
func (s *keyState) reserveLocked(e *encEntry, n int64, now time.Time) bool {
	if !s.hasRoomLocked(e, n, now) {
		return false
	}
	e.messages++
	e.bytes += n
	return true
}

func (s *keyState) retireLocked(ctxKey string, e *encEntry) {
	if s.enc[ctxKey] == e {
		delete(s.enc, ctxKey)
	}
	if !e.retired {
		e.retired = true
		clear(e.key.Plaintext)
	}
}

// encryptionKey returns a data key for one payload of n plaintext bytes under encCtx (whose
// canonical serialization is ctxKey). The returned DataKey's Plaintext is the caller's copy.
func (s *keyState) encryptionKey(ctxKey string, encCtx map[string]string, n int64) (DataKey, error) {
	missed := false
	for {
		if dk, ok := s.reserveCached(ctxKey, n); ok {
			if !missed {
				s.event(KeyEvent{Kind: "cache", Operation: "GenerateDataKey", KeyID: dk.KeyID, Hit: true})
			}
			return dk, nil
		}
		if !missed {
			missed = true
			s.event(KeyEvent{Kind: "cache", Operation: "GenerateDataKey"})
		}
		// Every caller that missed waits for one flight, then reserves its message on the entry
		// the flight left in the cache. If that entry filled up meanwhile, the loop goes again.
		if _, err, _ := s.encFlight.Do(ctxKey, func() (any, error) {
			return nil, s.refreshEncryptionKey(ctxKey, encCtx, n)
		}); err != nil {
			return DataKey{}, err
		}
	}
}

// reserveCached reserves one message of n bytes on the cached data key of ctxKey, retiring the
// entry if it is spent. It returns the caller's copy of the key.
func (s *keyState) reserveCached(ctxKey string, n int64) (DataKey, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.enc[ctxKey]
	if e == nil {
		return DataKey{}, false
	}
	if !s.reserveLocked(e, n, now) {
		s.retireLocked(ctxKey, e)
		return DataKey{}, false
	}
	dk := e.key
	dk.Plaintext = bytes.Clone(dk.Plaintext)
	return dk, true
}

// refreshEncryptionKey runs inside the encryption flight of ctxKey: unless the cache already
// holds a usable entry (put there by a flight that ended just before this one started), it
// generates a data key and caches it with no message counted yet.
func (s *keyState) refreshEncryptionKey(ctxKey string, encCtx map[string]string, n int64) error {
	s.mu.Lock()
	if e := s.enc[ctxKey]; e != nil && s.hasRoomLocked(e, n, s.now()) {
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	dk, err := s.generate(encCtx)
	if err != nil {
		return err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.enc[ctxKey]; old != nil {
		s.retireLocked(ctxKey, old)
	}
	s.evictEncLocked()
	s.enc[ctxKey] = &encEntry{key: dk, created: now}
	s.putDecLocked(dataKeyCacheKey(dk.KeyID, dk.Encrypted, []byte(ctxKey)), dk.Plaintext, now)
	return nil
}

// evictEncLocked makes room for one more encryption entry by retiring the oldest.
func (s *keyState) evictEncLocked() {
	for len(s.enc) >= s.cache.MaxEntries {
		var oldestKey string
		var oldest *encEntry
		for k, e := range s.enc {
			if oldest == nil || e.created.Before(oldest.created) {
				oldestKey, oldest = k, e
			}
		}
		s.retireLocked(oldestKey, oldest)
	}
}

// decryptionKey returns the caller's copy of the plaintext data key of h.
func (s *keyState) decryptionKey(h *envelopeHeader) ([]byte, error) {
	if pt, ok := s.cachedDecryptionKey(h.cacheKey); ok {
		s.event(KeyEvent{Kind: "cache", Operation: "Decrypt", KeyID: h.keyID, Hit: true})
		return pt, nil
	}
	s.event(KeyEvent{Kind: "cache", Operation: "Decrypt", KeyID: h.keyID})

	v, err, _ := s.decFlight.Do(h.cacheKey, func() (any, error) {
		// A flight that ended just before this one started may have cached the key already.
		if pt, ok := s.cachedDecryptionKey(h.cacheKey); ok {
			return pt, nil
		}
		pt, err := s.decrypt(h)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.putDecLocked(h.cacheKey, pt, s.now())
		s.mu.Unlock()
		return pt, nil
	})
	if err != nil {
		return nil, err
	}
	return bytes.Clone(v.([]byte)), nil
}

// cachedDecryptionKey returns a copy of the cached plaintext data key of cacheKey, dropping it
// if it is older than MaxAge.
func (s *keyState) cachedDecryptionKey(cacheKey string) ([]byte, bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.dec[cacheKey]
	if !ok {
		return nil, false
	}
	e := el.Value.(*decEntry)
	if now.Sub(e.created) >= s.cache.MaxAge {
		s.removeDecLocked(el)
		return nil, false
	}
	s.decList.MoveToFront(el)
	return bytes.Clone(e.plaintext), true
}

func (s *keyState) putDecLocked(key string, plaintext []byte, now time.Time) {
	if el, ok := s.dec[key]; ok {
		s.removeDecLocked(el)
	}
	for s.decList.Len() >= s.cache.MaxEntries {
		s.removeDecLocked(s.decList.Back())
	}
	s.dec[key] = s.decList.PushFront(&decEntry{key: key, plaintext: bytes.Clone(plaintext), created: now})
}

func (s *keyState) removeDecLocked(el *list.Element) {
	e := el.Value.(*decEntry)
	s.decList.Remove(el)
	delete(s.dec, e.key)
	clear(e.plaintext)
}

// purge zeroes and drops every cached data key.
func (s *keyState) purge() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.enc {
		s.retireLocked(k, e)
	}
	for s.decList.Len() > 0 {
		s.removeDecLocked(s.decList.Back())
	}
}

func cloneContext(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
