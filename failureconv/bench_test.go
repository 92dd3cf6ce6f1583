package failureconv

import (
	"errors"
	"testing"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

// BenchmarkFailureRoundTrip converts an application error with a cause and details to a Failure
// and back, with the SDK's default converter (plain, then with encoded attributes) and with this
// package's converter, all on the same codec DataConverter. Each alternative reports its cost
// relative to the plain SDK converter as x-sdk-plain.
func BenchmarkFailureRoundTrip(b *testing.B) {
	dc, _ := sealedDC(b)
	ctx := converter.WorkflowSerializationContext{Namespace: "payments", WorkflowID: "wf"}
	ours := newConv(b, dc, nil, true).WithSerializationContext(ctx)
	alternatives := []struct {
		name string
		fc   converter.FailureConverter
	}{
		{"sdk-plain", temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: dc})},
		{"sdk-encoded", temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: dc, EncodeCommonAttributes: true})},
		{"failureconv", ours},
	}
	err := temporal.NewApplicationErrorWithCause(secret, "PaymentDeclined", errors.New("upstream"), secretDetails{CardNumber: secretCardNumber, Amount: 1})
	var baseline float64
	for _, alt := range alternatives {
		b.Run(alt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if alt.fc.FailureToError(alt.fc.ErrorToFailure(err)) == nil {
					b.Fatal("lost the error")
				}
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if alt.name == "sdk-plain" {
				baseline = ns
			}
			if baseline > 0 {
				b.ReportMetric(ns/baseline, "x-sdk-plain")
			}
		})
	}
}
