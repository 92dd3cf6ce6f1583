package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/server/temporaltest"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/codec/awskms"
	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/samples/internal/history"
	"github.com/payloadkit/payloadkit/samples/internal/quickstartflow"
	"github.com/payloadkit/payloadkit/workflowtest"
)

// This file measures what envelope format v2 saves in stored bytes, next to v1 and the SDK's
// plain converter:
//
//	cd samples && go test -run '^$' -bench 'StoredBytes|QuickstartHistory' -benchtime 1x ./bench
//
// BenchmarkStoredBytes encodes a mix of JSON values through a Kit (default compression, then
// encryption; no offload) bound to a namespace, and reports the proto size of the stored
// payload. BenchmarkQuickstartHistory runs the quickstart's workflow (samples/quickstart) on an
// in-process Temporal server under v1 and v2 and reports the size of its history. Both
// measure sizes, not time: they report 0 ns/op.

// sizeMixClass is one size class of the payload mix.
type sizeMixClass struct {
	name   string
	bytes  int // target JSON size of the value
	weight int // share of payloads in the mix, in percent
}

// sizeMix is the mix of payload sizes, weighted by the share of payloads (not of bytes) in a
// typical workflow history: most payloads are small (ids, flags, small activity arguments and
// results, signal and query values), fewer carry documents. The weights are an assumption, not a
// measurement; the per-size rows let a reader apply their own.
var sizeMix = []sizeMixClass{
	{"30B", 30, 30},
	{"200B", 200, 25},
	{"1KiB", 1 << 10, 20},
	{"4KiB", 4 << 10, 12},
	{"16KiB", 16 << 10, 8},
	{"64KiB", 64 << 10, 5},
}

// mixValue returns the value of a size class: a JSON string for 30 B, a small record for
// 200 B, and a NewInvoice document (at least bytes of JSON) for the larger classes.
func mixValue(bytes int) any {
	switch {
	case bytes <= 64:
		// "INV-2026-004211 approved" with quotes: a short string result.
		return fmt.Sprintf("INV-2026-%06d approv%s", 4211, strings.Repeat("e", max(bytes-25, 1)))
	case bytes <= 512:
		r := rand.New(rand.NewPCG(uint64(bytes), 1))
		return map[string]any{
			"invoice_id":  fmt.Sprintf("INV-2026-%06d", r.IntN(1000000)),
			"customer_id": fmt.Sprintf("CUST-%08d", r.IntN(100000000)),
			"status":      "approved",
			"total":       round2(r.Float64() * 10000),
			"currency":    "EUR",
			"approved_by": pick(r, firstNames) + " " + pick(r, lastNames),
			"approved_at": "2026-11-03T10:21:07Z",
			"warehouse":   pick(r, warehouses),
		}
	default:
		return NewInvoice(uint64(bytes), bytes)
	}
}

// sizingStore is an in-memory key-object store that records the size of each key object.
type sizingStore struct {
	*offload.MemoryStore
	mu    sync.Mutex
	sizes []int
}

func (s *sizingStore) Put(ctx context.Context, key string, data []byte) error {
	s.mu.Lock()
	s.sizes = append(s.sizes, len(data))
	s.mu.Unlock()
	return s.MemoryStore.Put(ctx, key, data)
}

func (s *sizingStore) lastSize() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sizes) == 0 {
		return 0
	}
	return s.sizes[len(s.sizes)-1]
}

// awsBlobSize is the size of the ciphertext blob AWS KMS returns from GenerateDataKey for a
// 256-bit data key under a symmetric key (SYMMETRIC_DEFAULT).
const awsBlobSize = 184

// awsSizedKMS wraps the AWS KMS provider talking to workflowtest's KMS test server, whose
// ciphertext blobs (105 bytes) are smaller than AWS's, and pads each encrypted data key to
// awsBlobSize: its first byte is the length of the server's blob, then the blob, then zeros.
// Key ids are the server's key ARNs, as long as AWS's.
type awsSizedKMS struct{ *awskms.Provider }

func (p awsSizedKMS) GenerateDataKey(ctx context.Context, encCtx map[string]string) (codec.DataKey, error) {
	dk, err := p.Provider.GenerateDataKey(ctx, encCtx)
	if err != nil || len(dk.Encrypted) >= awsBlobSize {
		return dk, err
	}
	padded := make([]byte, awsBlobSize)
	padded[0] = byte(len(dk.Encrypted))
	copy(padded[1:], dk.Encrypted)
	dk.Encrypted = padded
	return dk, nil
}

