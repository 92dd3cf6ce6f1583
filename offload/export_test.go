package offload

import "time"

// SetCodecClock replaces the clock the codec compares object write times with (RefreshAge).
func SetCodecClock(c *Codec, now func() time.Time) { c.cfg.now = now }

// SetDriverClock replaces the clock the storage driver compares object write times with.
func SetDriverClock(d *StorageDriver, now func() time.Time) { d.now = now }

// SetMemoryStoreClock replaces the clock that stamps the write time of MemoryStore objects.
func SetMemoryStoreClock(m *MemoryStore, now func() time.Time) {
	m.mu.Lock()
	m.now = now
	m.mu.Unlock()
}
