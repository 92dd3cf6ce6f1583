package awskms_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/internal/benchutil"
	"github.com/payloadkit/payloadkit/workflowtest"
)

// jsonPayload returns a JSON payload of about size bytes that looks like workflow data: orders
// with ids, names, amounts and line items, from a fixed seed.
func jsonPayload(tb testing.TB, size int) *commonpb.Payload {
	tb.Helper()
	type item struct {
		SKU      string  `json:"sku"`
		Quantity int     `json:"quantity"`
		Price    float64 `json:"price"`
	}
	type order struct {
		ID       string            `json:"id"`
		Customer string            `json:"customer"`
		Email    string            `json:"email"`
		Status   string            `json:"status"`
		Created  string            `json:"created"`
		Items    []item            `json:"items"`
		Tags     map[string]string `json:"tags"`
	}
	r := mrand.New(mrand.NewPCG(1, uint64(size)))
	names := []string{"Ada Lovelace", "Grace Hopper", "Alan Turing", "Barbara Liskov", "Edsger Dijkstra", "Donald Knuth"}
	statuses := []string{"PENDING", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"}
	var orders []order
	for total := 2; total < size; { // 2: the brackets of the JSON array
		o := order{
			ID:       fmt.Sprintf("ord-%08x", r.Uint32()),
			Customer: names[r.IntN(len(names))],
			Email:    fmt.Sprintf("user%d@example.com", r.IntN(100000)),
			Status:   statuses[r.IntN(len(statuses))],
			Created:  time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.IntN(1e6)) * time.Second).Format(time.RFC3339),
			Tags:     map[string]string{"region": []string{"eu", "us", "ap"}[r.IntN(3)], "channel": "web"},
		}
		for range 1 + r.IntN(4) {
			o.Items = append(o.Items, item{SKU: fmt.Sprintf("SKU-%05d", r.IntN(50000)), Quantity: 1 + r.IntN(9), Price: float64(r.IntN(100000)) / 100})
		}
		orders = append(orders, o)
		b, err := json.Marshal(o)
		if err != nil {
			tb.Fatal(err)
		}
		total += len(b) + 1 // and a comma
	}
	p, err := converter.GetDefaultDataConverter().ToPayload(orders)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// pipeline is payloadkit's codec chain: compression then encryption (caching AWS KMS provider).
type pipeline struct{ compress, encrypt converter.PayloadCodec }

func newPipeline(tb testing.TB, srv *workflowtest.KMS, keyID string) *pipeline {
	tb.Helper()
	comp, err := codec.NewCompressionCodec(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return &pipeline{compress: comp, encrypt: newCodec(tb, newProvider(tb, srv.Client(), keyID))}
}

func (p *pipeline) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	ps, err := p.compress.Encode(ps)
	if err != nil {
		return nil, err
	}
	return p.encrypt.Encode(ps)
}

func (p *pipeline) Decode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	ps, err := p.encrypt.Decode(ps)
	if err != nil {
		return nil, err
	}
	return p.compress.Decode(ps)
}

// envelopeBaseline is the per-payload KMS envelope a user would write without payloadkit (as
// Tink's KMS envelope AEAD and the Temporal encryption samples do): one GenerateDataKey per
// encoded payload, one Decrypt per decoded payload, AES-256-GCM with the data key.
type envelopeBaseline struct {
	client *kms.Client
	keyID  string
}

const baselineEncoding = "binary/encrypted-baseline"

func (e *envelopeBaseline) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		dk, err := e.client.GenerateDataKey(context.Background(), &kms.GenerateDataKeyInput{KeyId: &e.keyID, KeySpec: types.DataKeySpecAes256})
		if err != nil {
			return nil, err
		}
		plaintext, err := proto.Marshal(p)
		if err != nil {
			return nil, err
		}
		aead, err := gcm(dk.Plaintext)
		if err != nil {
			return nil, err
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{converter.MetadataEncoding: []byte(baselineEncoding), "edk": dk.CiphertextBlob, "key": []byte(*dk.KeyId)},
			Data:     aead.Seal(nonce, nonce, plaintext, nil),
		}
	}
	return out, nil
}

