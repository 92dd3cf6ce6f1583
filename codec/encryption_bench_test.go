package codec

import (
	"crypto/rand"
	"fmt"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/proto"
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

// BenchmarkEncryptionEncode compares, per payload: marshalling alone, a fixed-key AES-GCM
// codec, payloadkit with its data-key cache, and payloadkit without it (one provider call per
// payload). Each variant reports its time relative to the fixed-key codec (x-vs-static-gcm)
// and its key-provider calls per payload.
func BenchmarkEncryptionEncode(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		p := sizedPayload(size)
		var staticNs float64
		record := func(b *testing.B, calls int64) {
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if staticNs > 0 {
				b.ReportMetric(ns/staticNs, "x-vs-static-gcm")
			}
			b.ReportMetric(float64(calls)/float64(b.N), "kms-calls/op")
			b.SetBytes(int64(size))
		}
		b.Run(fmt.Sprintf("size=%d/marshal-only", size), func(b *testing.B) {
			for b.Loop() {
				if _, err := proto.Marshal(p); err != nil {
					b.Fatal(err)
				}
			}
			record(b, 0)
		})
		b.Run(fmt.Sprintf("size=%d/static-gcm", size), func(b *testing.B) {
			key := testKey(3)
			for b.Loop() {
				if _, err := staticGCMEncode(key, p); err != nil {
					b.Fatal(err)
				}
			}
			staticNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			record(b, 0)
		})
		for _, disabled := range []bool{false, true} {
			name := "payloadkit-cached"
			if disabled {
				name = "payloadkit-uncached"
			}
			b.Run(fmt.Sprintf("size=%d/%s", size, name), func(b *testing.B) {
				keys := &countingProvider{inner: newTestKeyring(b, "k1")}
				c := newTestCodec(b, EncryptionOptions{Keys: keys, Cache: &CacheOptions{Disabled: disabled}})
				in := []*commonpb.Payload{p}
				for b.Loop() {
					if _, err := c.Encode(in); err != nil {
						b.Fatal(err)
					}
				}
				record(b, keys.generates.Load())
			})
		}
	}
}

// BenchmarkEncryptionDecode compares decoding with the data-key cache warm against a cold
// cache (one provider Decrypt per payload).
func BenchmarkEncryptionDecode(b *testing.B) {
	keys := &countingProvider{inner: newTestKeyring(b, "k1")}
	p := encodeOne(b, newTestCodec(b, EncryptionOptions{Keys: keys}), sizedPayload(1<<10))
	in := []*commonpb.Payload{p}
	var warmNs float64
	b.Run("cached", func(b *testing.B) {
		keys.decrypts.Store(0)
		c := newTestCodec(b, EncryptionOptions{Keys: keys})
		for b.Loop() {
			if _, err := c.Decode(in); err != nil {
				b.Fatal(err)
			}
		}
		warmNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(float64(keys.decrypts.Load())/float64(b.N), "kms-calls/op")
	})
	b.Run("uncached", func(b *testing.B) {
		keys.decrypts.Store(0)
		c := newTestCodec(b, EncryptionOptions{Keys: keys, Cache: &CacheOptions{Disabled: true}})
		for b.Loop() {
			if _, err := c.Decode(in); err != nil {
				b.Fatal(err)
			}
		}
		if warmNs > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/warmNs, "x-vs-cached")
		}
		b.ReportMetric(float64(keys.decrypts.Load())/float64(b.N), "kms-calls/op")
	})
}
