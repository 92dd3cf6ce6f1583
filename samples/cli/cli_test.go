package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporaltest"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/codec/awskms"
	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/offload/s3store"
	"github.com/payloadkit/payloadkit/workflowtest"
)

// Exit codes of cmd/payloadkit.
const (
	exitOK      = 0
	exitProblem = 1
	exitUsage   = 2
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	var err error
	binDir, err = os.MkdirTemp("", "payloadkit-samples-cli")
	if err != nil {
		panic(err)
	}
	code := m.Run()
	_ = os.RemoveAll(binDir)
	os.Exit(code)
}

// binary builds cmd/payloadkit of the working tree once and returns its path. It is built in
// the library module (the samples module's replace directive points there), whose go.sum has
// the command's own dependencies.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(binDir, "payloadkit")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/payloadkit")
		cmd.Dir = filepath.Join("..", "..")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("building cmd/payloadkit: %v", buildErr)
	}
	return binPath
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs the binary with args; env is added to a minimal environment without AWS files.
func run(t *testing.T, stdin []byte, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	home := t.TempDir()
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"AWS_CONFIG_FILE=" + filepath.Join(home, "none"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"),
		"AWS_EC2_METADATA_DISABLED=true",
	}, env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running payloadkit %v: %v", args, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
}

// expect fails t unless r exited with code.
func expect(t *testing.T, r result, code int, args ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("payloadkit %v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, r.code, code, r.stdout, r.stderr)
	}
}

// transcript records a command and its output for the README when PAYLOADKIT_CLI_TRANSCRIPT
// names a directory.
func transcript(t *testing.T, name, command string, r result) {
	t.Helper()
	t.Logf("$ %s\n%s%s", command, r.stdout, r.stderr)
	dir := os.Getenv("PAYLOADKIT_CLI_TRANSCRIPT")
	if dir == "" {
		return
	}
	text := fmt.Sprintf("$ %s\n%s%s(exit %d)\n", command, r.stdout, r.stderr, r.code)
	if err := os.WriteFile(filepath.Join(dir, name+".txt"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// order is the workflow input.
type order struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// invoice is the activity result: Scan is large and incompressible, so it is offloaded.
type invoice struct {
	OrderID string `json:"order_id"`
	Scan    string `json:"scan"`
}

func invoiceActivity(_ context.Context, o order) (invoice, error) {
	b := make([]byte, 8<<10)
	_, _ = rand.Read(b)
	return invoice{OrderID: o.ID, Scan: hex.EncodeToString(b)}, nil
}

func orderWorkflow(ctx workflow.Context, o order) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	var inv invoice
	if err := workflow.ExecuteActivity(ctx, invoiceActivity, o).Get(ctx, &inv); err != nil {
		return "", err
	}
	return fmt.Sprintf("order %s invoiced (%d bytes)", inv.OrderID, len(inv.Scan)), nil
}

// runOrder starts a worker of kit on its own client and task queue, runs orderWorkflow and
// returns the workflow id.
func runOrder(t *testing.T, ts *temporaltest.TestServer, kit *payloadkit.Kit, id string) string {
	t.Helper()
	c := ts.NewClientWithOptions(kit.ClientOptions(client.Options{}))
	queue := "cli-" + id
	w := worker.New(c, queue, kit.WorkerOptions(worker.Options{}))
	w.RegisterWorkflow(orderWorkflow)
	w.RegisterActivity(invoiceActivity)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, orderWorkflow, order{ID: id, Email: id + "@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	var res string
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	return id
}

// exportHistory writes the raw history of workflow id as `temporal workflow show -o json` does.
func exportHistory(t *testing.T, ts *temporaltest.TestServer, id string) (string, *historypb.History) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	it := ts.GetDefaultClient().GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, ev)
	}
	data, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), id+".json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, h
}

// countPayloads counts the Payload messages of h (independently of the command's walker:
// through the JSON form, where every payload has a "metadata" object).
func countPayloads(t *testing.T, h *historypb.History) int {
	t.Helper()
	n := 0
	for _, ev := range h.GetEvents() {
		data, err := temporalproto.CustomJSONMarshalOptions{}.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		n += strings.Count(string(data), `"metadata":{`)
	}
	return n
}

