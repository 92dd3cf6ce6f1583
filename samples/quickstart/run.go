package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/server/temporaltest"
	"google.golang.org/protobuf/proto"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/codec/awskms"
	"github.com/payloadkit/payloadkit/interceptor"
	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/offload/s3store"
	"github.com/payloadkit/payloadkit/samples/internal/history"
	"github.com/payloadkit/payloadkit/samples/internal/quickstartflow"
)

const taskQueue = "payloadkit-quickstart"

// setup describes where keys and offloaded payloads live.
type setup struct {
	keys  string
	store string
	opts  payloadkit.Options
}

func configure(ctx context.Context, dir string) (setup, error) {
	var s setup
	if keyID := os.Getenv("PAYLOADKIT_KMS_KEY_ID"); keyID != "" {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return s, fmt.Errorf("loading AWS configuration: %w", err)
		}
		client := kms.NewFromConfig(cfg, func(o *kms.Options) {
			if ep := os.Getenv("PAYLOADKIT_KMS_ENDPOINT"); ep != "" {
				o.BaseEndpoint = aws.String(ep)
			}
		})
		p, err := awskms.New(client, keyID)
		if err != nil {
			return s, err
		}
		s.keys = "AWS KMS key " + keyID
		s.opts.Encryption = &codec.EncryptionOptions{Keys: p}
	} else {
		ring, path, err := localKeyring(dir)
		if err != nil {
			return s, err
		}
		s.keys = "static keyring " + path
		s.opts.Encryption = &codec.EncryptionOptions{Keys: ring}
	}

	if bucket := os.Getenv("PAYLOADKIT_S3_BUCKET"); bucket != "" {
		cfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return s, fmt.Errorf("loading AWS configuration: %w", err)
		}
		client := s3.NewFromConfig(cfg, func(o *s3.Options) {
			if ep := os.Getenv("PAYLOADKIT_S3_ENDPOINT"); ep != "" {
				o.BaseEndpoint = aws.String(ep)
				o.UsePathStyle = true
			}
			if ak := os.Getenv("PAYLOADKIT_S3_ACCESS_KEY"); ak != "" {
				o.Credentials = credentials.NewStaticCredentialsProvider(ak, os.Getenv("PAYLOADKIT_S3_SECRET_KEY"), "")
			}
			if o.Region == "" {
				o.Region = "us-east-1"
			}
		})
		store, err := s3store.New(client, bucket, nil)
		if err != nil {
			return s, err
		}
		s.store = "S3 bucket " + bucket
		s.opts.Offload = &offload.Options{Store: store}
	} else {
		path := filepath.Join(dir, "objects")
		store, err := offload.NewFileStore(path)
		if err != nil {
			return s, err
		}
		s.store = "file store " + path
		s.opts.Offload = &offload.Options{Store: store}
	}
	return s, nil
}

// localKeyring loads the quickstart's keyring from dir, creating it with a new key on first use.
func localKeyring(dir string) (*codec.StaticKeyring, string, error) {
	path := filepath.Join(dir, "keyring.json")
	type file struct {
		Primary string            `json:"primary"`
		Keys    map[string]string `json:"keys"`
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, "", err
		}
		b, _ := json.MarshalIndent(file{Primary: "quickstart-1", Keys: map[string]string{"quickstart-1": base64.StdEncoding.EncodeToString(key)}}, "", "  ")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, "", fmt.Errorf("writing keyring: %w", err)
		}
	}
	ring, err := codec.LoadKeyringFile(path)
	if err != nil {
		return nil, "", err
	}
	return ring, path, nil
}