func (p awsSizedKMS) DecryptDataKey(ctx context.Context, keyID string, edk []byte, encCtx map[string]string) ([]byte, error) {
	if len(edk) == awsBlobSize && int(edk[0]) < awsBlobSize {
		edk = edk[1 : 1+int(edk[0])]
	}
	return p.Provider.DecryptDataKey(ctx, keyID, edk, encCtx)
}

// newAWSSizedKMS starts workflowtest's KMS test server and returns a provider for a new key on
// it, with AWS-sized encrypted data keys.
func newAWSSizedKMS(b *testing.B) codec.KeyProvider {
	srv := workflowtest.StartKMS(b)
	p, err := awskms.New(srv.Client(), srv.NewKey())
	if err != nil {
		b.Fatal(err)
	}
	return awsSizedKMS{p}
}

// sizeConfig is one alternative of BenchmarkStoredBytes.
type sizeConfig struct {
	name, label string
	dc          converter.DataConverter
	keyObjects  *sizingStore // v2 only
}

// sizeResults holds the stored size of each size class (rows) under each configuration (columns).
type sizeResults struct {
	configs []sizeConfig
	json    []int   // JSON size of each class's value
	bytes   [][]int // [class][config]
	mean    []float64
	keyObj  map[string]int // configuration name -> key object size
}

const sizeNamespace = "default"

func newSizeKit(b *testing.B, enc *codec.EncryptionOptions) *payloadkit.Kit {
	kit, err := payloadkit.New(context.Background(), payloadkit.Options{Encryption: enc})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = kit.Close() })
	return kit
}

// measureSizes encodes the mix under every configuration.
func measureSizes(b *testing.B) *sizeResults {
	ring, err := codec.NewStaticKeyring("bench-static", map[string][]byte{"bench-static": codec.GenerateKey()})
	if err != nil {
		b.Fatal(err)
	}
	kmsKeys := newAWSSizedKMS(b)
	zstdOnly := newSizeKit(b, nil)
	v2Static := &sizingStore{MemoryStore: offload.NewMemoryStore()}
	v2KMS := &sizingStore{MemoryStore: offload.NewMemoryStore()}
	res := &sizeResults{keyObj: map[string]int{}}
	res.configs = []sizeConfig{
		{name: "plain", label: "SDK default converter", dc: converter.GetDefaultDataConverter()},
		{name: "zstd", label: "Kit, compression only", dc: zstdOnly.DataConverterFor(sizeNamespace)},
		{name: "v1-static", label: "Kit, v1, static keyring", dc: newSizeKit(b, &codec.EncryptionOptions{Keys: ring}).DataConverterFor(sizeNamespace)},
		{name: "v1-kms", label: "Kit, v1, AWS KMS", dc: newSizeKit(b, &codec.EncryptionOptions{Keys: kmsKeys}).DataConverterFor(sizeNamespace)},
		{name: "v2-static", label: "Kit, v2, static keyring", keyObjects: v2Static,
			dc: newSizeKit(b, &codec.EncryptionOptions{Keys: ring, Format: codec.FormatV2, KeyObjects: v2Static}).DataConverterFor(sizeNamespace)},
		{name: "v2-kms", label: "Kit, v2, AWS KMS", keyObjects: v2KMS,
			dc: newSizeKit(b, &codec.EncryptionOptions{Keys: kmsKeys, Format: codec.FormatV2, KeyObjects: v2KMS}).DataConverterFor(sizeNamespace)},
	}
	res.mean = make([]float64, len(res.configs))
	totalWeight := 0
	for _, class := range sizeMix {
		totalWeight += class.weight
	}
	for _, class := range sizeMix {
		v := mixValue(class.bytes)
		row := make([]int, len(res.configs))
		for i, cfg := range res.configs {
			p, err := cfg.dc.ToPayload(v)
			if err != nil {
				b.Fatalf("%s: %v", cfg.name, err)
			}
			// Check the round trip, so that a size is never that of a payload that does not decode.
			var back any
			switch v.(type) {
			case string:
				back = new(string)
			case Invoice:
				back = new(Invoice)
			default:
				back = new(map[string]any)
			}
			if err := cfg.dc.FromPayload(p, back); err != nil {
				b.Fatalf("%s: decoding: %v", cfg.name, err)
			}
			if cfg.name == "plain" {
				res.json = append(res.json, len(p.GetData()))
			}
			checkFormat(b, cfg.name, p)
			row[i] = proto.Size(p)
			res.mean[i] += float64(class.weight) * float64(row[i]) / float64(totalWeight)
		}
		res.bytes = append(res.bytes, row)
	}
	for _, cfg := range res.configs {
		if cfg.keyObjects != nil {
			res.keyObj[cfg.name] = cfg.keyObjects.lastSize()
		}
	}
	return res
}

