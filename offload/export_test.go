package offload

import "time"

// SetCodecClock replaces the clock the codec compares object write times with (RefreshAge).
func SetCodecClock(c *Codec, now func() time.Time) { c.cfg.now = now }

// SetMemoryStoreClock replaces the clock that stamps the write time of MemoryStore objects.
func SetMemoryStoreClock(m *MemoryStore, now func() time.Time) {
	m.mu.Lock()
	m.now = now
	m.mu.Unlock()
}
