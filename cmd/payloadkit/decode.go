package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/internal/cliconfig"
	"github.com/payloadkit/payloadkit/offload"

	"github.com/payloadkit/payloadkit/internal/pipeline"
)

type decodeFlags struct {
	src    sourceFlags
	cfg    *cliconfig.Flags
	output string
	width  int
}

const sourceHelp = `Input, exactly one of:
  --history FILE|-     a history exported with 'temporal workflow show -o json'
  --payloads FILE|-    a Codec Server request body {"payloads":[...]}
  --workflow-id ID     a history fetched from --address (TEMPORAL_ADDRESS) in
                       --namespace, with --run-id, --tls, --tls-cert-path,
                       --tls-key-path, --tls-ca-path, --tls-server-name and
                       --api-key (TEMPORAL_API_KEY) as in the Temporal CLI

Configuration: --namespace picks the namespace's pipeline from --config (the
Codec Server's JSON file) or gets the pipeline flags (--keyring-file,
--kms-key-id, --offload-dir, --s3-bucket, ...); every flag of the
configuration can also be set as ` + cliconfig.EnvPrefix + `<FLAG>, for example
` + cliconfig.EnvPrefix + `KEYRING_FILE. AWS credentials come from the AWS default chain.`

func newDecodeCommand(s streams) *cobra.Command {
	f := &decodeFlags{}
	cmd := &cobra.Command{
		Use:   "decode (--history FILE | --payloads FILE | --workflow-id ID --address HOST:PORT) [flags]",
		Short: "Print a history, or Codec Server payloads, with every payload decoded",
		Long: `decode undoes the payloadkit codecs (offload, encryption, compression) on every
payload of a workflow history or of a Codec Server request body, and prints
the result: -o table (default) lists one payload a line with its event, field,
encoding and value; -o json prints the history as 'temporal workflow show
-o json' would with a codec server (JSON payloads shown as JSON), or, for
--payloads, the Codec Server's /decode response body.

` + sourceHelp + `

A payload that cannot be decoded (wrong or missing key, missing object,
unknown encoding) is printed as it is and named on standard error with its
event, field and cause.

Exit codes:
  0  every payload decoded
  1  some payload could not be decoded, or the server could not be reached
  2  usage, configuration or input error (unreadable or malformed input)`,
		Example: `  payloadkit decode --history history.json --keyring-file keyring.json
  temporal workflow show -w order-1 -o json | payloadkit decode --history - --config codec.json --namespace orders -o json
  payloadkit decode --address localhost:7233 --namespace orders -w order-1 --config codec.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDecode(cmd, s, f) },
	}
	fs := cmd.Flags()
	f.src.register(fs)
	fs.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	fs.IntVar(&f.width, "width", 120, "table: longest value shown, in characters (0: no limit)")
	f.cfg = cliconfig.Register(fs, cliconfig.PipelineScope)
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// setup reads the configuration and the input of decode and inspect, and returns the pipeline
// of the namespace ns.
func setup(cmd *cobra.Command, s streams, src *sourceFlags, flags *cliconfig.Flags) (p cliconfig.Pipeline, ns string, in *input, err error) {
	src.applyEnv(s.env)
	if err := src.check(); err != nil {
		return p, "", nil, err
	}
	cfg, err := loadConfig(cmd, flags, s.env)
	if err != nil {
		return p, "", nil, err
	}
	ns = flags.Namespace()
	if !flags.NamespaceGiven() && len(cfg.Namespaces) == 1 {
		for n := range cfg.Namespaces {
			ns = n // the only namespace of the file
		}
	}
	if p, err = cfg.PipelineFor(ns); err != nil {
		return p, "", nil, usageErrorf("%w", err)
	}
	if in, err = src.read(cmd.Context(), s, ns); err != nil {
		return p, "", nil, err
	}
	return p, ns, in, nil
}

func runDecode(cmd *cobra.Command, s streams, f *decodeFlags) error {
	if f.output != "table" && f.output != "json" {
		return usageErrorf("--output must be table or json, not %q", f.output)
	}
	if f.width < 0 {
		return usageErrorf("--width must not be negative")
	}
	p, ns, in, err := setup(cmd, s, &f.src, f.cfg)
	if err != nil {
		return err
	}
	kit, err := cliconfig.BuildKit(cmd.Context(), p)
	if err != nil {
		return usageErrorf("building the codecs: %w", err)
	}
	defer func() { _ = kit.Close() }()
	// The namespace's workflow serialization context, as the Codec Server gives it: encryption
	// then checks that each envelope belongs to the namespace (strict decode), and reads what
	// workers of that namespace wrote.
	codecs := pipeline.BindCodecs(kit.Codecs(), converter.WorkflowSerializationContext{Namespace: ns})

	bar := newProgress(s, int64(len(in.items)), "decoding payloads")
	failed := map[*commonpb.Payload]error{}
	var problems []string
	for _, it := range in.items {
		out, err := decodePayload(codecs, it.p)
		bar.add(1)
		if err != nil {
			failed[it.p] = err
			problems = append(problems, fmt.Sprintf("%s: %v", it.loc, err))
			continue
		}
		proto.Reset(it.p)
		proto.Merge(it.p, out)
	}
	bar.done()

	if f.output == "json" {
		err = writeDecodedJSON(s.out, in)
	} else {
		err = writeDecodedTable(s.out, in, failed, f.width)
	}
	if err != nil {
		return &exitError{code: exitProblem, err: fmt.Errorf("writing the output: %w", err)}
	}
	if len(problems) == 0 {
		return nil
	}
	for _, p := range problems {
		fmt.Fprintf(s.err, "payloadkit: %s\n", p)
	}
	return &exitError{code: exitProblem, err: fmt.Errorf("%d of %d payloads of %s could not be decoded", len(problems), len(in.items), in.name)}
}

// knownEncodings are the encodings of the Temporal SDK's default payload converters.
var knownEncodings = map[string]bool{
	converter.MetadataEncodingNil:       true,
	converter.MetadataEncodingBinary:    true,
	converter.MetadataEncodingJSON:      true,
	converter.MetadataEncodingProtoJSON: true,
	converter.MetadataEncodingProto:     true,
}

// decodePayload runs the codecs (in the Codec Server's decode order) on p alone, and checks
// that the result is a payload converter's encoding.
func decodePayload(codecs []converter.PayloadCodec, p *commonpb.Payload) (*commonpb.Payload, error) {
	ps := []*commonpb.Payload{proto.Clone(p).(*commonpb.Payload)}
	for _, c := range codecs {
		var err error
		if ps, err = c.Decode(ps); err != nil {
			return nil, err
		}
		if len(ps) != 1 {
			return nil, fmt.Errorf("a codec returned %d payloads for 1", len(ps))
		}
	}
	out := ps[0]
	enc := encodingOf(out)
	switch {
	case knownEncodings[enc]:
		return out, nil
	case enc == codec.EncodingEncrypted:
		keyID := "?"
		if env, err := codec.ReadEnvelope(out); err == nil {
			keyID = env.KeyID
			if env.Version == 2 {
				// The master key id is in the key object, which is not read here.
				return nil, fmt.Errorf("encrypted in envelope format v2 (key object %s), but no key is configured for this namespace (--keyring-file, --kms-key-id or the namespace's encryption in --config)", env.KeyObjectRefHex())
			}
		}
		return nil, fmt.Errorf("encrypted with master key %q, but no key is configured for this namespace (--keyring-file, --kms-key-id or the namespace's encryption in --config)", keyID)
	case enc == offload.EncodingClaimCheck:
		cl, err := offload.ParseClaim(out)
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("offloaded to store %s (key %s, %d bytes), but no offload store is configured (--offload-dir, --s3-bucket or the namespace's offload in --config)", cl.Store, cl.Key, cl.Size)
	case enc == "":
		return nil, errors.New("payload has no encoding metadata")
	default:
		return nil, fmt.Errorf("unknown encoding %q: not written by a payloadkit codec nor by a Temporal payload converter", enc)
	}
}

// encodingOf returns p's encoding metadata, bounded for messages.
func encodingOf(p *commonpb.Payload) string {
	enc := p.GetMetadata()[converter.MetadataEncoding]
	if len(enc) > 64 {
		enc = append(enc[:64:64], "..."...)
	}
	if !utf8.Valid(enc) {
		return strconv.Quote(string(enc))
	}
	return string(enc)
}

// writeDecodedJSON prints the decoded history with JSON payloads in shorthand, or the decoded
// request body as the Codec Server answers it.
func writeDecodedJSON(w io.Writer, in *input) error {
	var data []byte
	var err error
	if in.history != nil {
		data, err = temporalproto.CustomJSONMarshalOptions{
			Indent:   "  ",
			Metadata: map[string]any{commonpb.EnablePayloadShorthandMetadataKey: true},
		}.Marshal(in.history)
	} else {
		data, err = temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(in.body)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}

// writeDecodedTable prints one payload a line.
func writeDecodedTable(w io.Writer, in *input, failed map[*commonpb.Payload]error, width int) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if in.history != nil {
		fmt.Fprintln(tw, "EVENT\tTYPE\tFIELD\tENCODING\tVALUE")
	} else {
		fmt.Fprintln(tw, "FIELD\tENCODING\tVALUE")
	}
	for _, it := range in.items {
		val := "<not decoded>"
		if failed[it.p] == nil {
			val = truncate(renderValue(it.p), width)
		}
		if in.history != nil {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", it.loc.eventID, it.loc.eventType, it.loc.path, encodingOf(it.p), val)
		} else {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", it.loc.path, encodingOf(it.p), val)
		}
	}
	return tw.Flush()
}

// renderValue shows a decoded payload on one line.
func renderValue(p *commonpb.Payload) string {
	data := p.GetData()
	switch encodingOf(p) {
	case converter.MetadataEncodingNil:
		return "null"
	case converter.MetadataEncodingJSON, converter.MetadataEncodingProtoJSON:
		var b bytes.Buffer
		if json.Compact(&b, data) == nil {
			return b.String()
		}
		return strconv.Quote(string(data))
	case converter.MetadataEncodingBinary:
		return strconv.Quote(string(data))
	case converter.MetadataEncodingProto:
		return fmt.Sprintf("<protobuf %s, %d bytes>", p.GetMetadata()[converter.MetadataMessageType], len(data))
	}
	return fmt.Sprintf("<%d bytes>", len(data))
}

// truncate shortens s to width runes (0: no limit); tabs and newlines never reach the table.
func truncate(s string, width int) string {
	s = strings.NewReplacer("\t", `\t`, "\n", `\n`, "\r", `\r`).Replace(s)
	if width <= 0 || utf8.RuneCountInString(s) <= width {
		return s
	}
	r := []rune(s)
	return string(r[:max(width-3, 1)]) + "..."
}
