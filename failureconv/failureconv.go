package failureconv

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// DefaultPublicMessage is the message history shows in place of an encoded failure message.
// It is the message the Temporal SDKs write, so tools that recognise encoded failures keep working.
const DefaultPublicMessage = "Encoded failure"

// DefaultMaxStackTraceSize is the stack trace size, in bytes, kept by StackTracesTrim when
// Options.MaxStackTraceSize is zero.
const DefaultMaxStackTraceSize = 4 << 10

// StackTraceMode says what happens to failure stack traces.
type StackTraceMode string

// Stack trace modes.
const (
	// StackTracesKeep keeps stack traces whole. The default.
	StackTracesKeep StackTraceMode = "keep"
	// StackTracesTrim keeps at most Options.MaxStackTraceSize bytes of each stack trace, cut at a
	// line break, followed by a line saying how many bytes were trimmed.
	StackTracesTrim StackTraceMode = "trim"
	// StackTracesDrop removes stack traces.
	StackTracesDrop StackTraceMode = "drop"
)

// ErrInvalidOptions is returned (wrapped) by New when Options are invalid.
var ErrInvalidOptions = errors.New("failureconv: invalid options")

// ErrNotDecoded is returned (wrapped) by Converter.Decode when encoded attributes could not be decoded.
var ErrNotDecoded = errors.New("failureconv: encoded failure attributes not decoded")

// Options configure the failure converter. The zero value is valid.
type Options struct {
	// EncodeAttributes moves message and stack trace into an encoded payload that passes through
	// the DataConverter's codecs. Defaults to true when encryption is on, false otherwise.
	// Failures with encoded attributes are decoded whatever this says.
	EncodeAttributes *bool

	// PublicMessage is the message history shows for an encoded failure. Defaults to DefaultPublicMessage.
	PublicMessage string

	// StackTraces says what happens to stack traces of failures sent by this converter.
	// Defaults to StackTracesKeep.
	StackTraces StackTraceMode

	// MaxStackTraceSize is the number of bytes of each stack trace StackTracesTrim keeps.
	// Defaults to DefaultMaxStackTraceSize. Negative values, and values set with another
	// StackTraces mode, are rejected.
	MaxStackTraceSize int
}

// Converter is a converter.FailureConverter built on the Temporal SDK's default failure
// converter. Application error details, cancellation details and heartbeat details go through
// its DataConverter as they do in the SDK; in addition, when attributes are encoded, each
// failure's message and stack trace are moved into Failure.EncodedAttributes, a payload made by
// the same DataConverter (so it is compressed, encrypted and offloaded like any other payload)
// in the format every Temporal SDK and the Temporal UI understand.
//
// Unlike the SDK's default, Converter implements converter.FailureConverterWithSerializationContext
// and passes the serialization context on to its DataConverter, so codecs see the namespace of
// the failures they encode and decode.
//
// Converter never mutates the failures or errors it is given. It is safe for concurrent use.
type Converter struct {
	base    converter.DataConverter // as given, without serialization context
	dc      converter.DataConverter // transfer aware, with serialization context when one was given
	inner   *temporal.DefaultFailureConverter
	encode  bool
	public  string
	mode    StackTraceMode
	maxSize int
}

var _ converter.FailureConverterWithSerializationContext = (*Converter)(nil)

// New returns a failure converter on dc (nil means the SDK's default DataConverter). opts may be
// nil; encryptionOn gives the default of Options.EncodeAttributes.
func New(dc converter.DataConverter, opts *Options, encryptionOn bool) (*Converter, error) {
	if dc == nil {
		dc = converter.GetDefaultDataConverter()
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	c := &Converter{base: dc, encode: encryptionOn, public: o.PublicMessage, mode: o.StackTraces, maxSize: o.MaxStackTraceSize}
	if o.EncodeAttributes != nil {
		c.encode = *o.EncodeAttributes
	}
	if c.public == "" {
		c.public = DefaultPublicMessage
	}
	if !utf8.ValidString(c.public) {
		return nil, fmt.Errorf("%w: PublicMessage is not valid UTF-8", ErrInvalidOptions)
	}
	switch c.mode {
	case "":
		c.mode = StackTracesKeep
	case StackTracesKeep, StackTracesTrim, StackTracesDrop:
	default:
		return nil, fmt.Errorf("%w: StackTraces %q: allowed values are %q, %q and %q",
			ErrInvalidOptions, c.mode, StackTracesKeep, StackTracesTrim, StackTracesDrop)
	}
	switch {
	case c.maxSize < 0:
		return nil, fmt.Errorf("%w: MaxStackTraceSize %d is negative", ErrInvalidOptions, c.maxSize)
	case c.maxSize > 0 && c.mode != StackTracesTrim:
		return nil, fmt.Errorf("%w: MaxStackTraceSize is set but StackTraces is %q; set StackTraces to %q",
			ErrInvalidOptions, c.mode, StackTracesTrim)
	case c.maxSize == 0:
		c.maxSize = DefaultMaxStackTraceSize
	}
	c.setDataConverter(dc)
	return c, nil
}

func (c *Converter) setDataConverter(dc converter.DataConverter) {
	c.dc = converter.MakeTransferAware(dc)
	c.inner = temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: c.dc})
}