// checkFormat fails b when a payload is not in the envelope format its configuration names.
func checkFormat(b *testing.B, name string, p *commonpb.Payload) {
	enc := string(p.GetMetadata()[converter.MetadataEncoding])
	switch {
	case strings.HasPrefix(name, "v2-") && !codec.IsEnvelopeV2(p):
		b.Fatalf("%s wrote a payload that is not envelope v2 (encoding %q)", name, enc)
	case strings.HasPrefix(name, "v1-") && (enc != codec.EncodingEncrypted || codec.IsEnvelopeV2(p)):
		b.Fatalf("%s wrote a payload that is not envelope v1 (encoding %q)", name, enc)
	}
}

var (
	sizesOnce   sync.Once
	sizesResult *sizeResults
)

// BenchmarkStoredBytes reports the stored bytes per payload (the proto size of the payload the
// server keeps in history) of each size class of sizeMix and their weighted mean, under the SDK's
// default converter ("plain"), a Kit with compression only ("zstd"), and a Kit with compression
// and encryption in envelope format v1 or v2, with a static keyring or AWS KMS (codec/awskms on
// the KMS test server of workflowtest, encrypted data keys padded to AWS's 184 bytes: see
// awsSizedKMS). The Kits are
// bound to namespace "default", which joins the encryption context, as on a worker. Metrics per
// class: "<config>-B" (stored bytes), "<config>-overhead-B" (over plain), and the ratios
// "v2-vs-v1-static-bytes-x" and "v2-vs-v1-kms-bytes-x"; the "weighted" sub-benchmark reports the
// same for the weighted means plus "<config>-vs-plain-bytes-x" and the size of a v2 key object
// (written once per data key, outside history). The table goes to stdout.
func BenchmarkStoredBytes(b *testing.B) {
	sizesOnce.Do(func() {
		sizesResult = measureSizes(b)
		printSizes(sizesResult)
	})
	res := sizesResult
	col := func(name string) int {
		for i, c := range res.configs {
			if c.name == name {
				return i
			}
		}
		panic("no configuration " + name)
	}
	plain, v1s, v1k, v2s, v2k := col("plain"), col("v1-static"), col("v1-kms"), col("v2-static"), col("v2-kms")
	reportRow := func(b *testing.B, row []float64) {
		for i, c := range res.configs {
			b.ReportMetric(row[i], c.name+"-B")
			if i != plain {
				b.ReportMetric(row[i]-row[plain], c.name+"-overhead-B")
			}
		}
		b.ReportMetric(row[v2s]/row[v1s], "v2-vs-v1-static-bytes-x")
		b.ReportMetric(row[v2k]/row[v1k], "v2-vs-v1-kms-bytes-x")
		b.ReportMetric(0, "ns/op")
	}
	for ci, class := range sizeMix {
		b.Run(class.name, func(b *testing.B) {
			for b.Loop() {
			}
			row := make([]float64, len(res.configs))
			for i, n := range res.bytes[ci] {
				row[i] = float64(n)
			}
			reportRow(b, row)
		})
	}
	b.Run("weighted", func(b *testing.B) {
		for b.Loop() {
		}
		reportRow(b, res.mean)
		for _, i := range []int{v1s, v1k, v2s, v2k} {
			b.ReportMetric(res.mean[i]/res.mean[plain], res.configs[i].name+"-vs-plain-bytes-x")
		}
		b.ReportMetric(float64(res.keyObj["v2-static"]), "v2-static-key-object-B")
		b.ReportMetric(float64(res.keyObj["v2-kms"]), "v2-kms-key-object-B")
	})
}

