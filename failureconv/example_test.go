package failureconv_test

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/payloadkit/payloadkit/failureconv"
)

// A Converter moves failure messages and stack traces into a payload of its DataConverter.
// In a Kit that DataConverter compresses, encrypts and offloads; here it is the SDK default.
func ExampleNew() {
	fc, err := failureconv.New(converter.GetDefaultDataConverter(), &failureconv.Options{
		PublicMessage: "Encrypted failure: use the Codec Server",
		StackTraces:   failureconv.StackTracesDrop,
	}, true)
	if err != nil {
		panic(err)
	}
	f := fc.ErrorToFailure(temporal.NewApplicationError("card 4111 declined", "PaymentDeclined"))
	fmt.Println("history shows:", f.GetMessage())
	fmt.Println("encoded as:", string(f.GetEncodedAttributes().GetMetadata()[converter.MetadataEncoding]))

	var app *temporal.ApplicationError
	if errors.As(fc.FailureToError(f), &app) {
		fmt.Println("workflow sees:", app.Message(), app.Type())
	}
	// Output:
	// history shows: Encrypted failure: use the Codec Server
	// encoded as: json/plain
	// workflow sees: card 4111 declined PaymentDeclined
}
