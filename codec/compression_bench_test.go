package codec_test

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/codec"
)

// order is a realistic workflow argument: an e-commerce order.
type order struct {
	ID        string    `json:"id"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"createdAt"`
	Customer  customer  `json:"customer"`
	Items     []item    `json:"items"`
	Total     float64   `json:"total"`
	Currency  string    `json:"currency"`
	Notes     string    `json:"notes,omitempty"`
}

type customer struct {
	ID      int64   `json:"id"`
	Name    string  `json:"name"`
	Email   string  `json:"email"`
	Phone   string  `json:"phone"`
	Address address `json:"address"`
}

type address struct {
	Street  string `json:"street"`
	City    string `json:"city"`
	Zip     string `json:"zip"`
	Country string `json:"country"`
}

type item struct {
	SKU      string  `json:"sku"`
	Name     string  `json:"name"`
	Quantity int     `json:"quantity"`
	Price    float64 `json:"price"`
}

var (
	firstNames = []string{"Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "Mateo", "Isabella", "Lucas", "Mia", "Amelia", "Hiroshi", "Fatima", "Chen", "Priya", "Kwame", "Ingrid"}
	lastNames  = []string{"Smith", "Johnson", "Williams", "Brown", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Tanaka", "Okafor", "Novak", "Larsen", "Kowalski", "Haddad"}
	streets    = []string{"Main St", "Oak Ave", "Pine Rd", "Maple Dr", "Cedar Ln", "Elm St", "Lakeview Blvd", "Sunset Way", "Hillcrest Ct", "River Rd"}
	cities     = []string{"Springfield", "Portland", "Austin", "Denver", "Seattle", "Boston", "Chicago", "Toronto", "Berlin", "Lyon", "Osaka", "Nairobi"}
	countries  = []string{"US", "CA", "DE", "FR", "JP", "KE", "GB", "NL"}
	products   = []string{"Wireless Mouse", "USB-C Cable", "Mechanical Keyboard", "27\" Monitor", "Laptop Stand", "Noise Cancelling Headphones", "Webcam HD", "Desk Lamp", "Ergonomic Chair", "Notebook A5", "Coffee Beans 1kg", "Water Bottle"}
	statuses   = []string{"pending", "paid", "packed", "shipped", "delivered", "cancelled"}
	domains    = []string{"example.com", "mail.example.org", "corp.example.net"}
)

// orderPayload returns a deterministic JSON payload of order records, made by the SDK default
// data converter, whose data is about size bytes.
func orderPayload(tb testing.TB, size int) *commonpb.Payload {
	tb.Helper()
	r := rand.New(rand.NewSource(int64(size)))
	base := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	var orders []order
	total := 2
	for total < size {
		first, last := firstNames[r.Intn(len(firstNames))], lastNames[r.Intn(len(lastNames))]
		o := order{
			ID:        fmt.Sprintf("ORD-%08d", r.Intn(100000000)),
			Status:    statuses[r.Intn(len(statuses))],
			CreatedAt: base.Add(time.Duration(r.Int63n(int64(90 * 24 * time.Hour)))).Truncate(time.Millisecond),
			Customer: customer{
				ID:    r.Int63n(10000000),
				Name:  first + " " + last,
				Email: strings.ToLower(first+"."+last) + fmt.Sprintf("%d@", r.Intn(100)) + domains[r.Intn(len(domains))],
				Phone: fmt.Sprintf("+1-%03d-%03d-%04d", r.Intn(1000), r.Intn(1000), r.Intn(10000)),
				Address: address{
					Street:  fmt.Sprintf("%d %s", 1+r.Intn(9999), streets[r.Intn(len(streets))]),
					City:    cities[r.Intn(len(cities))],
					Zip:     fmt.Sprintf("%05d", r.Intn(100000)),
					Country: countries[r.Intn(len(countries))],
				},
			},
			Currency: "USD",
		}
		for range 1 + r.Intn(4) {
			it := item{
				SKU:      fmt.Sprintf("SKU-%06d", r.Intn(1000000)),
				Name:     products[r.Intn(len(products))],
				Quantity: 1 + r.Intn(5),
				Price:    float64(r.Intn(50000)) / 100,
			}
			o.Items = append(o.Items, it)
			o.Total += float64(it.Quantity) * it.Price
		}
		if r.Intn(4) == 0 {
			o.Notes = "Leave at the front door, ring twice."
		}
		p, err := converter.GetDefaultDataConverter().ToPayload(o)
		if err != nil {
			tb.Fatal(err)
		}
		total += len(p.Data) + 1
		orders = append(orders, o)
	}
	p, err := converter.GetDefaultDataConverter().ToPayload(orders)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// benchCodec is one alternative in the side-by-side benchmarks.
type benchCodec struct {
	name  string
	codec converter.PayloadCodec // nil: proto marshal only
}

func benchCodecs(tb testing.TB) []benchCodec {
	mk := func(alg codec.Algorithm, lvl ...codec.CompressionLevel) converter.PayloadCodec {
		opts := &codec.CompressionOptions{Algorithm: alg}
		if len(lvl) > 0 {
			opts.Level = lvl[0]
		}
		c, err := codec.NewCompressionCodec(opts)
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
	return []benchCodec{
		{"payloadkit-zstd", mk(codec.Zstd)},
		{"zstd-fastest", mk(codec.Zstd, codec.LevelFastest)},
		{"zstd-better", mk(codec.Zstd, codec.LevelBetter)},
		{"payloadkit-s2", mk(codec.S2)},
		{"payloadkit-gzip", mk(codec.Gzip)},
		{"sdk-zlib", converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true})},
		{"none", nil},
	}
}

var benchSizes = []struct {
	name string
	size int
}{{"1KiB", 1 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}}

// roundTrip encodes and decodes p once and returns the encoded size. The "none" baseline
// marshals and unmarshals the payload, which is what any codec does at least.
func roundTrip(tb testing.TB, c converter.PayloadCodec, in []*commonpb.Payload) int {
	if c == nil {
		b, err := proto.Marshal(in[0])
		if err != nil {
			tb.Fatal(err)
		}
		var out commonpb.Payload
		if err := proto.Unmarshal(b, &out); err != nil {
			tb.Fatal(err)
		}
		return len(b)
	}
	enc, err := c.Encode(in)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := c.Decode(enc); err != nil {
		tb.Fatal(err)
	}
	return proto.Size(enc[0])
}

// BenchmarkCodecRoundTrip runs an encode+decode round trip of realistic JSON payloads through
// every alternative side by side. MB/s is of the raw marshalled payload; size-ratio is
// encoded size / raw size.
func BenchmarkCodecRoundTrip(b *testing.B) {
	codecs := benchCodecs(b)
	for _, sz := range benchSizes {
		p := orderPayload(b, sz.size)
		in := []*commonpb.Payload{p}
		raw := proto.Size(p)
		for _, bc := range codecs {
			b.Run("size="+sz.name+"/codec="+bc.name, func(b *testing.B) {
				b.SetBytes(int64(raw))
				b.ReportAllocs()
				var encSize int
				for b.Loop() {
					encSize = roundTrip(b, bc.codec, in)
				}
				b.ReportMetric(float64(encSize)/float64(raw), "size-ratio")
			})
		}
	}
}

// BenchmarkCompare prints a table comparing every alternative with the SDK's zlib codec:
// round-trip throughput, its ratio to zlib's, and the encoded size.
func BenchmarkCompare(b *testing.B) {
	for b.Loop() {
		// Printed rather than logged: benchmark logs are cut after a few lines.
		fmt.Print("\n" + compareCodecs(b))
	}
}

// compareCodecs measures every codec on each size and formats the comparison. The codecs run
// in interleaved rounds, so that load from other processes affects them alike, after a warm-up
// on every size, so that the first size measured does not pay for the process reaching its
// steady state (heap growth, first use of pools and encoders).
func compareCodecs(tb testing.TB) string {
	codecs := benchCodecs(tb)
	for _, sz := range benchSizes {
		in := []*commonpb.Payload{orderPayload(tb, sz.size)}
		for _, bc := range codecs {
			for start := time.Now(); time.Since(start) < 30*time.Millisecond; {
				roundTrip(tb, bc.codec, in)
			}
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-6s %-16s %10s %12s %10s %12s\n", "size", "codec", "MB/s", "vs sdk-zlib", "encoded", "size-ratio")
	for _, sz := range benchSizes {
		p := orderPayload(tb, sz.size)
		in := []*commonpb.Payload{p}
		raw := proto.Size(p)
		encoded := make([]int, len(codecs))
		iters := make([]int, len(codecs))  // iterations per round, about 10ms each
		counts := make([]int, len(codecs)) // iterations measured
		elapsed := make([]time.Duration, len(codecs))
		zlib := 0
		for i, bc := range codecs {
			if bc.name == "sdk-zlib" {
				zlib = i
			}
			encoded[i] = roundTrip(tb, bc.codec, in) // warms up pools
			start := time.Now()
			roundTrip(tb, bc.codec, in)
			iters[i] = max(1, int(10*time.Millisecond/max(time.Since(start), time.Microsecond)))
		}
		for round := 0; round < 30; round++ {
			for i, bc := range codecs {
				start := time.Now()
				for range iters[i] {
					roundTrip(tb, bc.codec, in)
				}
				elapsed[i] += time.Since(start)
				counts[i] += iters[i]
			}
		}
		mbps := make([]float64, len(codecs))
		for i := range codecs {
			mbps[i] = float64(raw) * float64(counts[i]) / elapsed[i].Seconds() / 1e6
		}
		for i, bc := range codecs {
			fmt.Fprintf(&sb, "%-6s %-16s %10.1f %11.2fx %10d %12.3f\n",
				sz.name, bc.name, mbps[i], mbps[i]/mbps[zlib], encoded[i], float64(encoded[i])/float64(raw))
		}
	}
	return sb.String()
}
