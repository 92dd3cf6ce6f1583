package codec

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// StaticKeyring is a KeyProvider holding 32-byte master keys in memory. GenerateDataKey makes a
// random data key and wraps it with AES-256-GCM under the primary master key, authenticating the
// master key id and the canonical encryption context; DecryptDataKey unwraps with the named key.
// To rotate, build a keyring with a new primary and keep the old keys: payloads written under
// them still decrypt. A StaticKeyring is safe for concurrent use and never prints key material.
type StaticKeyring struct {
	primary string
	keys    map[string][]byte
	rand    io.Reader
}

var _ KeyProvider = (*StaticKeyring)(nil)

// Wrapped data key format of the static keyring: version 0x01 | 12-byte nonce | AES-256-GCM
// ciphertext and tag of the data key. AAD = label | u16 len | key id | canonical context.
const (
	keyringWrapVersion = 0x01
	keyringWrapLabel   = "payloadkit static keyring v1"
	keyringNonceSize   = 12
	keyringWrappedSize = 1 + keyringNonceSize + DataKeySize + gcmTagSize
)

// ErrInvalidKeyring reports keyring input (spec, file, environment) that cannot be used. Its
// messages name key ids and positions, never key material.
var ErrInvalidKeyring = errors.New("payloadkit: invalid keyring")

// GenerateKey returns a new random 32-byte master key.
func GenerateKey() []byte {
	k := make([]byte, DataKeySize)
	_, _ = rand.Read(k) // crypto/rand.Read never fails
	return k
}

// NewStaticKeyring returns a keyring whose data keys are wrapped under keys[primaryKeyID].
// Every key must be 32 bytes; ids must be 1..MaxKeyIDLen bytes. The keys are copied.
func NewStaticKeyring(primaryKeyID string, keys map[string][]byte) (*StaticKeyring, error) {
	if primaryKeyID == "" {
		return nil, fmt.Errorf("%w: primary key id is empty", ErrInvalidKeyring)
	}
	if _, ok := keys[primaryKeyID]; !ok {
		return nil, fmt.Errorf("%w: primary key %q is not in the keyring", ErrInvalidKeyring, primaryKeyID)
	}
	r := &StaticKeyring{primary: primaryKeyID, keys: make(map[string][]byte, len(keys)), rand: rand.Reader}
	for id, k := range keys {
		if id == "" || len(id) > MaxKeyIDLen {
			return nil, fmt.Errorf("%w: key id of %d bytes, want 1..%d", ErrInvalidKeyring, len(id), MaxKeyIDLen)
		}
		if len(k) != DataKeySize {
			return nil, fmt.Errorf("%w: key %q is %d bytes, want %d", ErrInvalidKeyring, id, len(k), DataKeySize)
		}
		r.keys[id] = bytes.Clone(k)
	}
	return r, nil
}

// ParseKeyring parses a keyring spec: comma-separated "id:base64key" entries (standard or URL
// base64, padded or not). The first entry is the primary unless one id is prefixed with "*".
// Errors name the entry's position and id, never its key.
func ParseKeyring(spec string) (*StaticKeyring, error) {
	keys := make(map[string][]byte)
	defer zeroKeys(keys)
	primary, marked := "", false
	for i, entry := range strings.Split(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, enc, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("%w: entry %d has no ':' between key id and key", ErrInvalidKeyring, i+1)
		}
		id = strings.TrimSpace(id)
		star := strings.HasPrefix(id, "*")
		id = strings.TrimPrefix(id, "*")
		if id == "" {
			return nil, fmt.Errorf("%w: entry %d has an empty key id", ErrInvalidKeyring, i+1)
		}
		if _, dup := keys[id]; dup {
			return nil, fmt.Errorf("%w: key id %q appears twice", ErrInvalidKeyring, id)
		}
		k, err := decodeKey(strings.TrimSpace(enc))
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d (key %q): %w", ErrInvalidKeyring, i+1, id, err)
		}
		keys[id] = k
		switch {
		case star && marked:
			return nil, fmt.Errorf("%w: more than one key marked primary with '*'", ErrInvalidKeyring)
		case star:
			primary, marked = id, true
		case primary == "":
			primary = id
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrInvalidKeyring)
	}
	return NewStaticKeyring(primary, keys)
}

// keyringFile is the JSON form read by LoadKeyringFile.
type keyringFile struct {
	Primary string            `json:"primary"`
	Keys    map[string]string `json:"keys"`
}

// maxKeyringFileSize bounds the keyring files LoadKeyringFile reads.
const maxKeyringFileSize = 1 << 20

// LoadKeyringFile reads a JSON keyring file: {"primary":"id","keys":{"id":"base64key"}}.
// Errors name the file and key ids, never key material.
func LoadKeyringFile(path string) (*StaticKeyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKeyring, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyringFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrInvalidKeyring, path, err)
	}
	defer clear(b)
	if len(b) > maxKeyringFileSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalidKeyring, path, maxKeyringFileSize)
	}
	var kf keyringFile
	if err := json.Unmarshal(b, &kf); err != nil {
		// Only the error kind is reported: JSON errors may quote parts of the input.
		return nil, fmt.Errorf("%w: %s is not a JSON keyring {\"primary\":\"id\",\"keys\":{\"id\":\"base64\"}}", ErrInvalidKeyring, path)
	}
	keys := make(map[string][]byte, len(kf.Keys))
	defer zeroKeys(keys)
	for id, enc := range kf.Keys {
		k, err := decodeKey(enc)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: key %q: %w", ErrInvalidKeyring, path, id, err)
		}
		keys[id] = k
	}
	r, err := NewStaticKeyring(kf.Primary, keys)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// StaticKeyringFromEnv builds a keyring from the environment: the variable prefix+"KEYRING"
