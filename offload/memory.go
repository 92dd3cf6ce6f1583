package offload

import (
	"context"
	"sync"

	"github.com/payloadkit/payloadkit/offload/internal/objkey"
)

// MemoryStore is a Store in process memory, for tests and examples. It copies bytes in and out.
// The zero value is not usable; call NewMemoryStore.
type MemoryStore struct {
	mu      sync.RWMutex
	objects map[string][]byte
}

var (
	_ Store         = (*MemoryStore)(nil)
	_ BoundedGetter = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{objects: map[string][]byte{}}
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
	cp := append(make([]byte, 0, len(data)), data...)
	m.mu.Lock()
	m.objects[key] = cp
	m.mu.Unlock()
	return nil
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
	data, ok := m.objects[key]
	m.mu.RUnlock()
	if !ok {
		return nil, newError("get", m.Name(), key, ErrNotFound, nil, "")
	}
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
