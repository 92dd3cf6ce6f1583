package payloadkit_test

import (
	"context"
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/offload"
)

// A Kit with encryption under a static keyring and offload to a memory store. In production
// the key provider would be awskms.New and the store s3store.New (package offload/s3store).
func Example() {
	ring, err := codec.NewStaticKeyring("key-2026-11", map[string][]byte{"key-2026-11": codec.GenerateKey()})
	if err != nil {
		panic(err)
	}
	kit, err := payloadkit.New(context.Background(), payloadkit.Options{
		Encryption: &codec.EncryptionOptions{Keys: ring},
		Offload:    &offload.Options{Store: offload.NewMemoryStore()},
	})
	if err != nil {
		panic(err)
	}
	defer kit.Close()

	// client.Dial(kit.ClientOptions(client.Options{...})) and
	// worker.New(c, queue, kit.WorkerOptions(worker.Options{...})) use it.
	p, err := kit.DataConverter().ToPayload(map[string]string{"email": "ada@example.com", "notes": strings.Repeat("fragile ", 100)})
	if err != nil {
		panic(err)
	}
	fmt.Println("stages:", strings.Join(kit.Stages(), " -> "))
	fmt.Println("stored as:", string(p.Metadata["encoding"]))
	fmt.Println("plaintext visible:", strings.Contains(string(p.Data), "ada@example.com"))

	var back map[string]string
	if err := kit.DataConverter().FromPayload(p, &back); err != nil {
		panic(err)
	}
	fmt.Println("decoded:", back["email"])
	// Output:
	// stages: compression -> encryption -> offload
	// stored as: binary/encrypted
	// plaintext visible: false
	// decoded: ada@example.com
}

// The zero Options compress with zstd and trace with the OpenTelemetry globals.
func ExampleNew_defaults() {
	kit, err := payloadkit.New(context.Background(), payloadkit.Options{})
	if err != nil {
		panic(err)
	}
	defer kit.Close()
	fmt.Println(kit.Stages())
	// Output: [compression]
}

// Invalid options are rejected with an error naming the field and the allowed values.
func ExampleNew_invalidOptions() {
	_, err := payloadkit.New(context.Background(), payloadkit.Options{
		Compression: &codec.CompressionOptions{Algorithm: "lz4"},
	})
	fmt.Println(err)
	// Output: payloadkit: invalid options: Compression.Algorithm "lz4": allowed values are "zstd", "s2", "gzip", "none"
}

// A Kit whose codecs sit under payload converters of your own: protobuf binary first, then
// the SDK's JSON converter (a custom JSON converter goes in the same place).
func ExampleOptions_payloadConverter() {
	ring, err := codec.NewStaticKeyring("k1", map[string][]byte{"k1": codec.GenerateKey()})
	if err != nil {
		panic(err)
	}
	kit, err := payloadkit.New(context.Background(), payloadkit.Options{
		PayloadConverter: converter.NewCompositeDataConverter(
			converter.NewProtoPayloadConverter(), converter.NewJSONPayloadConverter()),
		Encryption: &codec.EncryptionOptions{Keys: ring},
	})
	if err != nil {
		panic(err)
	}
	defer kit.Close()

	p, err := kit.DataConverter().ToPayload(wrapperspb.String("ada@example.com"))
	if err != nil {
		panic(err)
	}
	fmt.Println("stored as:", string(p.Metadata["encoding"]))
	// What a Codec Server built from kit.Codecs() gives back: the converter's own payload.
	ps := []*commonpb.Payload{p}
	for _, c := range kit.Codecs() {
		if ps, err = c.Decode(ps); err != nil {
			panic(err)
		}
	}
	fmt.Println("decoded to:", string(ps[0].Metadata["encoding"]))
	// Output:
	// stored as: binary/encrypted
	// decoded to: binary/protobuf
}
