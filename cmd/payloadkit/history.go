package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/payloadkit/payloadkit/offload"
)

// defaultMaxInputBytes bounds history and payload files read by decode and inspect.
const defaultMaxInputBytes = 256 << 20

// sourceFlags select where decode and inspect read payloads from: an exported history (file or
// standard input), a Codec Server request body, or a history fetched from a Temporal server.
type sourceFlags struct {
	history, payloads                     string
	maxInputBytes                         int64
	address, workflowID, runID, apiKey    string
	tls, tlsNoVerify                      bool
	tlsCert, tlsKey, tlsCA, tlsServerName string
	timeout                               time.Duration
}

func (f *sourceFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.history, "history", "", "exported history file (temporal workflow show -o json), - for standard input")
	fs.StringVar(&f.payloads, "payloads", "", `Codec Server request body file ({"payloads":[...]}), - for standard input`)
	fs.Int64Var(&f.maxInputBytes, "max-input-bytes", defaultMaxInputBytes, "largest --history or --payloads input in bytes")
	fs.StringVar(&f.address, "address", "", "Temporal frontend host:port to fetch the history from (env TEMPORAL_ADDRESS)")
	fs.StringVarP(&f.workflowID, "workflow-id", "w", "", "workflow id of the history to fetch")
	fs.StringVarP(&f.runID, "run-id", "r", "", "run id of the history to fetch (default: the latest run)")
	fs.StringVar(&f.apiKey, "api-key", "", "API key sent as a bearer token (env TEMPORAL_API_KEY; prefer the variable: flags show in ps)")
	fs.BoolVar(&f.tls, "tls", false, "connect with TLS (implied by the other --tls-* flags and --api-key)")
	fs.StringVar(&f.tlsCert, "tls-cert-path", "", "client certificate file (PEM) for mutual TLS")
	fs.StringVar(&f.tlsKey, "tls-key-path", "", "client key file (PEM) for mutual TLS")
	fs.StringVar(&f.tlsCA, "tls-ca-path", "", "CA certificates file (PEM) verifying the server")
	fs.StringVar(&f.tlsServerName, "tls-server-name", "", "server name verified in the server's certificate")
	fs.BoolVar(&f.tlsNoVerify, "tls-disable-host-verification", false, "do not verify the server's certificate (testing only)")
	fs.DurationVar(&f.timeout, "timeout", time.Minute, "bound of the whole fetch from the server")
}

// applyEnv fills --address and --api-key from TEMPORAL_ADDRESS and TEMPORAL_API_KEY.
func (f *sourceFlags) applyEnv(getenv envGetter) {
	if f.address == "" {
		f.address = getenv("TEMPORAL_ADDRESS")
	}
	if f.apiKey == "" {
		f.apiKey = getenv("TEMPORAL_API_KEY")
	}
}

// check validates the choice of source.
func (f *sourceFlags) check() error {
	n := 0
	for _, set := range []bool{f.history != "", f.payloads != "", f.workflowID != ""} {
		if set {
			n++
		}
	}
	switch {
	case n != 1:
		return usageErrorf("give exactly one of --history FILE, --payloads FILE and --workflow-id ID (with --address)")
	case f.workflowID != "" && f.address == "":
		return usageErrorf("--workflow-id needs --address (or TEMPORAL_ADDRESS)")
	case f.workflowID == "" && f.runID != "":
		return usageErrorf("--run-id needs --workflow-id")
	case f.maxInputBytes <= 0:
		return usageErrorf("--max-input-bytes must be positive")
	case f.timeout <= 0:
		return usageErrorf("--timeout must be positive")
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return usageErrorf("--tls-cert-path and --tls-key-path go together")
	}
	return nil
}

// location names a payload in its history (or request body).
type location struct {
	eventID   int64  // 0 for a payload of a request body
	eventType string // "WorkflowExecutionStarted", empty for a request body
	path      string // protobuf JSON path within the event: "workflowExecutionStartedEventAttributes.input.payloads[0]"
}

func (l location) String() string {
	if l.eventID == 0 {
		return l.path
	}
	return fmt.Sprintf("event %d (%s) %s", l.eventID, l.eventType, l.path)
}

// item is one payload found in the input.
type item struct {
	loc location
	p   *commonpb.Payload
}

// input is what was read: a history or a request body, and its payloads in order.
type input struct {
	name    string // file name, "standard input" or "workflow <id> run <id>"
	history *historypb.History
	body    *commonpb.Payloads
	items   []item
}

// read reads the source the flags select; namespace is used to fetch from a server.
func (f *sourceFlags) read(ctx context.Context, s streams, namespace string) (*input, error) {
	switch {
	case f.history != "":
		name, h, err := readHistory(f.history, s.in, f.maxInputBytes, "--history", "--max-input-bytes")
		if err != nil {
			return nil, err
		}
		return &input{name: name, history: h, items: historyItems(h)}, nil
	case f.payloads != "":
		name, data, err := readInput(f.payloads, s.in, f.maxInputBytes, "--payloads", "--max-input-bytes")
		if err != nil {
			return nil, err
		}
		body := &commonpb.Payloads{}
		if err := (temporalproto.CustomJSONUnmarshalOptions{}).Unmarshal(data, body); err != nil {
			return nil, usageErrorf(`payloads %s is not a Codec Server body {"payloads":[{"metadata":{...},"data":"..."}]}: %w`, name, err)
		}
		in := &input{name: name, body: body}
		for i, p := range body.GetPayloads() {
			in.items = append(in.items, item{loc: location{path: "payloads[" + strconv.Itoa(i) + "]"}, p: p})
		}
		return in, nil
	default:
		h, err := f.fetch(ctx, s, namespace)
		if err != nil {
			return nil, err
		}
		return &input{name: "workflow " + f.workflowID, history: h, items: historyItems(h)}, nil
	}
}

