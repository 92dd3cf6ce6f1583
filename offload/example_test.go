package offload_test

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/converter"

	"github.com/payloadkit/payloadkit/offload"
)

// A DataConverter that keeps values over 1 KiB out of Temporal history: the history holds a
// small claim, the store holds the value.
func ExampleNewCodec() {
	store := offload.NewMemoryStore()
	var events []string
	codec, err := offload.NewCodec(&offload.Options{
		Store:     store,
		Threshold: 1024,
		OnObject:  func(e offload.ObjectEvent) { events = append(events, e.Operation) },
	})
	if err != nil {
		panic(err)
	}
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), codec)
	dc = converter.WithDataConverterSerializationContext(dc,
		converter.WorkflowSerializationContext{Namespace: "orders", WorkflowID: "order-42"})

	report := strings.Repeat("line item\n", 1000) // 10 KiB, 11 KiB as JSON
	payload, err := dc.ToPayload(report)
	if err != nil {
		panic(err)
	}
	claim, err := offload.ParseClaim(payload)
	if err != nil {
		panic(err)
	}
	fmt.Println("encoding:", string(payload.Metadata["encoding"]))
	fmt.Println("key prefix:", claim.Key[:len("payloadkit/orders/sha256/")])
	fmt.Println("stored bytes:", claim.Size)
	fmt.Println("claim under 1 KiB:", len(payload.Data) < 1024)

	// Encoding the same value again uploads nothing.
	if _, err := dc.ToPayload(report); err != nil {
		panic(err)
	}
	var back string
	if err := dc.FromPayload(payload, &back); err != nil {
		panic(err)
	}
	fmt.Println("round trip:", back == report)
	fmt.Println("operations:", events)
	// Output:
	// encoding: binary/claim-check
	// key prefix: payloadkit/orders/sha256/
	// stored bytes: 11029
	// claim under 1 KiB: true
	// round trip: true
	// operations: [put deduplicated get]
}
