package bench

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
)

// Invoice is the document the benchmark's workflows carry: an order/invoice with nested objects,
// strings and numbers, shaped like what business workflows pass between activities.
type Invoice struct {
	ID          string            `json:"id"`
	Status      string            `json:"status"`
	Currency    string            `json:"currency"`
	IssuedAt    string            `json:"issued_at"`
	DueAt       string            `json:"due_at"`
	Customer    Customer          `json:"customer"`
	Lines       []Line            `json:"lines"`
	Totals      Totals            `json:"totals"`
	Tags        []string          `json:"tags"`
	Metadata    map[string]string `json:"metadata"`
	ProcessedBy []string          `json:"processed_by,omitempty"`
}

// Customer is the invoiced party.
type Customer struct {
	ID       string  `json:"id"`
	Name     string  `json:"name"`
	Email    string  `json:"email"`
	Phone    string  `json:"phone"`
	Billing  Address `json:"billing"`
	Shipping Address `json:"shipping"`
	Tier     string  `json:"tier"`
	Since    int     `json:"customer_since"`
}

// Address is a postal address.
type Address struct {
	Street     string `json:"street"`
	City       string `json:"city"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"`
}

// Line is one invoice line.
type Line struct {
	Number      int      `json:"line"`
	SKU         string   `json:"sku"`
	Description string   `json:"description"`
	Quantity    int      `json:"quantity"`
	UnitPrice   float64  `json:"unit_price"`
	Discount    float64  `json:"discount"`
	TaxRate     float64  `json:"tax_rate"`
	Amount      float64  `json:"amount"`
	Warehouse   string   `json:"warehouse"`
	Attributes  []string `json:"attributes"`
}

// Totals sums the lines.
type Totals struct {
	Subtotal float64 `json:"subtotal"`
	Discount float64 `json:"discount"`
	Tax      float64 `json:"tax"`
	Total    float64 `json:"total"`
}

var (
	words = []string{"steel", "bracket", "hinge", "cable", "adapter", "panel", "sensor", "valve",
		"gasket", "bearing", "housing", "mount", "clamp", "filter", "relay", "switch", "fuse",
		"coupling", "spring", "washer", "bolt", "anchor", "rail", "module", "controller", "pump"}
	adjectives = []string{"galvanized", "heavy-duty", "compact", "stainless", "reinforced",
		"insulated", "waterproof", "adjustable", "replacement", "industrial", "low-profile"}
	colors     = []string{"black", "white", "silver", "blue", "red", "green", "grey"}
	cities     = []string{"Lyon", "Porto", "Gdansk", "Tampere", "Leipzig", "Bilbao", "Graz", "Utrecht"}
	countries  = []string{"FR", "PT", "PL", "FI", "DE", "ES", "AT", "NL"}
	streets    = []string{"Harbour Road", "Mill Lane", "Station Street", "Elm Avenue", "Quay Side"}
	firstNames = []string{"Ana", "Jonas", "Marta", "Eero", "Lena", "Pablo", "Sofie", "Tomasz"}
	lastNames  = []string{"Silva", "Weber", "Nowak", "Virtanen", "Garcia", "Jansen", "Huber"}
	warehouses = []string{"WH-NORTH-01", "WH-SOUTH-02", "WH-EAST-03", "WH-WEST-04"}
)

func pick(r *rand.Rand, s []string) string { return s[r.IntN(len(s))] }

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

func address(r *rand.Rand) Address {
	i := r.IntN(len(cities))
	return Address{
		Street:     fmt.Sprintf("%d %s", 1+r.IntN(400), pick(r, streets)),
		City:       cities[i],
		PostalCode: fmt.Sprintf("%05d", r.IntN(100000)),
		Country:    countries[i],
	}
}

// NewInvoice returns a deterministic invoice (the same for the same seed) whose JSON encoding is
// at least size bytes: lines are added until it is.
func NewInvoice(seed uint64, size int) Invoice {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	first, last := pick(r, firstNames), pick(r, lastNames)
	inv := Invoice{
		ID:       fmt.Sprintf("INV-%d-%06d", 2026, r.IntN(1000000)),
		Status:   "open",
		Currency: "EUR",
		IssuedAt: fmt.Sprintf("2026-%02d-%02dT%02d:%02d:00Z", 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60)),
		DueAt:    fmt.Sprintf("2026-%02d-%02d", 1+r.IntN(12), 1+r.IntN(28)),
		Customer: Customer{
			ID:       fmt.Sprintf("CUST-%08d", r.IntN(100000000)),
			Name:     first + " " + last,
			Email:    fmt.Sprintf("%s.%s@example.com", first, last),
			Phone:    fmt.Sprintf("+33 %d %02d %02d %02d %02d", 1+r.IntN(9), r.IntN(100), r.IntN(100), r.IntN(100), r.IntN(100)),
			Billing:  address(r),
			Shipping: address(r),
			Tier:     pick(r, []string{"standard", "gold", "platinum"}),
			Since:    2005 + r.IntN(21),
		},
		Tags:     []string{"b2b", pick(r, []string{"priority", "backorder", "net30"}), pick(r, colors)},
		Metadata: map[string]string{"channel": "edi", "region": pick(r, countries), "sales_rep": pick(r, firstNames)},
	}
	// Estimate a line's encoded size from the first ones, then grow in chunks and check.
	for {
		b, err := json.Marshal(inv)
		if err != nil {
			panic(err)
		}
		if len(b) >= size {
			return inv
		}
		missing := (size - len(b)) / 300
		if missing < 1 {
			missing = 1
		}
		for range missing {
			n := len(inv.Lines) + 1
			qty := 1 + r.IntN(50)
			price := round2(1 + r.Float64()*500)
			disc := round2(float64(r.IntN(4)) * 0.05)
			tax := []float64{0.055, 0.1, 0.2}[r.IntN(3)]
			amount := round2(float64(qty) * price * (1 - disc))
			inv.Lines = append(inv.Lines, Line{
				Number:      n,
				SKU:         fmt.Sprintf("SKU-%s-%05d", pick(r, []string{"A", "B", "C", "D"}), r.IntN(100000)),
				Description: fmt.Sprintf("%s %s %s, %d mm, %s", pick(r, adjectives), pick(r, words), pick(r, words), 5+r.IntN(995), pick(r, colors)),
				Quantity:    qty,
				UnitPrice:   price,
				Discount:    disc,
				TaxRate:     tax,
				Amount:      amount,
				Warehouse:   pick(r, warehouses),
				Attributes:  []string{pick(r, adjectives), fmt.Sprintf("batch-%04d", r.IntN(10000))},
			})
			inv.Totals.Subtotal = round2(inv.Totals.Subtotal + float64(qty)*price)
			inv.Totals.Discount = round2(inv.Totals.Discount + float64(qty)*price*disc)
			inv.Totals.Tax = round2(inv.Totals.Tax + amount*tax)
			inv.Totals.Total = round2(inv.Totals.Subtotal - inv.Totals.Discount + inv.Totals.Tax)
		}
	}
}