// shorthandUnmarshal reads histories in the Temporal JSON format, payloads in full or shorthand.
var shorthandUnmarshal = temporalproto.CustomJSONUnmarshalOptions{
	Metadata: map[string]any{commonpb.EnablePayloadShorthandMetadataKey: true},
}

// readHistory reads and parses the workflow history in JSON (`temporal workflow show -o json`,
// payloads in full or shorthand form) at path ("-": in), at most limit bytes. flag and
// limitFlag name the flags in errors, which are usage errors.
func readHistory(path string, in io.Reader, limit int64, flag, limitFlag string) (name string, h *historypb.History, err error) {
	name, data, err := readInput(path, in, limit, flag, limitFlag)
	if err != nil {
		return name, nil, err
	}
	h = &historypb.History{}
	if err := shorthandUnmarshal.Unmarshal(data, h); err != nil {
		return name, nil, usageErrorf("history %s is not a workflow history in JSON as `temporal workflow show -o json` writes it: %w", name, err)
	}
	if len(h.GetEvents()) == 0 {
		return name, nil, usageErrorf("history %s has no events", name)
	}
	return name, h, nil
}

// readInput reads path ("-": in), at most limit bytes.
func readInput(path string, in io.Reader, limit int64, flag, limitFlag string) (name string, data []byte, err error) {
	name = path
	r := in
	if path == "-" {
		name = "standard input"
	} else {
		file, err := os.Open(path)
		if err != nil {
			return name, nil, usageErrorf("%s: %w", flag, err)
		}
		defer func() { _ = file.Close() }()
		r = file
	}
	data, err = io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return name, nil, usageErrorf("reading %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return name, nil, usageErrorf("%s is larger than %d bytes (see %s)", name, limit, limitFlag)
	}
	return name, data, nil
}

// tlsConfig builds the client TLS configuration of the flags, nil without TLS.
func (f *sourceFlags) tlsConfig() (*tls.Config, error) {
	if !f.tls && f.tlsCert == "" && f.tlsCA == "" && f.tlsServerName == "" && !f.tlsNoVerify && f.apiKey == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.tlsServerName, InsecureSkipVerify: f.tlsNoVerify} //nolint:gosec // opt-in flag
	if f.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return nil, usageErrorf("--tls-cert-path/--tls-key-path: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if f.tlsCA != "" {
		pem, err := os.ReadFile(f.tlsCA)
		if err != nil {
			return nil, usageErrorf("--tls-ca-path: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageErrorf("--tls-ca-path %s holds no PEM certificate", f.tlsCA)
		}
		c.RootCAs = pool
	}
	return c, nil
}

// fetch reads the history of the workflow from the server, showing progress on a terminal.
func (f *sourceFlags) fetch(ctx context.Context, s streams, namespace string) (*historypb.History, error) {
	tlsCfg, err := f.tlsConfig()
	if err != nil {
		return nil, err
	}
	opts := client.Options{
		HostPort:          f.address,
		Namespace:         namespace,
		ConnectionOptions: client.ConnectionOptions{TLS: tlsCfg},
		Logger:            sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	}
	if f.apiKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(f.apiKey)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, &exitError{code: exitProblem, err: fmt.Errorf("connecting to %s: %w", f.address, err)}
	}
	defer c.Close()
	bar := newProgress(s, -1, "fetching history")
	defer bar.done()
	it := c.GetWorkflowHistory(ctx, f.workflowID, f.runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, &exitError{code: exitProblem, err: fmt.Errorf("fetching the history of workflow %s (namespace %s) from %s: %w", f.workflowID, namespace, f.address, err)}
		}
		h.Events = append(h.Events, ev)
		bar.add(1)
	}
	if len(h.Events) == 0 {
		return nil, &exitError{code: exitProblem, err: errors.New("workflow " + f.workflowID + " has an empty history")}
	}
	return h, nil
}

// historyItems lists every payload of h, event by event.
func historyItems(h *historypb.History) []item {
	var items []item
	for _, ev := range h.GetEvents() {
		t := eventTypeName(ev.GetEventType())
		offload.WalkPayloads(ev, func(path string, p *commonpb.Payload) {
			items = append(items, item{loc: location{eventID: ev.GetEventId(), eventType: t, path: path}, p: p})
		})
	}
	return items
}

// eventTypeName names an event type as the Temporal CLI does: ActivityTaskCompleted.
func eventTypeName(t enumspb.EventType) string {
	s := t.String()
	if !strings.HasPrefix(s, "EVENT_TYPE_") {
		return s
	}
	var b strings.Builder
	for _, w := range strings.Split(strings.TrimPrefix(s, "EVENT_TYPE_"), "_") {
		if w != "" {
			b.WriteString(w[:1] + strings.ToLower(w[1:]))
		}
	}
	return b.String()
}
