// Package payloadkit makes Temporal payloads private, small and observable.
//
// One Options value builds a Kit holding everything a Temporal client, worker or testsuite test
// needs: a DataConverter whose codecs compress (zstd by default), encrypt (AES-256-GCM envelope
// encryption with data keys from AWS KMS or a static keyring) and offload large payloads to S3
// (claim check), a FailureConverter that encodes failure messages and stack traces through the
// same codecs, and interceptors that trace codec latency and payload sizes with OpenTelemetry.
//
//	kit, err := payloadkit.New(ctx, payloadkit.Options{
//		Encryption: &codec.EncryptionOptions{Keys: provider},
//		Offload:    &offload.Options{Store: store},
//	})
//	c, err := client.Dial(kit.ClientOptions(client.Options{HostPort: hostPort}))
//	w := worker.New(c, queue, kit.WorkerOptions(worker.Options{}))
//
// Values become payloads through the SDK's default payload converters, or through those given
// in Options.PayloadConverter (for example protobuf binary and a JSON encoder of your own). On the
// way out payloads then pass compression, then encryption, then offload; decoding runs the chain
// backwards. Every stage passes through payloads it does not own, so histories mixing plain,
// SDK-zlib and payloadkit payloads keep decoding.
package payloadkit
