package codec_test

import (
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/payloadkit/payloadkit/codec"
)

// A compression codec used on its own, in a DataConverter: large values are compressed with
// zstd, small ones are left as they are, and payloads written by the SDK's zlib codec still decode.
func ExampleNewCompressionCodec() {
	c, err := codec.NewCompressionCodec(&codec.CompressionOptions{
		Algorithm:      codec.Zstd,
		MaxDecodedSize: 16 << 20,
	})
	if err != nil {
		panic(err)
	}
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)

	report := strings.Repeat("all systems nominal; ", 200)
	big, err := dc.ToPayload(report)
	if err != nil {
		panic(err)
	}
	small, err := dc.ToPayload("hi")
	if err != nil {
		panic(err)
	}
	fmt.Printf("large value: %s, under a tenth of its size: %t\n", big.Metadata["encoding"], len(big.Data) < len(report)/10)
	fmt.Printf("small value: %s\n", small.Metadata["encoding"])

	var got string
	if err := dc.FromPayload(big, &got); err != nil {
		panic(err)
	}
	fmt.Println("round trip:", got == report)

	// A payload compressed by the Temporal SDK's zlib codec.
	plain, _ := converter.GetDefaultDataConverter().ToPayload("from an older worker")
	zlibbed, _ := converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true}).Encode([]*commonpb.Payload{plain})
	if err := dc.FromPayload(zlibbed[0], &got); err != nil {
		panic(err)
	}
	fmt.Println("zlib payload:", got)
	// Output:
	// large value: binary/zstd, under a tenth of its size: true
	// small value: json/plain
	// round trip: true
	// zlib payload: from an older worker
}
