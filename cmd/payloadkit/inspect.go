package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/internal/cliconfig"
	"github.com/payloadkit/payloadkit/offload"
)

type inspectFlags struct {
	src    sourceFlags
	cfg    *cliconfig.Flags
	output string
}

// record is what inspect reports of one payload.
type record struct {
	EventID      int64  `json:"event_id,omitempty"`
	EventType    string `json:"event_type,omitempty"`
	Field        string `json:"field"`
	Encoding     string `json:"encoding"`
	PayloadBytes int    `json:"payload_bytes"`
	DataBytes    int    `json:"data_bytes"`
	KeyID        string `json:"key_id,omitempty"`
	Cipher       string `json:"cipher,omitempty"`
	// KeyObject is, for envelope format v2, the key of the key object the payload refers to
	// (<prefix>/keys/<SHA-256 reference>); KeyID and Context come from it when it was read.
	KeyObject string            `json:"key_object,omitempty"`
	Context   map[string]string `json:"encryption_context,omitempty"`
	Claim     *claimRecord      `json:"claim,omitempty"`
	Error     string            `json:"error,omitempty"`
}

// claimRecord is a claim check: where the payload was offloaded.
type claimRecord struct {
	Store  string `json:"store"`
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Encoding is the offloaded payload's encoding, when the object was read (store configured).
	Encoding string `json:"encoding,omitempty"`
}

// keyTotal sums the payloads of one master key id ("" for unencrypted).
type keyTotal struct {
	KeyID    string `json:"key_id"`
	Payloads int    `json:"payloads"`
	// Bytes are the payload bytes in history, plus the object bytes of offloaded payloads.
	Bytes int64 `json:"bytes"`
	// Offloaded counts the payloads of the key stored as claim checks.
	Offloaded int `json:"offloaded"`
}

// inspectReport is the JSON output of inspect.
type inspectReport struct {
	Source    string     `json:"source"`
	Payloads  []record   `json:"payloads"`
	Keys      []keyTotal `json:"keys"`
	Total     keyTotal   `json:"total"`
	Malformed int        `json:"malformed"`
}

// Key id columns of payloads without a key id: unencrypted, or offloaded to an object that was
// not read (no store configured).
const (
	unencrypted     = "(none)"
	notReadClaim    = "(offloaded, not read)"
	notReadV2Object = "(v2, key object not read)"
)

