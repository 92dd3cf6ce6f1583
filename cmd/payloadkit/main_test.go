package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"

	"github.com/payloadkit/payloadkit/offload"
	"github.com/payloadkit/payloadkit/offload/s3store"
	"github.com/payloadkit/payloadkit/workflowtest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	var err error
	binDir, err = os.MkdirTemp("", "payloadkit-cli-test")
	if err != nil {
		panic(err)
	}
	code := m.Run()
	_ = os.RemoveAll(binDir)
	os.Exit(code)
}

// binary builds the command once per test run and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(binDir, "payloadkit")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	require.NoError(t, buildErr, "building the command")
	return binPath
}

type result struct {
	code           int
	stdout, stderr string
}

// runBinary runs the command with args and env (added to a minimal environment).
func runBinary(t *testing.T, stdin []byte, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
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
		t.Fatalf("running %v: %v", args, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
}

// claimFor stores data (unless skip) under its codec key of namespace and returns the claim.
func claimFor(t *testing.T, s offload.Store, namespace string, data []byte, skip bool) (*commonpb.Payload, offload.Claim) {
	t.Helper()
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	cl := offload.Claim{Store: s.Name(), Key: offload.CodecKey(offload.DefaultPrefix, namespace, h), Size: int64(len(data)), SHA256: h}
	if !skip {
		require.NoError(t, s.Put(context.Background(), cl.Key, data))
	}
	p, err := cl.Payload()
	require.NoError(t, err)
	return p, cl
}

// historyFile writes a history holding the claims (the first as workflow input, the others as
// activity results and failure details) as `temporal workflow show -o json` does.
func historyFile(t *testing.T, claims ...*commonpb.Payload) string {
	t.Helper()
	events := []*historypb.HistoryEvent{{
		EventId: 1, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
			Input: &commonpb.Payloads{Payloads: claims[:1]},
		}},
	}}
	for i, c := range claims[1:] {
		events = append(events, &historypb.HistoryEvent{
			EventId: int64(i + 2), EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED,
			Attributes: &historypb.HistoryEvent_ActivityTaskFailedEventAttributes{ActivityTaskFailedEventAttributes: &historypb.ActivityTaskFailedEventAttributes{
				Failure: &failurepb.Failure{Message: "failed", FailureInfo: &failurepb.Failure_ApplicationFailureInfo{
					ApplicationFailureInfo: &failurepb.ApplicationFailureInfo{Details: &commonpb.Payloads{Payloads: []*commonpb.Payload{c}}},
				}},
			}},
		})
	}
	data, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: events})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "history.json")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

// minio returns the client, the bucket, the flags selecting it and the environment carrying
// its credentials.
func minio(t *testing.T) (client *s3.Client, bucket string, flags, env []string) {
	t.Helper()
	client, bucket = workflowtest.S3(t)
	region := os.Getenv(workflowtest.EnvS3Region)
	if region == "" {
		region = "us-east-1"
	}
	flags = []string{"--s3-bucket", bucket, "--s3-endpoint", os.Getenv(workflowtest.EnvS3Endpoint), "--s3-path-style", "--s3-region", region}
	env = []string{
		"AWS_ACCESS_KEY_ID=" + os.Getenv(workflowtest.EnvS3AccessKey),
		"AWS_SECRET_ACCESS_KEY=" + os.Getenv(workflowtest.EnvS3SecretKey),
	}
	return client, bucket, flags, env
}

func randomNamespace(t *testing.T) string {
	t.Helper()
	var b [6]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return "cli-" + hex.EncodeToString(b[:])
}

