package offload

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/payloadkit/payloadkit/offload/internal/objkey"
)

// MemoryStore is a Store in process memory, for tests and examples. It copies bytes in and out
// and records the time each object was written (see Stat).
// The zero value is not usable; call NewMemoryStore.
type MemoryStore struct {
	mu      sync.RWMutex
	objects map[string]memoryObject
	now     func() time.Time // the write-time clock; tests replace it
}

type memoryObject struct {
	data     []byte
	modified time.Time
}

var (
	_ Store         = (*MemoryStore)(nil)
	_ BoundedGetter = (*MemoryStore)(nil)
	_ PartsPutter   = (*MemoryStore)(nil)
	_ Stater        = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{objects: map[string]memoryObject{}, now: time.Now}
}

// Name returns "memory".
func (m *MemoryStore) Name() string { return "memory" }

// Put stores a copy of data under key.
func (m *MemoryStore) Put(ctx context.Context, key string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return contextError("put", m.Name(), key, err)
	}
	if err := objkey.Validate(key); err != nil {
		return newError("put", m.Name(), key, ErrStore, err, "")
	}
	m.store(key, append(make([]byte, 0, len(data)), data...))
	return nil
}

// PutParts stores a copy of the concatenation of parts under key (one allocation).
func (m *MemoryStore) PutParts(ctx context.Context, key string, parts [][]byte, _ [sha256.Size]byte) error {
	if err := ctx.Err(); err != nil {
		return contextError("put", m.Name(), key, err)
	}
	if err := objkey.Validate(key); err != nil {
		return newError("put", m.Name(), key, ErrStore, err, "")
	}
	m.store(key, joinParts(parts))
	return nil
}

func (m *MemoryStore) store(key string, data []byte) {
	m.mu.Lock()
	m.objects[key] = memoryObject{data: data, modified: m.now()}
	m.mu.Unlock()
}

// Get returns a copy of the object under key.
func (m *MemoryStore) Get(ctx context.Context, key string) ([]byte, error) {
	return m.GetBounded(ctx, key, -1)
}

// GetBounded returns a copy of the object under key, or an error matching ErrTooLarge when it is
// larger than maxBytes (a negative maxBytes means no bound).
func (m *MemoryStore) GetBounded(ctx context.Context, key string, maxBytes int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, contextError("get", m.Name(), key, err)
	}
	m.mu.RLock()
	obj, ok := m.objects[key]
	m.mu.RUnlock()
	if !ok {
		return nil, newError("get", m.Name(), key, ErrNotFound, nil, "")
	}
	data := obj.data
	if maxBytes >= 0 && int64(len(data)) > maxBytes {
		return nil, newError("get", m.Name(), key, ErrTooLarge, nil, "object is larger than the limit of %d bytes", maxBytes)
	}
	return append(make([]byte, 0, len(data)), data...), nil
}

// Exists reports whether an object is stored under key.
func (m *MemoryStore) Exists(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, contextError("exists", m.Name(), key, err)
	}
	m.mu.RLock()
	_, ok := m.objects[key]
	m.mu.RUnlock()
	return ok, nil
}

// Stat returns the size and write time of the object under key, or an error matching
// ErrNotFound.
func (m *MemoryStore) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, contextError("stat", m.Name(), key, err)
	}
	m.mu.RLock()
	obj, ok := m.objects[key]
	m.mu.RUnlock()
	if !ok {
		return ObjectInfo{}, newError("stat", m.Name(), key, ErrNotFound, nil, "")
	}
	return ObjectInfo{Size: int64(len(obj.data)), Modified: obj.modified}, nil
}

// Delete removes the object under key, if any.
func (m *MemoryStore) Delete(key string) {
	m.mu.Lock()
	delete(m.objects, key)
	m.mu.Unlock()
}

// Keys returns the keys of the stored objects, in no particular order.
func (m *MemoryStore) Keys() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	keys := make([]string, 0, len(m.objects))
	for k := range m.objects {
		keys = append(keys, k)
	}
	return keys
}
