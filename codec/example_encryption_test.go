package codec_test

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/converter"

	"github.com/payloadkit/payloadkit/codec"
)

// ExampleNewStaticKeyring encrypts a value with a static keyring, decodes it, rotates the
// primary key and shows that a payload bound to one namespace does not decode in another.
func ExampleNewStaticKeyring() {
	oldKey, newKey := codec.GenerateKey(), codec.GenerateKey()
	ring, err := codec.NewStaticKeyring("2024-01", map[string][]byte{"2024-01": oldKey})
	if err != nil {
		panic(err)
	}
	enc, err := codec.NewEncryptionCodec(&codec.EncryptionOptions{Keys: ring})
	if err != nil {
		panic(err)
	}
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), enc)

	// The SDK binds the codec to the namespace of each workflow and activity.
	orders := dc.(converter.DataConverterWithSerializationContext).
		WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "orders"})
	p, err := orders.ToPayload(map[string]string{"card": "4111 1111 1111 1111"})
	if err != nil {
		panic(err)
	}
	fmt.Println("encoding:", string(p.Metadata["encoding"]))
	fmt.Println("key id:", string(p.Metadata[codec.MetadataEncryptionKeyID]))

	// Rotate: new payloads use the new primary, old payloads still decrypt.
	rotated, err := codec.NewStaticKeyring("2024-07", map[string][]byte{"2024-01": oldKey, "2024-07": newKey})
	if err != nil {
		panic(err)
	}
	enc2, err := codec.NewEncryptionCodec(&codec.EncryptionOptions{Keys: rotated})
	if err != nil {
		panic(err)
	}
	dc2 := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), enc2).(converter.DataConverterWithSerializationContext)
	var card map[string]string
	if err := dc2.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "orders"}).FromPayload(p, &card); err != nil {
		panic(err)
	}
	fmt.Println("decoded:", card["card"])
	p2, _ := dc2.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "orders"}).ToPayload("new")
	fmt.Println("new key id:", string(p2.Metadata[codec.MetadataEncryptionKeyID]))

	err = dc2.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "billing"}).FromPayload(p, &card)
	fmt.Println("other namespace:", errors.Is(err, codec.ErrNamespaceMismatch))
	fmt.Println(ring)
	// Output:
	// encoding: binary/encrypted
	// key id: 2024-01
	// decoded: 4111 1111 1111 1111
	// new key id: 2024-07
	// other namespace: true
	// StaticKeyring{primary: "2024-01", keys: ["2024-01"]}
}

// ExampleParseKeyring loads a keyring from a spec such as an environment variable holds;
// "*" marks the primary key.
func ExampleParseKeyring() {
	spec := "old:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,*new:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
	ring, err := codec.ParseKeyring(spec)
	if err != nil {
		panic(err)
	}
	fmt.Println(ring.PrimaryKeyID(), ring.KeyIDs())

	_, err = codec.ParseKeyring("k1:bm90IGEga2V5")
	fmt.Println(err)
	// Output:
	// new [new old]
	// payloadkit: invalid keyring: entry 1 (key "k1"): key is 9 bytes, want 32
}
