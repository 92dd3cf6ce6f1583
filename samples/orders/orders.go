// Package orders is a small order workflow written the way a team would, with payloadkit
// protecting its data: PlaceOrder validates an order, charges the customer and ships it. Order
// values hold personal data (the customer's email and address), the shipping label is large
// enough to be offloaded, and a rejected order fails with an error whose message and details
// name the customer: all of it must stay out of Temporal's history in plain text.
package orders

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Names under which Register registers the workflow and activities.
const (
	WorkflowName = "PlaceOrder"
	ValidateName = "ValidateOrder"
	ChargeName   = "ChargeOrder"
	ShipName     = "ShipOrder"
)

// ErrTypeInvalidOrder is the temporal.ApplicationError type of a rejected order. The error's
// details are a ValidationDetails.
const ErrTypeInvalidOrder = "InvalidOrder"

// LabelSize is the size, in bytes, of the shipping label ShipOrder returns (a rendered label
// image in a real system).
const LabelSize = 64 << 10

// Item is one line of an order.
type Item struct {
	SKU        string
	Quantity   int
	PriceCents int64
}

// Order is the input of PlaceOrder.
type Order struct {
	ID            string
	CustomerEmail string
	Address       string
	Items         []Item
}

// TotalCents is the order's total price in cents.
func (o Order) TotalCents() int64 {
	var total int64
	for _, it := range o.Items {
		total += int64(it.Quantity) * it.PriceCents
	}
	return total
}

// ValidationDetails are the details of an ErrTypeInvalidOrder error.
type ValidationDetails struct {
	OrderID       string
	CustomerEmail string
	Problems      []string
}

// Charge is the result of ChargeOrder.
type Charge struct {
	ID          string
	AmountCents int64
}

// Shipment is the result of ShipOrder.
type Shipment struct {
	TrackingNumber string
	Label          []byte
}

// Receipt is the result of PlaceOrder.
type Receipt struct {
	OrderID        string
	ChargeID       string
	AmountCents    int64
	TrackingNumber string
	// LabelSHA256 is the hex SHA-256 of the shipping label.
	LabelSHA256 string
}

// Activities are the order activities. Their methods are registered by Register.
type Activities struct{}

// Validate checks the order and fails with a non-retryable ErrTypeInvalidOrder application
// error, whose message and details name the customer, when it cannot be placed.
func (a *Activities) Validate(_ context.Context, o Order) error {
	var problems []string
	if _, err := mail.ParseAddress(o.CustomerEmail); err != nil {
		problems = append(problems, "customer email is not an address")
	}
	if strings.TrimSpace(o.Address) == "" {
		problems = append(problems, "shipping address is missing")
	}
	if len(o.Items) == 0 {
		problems = append(problems, "order has no items")
	}
	for _, it := range o.Items {
		if it.Quantity <= 0 || it.PriceCents < 0 {
			problems = append(problems, fmt.Sprintf("item %s has quantity %d and price %d", it.SKU, it.Quantity, it.PriceCents))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("order %s for %s rejected: %s", o.ID, o.CustomerEmail, strings.Join(problems, "; ")),
		ErrTypeInvalidOrder, nil,
		ValidationDetails{OrderID: o.ID, CustomerEmail: o.CustomerEmail, Problems: problems})
}

// Charge charges the order's total to the customer.
func (a *Activities) Charge(_ context.Context, o Order) (Charge, error) {
	return Charge{ID: "ch_" + o.ID, AmountCents: o.TotalCents()}, nil
}

// Ship books the shipment and returns its tracking number and label.
func (a *Activities) Ship(_ context.Context, o Order, c Charge) (Shipment, error) {
	tracking := "TRK-" + strings.ToUpper(o.ID)
	return Shipment{TrackingNumber: tracking, Label: RenderLabel(o, tracking)}, nil
}

// RenderLabel returns the LabelSize-byte shipping label of an order: its address and tracking
// number followed by deterministic filler standing in for the label image.
func RenderLabel(o Order, tracking string) []byte {
	label := make([]byte, 0, LabelSize)
	label = append(label, "SHIP TO: "+o.Address+"\nTRACKING: "+tracking+"\n"...)
	block := sha256.Sum256([]byte(tracking))
	for len(label) < LabelSize {
		block = sha256.Sum256(block[:])
		label = append(label, block[:]...)
	}
	return label[:LabelSize]
}

// PlaceOrder validates, charges and ships an order and returns its receipt.
func PlaceOrder(ctx workflow.Context, o Order) (Receipt, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	if err := workflow.ExecuteActivity(ctx, ValidateName, o).Get(ctx, nil); err != nil {
		return Receipt{}, err
	}
	var charge Charge
	if err := workflow.ExecuteActivity(ctx, ChargeName, o).Get(ctx, &charge); err != nil {
		return Receipt{}, err
	}
	var shipment Shipment
	if err := workflow.ExecuteActivity(ctx, ShipName, o, charge).Get(ctx, &shipment); err != nil {
		return Receipt{}, err
	}
	sum := sha256.Sum256(shipment.Label)
	return Receipt{
		OrderID:        o.ID,
		ChargeID:       charge.ID,
		AmountCents:    charge.AmountCents,
		TrackingNumber: shipment.TrackingNumber,
		LabelSHA256:    hex.EncodeToString(sum[:]),
	}, nil
}

// Register registers PlaceOrder and the activities of a on r.
func Register(r worker.Registry, a *Activities) {
	r.RegisterWorkflowWithOptions(PlaceOrder, workflow.RegisterOptions{Name: WorkflowName})
	r.RegisterActivityWithOptions(a.Validate, activity.RegisterOptions{Name: ValidateName})
	r.RegisterActivityWithOptions(a.Charge, activity.RegisterOptions{Name: ChargeName})
	r.RegisterActivityWithOptions(a.Ship, activity.RegisterOptions{Name: ShipName})
}