func (e *envelopeBaseline) Decode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(ps))
	for i, p := range ps {
		keyID := string(p.Metadata["key"])
		dk, err := e.client.Decrypt(context.Background(), &kms.DecryptInput{KeyId: &keyID, CiphertextBlob: p.Metadata["edk"]})
		if err != nil {
			return nil, err
		}
		aead, err := gcm(dk.Plaintext)
		if err != nil {
			return nil, err
		}
		if len(p.Data) < aead.NonceSize()+aead.Overhead() {
			return nil, errors.New("baseline: short ciphertext")
		}
		plaintext, err := aead.Open(nil, p.Data[:aead.NonceSize()], p.Data[aead.NonceSize():], nil)
		if err != nil {
			return nil, err
		}
		inner := &commonpb.Payload{}
		if err := proto.Unmarshal(plaintext, inner); err != nil {
			return nil, err
		}
		out[i] = inner
	}
	return out, nil
}

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// BenchmarkRoundTrip encodes and decodes one JSON-like payload per operation with the three
// alternatives interleaved in one run (one sub-benchmark per size), reports each one's speed
// relative to zlib (<alternative>-speed-vs-zlib-x) and its output size, and prints a table:
//
//	zlib:     the SDK's converter.NewZlibCodec alone (compression, no encryption)
//	envelope: one KMS GenerateDataKey and one KMS Decrypt per payload, AES-256-GCM
//	pipeline: payloadkit's zstd compression + AES-256-GCM envelope with the caching KMS provider
//
// KMS is the workflowtest test server on 127.0.0.1, so KMS round trips here are far cheaper than
// real ones (typically several milliseconds); the envelope baseline is flattered.
func BenchmarkRoundTrip(b *testing.B) {
	srv := workflowtest.StartKMS(b)
	arn := srv.NewKey()
	alternatives := []struct {
		name  string
		codec converter.PayloadCodec
	}{
		{"zlib", converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true})},
		{"envelope", &envelopeBaseline{client: srv.Client(), keyID: arn}},
		{"pipeline", newPipeline(b, srv, arn)},
	}
	sizes := []struct {
		name string
		size int
	}{{"1KiB", 1 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}}

	rows := map[string]string{} // by size, from the last (largest) run of each sub-benchmark
	for _, sz := range sizes {
		in := []*commonpb.Payload{jsonPayload(b, sz.size)}
		b.Run(sz.name, func(b *testing.B) {
			b.SetBytes(int64(proto.Size(in[0])))
			out := make([]int, len(alternatives))
			fns := make([]func(), len(alternatives))
			for i, alt := range alternatives {
				fns[i] = func() {
					enc, err := alt.codec.Encode(in)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := alt.codec.Decode(enc); err != nil {
						b.Fatal(err)
					}
					out[i] = proto.Size(enc[0])
				}
			}
			res := benchutil.Interleave(b, fns...)
			for i, alt := range alternatives {
				b.ReportMetric(res.NsPerOp[i], alt.name+"-ns/op")
				b.ReportMetric(float64(out[i]), alt.name+"-bytes-out")
				if i > 0 {
					b.ReportMetric(res.Ratio(0, i), alt.name+"-speed-vs-zlib-x")
				}
			}
			z, e, p := res.NsPerOp[0], res.NsPerOp[1], res.NsPerOp[2]
			rows[sz.name] = fmt.Sprintf("%-6s %12.1f %12.1f %12.1f %9.2fx %9.2fx   %d / %d / %d\n", sz.name, z/1e3, e/1e3, p/1e3, res.Ratio(0, 2), res.Ratio(1, 2),
				out[0], out[1], out[2])
		})
	}

	var sb strings.Builder
	fmt.Fprintf(&sb, "\nround trip (encode+decode) of one JSON payload; speed-up > 1 means the pipeline is faster\n")
	fmt.Fprintf(&sb, "%-6s %12s %12s %12s %10s %10s   %s\n", "size", "zlib µs", "envelope µs", "pipeline µs",
		"vs zlib", "vs env", "bytes out: zlib / envelope / pipeline")
	for _, sz := range sizes {
		sb.WriteString(rows[sz.name]) // empty when filtered out by -bench
	}
	fmt.Fprint(os.Stdout, sb.String())
}