func TestVerifyS3(t *testing.T) {
	client, bucket, flags, env := minio(t)
	store, err := s3store.New(client, bucket, nil)
	require.NoError(t, err)
	ns := randomNamespace(t)
	good, _ := claimFor(t, store, ns, []byte("a good object"), false)
	missing, missingClaim := claimFor(t, store, ns, []byte("a missing object"), true)
	corrupt, corruptClaim := claimFor(t, store, ns, []byte("a corrupt object"), false)
	require.NoError(t, store.Put(context.Background(), corruptClaim.Key, []byte("A CORRUPT OBJECT")))

	t.Run("damaged", func(t *testing.T) {
		path := historyFile(t, good, missing, corrupt)
		r := runBinary(t, nil, env, append([]string{"offload", "verify", "--history", path}, flags...)...)
		assert.Equal(t, exitProblem, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Len(t, lines, 3, r.stdout)
		assert.Contains(t, lines[0], "missing event 2 activityTaskFailedEventAttributes.failure.applicationFailureInfo.details.payloads[0] key="+missingClaim.Key)
		assert.Contains(t, lines[0], "object not found")
		assert.Contains(t, lines[1], "corrupt event 3 activityTaskFailedEventAttributes.failure.applicationFailureInfo.details.payloads[0] key="+corruptClaim.Key)
		assert.Contains(t, lines[1], "SHA-256 differs")
		assert.Equal(t, "DAMAGED: store=s3/"+bucket+" (bucket "+bucket+") claims=3 key-objects=0 objects=3 ok=1 missing=1 corrupt=1 malformed=0 other-store=0 errors=0", lines[2])
		assert.NotContains(t, r.stdout+r.stderr, os.Getenv(workflowtest.EnvS3SecretKey))
	})
	t.Run("clean from standard input", func(t *testing.T) {
		data, err := os.ReadFile(historyFile(t, good, good))
		require.NoError(t, err)
		r := runBinary(t, data, env, append([]string{"offload", "verify", "--history", "-"}, flags...)...)
		assert.Equal(t, exitOK, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		assert.Equal(t, "OK: store=s3/"+bucket+" (bucket "+bucket+") claims=2 key-objects=0 objects=1 ok=2 missing=0 corrupt=0 malformed=0 other-store=0 errors=0\n", r.stdout)
	})
	t.Run("another store name", func(t *testing.T) {
		path := historyFile(t, good)
		r := runBinary(t, nil, env, append([]string{"offload", "verify", "--history", path, "--s3-store-name", "s3/other"}, flags...)...)
		assert.Equal(t, exitUnverified, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		assert.Contains(t, r.stdout, "other-store event 1 workflowExecutionStartedEventAttributes.input.payloads[0]")
		assert.Contains(t, r.stdout, "UNVERIFIED: store=s3/other")
	})
	t.Run("unreachable store", func(t *testing.T) {
		path := historyFile(t, good)
		args := []string{"offload", "verify", "--history", path, "--s3-bucket", bucket, "--s3-endpoint", "http://127.0.0.1:1", "--s3-path-style", "--s3-region", "us-east-1", "--timeout", "2s"}
		r := runBinary(t, nil, env, args...)
		assert.Equal(t, exitUnverified, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		assert.Contains(t, r.stdout, "error event 1 ")
		assert.Contains(t, r.stdout, "errors=1")
	})
}

func TestVerifyFileStore(t *testing.T) {
	dir := t.TempDir()
	store, err := offload.NewFileStore(dir)
	require.NoError(t, err)
	good, _ := claimFor(t, store, "payments", []byte("good"), false)
	missing, missingClaim := claimFor(t, store, "payments", []byte("missing"), true)

	r := runBinary(t, nil, nil, "offload", "verify", "--history", historyFile(t, good), "--offload-dir", dir)
	assert.Equal(t, exitOK, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	assert.Contains(t, r.stdout, "OK: store=file (directory "+dir+") claims=1 key-objects=0 objects=1 ok=1")

	r = runBinary(t, nil, nil, "offload", "verify", "--history", historyFile(t, good, missing), "--offload-dir", dir)
	assert.Equal(t, exitProblem, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	assert.Contains(t, r.stdout, "missing event 2 ")
	assert.Contains(t, r.stdout, "key="+missingClaim.Key)
	assert.Contains(t, r.stdout, "DAMAGED: store=file")
}

func TestVerifyUsageErrors(t *testing.T) {
	dir := t.TempDir()
	store, err := offload.NewFileStore(dir)
	require.NoError(t, err)
	good, _ := claimFor(t, store, "payments", []byte("good"), false)
	path := historyFile(t, good)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	truncated := filepath.Join(t.TempDir(), "truncated.json")
	require.NoError(t, os.WriteFile(truncated, data[:len(data)/2], 0o600))
	empty := filepath.Join(t.TempDir(), "empty.json")
	require.NoError(t, os.WriteFile(empty, []byte(`{"events":[]}`), 0o600))

	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"truncated JSON", []string{"--history", truncated, "--offload-dir", dir}, "history " + truncated + " is not a workflow history in JSON"},
		{"no events", []string{"--history", empty, "--offload-dir", dir}, "has no events"},
		{"missing file", []string{"--history", filepath.Join(dir, "nope.json"), "--offload-dir", dir}, "no such file"},
		{"too large", []string{"--history", path, "--offload-dir", dir, "--max-history-bytes", "10"}, "larger than 10 bytes"},
		{"no history", []string{"--offload-dir", dir}, `required flag(s) "history" not set`},
		{"no store", []string{"--history", path}, "exactly one of --offload-dir and --s3-bucket"},
		{"two stores", []string{"--history", path, "--offload-dir", dir, "--s3-bucket", "b"}, "exactly one of --offload-dir and --s3-bucket"},
		{"missing directory", []string{"--history", path, "--offload-dir", filepath.Join(dir, "typo")}, "not an existing directory"},
		{"unknown flag", []string{"--history", path, "--offload-dir", dir, "--bogus"}, "unknown flag: --bogus"},
		{"bad concurrency", []string{"--history", path, "--offload-dir", dir, "--concurrency", "0"}, "--concurrency must be at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runBinary(t, nil, nil, append([]string{"offload", "verify"}, tc.args...)...)
			assert.Equal(t, exitUsage, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
			assert.Contains(t, r.stderr, tc.msg)
			assert.Empty(t, r.stdout)
		})
	}
	_, err = os.Stat(filepath.Join(dir, "typo"))
	assert.True(t, os.IsNotExist(err), "a mistyped --offload-dir is not created")
}

func TestLifecyclePrint(t *testing.T) {
	r := runBinary(t, nil, nil, "offload", "lifecycle", "--namespace", "payments", "--retention", "720h", "--longest-run", "168h")
	require.Equal(t, exitOK, r.code, r.stderr)
	var doc lifecycleJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &doc))
	assert.Equal(t, lifecycleJSON{Rules: []ruleJSON{{
		ID: "payloadkit-payloadkit/payments", Status: "Enabled",
		Filter:                         &filterJSON{Prefix: "payloadkit/payments/"},
		Expiration:                     &expirationJSON{Days: 38},
		AbortIncompleteMultipartUpload: &abortJSON{DaysAfterInitiation: 1},
	}}}, doc)

	r = runBinary(t, nil, nil, "offload", "lifecycle", "--namespace", "payments", "--retention", "720h", "--longest-run", "1h", "--refresh-age", "48h", "--offload-prefix", "team/pk")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"Prefix": "team/pk/payments/"`)
	assert.Contains(t, r.stdout, `"Days": 33`)

	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--retention", "720h", "--longest-run", "1h"}, `required flag(s) "namespace" not set`},
		{[]string{"--namespace", "ns", "--longest-run", "1h"}, `required flag(s) "retention" not set`},
		{[]string{"--namespace", "ns", "--retention", "-1h", "--longest-run", "1h"}, "retention must be positive"},
		{[]string{"--namespace", "ns", "--retention", "1h", "--longest-run", "1h", "--refresh-age", "0s"}, "refresh age must be positive"},
		{[]string{"--namespace", "ns", "--retention", "1h", "--longest-run", "1h", "--apply"}, "--apply needs --s3-bucket"},
		{[]string{"--namespace", "ns", "--retention", "1h", "--longest-run", "1h", "--s3-bucket", "b"}, "--s3-bucket is used with --apply only"},
		{[]string{"--namespace", "ns", "--retention", "soon", "--longest-run", "1h"}, "invalid argument"},
	} {
		r := runBinary(t, nil, nil, append([]string{"offload", "lifecycle"}, tc.args...)...)
		assert.Equal(t, exitUsage, r.code, "%v: stdout:\n%s\nstderr:\n%s", tc.args, r.stdout, r.stderr)
		assert.Contains(t, r.stderr, tc.msg, tc.args)
	}
}

func TestLifecycleApplyS3(t *testing.T) {
	client, _, flags, env := minio(t)
	// A bucket of the test's own: lifecycle changes must not race with other tests.
	bucket := "pk-cli-" + strings.TrimPrefix(randomNamespace(t), "cli-")
	ctx := context.Background()
	_, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = client.DeleteBucketLifecycle(context.Background(), &s3.DeleteBucketLifecycleInput{Bucket: aws.String(bucket)})
		_, _ = client.DeleteBucket(context.Background(), &s3.DeleteBucketInput{Bucket: aws.String(bucket)})
	})
	flags[1] = bucket

	args := append([]string{"offload", "lifecycle", "--namespace", "payments", "--retention", "720h", "--longest-run", "168h", "--apply"}, flags...)
	r := runBinary(t, nil, env, args...)
	require.Equal(t, exitOK, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	assert.Contains(t, r.stderr, "applied rule payloadkit-payloadkit/payments to bucket "+bucket)
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	var printed, readBack lifecycleJSON
	require.NoError(t, dec.Decode(&printed))
	require.NoError(t, dec.Decode(&readBack), "the rule read back follows the rule")
	require.Len(t, readBack.Rules, 1)
	got := readBack.Rules[0]
	assert.Equal(t, "payloadkit-payloadkit/payments", got.ID)
	assert.Equal(t, &expirationJSON{Days: 38}, got.Expiration)
	assert.Equal(t, &filterJSON{Prefix: "payloadkit/payments/"}, got.Filter)

	// The bucket holds it, once, after a second apply with other days.
	args = append([]string{"offload", "lifecycle", "--namespace", "payments", "--retention", "240h", "--longest-run", "24h", "--apply"}, flags...)
	r = runBinary(t, nil, env, args...)
	require.Equal(t, exitOK, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	rules, err := s3store.GetLifecycle(ctx, client, bucket)
	require.NoError(t, err)
	require.Len(t, rules, 1)
	assert.Equal(t, int32(12), aws.ToInt32(rules[0].Expiration.Days))
	assert.NotContains(t, r.stdout+r.stderr, os.Getenv(workflowtest.EnvS3SecretKey))

	// Bad credentials: the S3 request fails (exit 1) without printing them.
	bad := []string{"AWS_ACCESS_KEY_ID=wrong-key-id", "AWS_SECRET_ACCESS_KEY=wrong-secret-value"}
	r = runBinary(t, nil, bad, args...)
	assert.Equal(t, exitProblem, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	assert.Contains(t, r.stderr, "lifecycle configuration of bucket "+bucket)
	assert.NotContains(t, r.stderr, "wrong-secret-value")
}

// TestRunInProcess covers run's exit code mapping without a subprocess.
func TestRunInProcess(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"offload", "nope"}, streams{in: strings.NewReader(""), out: &out, err: &errb})
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errb.String(), "payloadkit:")

	out.Reset()
	errb.Reset()
	code = run(context.Background(), []string{"offload", "verify", "--help"}, streams{in: strings.NewReader(""), out: &out, err: &errb})
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out.String(), "Exit codes:")
	assert.Contains(t, out.String(), "temporal workflow show --workflow-id ID -o json")
}
