// Package quickstartflow is the quickstart's workflow and activities, shared by the quickstart
// (samples/quickstart) and the benchmark that measures its history (samples/bench).
package quickstartflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Customer holds the personal data payloadkit keeps out of plain-text history.
type Customer struct {
	Name    string `json:"name"`
	Email   string `json:"email"`
	Address string `json:"address"`
}

// Order is one line of the batch.
type Order struct {
	ID       string    `json:"id"`
	Customer Customer  `json:"customer"`
	SKU      string    `json:"sku"`
	Quantity int       `json:"quantity"`
	Cents    int64     `json:"cents"`
	Placed   time.Time `json:"placed"`
	Note     string    `json:"note"`
}

// Batch is the workflow input: about 1 MiB of JSON.
type Batch struct {
	ID     string  `json:"id"`
	Orders []Order `json:"orders"`
}

// Invoice is what the activity returns for a batch: the orders priced, plus a rendered
// document (a few MiB, like a PDF) that is too large to keep inline.
type Invoice struct {
	BatchID  string  `json:"batch_id"`
	Orders   []Order `json:"orders"`
	TotalCts int64   `json:"total_cents"`
	Document []byte  `json:"document"`
}

// Summary is the workflow result.
type Summary struct {
	BatchID   string `json:"batch_id"`
	Orders    int    `json:"orders"`
	TotalCts  int64  `json:"total_cents"`
	DocSHA256 string `json:"document_sha256"`
}

// ProcessBatch prices a batch in one activity and checks the invoice in a second one.
func ProcessBatch(ctx workflow.Context, batch Batch) (Summary, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	var inv Invoice
	if err := workflow.ExecuteActivity(ctx, PriceBatch, batch).Get(ctx, &inv); err != nil {
		return Summary{}, err
	}
	var sum Summary
	if err := workflow.ExecuteActivity(ctx, CheckInvoice, inv).Get(ctx, &sum); err != nil {
		return Summary{}, err
	}
	return sum, nil
}

// PriceBatch prices every order and renders the invoice document.
func PriceBatch(_ context.Context, batch Batch) (Invoice, error) {
	inv := Invoice{BatchID: batch.ID, Orders: batch.Orders}
	for _, o := range batch.Orders {
		inv.TotalCts += o.Cents * int64(o.Quantity)
	}
	inv.Document = renderDocument(batch, 3<<20)
	return inv, nil
}

// CheckInvoice verifies the invoice and summarises it.
func CheckInvoice(_ context.Context, inv Invoice) (Summary, error) {
	if len(inv.Document) == 0 {
		return Summary{}, fmt.Errorf("invoice %s has no document", inv.BatchID)
	}
	sum := sha256.Sum256(inv.Document)
	return Summary{BatchID: inv.BatchID, Orders: len(inv.Orders), TotalCts: inv.TotalCts, DocSHA256: hex.EncodeToString(sum[:])}, nil
}

// renderDocument stands in for a rendered PDF: size bytes that compress poorly.
func renderDocument(batch Batch, size int) []byte {
	seed := sha256.Sum256([]byte(batch.ID))
	r := rand.New(rand.NewSource(int64(seed[0]) | int64(seed[1])<<8))
	doc := make([]byte, size)
	r.Read(doc)
	return doc
}

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Barbara", "Edsger", "Frances", "Ken", "Radia", "Dennis", "Margaret"}
	lastNames  = []string{"Lovelace", "Hopper", "Turing", "Liskov", "Dijkstra", "Allen", "Thompson", "Perlman", "Ritchie", "Hamilton"}
	streets    = []string{"Main St", "High St", "Church Rd", "Station Rd", "Park Ave", "Mill Lane"}
	skus       = []string{"BK-1001", "BK-1002", "HW-2001", "HW-2002", "SW-3001", "SV-4001"}
)

// NewBatch makes a deterministic batch of about approxBytes of JSON.
func NewBatch(id string, approxBytes int) Batch {
	r := rand.New(rand.NewSource(42))
	b := Batch{ID: id}
	base := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	for size := 0; size < approxBytes; {
		first, last := firstNames[r.Intn(len(firstNames))], lastNames[r.Intn(len(lastNames))]
		o := Order{
			ID: fmt.Sprintf("%s-%06d", id, len(b.Orders)),
			Customer: Customer{
				Name:    first + " " + last,
				Email:   fmt.Sprintf("%s.%s%d@example.com", first, last, r.Intn(1000)),
				Address: fmt.Sprintf("%d %s, Springfield", 1+r.Intn(300), streets[r.Intn(len(streets))]),
			},
			SKU:      skus[r.Intn(len(skus))],
			Quantity: 1 + r.Intn(5),
			Cents:    int64(199 + r.Intn(20000)),
			Placed:   base.Add(time.Duration(r.Intn(86400*30)) * time.Second),
			Note:     "deliver to reception",
		}
		js, _ := json.Marshal(o)
		size += len(js) + 1
		b.Orders = append(b.Orders, o)
	}
	return b
}