func run(ctx context.Context, out io.Writer) error {
	start := time.Now()
	dir := os.Getenv("PAYLOADKIT_QUICKSTART_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "payloadkit-quickstart")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	s, err := configure(ctx, dir)
	if err != nil {
		return err
	}
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())
	s.opts.Telemetry = &interceptor.Options{TracerProvider: tp}

	kit, err := payloadkit.New(ctx, s.opts)
	if err != nil {
		return err
	}
	defer kit.Close()

	ts := temporaltest.NewServer(temporaltest.WithBaseClientOptions(kit.ClientOptions(client.Options{})))
	defer ts.Stop()
	serverUp := time.Since(start)
	ts.NewWorkerWithOptions(taskQueue, func(r worker.Registry) {
		r.RegisterWorkflow(quickstartflow.ProcessBatch)
		r.RegisterActivity(quickstartflow.PriceBatch)
		r.RegisterActivity(quickstartflow.CheckInvoice)
	}, kit.WorkerOptions(worker.Options{}))
	c := ts.GetDefaultClient()

	batch := quickstartflow.NewBatch("batch-2026-11", 1<<20)
	wfStart := time.Now()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "quickstart-" + batch.ID + "-" + fmt.Sprint(time.Now().UnixNano()), TaskQueue: taskQueue}, quickstartflow.ProcessBatch, batch)
	if err != nil {
		return fmt.Errorf("starting workflow: %w", err)
	}
	var sum quickstartflow.Summary
	if err := run.Get(ctx, &sum); err != nil {
		return fmt.Errorf("workflow failed: %w", err)
	}
	wfTime := time.Since(wfStart)

	kit.FlushSpans()       // codec spans end in bursts: end the waiting ones
	ended := spans.Ended() // before the report's own decoding adds spans
	payloads, err := history.Payloads(ctx, c, run.GetID(), run.GetRunID())
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "payloadkit quickstart\n")
	fmt.Fprintf(out, "  server    in-process Temporal, namespace %s (up in %s)\n", ts.GetDefaultNamespace(), serverUp.Round(time.Millisecond))
	fmt.Fprintf(out, "  pipeline  %s\n", strings.Join(kit.Stages(), " -> "))
	fmt.Fprintf(out, "  keys      %s\n", s.keys)
	fmt.Fprintf(out, "  offload   %s (threshold %d KiB)\n", s.store, offload.DefaultThreshold>>10)
	fmt.Fprintf(out, "  workflow  %s: %d orders, total $%.2f, document sha256 %s…\n", run.GetID(), sum.Orders, float64(sum.TotalCts)/100, sum.DocSHA256[:16])
	fmt.Fprintf(out, "  time      %s for the workflow, %s in all\n\n", wfTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	fmt.Fprintf(out, "Payloads as stored in history:\n")
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "event\tpayload\traw bytes\tstored bytes\tratio\tstored as\t\n")
	var rawTotal, storedTotal int
	for _, p := range payloads {
		raw, err := rawPayload(kit, p.Payload)
		if err != nil {
			return fmt.Errorf("decoding history payload of event %d: %w", p.EventID, err)
		}
		rs, ss := proto.Size(raw), p.Size()
		rawTotal += rs
		storedTotal += ss
		fmt.Fprintf(tw, "%d %s\t%s\t%d\t%d\t%.3f\t%s\t\n", p.EventID, shortEvent(p.EventType.String()), shortField(p.Field), rs, ss, float64(ss)/float64(max(rs, 1)), describe(p.Payload))
	}
	fmt.Fprintf(tw, "total\t\t%d\t%d\t%.3f\t\t\n", rawTotal, storedTotal, float64(storedTotal)/float64(max(rawTotal, 1)))
	tw.Flush()

	fmt.Fprintf(out, "\nSpans (codec stages nested in the SDK's spans):\n%s", interceptor.FormatSpanTree(ended))
	return nil
}

// rawPayload decodes a stored payload through all of the Kit's codecs, giving the payload the
// SDK's converter made before payloadkit touched it.
func rawPayload(kit *payloadkit.Kit, p *commonpb.Payload) (*commonpb.Payload, error) {
	ps := []*commonpb.Payload{p}
	for _, c := range kit.Codecs() {
		var err error
		if ps, err = c.Decode(ps); err != nil {
			return nil, err
		}
	}
	return ps[0], nil
}

func describe(p *commonpb.Payload) string {
	enc := string(p.GetMetadata()["encoding"])
	if key := p.GetMetadata()["claim-key"]; len(key) > 0 {
		k := string(key)
		if len(k) > 28 {
			k = "…" + k[len(k)-27:]
		}
		return enc + " " + k
	}
	return enc
}

func shortEvent(s string) string {
	s = strings.TrimPrefix(s, "EVENT_TYPE_")
	return strings.ToLower(s)
}

func shortField(s string) string {
	s = strings.TrimPrefix(s, ".")
	if i := strings.Index(s, "."); i >= 0 {
		s = s[i+1:]
	}
	return s
}