// roundTripCalls encodes n payloads and decodes them again, from goroutines goroutines, one
// payload per Encode/Decode call, and returns the KMS calls made. Encoding and decoding use
// separate codecs (as a client and a worker, or a worker and a Codec Server, would), each with its
// own provider and data-key cache.
func roundTripCalls(tb testing.TB, alternative string, n, goroutines int) (generate, decrypt int) {
	tb.Helper()
	srv := workflowtest.StartKMS(tb)
	arn := srv.NewKey()
	var encoder, decoder converter.PayloadCodec
	switch alternative {
	case "pipeline":
		encoder, decoder = newPipeline(tb, srv, arn), newPipeline(tb, srv, arn)
	case "envelope":
		encoder, decoder = &envelopeBaseline{client: srv.Client(), keyID: arn}, &envelopeBaseline{client: srv.Client(), keyID: arn}
	default:
		tb.Fatalf("unknown alternative %q", alternative)
	}
	in := make([]*commonpb.Payload, n)
	for i := range in {
		p, err := converter.GetDefaultDataConverter().ToPayload(map[string]any{"seq": i, "body": strings.Repeat("payload ", 64)})
		if err != nil {
			tb.Fatal(err)
		}
		in[i] = p
	}
	encoded := make([]*commonpb.Payload, n)
	run := func(fn func(i int) error) {
		var wg sync.WaitGroup
		errs := make(chan error, goroutines)
		for g := range goroutines {
			wg.Go(func() {
				for i := g; i < n; i += goroutines {
					if err := fn(i); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			tb.Fatal(err)
		}
	}
	run(func(i int) error {
		out, err := encoder.Encode(in[i : i+1])
		if err == nil {
			encoded[i] = out[0]
		}
		return err
	})
	run(func(i int) error {
		out, err := decoder.Decode(encoded[i : i+1])
		if err == nil && !proto.Equal(out[0], in[i]) {
			err = fmt.Errorf("payload %d decoded differently", i)
		}
		return err
	})
	return srv.Calls(workflowtest.KMSGenerateDataKey), srv.Calls(workflowtest.KMSDecrypt)
}

const (
	callPayloads   = 10_000
	callGoroutines = 16
)

// TestPipelineKMSCalls checks that 10,000 payloads encoded and decoded by 16 goroutines within
// one cache window cost exactly one GenerateDataKey (encoder) and one Decrypt (decoder).
func TestPipelineKMSCalls(t *testing.T) {
	gen, dec := roundTripCalls(t, "pipeline", callPayloads, callGoroutines)
	if gen != 1 || dec != 1 {
		t.Fatalf("%d payloads by %d goroutines: %d GenerateDataKey and %d Decrypt calls, want 1 and 1",
			callPayloads, callGoroutines, gen, dec)
	}
}

// TestKMSCallsTable prints the KMS calls of the pipeline and of the per-payload envelope baseline
// for 10,000 payloads and 16 goroutines. It runs only with PAYLOADKIT_BENCH=1.
func TestKMSCallsTable(t *testing.T) {
	if os.Getenv("PAYLOADKIT_BENCH") != "1" {
		t.Skip("set PAYLOADKIT_BENCH=1 to compare KMS calls with the per-payload envelope baseline")
	}
	printKMSCalls(t)
}

// BenchmarkKMSCalls reports the KMS calls per 10,000 payloads of both alternatives as metrics.
func BenchmarkKMSCalls(b *testing.B) {
	for b.Loop() {
		printKMSCalls(b)
	}
}

func printKMSCalls(tb testing.TB) {
	pg, pd := roundTripCalls(tb, "pipeline", callPayloads, callGoroutines)
	eg, ed := roundTripCalls(tb, "envelope", callPayloads, callGoroutines)
	fmt.Printf("\nKMS calls for %d payloads encoded and decoded by %d goroutines\n", callPayloads, callGoroutines)
	fmt.Printf("%-9s %16s %8s %8s\n", "", "GenerateDataKey", "Decrypt", "total")
	fmt.Printf("%-9s %16d %8d %8d\n", "pipeline", pg, pd, pg+pd)
	fmt.Printf("%-9s %16d %8d %8d\n", "envelope", eg, ed, eg+ed)
	if b, ok := tb.(*testing.B); ok {
		b.ReportMetric(float64(pg+pd), "pipeline-kms-calls/10k")
		b.ReportMetric(float64(eg+ed), "envelope-kms-calls/10k")
	}
	if pg+pd > 2 || eg+ed != 2*callPayloads {
		tb.Errorf("KMS calls: pipeline %d (want <= 2), envelope %d (want %d)", pg+pd, eg+ed, 2*callPayloads)
	}
}