// holds a ParseKeyring spec; if it is unset, prefix+"KEYRING_FILE" names a LoadKeyringFile path.
// For example, with prefix "PAYLOADKIT_": PAYLOADKIT_KEYRING="k2:...,k1:...".
func StaticKeyringFromEnv(prefix string) (*StaticKeyring, error) {
	if spec, ok := os.LookupEnv(prefix + "KEYRING"); ok {
		r, err := ParseKeyring(spec)
		if err != nil {
			return nil, fmt.Errorf("%sKEYRING: %w", prefix, err)
		}
		return r, nil
	}
	if path, ok := os.LookupEnv(prefix + "KEYRING_FILE"); ok && path != "" {
		return LoadKeyringFile(path)
	}
	return nil, fmt.Errorf("%w: neither %sKEYRING nor %sKEYRING_FILE is set", ErrInvalidKeyring, prefix, prefix)
}

func decodeKey(enc string) ([]byte, error) {
	enc = strings.TrimRight(enc, "=")
	k, err := base64.RawStdEncoding.DecodeString(enc)
	if err != nil {
		k, err = base64.RawURLEncoding.DecodeString(enc)
	}
	if err != nil {
		return nil, fmt.Errorf("key is not valid base64")
	}
	if len(k) != DataKeySize {
		clear(k)
		return nil, fmt.Errorf("key is %d bytes, want %d", len(k), DataKeySize)
	}
	return k, nil
}

func zeroKeys(keys map[string][]byte) {
	for _, k := range keys {
		clear(k)
	}
}

// PrimaryKeyID returns the id of the key new data keys are wrapped under.
func (r *StaticKeyring) PrimaryKeyID() string { return r.primary }

// KeyIDs returns the ids of all keys, sorted.
func (r *StaticKeyring) KeyIDs() []string {
	ids := make([]string, 0, len(r.keys))
	for id := range r.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// String describes the keyring by key ids only. It has a value receiver so that formatting a
// StaticKeyring value, not only a pointer, never prints key material.
func (r StaticKeyring) String() string {
	return fmt.Sprintf("StaticKeyring{primary: %q, keys: %q}", r.primary, r.KeyIDs())
}

// GoString describes the keyring by key ids only.
func (r StaticKeyring) GoString() string { return r.String() }

// Remote reports false: the keyring makes no remote calls.
func (r *StaticKeyring) Remote() bool { return false }

func keyringAAD(keyID string, ctx []byte) []byte {
	aad := make([]byte, 0, len(keyringWrapLabel)+2+len(keyID)+len(ctx))
	aad = append(aad, keyringWrapLabel...)
	aad = appendString16(aad, keyID)
	return append(aad, ctx...)
}

// GenerateDataKey returns a random data key wrapped under the primary key, bound to encCtx.
func (r *StaticKeyring) GenerateDataKey(_ context.Context, encCtx map[string]string) (DataKey, error) {
	ctxBytes, err := canonicalContext(encCtx)
	if err != nil {
		return DataKey{}, fmt.Errorf("static keyring GenerateDataKey [key=%s]: %w", r.primary, err)
	}
	buf := make([]byte, DataKeySize+keyringNonceSize)
	if _, err := io.ReadFull(r.rand, buf); err != nil {
		return DataKey{}, fmt.Errorf("static keyring GenerateDataKey [key=%s]: random: %w", r.primary, err)
	}
	dataKey, nonce := buf[:DataKeySize:DataKeySize], buf[DataKeySize:]
	aead, err := newGCM(r.keys[r.primary])
	if err != nil {
		return DataKey{}, fmt.Errorf("static keyring GenerateDataKey [key=%s]: %w", r.primary, err)
	}
	wrapped := make([]byte, 0, keyringWrappedSize)
	wrapped = append(wrapped, keyringWrapVersion)
	wrapped = append(wrapped, nonce...)
	wrapped = aead.Seal(wrapped, nonce, dataKey, keyringAAD(r.primary, ctxBytes))
	return DataKey{KeyID: r.primary, Plaintext: dataKey, Encrypted: wrapped}, nil
}

// DecryptDataKey unwraps a data key made under master key keyID with encCtx. It fails with
// ErrUnknownKey for an id not in the keyring, ErrMalformed for a wrapped key of the wrong form,
// and ErrDecrypt when authentication fails (wrong key, other context, tampering).
func (r *StaticKeyring) DecryptDataKey(_ context.Context, keyID string, encrypted []byte, encCtx map[string]string) ([]byte, error) {
	mk, ok := r.keys[keyID]
	if !ok {
		return nil, fmt.Errorf("static keyring DecryptDataKey [key=%s]: %w", keyID, ErrUnknownKey)
	}
	if len(encrypted) != keyringWrappedSize || encrypted[0] != keyringWrapVersion {
		return nil, fmt.Errorf("static keyring DecryptDataKey [key=%s]: %w: wrapped data key of %d bytes", keyID, ErrMalformed, len(encrypted))
	}
	ctxBytes, err := canonicalContext(encCtx)
	if err != nil {
		return nil, fmt.Errorf("static keyring DecryptDataKey [key=%s]: %w: %w", keyID, ErrMalformed, err)
	}
	aead, err := newGCM(mk)
	if err != nil {
		return nil, fmt.Errorf("static keyring DecryptDataKey [key=%s]: %w", keyID, err)
	}
	nonce := encrypted[1 : 1+keyringNonceSize]
	pt, err := aead.Open(nil, nonce, encrypted[1+keyringNonceSize:], keyringAAD(keyID, ctxBytes))
	if err != nil {
		return nil, fmt.Errorf("static keyring DecryptDataKey [key=%s]: %w", keyID, ErrDecrypt)
	}
	return pt, nil
}