func newInspectCommand(s streams) *cobra.Command {
	f := &inspectFlags{}
	cmd := &cobra.Command{
		Use:   "inspect (--history FILE | --payloads FILE | --workflow-id ID --address HOST:PORT) [flags]",
		Short: "Audit payloads without keys: encodings, sizes, master key ids, claims, totals per key",
		Long: `inspect lists every payload with what can be read without any key: its
encoding, its size (whole payload and data), and for encrypted payloads the
master key id, cipher version and encryption context from the envelope
header; for claim checks the store, object key, size and SHA-256. It then
sums the payloads and bytes per master key id: the audit view of which keys
a history still depends on before a key is retired.

If the namespace's offload store is configured (--offload-dir, --s3-bucket
or --config), inspect reads each claimed object to report the key id of the
offloaded payload; without it, claims are summed under "(offloaded, not
read)". Payloads in envelope format v2 hold only the reference of a key object
(shown in the KEY-OBJECT column): with the store, inspect reads each key object
once (under the offload prefix, <prefix>/keys/<reference>) to report its master
key id and encryption context; without it, they are summed under "(v2, key
object not read)". It never needs, loads or asks for encryption keys.
The header is not authenticated without the key: inspect reports what the
payload claims.

` + sourceHelp + `

Exit codes:
  0  every payload was read
  1  some payload is malformed (bad envelope header or claim, unreadable object
     or key object)
     or the server could not be reached
  2  usage, configuration or input error`,
		Example: `  payloadkit inspect --history history.json
  payloadkit inspect --address localhost:7233 -w order-1 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runInspect(cmd, s, f) },
	}
	fs := cmd.Flags()
	f.src.register(fs)
	fs.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	f.cfg = cliconfig.Register(fs, cliconfig.PipelineScope)
	for _, name := range []string{"compression", "keyring-file", "kms-key-id", "kms-region", "kms-endpoint", "offload-threshold"} {
		_ = fs.MarkHidden(name) // keys are never used; the flags exist: cannot fail
	}
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runInspect(cmd *cobra.Command, s streams, f *inspectFlags) error {
	if f.output != "table" && f.output != "json" {
		return usageErrorf("--output must be table or json, not %q", f.output)
	}
	p, _, in, err := setup(cmd, s, &f.src, f.cfg)
	if err != nil {
		return err
	}
	var claims converter.PayloadCodec
	var keys *keyObjects
	if p.Offload != nil {
		store, err := cliconfig.BuildStore(cmd.Context(), p.Offload)
		if err != nil {
			return usageErrorf("offload store: %w", err)
		}
		c, err := offload.NewCodec(&offload.Options{Store: store, Prefix: p.Offload.Prefix})
		if err != nil {
			return usageErrorf("offload store: %w", err)
		}
		claims = c
		keys = &keyObjects{store: store, prefix: p.Offload.Prefix, read: map[[sha256.Size]byte]keyObjectRead{}}
		if keys.prefix == "" {
			keys.prefix = codec.DefaultKeyObjectPrefix
		}
	}
	rep := inspectReport{Source: in.name, Payloads: []record{}}
	totals := map[string]*keyTotal{}
	bar := newProgress(s, int64(len(in.items)), "inspecting payloads")
	for _, it := range in.items {
		r := inspectPayload(cmd.Context(), it, claims, keys)
		bar.add(1)
		if r.Error != "" {
			rep.Malformed++
		}
		id := r.KeyID
		switch {
		case id == "" && r.Claim != nil && r.Claim.Encoding == "":
			id = notReadClaim
		case id == "" && r.KeyObject != "":
			id = notReadV2Object
		case id == "":
			id = unencrypted
		}
		t := totals[id]
		if t == nil {
			t = &keyTotal{KeyID: id}
			totals[id] = t
		}
		n := int64(r.PayloadBytes)
		if r.Claim != nil {
			n += r.Claim.Size
			t.Offloaded++
			rep.Total.Offloaded++
		}
		t.Payloads++
		t.Bytes += n
		rep.Total.Payloads++
		rep.Total.Bytes += n
		rep.Payloads = append(rep.Payloads, r)
	}
	bar.done()
	for _, t := range totals {
		rep.Keys = append(rep.Keys, *t)
	}
	sort.Slice(rep.Keys, func(i, j int) bool { return rep.Keys[i].KeyID < rep.Keys[j].KeyID })
	rep.Total.KeyID = "TOTAL"

	if f.output == "json" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			_, err = fmt.Fprintf(s.out, "%s\n", b)
		}
		if err != nil {
			return &exitError{code: exitProblem, err: fmt.Errorf("writing the output: %w", err)}
		}
	} else if err := writeInspectTable(s.out, &rep); err != nil {
		return &exitError{code: exitProblem, err: fmt.Errorf("writing the output: %w", err)}
	}
	if rep.Malformed > 0 {
		for _, r := range rep.Payloads {
			if r.Error != "" {
				fmt.Fprintf(s.err, "payloadkit: %s: %s\n", location{eventID: r.EventID, eventType: r.EventType, path: r.Field}, r.Error)
			}
		}
		return &exitError{code: exitProblem, err: fmt.Errorf("%d of %d payloads of %s are malformed", rep.Malformed, len(rep.Payloads), in.name)}
	}
	return nil
}

// keyObjects reads the key objects of v2 payloads from the offload store, each once.
type keyObjects struct {
	store  offload.Store
	prefix string
	read   map[[sha256.Size]byte]keyObjectRead
}

type keyObjectRead struct {
	env codec.Envelope
	err error
}

// fill completes the v2 envelope env from its key object.
func (k *keyObjects) fill(ctx context.Context, env *codec.Envelope) error {
	r, ok := k.read[env.KeyObjectRef]
	if !ok {
		r.env = *env
		r.err = k.get(ctx, &r.env)
		k.read[env.KeyObjectRef] = r
	}
	if r.err != nil {
		return r.err
	}
	*env = r.env
	return nil
}

func (k *keyObjects) get(ctx context.Context, env *codec.Envelope) error {
	key := codec.KeyObjectKey(k.prefix, env.KeyObjectRef)
	ctx, cancel := context.WithTimeout(ctx, offload.DefaultTimeout)
	defer cancel()
	var obj []byte
	var err error
	if bg, ok := k.store.(offload.BoundedGetter); ok {
		obj, err = bg.GetBounded(ctx, key, int64(codec.MaxKeyObjectSize))
	} else {
		obj, err = k.store.Get(ctx, key)
	}
	if err != nil {
		return fmt.Errorf("reading the key object: %w", err)
	}
	if err := env.WithKeyObject(obj); err != nil {
		return fmt.Errorf("key object %s: %w", key, err)
	}
	return nil
}

// inspectPayload reads what p says about itself; claims, when set, resolves claim checks, and
// keys, when set, reads the key objects of v2 payloads.
func inspectPayload(ctx context.Context, it item, claims converter.PayloadCodec, keys *keyObjects) record {
	p := it.p
	r := record{EventID: it.loc.eventID, EventType: it.loc.eventType, Field: it.loc.path,
		Encoding: encodingOf(p), PayloadBytes: proto.Size(p), DataBytes: len(p.GetData())}
	if offload.IsClaim(p) {
		cl, err := offload.ParseClaim(p)
		if err != nil {
			r.Error = err.Error()
			return r
		}
		r.Claim = &claimRecord{Store: cl.Store, Key: cl.Key, Size: cl.Size, SHA256: cl.SHA256}
		if claims == nil {
			return r
		}
		out, err := claims.Decode([]*commonpb.Payload{p})
		if err != nil {
			r.Error = fmt.Sprintf("reading the offloaded object: %v", err)
			return r
		}
		p = out[0]
		r.Claim.Encoding = encodingOf(p)
	}
	if encodingOf(p) == codec.EncodingEncrypted {
		env, err := codec.ReadEnvelope(p)
		if err != nil {
			r.Error = fmt.Sprintf("encryption header: %v", err)
			return r
		}
		if env.Version == 2 {
			r.Cipher = codec.CipherAES256GCMCommitV2
			prefix := codec.DefaultKeyObjectPrefix
			if keys != nil {
				prefix = keys.prefix
			}
			r.KeyObject = codec.KeyObjectKey(prefix, env.KeyObjectRef)
			if keys != nil {
				if err := keys.fill(ctx, &env); err != nil {
					r.Error = err.Error()
					return r
				}
				r.KeyID = env.KeyID
				r.Context = env.Context
			}
			return r
		}
		r.KeyID = env.KeyID
		r.Context = env.Context
		r.Cipher = string(p.GetMetadata()[codec.MetadataEncryptionCipher])
		if md := string(p.GetMetadata()[codec.MetadataEncryptionKeyID]); md != env.KeyID {
			r.Error = fmt.Sprintf("metadata %s %q differs from the header's key id %q", codec.MetadataEncryptionKeyID, md, env.KeyID)
		}
	}
	return r
}

func writeInspectTable(w io.Writer, rep *inspectReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT\tFIELD\tENCODING\tBYTES\tKEY-ID\tCIPHER\tKEY-OBJECT\tCONTEXT\tCLAIM")
	for _, r := range rep.Payloads {
		ev := "-"
		if r.EventID != 0 {
			ev = fmt.Sprint(r.EventID)
		}
		claim := "-"
		if c := r.Claim; c != nil {
			claim = fmt.Sprintf("store=%s key=%s size=%d sha256=%s", c.Store, c.Key, c.Size, c.SHA256[:12])
		}
		keyID, cipher, ctx := orDash(r.KeyID), orDash(r.Cipher), "-"
		if len(r.Context) > 0 {
			ks := make([]string, 0, len(r.Context))
			for k, v := range r.Context {
				ks = append(ks, k+"="+v)
			}
			sort.Strings(ks)
			ctx = strings.Join(ks, ",")
		}
		if r.Error != "" {
			keyID = "MALFORMED"
		}
		keyObject := "-"
		if r.KeyObject != "" {
			// The reference identifies the key object; its 12 first hex digits as for claims.
			keyObject = r.KeyObject[strings.LastIndexByte(r.KeyObject, '/')+1:][:12]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", ev, r.Field, r.Encoding, r.PayloadBytes, truncate(keyID, 100), cipher, keyObject, truncate(ctx, 80), claim)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY-ID\tPAYLOADS\tOFFLOADED\tBYTES")
	for _, t := range append(rep.Keys, rep.Total) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", truncate(t.KeyID, 100), t.Payloads, t.Offloaded, t.Bytes)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