// printSizes prints the table of BenchmarkStoredBytes.
func printSizes(res *sizeResults) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nStored bytes per payload (proto size of the payload kept in history), Kits bound to namespace %q\n", sizeNamespace)
	fmt.Fprintf(&sb, "%-10s %6s %6s", "size", "weight", "JSON")
	for _, c := range res.configs {
		fmt.Fprintf(&sb, " %10s", c.name)
	}
	fmt.Fprintf(&sb, " %12s %12s %11s %11s\n", "v1-st over", "v1-kms over", "v2-st over", "v2 vs v1-kms")
	plain, v1s, v1k, v2s, v2k := 0, 2, 3, 4, 5
	for ci, class := range sizeMix {
		row := res.bytes[ci]
		label := fmt.Sprintf("%d B", class.bytes)
		if class.bytes >= 1<<10 {
			label = fmt.Sprintf("%d KiB", class.bytes>>10)
		}
		fmt.Fprintf(&sb, "%-10s %5d%% %6d", label, class.weight, res.json[ci])
		for _, n := range row {
			fmt.Fprintf(&sb, " %10d", n)
		}
		fmt.Fprintf(&sb, " %+12d %+12d %+11d %11.3f\n", row[v1s]-row[plain], row[v1k]-row[plain], row[v2s]-row[plain], float64(row[v2k])/float64(row[v1k]))
	}
	fmt.Fprintf(&sb, "%-10s %6s %6s", "weighted", "100%", "")
	for _, m := range res.mean {
		fmt.Fprintf(&sb, " %10.1f", m)
	}
	m := res.mean
	fmt.Fprintf(&sb, " %+12.1f %+12.1f %+11.1f %11.3f\n", m[v1s]-m[plain], m[v1k]-m[plain], m[v2s]-m[plain], m[v2k]/m[v1k])
	fmt.Fprintf(&sb, "columns: %s", res.configs[0].name+" = "+res.configs[0].label)
	for _, c := range res.configs[1:] {
		fmt.Fprintf(&sb, "; %s = %s", c.name, c.label)
	}
	fmt.Fprintf(&sb, "\nweight = share of payloads in the mix (an assumption: most payloads are small); JSON = bytes of the value's JSON.")
	fmt.Fprintf(&sb, "\n\"over\" = stored bytes minus plain (negative: compression saved more than the envelope costs).\n")
	fmt.Fprintf(&sb, "v2 also writes one key object per data key outside history: %d bytes (static keyring), %d bytes (AWS KMS).\n",
		res.keyObj["v2-static"], res.keyObj["v2-kms"])
	fmt.Fprint(os.Stdout, sb.String())
}

// historySize is the history of one quickstart run.
type historySize struct {
	events, eventBytes, payloads, payloadBytes int
	each                                       []string // "<event id>:<bytes>[ claim]" per payload
}

