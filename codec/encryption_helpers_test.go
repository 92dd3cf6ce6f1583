package codec

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// countingProvider wraps a KeyProvider, counting calls; it can fail calls or block them on a gate.
type countingProvider struct {
	inner     KeyProvider
	generates atomic.Int64
	decrypts  atomic.Int64

	mu       sync.Mutex
	failNext int   // number of upcoming calls that fail with failErr
	failErr  error // error returned while failNext > 0
	gate     chan struct{}
	entered  chan struct{}
	contexts []map[string]string
}

func (p *countingProvider) before(encCtx map[string]string) error {
	p.mu.Lock()
	p.contexts = append(p.contexts, cloneContext(encCtx))
	gate, entered := p.gate, p.entered
	var err error
	if p.failNext > 0 {
		p.failNext--
		err = p.failErr
	}
	p.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	return err
}

func (p *countingProvider) GenerateDataKey(ctx context.Context, encCtx map[string]string) (DataKey, error) {
	p.generates.Add(1)
	if err := p.before(encCtx); err != nil {
		return DataKey{}, err
	}
	return p.inner.GenerateDataKey(ctx, encCtx)
}

func (p *countingProvider) DecryptDataKey(ctx context.Context, keyID string, edk []byte, encCtx map[string]string) ([]byte, error) {
	p.decrypts.Add(1)
	if err := p.before(encCtx); err != nil {
		return nil, err
	}
	return p.inner.DecryptDataKey(ctx, keyID, edk, encCtx)
}

// testKey returns a 32-byte key whose bytes are seed, seed+1, ...
func testKey(seed byte) []byte {
	k := make([]byte, DataKeySize)
	for i := range k {
		k[i] = seed + byte(i)
	}
	return k
}

func newTestKeyring(t testing.TB, primary string, ids ...string) *StaticKeyring {
	t.Helper()
	keys := map[string][]byte{}
	for i, id := range append([]string{primary}, ids...) {
		keys[id] = testKey(byte(16 * i))
	}
	r, err := NewStaticKeyring(primary, keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newTestCodec(t testing.TB, opts EncryptionOptions) *Encryption {
	t.Helper()
	c, err := NewEncryptionCodec(&opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func jsonPayload(data string) *commonpb.Payload {
	return &commonpb.Payload{
		Metadata: map[string][]byte{converter.MetadataEncoding: []byte("json/plain"), "custom": []byte("x")},
		Data:     []byte(data),
	}
}

func sizedPayload(n int) *commonpb.Payload {
	return &commonpb.Payload{
		Metadata: map[string][]byte{converter.MetadataEncoding: []byte("binary/plain")},
		Data:     bytes.Repeat([]byte{0xA5, 0x3C, 0x00}, n/3+1)[:n],
	}
}

func encodeOne(t testing.TB, c converter.PayloadCodec, p *commonpb.Payload) *commonpb.Payload {
	t.Helper()
	out, err := c.Encode([]*commonpb.Payload{p})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 {
		t.Fatalf("Encode returned %d payloads, want 1", len(out))
	}
	return out[0]
}

func decodeOne(c converter.PayloadCodec, p *commonpb.Payload) (*commonpb.Payload, error) {
	out, err := c.Decode([]*commonpb.Payload{p})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// counterReader yields 0, 1, 2, ... (mod 256): deterministic "randomness" for test vectors.
type counterReader struct{ n byte }

func (r *counterReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.n
		r.n++
	}
	return len(p), nil
}
