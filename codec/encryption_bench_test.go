package codec

import (
	"crypto/rand"
	"fmt"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/internal/benchutil"
)

// staticGCMEncode is the alternative many users write first (as in the Temporal samples): one
// fixed AES-256-GCM key, a random nonce per payload, no key derivation or commitment.
func staticGCMEncode(key []byte, p *commonpb.Payload) ([]byte, error) {
	b, err := proto.Marshal(p)
	if err != nil {
		return nil, err
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	return aead.Seal(nonce, nonce, b, nil), nil
}

// BenchmarkEncryptionEncode compares, per payload and interleaved in one run: marshalling
// alone, a fixed-key AES-GCM codec, payloadkit with its data-key cache, and payloadkit without
// it (one provider call per payload). It reports each one's time relative to the fixed-key codec
// (<alternative>-vs-static-gcm-x) and payloadkit's key-provider calls per payload.
func BenchmarkEncryptionEncode(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			p := sizedPayload(size)
			in := []*commonpb.Payload{p}
			key := testKey(3)
			cachedKeys := &countingProvider{inner: newTestKeyring(b, "k1")}
			cached := newTestCodec(b, EncryptionOptions{Keys: cachedKeys})
			uncachedKeys := &countingProvider{inner: newTestKeyring(b, "k1")}
			uncached := newTestCodec(b, EncryptionOptions{Keys: uncachedKeys, Cache: &CacheOptions{Disabled: true}})
			encode := func(c *Encryption) func() {
				return func() {
					if _, err := c.Encode(in); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.SetBytes(int64(size))
			res := benchutil.Interleave(b,
				func() {
					if _, err := proto.Marshal(p); err != nil {
						b.Fatal(err)
					}
				},
				func() {
					if _, err := staticGCMEncode(key, p); err != nil {
						b.Fatal(err)
					}
				},
				encode(cached), encode(uncached))
			for i, name := range []string{"marshal-only", "static-gcm", "payloadkit-cached", "payloadkit-uncached"} {
				b.ReportMetric(res.NsPerOp[i], name+"-ns/op")
				if name != "static-gcm" {
					b.ReportMetric(res.Ratio(i, 1), name+"-vs-static-gcm-x")
				}
			}
			b.ReportMetric(float64(cachedKeys.generates.Load())/float64(res.Runs[2]), "cached-kms-calls/op")
			b.ReportMetric(float64(uncachedKeys.generates.Load())/float64(res.Runs[3]), "uncached-kms-calls/op")
		})
	}
}

// BenchmarkEncryptionDecode compares, interleaved in one run, decoding with the data-key cache
// warm against a cold cache (one provider Decrypt per payload): uncached-vs-cached-x.
func BenchmarkEncryptionDecode(b *testing.B) {
	keys := &countingProvider{inner: newTestKeyring(b, "k1")}
	p := encodeOne(b, newTestCodec(b, EncryptionOptions{Keys: keys}), sizedPayload(1<<10))
	in := []*commonpb.Payload{p}
	cachedKeys := &countingProvider{inner: keys.inner}
	cached := newTestCodec(b, EncryptionOptions{Keys: cachedKeys})
	uncachedKeys := &countingProvider{inner: keys.inner}
	uncached := newTestCodec(b, EncryptionOptions{Keys: uncachedKeys, Cache: &CacheOptions{Disabled: true}})
	decode := func(c *Encryption) func() {
		return func() {
			if _, err := c.Decode(in); err != nil {
				b.Fatal(err)
			}
		}
	}
	res := benchutil.Interleave(b, decode(cached), decode(uncached))
	b.ReportMetric(res.NsPerOp[0], "cached-ns/op")
	b.ReportMetric(res.NsPerOp[1], "uncached-ns/op")
	b.ReportMetric(res.Ratio(1, 0), "uncached-vs-cached-x")
	b.ReportMetric(float64(cachedKeys.decrypts.Load())/float64(res.Runs[0]), "cached-kms-calls/op")
	b.ReportMetric(float64(uncachedKeys.decrypts.Load())/float64(res.Runs[1]), "uncached-kms-calls/op")
}