// BenchmarkQuickstartHistory runs the quickstart's workflow once per configuration on one
// in-process Temporal server, each with a Kit like the quickstart's (default compression,
// encryption with a static keyring or AWS KMS as in BenchmarkStoredBytes, offload to a file store at the default
// threshold; the Kit keeps v2 key objects in the offload store), and reports the size of the
// history: "<config>-history-B" (sum of the proto sizes of its events),
// "<config>-payloads-B" (of the payloads in them), and the ratios "history-v2-vs-v1-x" and
// "payloads-v2-vs-v1-x" (static keyring) and their "-kms-" counterparts. Run with -benchtime 1x.
func BenchmarkQuickstartHistory(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ring, err := codec.NewStaticKeyring("quickstart-1", map[string][]byte{"quickstart-1": codec.GenerateKey()})
	if err != nil {
		b.Fatal(err)
	}
	kmsKeys := newAWSSizedKMS(b)
	type alt struct {
		name string
		keys codec.KeyProvider
		v2   bool
	}
	alts := []alt{{"v1-static", ring, false}, {"v2-static", ring, true}, {"v1-kms", kmsKeys, false}, {"v2-kms", kmsKeys, true}}

	ts := temporaltest.NewServer()
	defer ts.Stop()
	ns := ts.GetDefaultNamespace()
	batch := quickstartflow.NewBatch("batch-2026-11", 1<<20)
	sizes := map[string]historySize{}
	for range b.N {
		for _, a := range alts {
			// A file store, as in the quickstart; the Kit keeps v2 key objects in it.
			store, err := offload.NewFileStore(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			enc := &codec.EncryptionOptions{Keys: a.keys}
			if a.v2 {
				enc.Format = codec.FormatV2
			}
			kit, err := payloadkit.New(ctx, payloadkit.Options{Encryption: enc, Offload: &offload.Options{Store: store}})
			if err != nil {
				b.Fatal(err)
			}
			c := ts.NewClientWithOptions(kit.ClientOptions(client.Options{Namespace: ns}))
			queue := "quickstart-" + a.name
			w := worker.New(c, queue, kit.WorkerOptions(worker.Options{}))
			w.RegisterWorkflow(quickstartflow.ProcessBatch)
			w.RegisterActivity(quickstartflow.PriceBatch)
			w.RegisterActivity(quickstartflow.CheckInvoice)
			if err := w.Start(); err != nil {
				b.Fatal(err)
			}
			run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "quickstart-" + a.name + "-" + batch.ID, TaskQueue: queue}, quickstartflow.ProcessBatch, batch)
			var sum quickstartflow.Summary
			if err == nil {
				err = run.Get(ctx, &sum)
			}
			if err == nil && sum.Orders != len(batch.Orders) {
				err = fmt.Errorf("summary has %d orders, want %d", sum.Orders, len(batch.Orders))
			}
			if err != nil {
				b.Fatalf("%s: %v", a.name, err)
			}
			events, err := history.Events(ctx, c, run.GetID(), run.GetRunID())
			if err != nil {
				b.Fatal(err)
			}
			var hs historySize
			for _, ev := range events {
				hs.events++
				hs.eventBytes += proto.Size(ev)
			}
			for _, p := range history.FromEvents(events) {
				checkFormatOrClaim(b, a.name, p.Payload)
				hs.payloads++
				hs.payloadBytes += p.Size()
				kind := ""
				if len(p.Payload.GetMetadata()[offload.MetadataClaimKey]) > 0 {
					kind = " (claim)"
				}
				hs.each = append(hs.each, fmt.Sprintf("%d:%d%s", p.EventID, p.Size(), kind))
			}
			sizes[a.name] = hs
			w.Stop()
			_ = kit.Close()
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nQuickstart workflow history (1 MiB batch in, 3 MiB document between activities, offloaded at the default threshold)\n")
	fmt.Fprintf(&sb, "%-10s %7s %12s %9s %12s\n", "config", "events", "event bytes", "payloads", "payload bytes")
	for _, a := range alts {
		hs := sizes[a.name]
		fmt.Fprintf(&sb, "%-10s %7d %12d %9d %12d\n", a.name, hs.events, hs.eventBytes, hs.payloads, hs.payloadBytes)
		b.ReportMetric(float64(hs.eventBytes), a.name+"-history-B")
		b.ReportMetric(float64(hs.payloadBytes), a.name+"-payloads-B")
	}
	fmt.Fprintf(&sb, "payload bytes by event id:\n")
	for _, a := range alts {
		fmt.Fprintf(&sb, "  %-10s %s\n", a.name, strings.Join(sizes[a.name].each, "  "))
	}
	ratio := func(v2, v1 string, f func(historySize) int) float64 {
		return float64(f(sizes[v2])) / float64(f(sizes[v1]))
	}
	ev := func(h historySize) int { return h.eventBytes }
	pl := func(h historySize) int { return h.payloadBytes }
	fmt.Fprintf(&sb, "v2 vs v1: history %.3fx (static keyring), %.3fx (AWS KMS); payloads %.3fx, %.3fx\n",
		ratio("v2-static", "v1-static", ev), ratio("v2-kms", "v1-kms", ev), ratio("v2-static", "v1-static", pl), ratio("v2-kms", "v1-kms", pl))
	fmt.Fprint(os.Stdout, sb.String())
	b.ReportMetric(ratio("v2-static", "v1-static", ev), "history-v2-vs-v1-x")
	b.ReportMetric(ratio("v2-kms", "v1-kms", ev), "history-v2-vs-v1-kms-x")
	b.ReportMetric(ratio("v2-static", "v1-static", pl), "payloads-v2-vs-v1-x")
	b.ReportMetric(ratio("v2-kms", "v1-kms", pl), "payloads-v2-vs-v1-kms-x")
	b.ReportMetric(0, "ns/op")
}

// checkFormatOrClaim fails b when a history payload is neither an offload claim nor an
// envelope of the configuration's format.
func checkFormatOrClaim(b *testing.B, name string, p *commonpb.Payload) {
	if len(p.GetMetadata()[offload.MetadataClaimKey]) > 0 {
		return
	}
	checkFormat(b, name, p)
}
