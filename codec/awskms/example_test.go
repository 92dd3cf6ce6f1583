package awskms_test

import (
	"errors"
	"fmt"
	"log"
	"testing"

	"go.temporal.io/sdk/converter"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/codec/awskms"
	"github.com/payloadkit/payloadkit/workflowtest"
)

// exampleTB lets examples start the KMS test server, which is meant for tests.
type exampleTB struct {
	testing.TB
	cleanups []func()
}

func (*exampleTB) Helper()                             {}
func (e *exampleTB) Cleanup(f func())                  { e.cleanups = append(e.cleanups, f) }
func (e *exampleTB) Fatalf(format string, args ...any) { log.Fatalf(format, args...) }
func (e *exampleTB) close() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}

func Example() {
	// In production the client comes from the AWS configuration, for example
	// kms.NewFromConfig(cfg), and the key is an alias or key ARN of yours.
	tb := &exampleTB{}
	defer tb.close()
	srv := workflowtest.StartKMS(tb)
	srv.SetAlias("alias/payloadkit", srv.NewKey())

	keys, err := awskms.New(srv.Client(), "alias/payloadkit")
	if err != nil {
		log.Fatal(err)
	}
	enc, err := codec.NewEncryptionCodec(&codec.EncryptionOptions{Keys: keys})
	if err != nil {
		log.Fatal(err)
	}
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), enc)

	for i := range 100 {
		p, err := dc.ToPayload(fmt.Sprintf("order %d", i))
		if err != nil {
			log.Fatal(err)
		}
		var s string
		if err := dc.FromPayload(p, &s); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("KMS GenerateDataKey calls for 100 payloads:", srv.Calls(workflowtest.KMSGenerateDataKey))

	// Errors tell what went wrong through the sentinels of package codec.
	srv.SetUnavailable(true)
	other, _ := codec.NewEncryptionCodec(&codec.EncryptionOptions{Keys: keys})
	_, err = converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), other).ToPayload("x")
	fmt.Println("retryable while KMS is unavailable:", errors.Is(err, codec.ErrRetryable))
	// Output:
	// KMS GenerateDataKey calls for 100 payloads: 1
	// retryable while KMS is unavailable: true
}
