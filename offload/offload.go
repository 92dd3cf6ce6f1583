package offload

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/converter"
)

// Store holds offloaded payload bytes under content-addressed keys.
type Store interface {
	// Name identifies the store in claims.
	Name() string
	Put(ctx context.Context, key string, data []byte) error
	Get(ctx context.Context, key string) ([]byte, error)
	Exists(ctx context.Context, key string) (bool, error)
}

// Mode selects where offloading happens.
type Mode string

const (
	// ModeCodec offloads in a payload codec (default): works in clients, workers, testsuite tests and the Codec Server.
	ModeCodec Mode = "codec"
	// ModeExternalStorage offloads through the Temporal SDK's experimental ExternalStorage.
	ModeExternalStorage Mode = "external-storage"
)

// DefaultThreshold is the encoded payload size, in bytes, above which payloads are offloaded (256 KiB).
const DefaultThreshold = 256 << 10

// Options configure the offload stage.
type Options struct {
	// Store receives offloaded payloads. Required.
	Store Store
	// Threshold in bytes. Defaults to DefaultThreshold.
	Threshold int
	// Mode defaults to ModeCodec.
	Mode Mode
	// OnObject, if set, is called after each store operation (the Kit sets it to record
	// telemetry). It must be fast and safe for concurrent use.
	OnObject func(ObjectEvent)
}

// ObjectEvent reports one store operation of the offload stage.
type ObjectEvent struct {
	// Operation is "put", "get" or "deduplicated" (a put skipped because the object existed).
	Operation string
	// Key is the object key.
	Key string
	// Bytes is the object size.
	Bytes int64
	// Err is the operation's error, if any.
	Err error
}

// NewCodec returns the claim-check codec for opts.
func NewCodec(opts *Options) (converter.PayloadCodec, error) {
	return nil, fmt.Errorf("payloadkit: offload codec not implemented yet")
}

// NewExternalStorage returns the SDK ExternalStorage configuration for opts (ModeExternalStorage).
func NewExternalStorage(opts *Options) (converter.ExternalStorage, error) {
	return converter.ExternalStorage{}, fmt.Errorf("payloadkit: external storage not implemented yet")
}
