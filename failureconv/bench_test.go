package failureconv

import (
	"errors"
	"testing"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/payloadkit/payloadkit/internal/benchutil"
)

// BenchmarkFailureRoundTrip converts an application error with a cause and details to a Failure
// and back, interleaved in one run, with the SDK's default converter (plain, then with encoded
// attributes) and with this package's converter, all on the same codec DataConverter. It reports
// each alternative's time relative to the plain SDK converter as <alternative>-vs-sdk-plain-x.
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
	fns := make([]func(), len(alternatives))
	for i, alt := range alternatives {
		fns[i] = func() {
			if alt.fc.FailureToError(alt.fc.ErrorToFailure(err)) == nil {
				b.Fatal("lost the error")
			}
		}
	}
	res := benchutil.Interleave(b, fns...)
	for i, alt := range alternatives {
		b.ReportMetric(res.NsPerOp[i], alt.name+"-ns/op")
		if i > 0 {
			b.ReportMetric(res.Ratio(i, 0), alt.name+"-vs-sdk-plain-x")
		}
	}
}