// inspectReport is the part of `payloadkit inspect -o json` the tests read.
type inspectReport struct {
	Payloads []struct {
		EventID   int64             `json:"event_id"`
		Field     string            `json:"field"`
		Encoding  string            `json:"encoding"`
		KeyID     string            `json:"key_id"`
		Cipher    string            `json:"cipher"`
		KeyObject string            `json:"key_object"`
		Context   map[string]string `json:"encryption_context"`
		Claim     *struct {
			Store, Key, Encoding string
			Size                 int64
		} `json:"claim"`
	} `json:"payloads"`
	Keys []struct {
		KeyID     string `json:"key_id"`
		Payloads  int    `json:"payloads"`
		Offloaded int    `json:"offloaded"`
		Bytes     int64  `json:"bytes"`
	} `json:"keys"`
	Total struct {
		Payloads  int   `json:"payloads"`
		Offloaded int   `json:"offloaded"`
		Bytes     int64 `json:"bytes"`
	} `json:"total"`
}

// TestKMSAndS3 runs a workflow whose Kit encrypts with the KMS test server and offloads to
// MinIO, then decodes its history live and from an exported file, and inspects it.
func TestKMSAndS3(t *testing.T) {
	kms := workflowtest.StartKMS(t)
	keyID := kms.NewKey()
	s3c, bucket := workflowtest.S3(t)
	region := os.Getenv(workflowtest.EnvS3Region)
	if region == "" {
		region = "us-east-1"
	}
	keys, err := awskms.New(kms.Client(), keyID)
	if err != nil {
		t.Fatal(err)
	}
	store, err := s3store.New(s3c, bucket, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kit, err := payloadkit.New(ctx, payloadkit.Options{
		Encryption: &codec.EncryptionOptions{Keys: keys},
		Offload:    &offload.Options{Store: store, Threshold: 4 << 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kit.Close() })
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	ns := ts.GetDefaultNamespace()
	id := runOrder(t, ts, kit, "order-1")

	// The Codec Server's configuration file, read by decode and inspect as by serve.
	cfg := map[string]any{"namespaces": map[string]any{ns: map[string]any{
		"encryption": map[string]any{"kms_key_id": keyID, "kms_region": workflowtest.KMSRegion, "kms_endpoint": kms.Endpoint()},
		"offload":    map[string]any{"s3_bucket": bucket, "s3_endpoint": os.Getenv(workflowtest.EnvS3Endpoint), "s3_path_style": true, "s3_region": region},
	}}}
	cfgData, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(t.TempDir(), "codec.json")
	if err := os.WriteFile(cfgPath, cfgData, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"AWS_ACCESS_KEY_ID=" + os.Getenv(workflowtest.EnvS3AccessKey),
		"AWS_SECRET_ACCESS_KEY=" + os.Getenv(workflowtest.EnvS3SecretKey),
	}
	secret := os.Getenv(workflowtest.EnvS3SecretKey)

	live := []string{"decode", "--address", ts.GetFrontendHostPort(), "--namespace", ns, "--workflow-id", id, "--config", cfgPath, "--width", "60"}
	rLive := run(t, nil, env, live...)
	expect(t, rLive, exitOK, live...)
	transcript(t, "decode-live", "payloadkit decode --address localhost:7233 --namespace "+ns+" --workflow-id order-1 --config codec.json --width 60", rLive)
	for _, want := range []string{
		`(?m)^1\s+WorkflowExecutionStarted\s+workflowExecutionStartedEventAttributes\.input\.payloads\[0\]\s+json/plain\s+\{"id":"order-1","email":"order-1@example\.com"\}$`,
		`(?m)\s+ActivityTaskCompleted\s+activityTaskCompletedEventAttributes\.result\.payloads\[0\]\s+json/plain\s+\{"order_id":"order-1","scan":"[0-9a-f]+\.\.\.$`,
		`(?m)\s+WorkflowExecutionCompleted\s+workflowExecutionCompletedEventAttributes\.result\.payloads\[0\]\s+json/plain\s+"order order-1 invoiced \(16384 bytes\)"$`,
	} {
		if !regexp.MustCompile(want).MatchString(rLive.stdout) {
			t.Errorf("live decode lacks %s:\n%s", want, rLive.stdout)
		}
	}
	if strings.Contains(rLive.stdout, "binary/") || strings.Contains(rLive.stdout+rLive.stderr, secret) {
		t.Errorf("live decode shows an encoded payload or the S3 secret:\n%s", rLive.stdout)
	}

	// The exported file decodes to the same table, from a file and from standard input.
	path, h := exportHistory(t, ts, id)
	rFile := run(t, nil, env, "decode", "--history", path, "--namespace", ns, "--config", cfgPath, "--width", "60")
	expect(t, rFile, exitOK, "decode", "--history", path)
	if rFile.stdout != rLive.stdout {
		t.Errorf("file decode differs from live decode:\n%s\n---\n%s", rFile.stdout, rLive.stdout)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The configuration from the environment only; the file's only namespace is picked.
	rJSON := run(t, raw, append(env, "PAYLOADKIT_CODEC_CONFIG="+cfgPath), "decode", "--history", "-", "-o", "json")
	expect(t, rJSON, exitOK, "decode --history - -o json")
	decoded := &historypb.History{}
	if err := (temporalproto.CustomJSONUnmarshalOptions{Metadata: map[string]any{commonpb.EnablePayloadShorthandMetadataKey: true}}).Unmarshal([]byte(rJSON.stdout), decoded); err != nil {
		t.Fatalf("decode -o json is not a history: %v\n%s", err, rJSON.stdout)
	}
	in := decoded.Events[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
	var got order
	if err := json.Unmarshal(in.GetData(), &got); err != nil || got != (order{ID: "order-1", Email: "order-1@example.com"}) {
		t.Errorf("decoded input %q: %v", in.GetData(), err)
	}

	// inspect: no keys needed (no KMS endpoint given), claims read from MinIO for the key id.
	insp := []string{"inspect", "--history", path, "--namespace", ns, "--s3-bucket", bucket, "--s3-endpoint", os.Getenv(workflowtest.EnvS3Endpoint), "--s3-path-style", "--s3-region", region, "-o", "json"}
	r := run(t, nil, env, insp...)
	expect(t, r, exitOK, insp...)
	var rep inspectReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	want := countPayloads(t, h)
	if rep.Total.Payloads != want || len(rep.Payloads) != want {
		t.Errorf("inspect counted %d payloads (%d listed), the history holds %d", rep.Total.Payloads, len(rep.Payloads), want)
	}
	if len(rep.Keys) != 1 || !strings.Contains(rep.Keys[0].KeyID, keyID) || rep.Keys[0].Payloads != want || rep.Total.Offloaded != 1 {
		t.Errorf("inspect totals: %+v (key %s), total %+v", rep.Keys, keyID, rep.Total)
	}
	for _, p := range rep.Payloads {
		// With S3 offload the Kit writes envelope v2: inspect reads the key id and context
		// from the key object.
		if p.Cipher != codec.CipherAES256GCMCommitV2 || p.KeyObject == "" || p.Context[codec.ContextKeyNamespace] != ns {
			t.Errorf("payload %d %s: cipher %q key object %q context %v", p.EventID, p.Field, p.Cipher, p.KeyObject, p.Context)
		}
		if p.Claim != nil && (p.Claim.Store != "s3/"+bucket || p.Claim.Encoding != codec.EncodingEncrypted || p.Claim.Size < 16<<10) {
			t.Errorf("claim %+v", *p.Claim)
		}
	}
	rTable := run(t, nil, env, insp[:len(insp)-2]...)
	expect(t, rTable, exitOK, insp...)
	transcript(t, "inspect", "payloadkit inspect --history order-1.json --namespace "+ns+" --s3-bucket "+bucket+" --s3-endpoint http://127.0.0.1:9000 --s3-path-style", rTable)

	// A disabled KMS key: every encrypted payload fails, each named with the cause.
	kms.SetKeyEnabled(keyID, false)
	r = run(t, nil, env, "decode", "--history", path, "--namespace", ns, "--config", cfgPath)
	expect(t, r, exitProblem, "decode with the KMS key disabled")
	if !strings.Contains(r.stderr, "event 1 (WorkflowExecutionStarted) workflowExecutionStartedEventAttributes.input.payloads[0]: ") ||
		!strings.Contains(r.stderr, "Disabled") ||
		!strings.Contains(r.stderr, fmt.Sprintf("%d of %d payloads of %s could not be decoded", want, want, path)) {
		t.Errorf("disabled key errors:\n%s", r.stderr)
	}
	transcript(t, "decode-kms-disabled", "payloadkit decode --history order-1.json --config codec.json   # with the KMS key disabled", result{code: r.code, stderr: strings.ReplaceAll(r.stderr, path, "order-1.json")})
	kms.SetKeyEnabled(keyID, true)

	// A missing object: the claim's payload is named with the store and key.
	for _, p := range rep.Payloads {
		if p.Claim != nil {
			if _, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(p.Claim.Key)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	r = run(t, nil, env, "decode", "--history", path, "--namespace", ns, "--config", cfgPath)
	expect(t, r, exitProblem, "decode after deleting the object")
	if !regexp.MustCompile(`event \d+ \(ActivityTaskCompleted\) activityTaskCompletedEventAttributes\.result\.payloads\[0\]: .*not found`).MatchString(r.stderr) {
		t.Errorf("missing object error:\n%s", r.stderr)
	}
	transcript(t, "decode-missing-object", "payloadkit decode --history order-1.json --config codec.json   # after deleting the offloaded object", result{code: r.code, stderr: strings.ReplaceAll(r.stderr, path, "order-1.json")})
}

// TestKeysRotateThenDecode generates a keyring with the command, runs a workflow, rotates the
// keyring, runs another, and decodes both histories live with the rotated file. It also checks
// `payloadkit serve` decodes with the same flags.
func TestKeysRotateThenDecode(t *testing.T) {
	dir := t.TempDir()
	ring := filepath.Join(dir, "keyring.json")
	r := run(t, nil, nil, "keys", "generate", "--keyring-file", ring, "--key-id", "2026-01")
	expect(t, r, exitOK, "keys generate")
	transcript(t, "keys-generate", "payloadkit keys generate --keyring-file keyring.json --key-id 2026-01", result{code: r.code, stdout: strings.ReplaceAll(r.stdout, ring, "keyring.json")})

	ts := temporaltest.NewServer(temporaltest.WithT(t))
	ns := ts.GetDefaultNamespace()
	runOrder(t, ts, keyringKit(t, ring), "before-rotation")

	r = run(t, nil, nil, "keys", "rotate", "--keyring-file", ring, "--key-id", "2026-02")
	expect(t, r, exitOK, "keys rotate")
	transcript(t, "keys-rotate", "payloadkit keys rotate --keyring-file keyring.json --key-id 2026-02", result{code: r.code, stdout: strings.ReplaceAll(r.stdout, ring, "keyring.json")})
	runOrder(t, ts, keyringKit(t, ring), "after-rotation")

	data, err := os.ReadFile(ring)
	if err != nil {
		t.Fatal(err)
	}
	var kr struct {
		Primary string            `json:"primary"`
		Keys    map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(data, &kr); err != nil || kr.Primary != "2026-02" || len(kr.Keys) != 2 {
		t.Fatalf("rotated keyring: primary %q, %d keys, %v", kr.Primary, len(kr.Keys), err)
	}
	r = run(t, nil, nil, "keys", "list", "--keyring-file", ring)
	expect(t, r, exitOK, "keys list")
	if r.stdout != "* 2026-02\n  2026-01\n" {
		t.Errorf("keys list:\n%s", r.stdout)
	}
	transcript(t, "keys-list", "payloadkit keys list --keyring-file keyring.json", r)
	for _, k := range kr.Keys {
		if strings.Contains(r.stdout, k) {
			t.Error("keys list printed key material without --show-key-material")
		}
	}

	for _, tc := range []struct{ id, keyID string }{{"before-rotation", "2026-01"}, {"after-rotation", "2026-02"}} {
		args := []string{"decode", "--address", ts.GetFrontendHostPort(), "--namespace", ns, "--workflow-id", tc.id, "--keyring-file", ring, "--width", "72"}
		r := run(t, nil, nil, args...)
		expect(t, r, exitOK, args...)
		if !strings.Contains(r.stdout, `{"id":"`+tc.id+`","email":"`+tc.id+`@example.com"}`) {
			t.Errorf("%s: decoded history lacks the input:\n%s", tc.id, r.stdout)
		}
		if tc.id == "before-rotation" {
			transcript(t, "decode-after-rotation", "payloadkit decode --address localhost:7233 --namespace "+ns+" -w before-rotation --keyring-file keyring.json --width 72", r)
		}
		ri := run(t, nil, nil, "inspect", "--address", ts.GetFrontendHostPort(), "--namespace", ns, "--workflow-id", tc.id, "-o", "json")
		expect(t, ri, exitOK, "inspect", tc.id)
		var rep inspectReport
		if err := json.Unmarshal([]byte(ri.stdout), &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Keys) != 1 || rep.Keys[0].KeyID != tc.keyID {
			t.Errorf("%s: inspect keys %+v, want only %s", tc.id, rep.Keys, tc.keyID)
		}
	}

	// Wrong key: a keyring of other keys with the same ids.
	wrongRing := filepath.Join(dir, "wrong.json")
	expect(t, run(t, nil, nil, "keys", "generate", "--keyring-file", wrongRing, "--key-id", "2026-01"), exitOK)
	args := []string{"decode", "--address", ts.GetFrontendHostPort(), "--namespace", ns, "--workflow-id", "before-rotation", "--keyring-file", wrongRing}
	r = run(t, nil, nil, args...)
	expect(t, r, exitProblem, args...)
	if !strings.Contains(r.stderr, "event 1 (WorkflowExecutionStarted) workflowExecutionStartedEventAttributes.input.payloads[0]: ") || !strings.Contains(r.stderr, "decryption failed") {
		t.Errorf("wrong key:\n%s", r.stderr)
	}
	transcript(t, "decode-wrong-key", "payloadkit decode --address localhost:7233 --namespace "+ns+" -w before-rotation --keyring-file wrong.json", result{code: r.code, stderr: r.stderr})

	// An unknown workflow and an unreachable server exit 1.
	r = run(t, nil, nil, "decode", "--address", ts.GetFrontendHostPort(), "--namespace", ns, "--workflow-id", "nope", "--keyring-file", ring)
	expect(t, r, exitProblem, "decode unknown workflow")
	if !strings.Contains(r.stderr, "fetching the history of workflow nope") {
		t.Errorf("unknown workflow:\n%s", r.stderr)
	}

	// serve: the same flags configure the Codec Server.
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	srv := exec.CommandContext(ctx, binary(t), "serve", "--insecure", "--listen", addr, "--namespace", ns, "--keyring-file", ring)
	var logs bytes.Buffer
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = srv.Wait() })
	_, h := exportHistory(t, ts, "before-rotation")
	input := h.Events[0].GetWorkflowExecutionStartedEventAttributes().GetInput()
	body, err := temporalproto.CustomJSONMarshalOptions{}.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	var resp *http.Response
	for i := 0; i < 100; i++ {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/decode", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Namespace", ns)
		if resp, err = http.DefaultClient.Do(req); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("codec server: %v\n%s", err, logs.String())
	}
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	_ = resp.Body.Close()
	var decoded commonpb.Payloads
	if err := (temporalproto.CustomJSONUnmarshalOptions{}).Unmarshal(out.Bytes(), &decoded); err != nil || len(decoded.Payloads) != 1 ||
		string(decoded.Payloads[0].GetData()) != `{"id":"before-rotation","email":"before-rotation@example.com"}` {
		t.Errorf("payloadkit serve /decode: %d %s (%v)\n%s", resp.StatusCode, out.String(), err, logs.String())
	}
	// The binary decodes the same body (--payloads) to the same payloads.
	r = run(t, body, nil, "decode", "--payloads", "-", "--namespace", ns, "--keyring-file", ring, "-o", "json")
	expect(t, r, exitOK, "decode --payloads")
	var fromCLI commonpb.Payloads
	if err := (temporalproto.CustomJSONUnmarshalOptions{}).Unmarshal([]byte(r.stdout), &fromCLI); err != nil || string(fromCLI.Payloads[0].GetData()) != string(decoded.Payloads[0].GetData()) {
		t.Errorf("decode --payloads: %v\n%s", err, r.stdout)
	}
	transcript(t, "decode-payloads", "payloadkit decode --payloads body.json --namespace "+ns+" --keyring-file keyring.json -o json", r)
}

// keyringKit returns a Kit encrypting with the keyring file at path (as it is now), closed
// when the test ends.
func keyringKit(t *testing.T, path string) *payloadkit.Kit {
	t.Helper()
	keys, err := codec.LoadKeyringFile(path)
	if err != nil {
		t.Fatal(err)
	}
	kit, err := payloadkit.New(context.Background(), payloadkit.Options{Encryption: &codec.EncryptionOptions{Keys: keys}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kit.Close() })
	return kit
}

// TestBadInput: malformed and unknown inputs give clear errors and a non-zero exit.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	ring := filepath.Join(dir, "keyring.json")
	expect(t, run(t, nil, nil, "keys", "generate", "--keyring-file", ring, "--key-id", "k1"), exitOK)
	kit := keyringKit(t, ring)
	good, err := kit.DataConverterFor("default").ToPayload("fine")
	if err != nil {
		t.Fatal(err)
	}
	broken := &commonpb.Payload{Metadata: good.Metadata, Data: good.Data[:20]}
	unknown := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/rot13")}, Data: []byte("frperg")}
	h := &historypb.History{Events: []*historypb.HistoryEvent{{
		EventId: 1, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
			Input: &commonpb.Payloads{Payloads: []*commonpb.Payload{good, broken, unknown}},
		}},
	}}}
	data, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "history.json")
	truncated := filepath.Join(dir, "truncated.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(truncated, data[:len(data)/3], 0o600); err != nil {
		t.Fatal(err)
	}

	r := run(t, nil, nil, "decode", "--history", path, "--keyring-file", ring)
	expect(t, r, exitProblem, "decode bad payloads")
	for _, want := range []string{
		"event 1 (WorkflowExecutionStarted) workflowExecutionStartedEventAttributes.input.payloads[1]: ",
		`event 1 (WorkflowExecutionStarted) workflowExecutionStartedEventAttributes.input.payloads[2]: unknown encoding "binary/rot13"`,
		"2 of 3 payloads of " + path + " could not be decoded",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, `"fine"`) {
		t.Errorf("the good payload is still printed:\n%s", r.stdout)
	}
	transcript(t, "decode-bad-payloads", "payloadkit decode --history history.json --keyring-file keyring.json", result{code: r.code, stdout: r.stdout, stderr: strings.ReplaceAll(r.stderr, path, "history.json")})

	r = run(t, nil, nil, "inspect", "--history", path)
	expect(t, r, exitProblem, "inspect bad payloads")
	if !strings.Contains(r.stderr, "workflowExecutionStartedEventAttributes.input.payloads[1]: encryption header: ") {
		t.Errorf("inspect of a truncated envelope:\n%s", r.stderr)
	}

	r = run(t, nil, nil, "decode", "--history", truncated, "--keyring-file", ring)
	expect(t, r, exitUsage, "decode truncated")
	if !strings.Contains(r.stderr, "history "+truncated+" is not a workflow history in JSON") || r.stdout != "" {
		t.Errorf("truncated:\n%s%s", r.stdout, r.stderr)
	}
	transcript(t, "decode-truncated", "payloadkit decode --history truncated.json --keyring-file keyring.json", result{code: r.code, stderr: strings.ReplaceAll(r.stderr, truncated, "truncated.json")})

	r = run(t, []byte(`{"payloads":[{"metadata":{"encoding":`), nil, "decode", "--payloads", "-")
	expect(t, r, exitUsage, "decode truncated body")
	if !strings.Contains(r.stderr, "payloads standard input is not a Codec Server body") {
		t.Errorf("truncated body:\n%s", r.stderr)
	}
	r = run(t, nil, nil, "decode", "--history", path, "--keyring-file", filepath.Join(dir, "missing.json"))
	expect(t, r, exitUsage, "decode missing keyring")
	r = run(t, nil, nil, "decode", "--history", path, "--max-input-bytes", "100")
	expect(t, r, exitUsage, "decode too large")
	if !strings.Contains(r.stderr, "larger than 100 bytes") {
		t.Errorf("too large:\n%s", r.stderr)
	}
}

// freeAddr returns a free 127.0.0.1 address.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}
