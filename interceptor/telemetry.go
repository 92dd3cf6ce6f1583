package interceptor

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/converter"
	sdkinterceptor "go.temporal.io/sdk/interceptor"
)

// ScopeName is the OpenTelemetry instrumentation scope name of payloadkit.
const ScopeName = "github.com/payloadkit/payloadkit"

// Options configure telemetry. The zero value records with the OpenTelemetry global providers.
type Options struct {
	// TracerProvider defaults to otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider defaults to otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
}

// Telemetry is the instrumentation built from Options.
type Telemetry struct{ opts Options }

// New builds Telemetry from opts (nil means defaults).
func New(opts *Options) (*Telemetry, error) {
	t := &Telemetry{}
	if opts != nil {
		t.opts = *opts
	}
	return t, nil
}

// WrapCodec returns c wrapped so that each call is traced as stage.
func (t *Telemetry) WrapCodec(stage string, c converter.PayloadCodec) converter.PayloadCodec {
	return c
}

// DataConverter builds the Kit's DataConverter from parent and codecs (in NewCodecDataConverter order).
func (t *Telemetry) DataConverter(parent converter.DataConverter, codecs []converter.PayloadCodec) converter.DataConverter {
	return converter.NewCodecDataConverter(parent, codecs...)
}

// ClientInterceptors returns the client interceptors telemetry adds.
func (t *Telemetry) ClientInterceptors() []sdkinterceptor.ClientInterceptor { return nil }

// WorkerInterceptors returns the worker interceptors telemetry adds.
func (t *Telemetry) WorkerInterceptors() []sdkinterceptor.WorkerInterceptor { return nil }