// EncodesAttributes reports whether the converter moves messages and stack traces into encoded attributes.
func (c *Converter) EncodesAttributes() bool { return c.encode }

// WithSerializationContext returns a Converter whose DataConverter (for attributes and details
// alike) is the original DataConverter given ctx through converter.WithDataConverterSerializationContext.
func (c *Converter) WithSerializationContext(ctx converter.SerializationContext) converter.FailureConverter {
	n := *c
	n.setDataConverter(converter.WithDataConverterSerializationContext(c.base, ctx))
	return &n
}

// ErrorToFailure converts err to a Failure, applying the stack trace mode and, when attributes
// are encoded, moving the message and stack trace of every failure in the cause chain into
// encoded attributes. Failures that already carry encoded attributes are left as they are.
//
// If the DataConverter fails to encode the attributes, the failure is sent with the public
// message, the reason and no stack trace: a message is never sent in plain text because its
// encoding failed.
func (c *Converter) ErrorToFailure(err error) *failurepb.Failure {
	f := c.inner.ErrorToFailure(err)
	if f == nil {
		return nil
	}
	// The SDK returns the failure an error was decoded from as is; work on a copy.
	f = proto.Clone(f).(*failurepb.Failure)
	for n := f; n != nil; n = n.GetCause() {
		if n.GetEncodedAttributes() != nil {
			continue
		}
		n.StackTrace = c.stackTrace(n.GetStackTrace())
		if c.encode {
			c.encodeAttributes(n)
		}
	}
	return f
}

// attributes is the encoded form of a failure's message and stack trace, the one every Temporal SDK uses.
type attributes struct {
	Message    string `json:"message"`
	StackTrace string `json:"stack_trace"`
}

func (c *Converter) encodeAttributes(f *failurepb.Failure) {
	p, err := c.dc.ToPayload(attributes{Message: f.GetMessage(), StackTrace: f.GetStackTrace()})
	if err != nil {
		f.Message = fmt.Sprintf("%s (failureconv: encoding failure attributes: %v)", c.public, err)
		f.StackTrace = ""
		return
	}
	f.EncodedAttributes = p
	f.Message = c.public
	f.StackTrace = ""
}

func (c *Converter) stackTrace(s string) string {
	switch c.mode {
	case StackTracesDrop:
		return ""
	case StackTracesTrim:
		return trimStackTrace(s, c.maxSize)
	default:
		return s
	}
}

// trimStackTrace keeps at most max bytes of s, cut at the last line break within them (or at a
// rune boundary when there is none), followed by a line saying how many bytes were trimmed.
func trimStackTrace(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := s[:max]
	if i := strings.LastIndexByte(cut, '\n'); i > 0 {
		cut = cut[:i]
	} else {
		for len(cut) > 0 && !utf8.RuneStart(s[len(cut)]) {
			cut = cut[:len(cut)-1]
		}
	}
	return fmt.Sprintf("%s\n[failureconv: %d bytes of stack trace trimmed]", cut, len(s)-len(cut))
}

// FailureToError converts f to an error, first restoring the message and stack trace of every
// failure in the cause chain whose attributes are encoded. Failures without encoded attributes
// (from converters that do not encode them) are converted as the SDK does. When attributes
// cannot be decoded (a missing key, a namespace mismatch), the failure keeps its encoded
// attributes and its message says why they were not decoded.
func (c *Converter) FailureToError(f *failurepb.Failure) error {
	if f == nil {
		return nil
	}
	d, _ := c.Decode(f)
	return c.inner.FailureToError(d)
}

// Decode returns a copy of f in which the message and stack trace of every failure in the
// cause chain with encoded attributes are restored and the encoded attributes removed. f is not
// modified. Attributes that cannot be decoded are left in place, the message of their failure
// gets the reason appended, and the returned error (wrapping ErrNotDecoded) lists them all.
func (c *Converter) Decode(f *failurepb.Failure) (*failurepb.Failure, error) {
	if f == nil {
		return nil, nil
	}
	d := proto.Clone(f).(*failurepb.Failure)
	var errs []error
	depth := 0
	for n := d; n != nil; n = n.GetCause() {
		if p := n.GetEncodedAttributes(); p != nil {
			var a attributes
			if err := c.dc.FromPayload(p, &a); err != nil {
				err = fmt.Errorf("%w [cause depth=%d]: %w", ErrNotDecoded, depth, err)
				n.Message = fmt.Sprintf("%s (%v)", n.GetMessage(), err)
				errs = append(errs, err)
			} else {
				n.Message = a.Message
				n.StackTrace = a.StackTrace
				n.EncodedAttributes = nil
			}
		}
		depth++
	}
	return d, errors.Join(errs...)
}
