package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"

	"github.com/payloadkit/payloadkit"
	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/offload"
)

// encodedWith encodes values with a Kit using the keyring file (and offload dir, if set), as a
// worker of namespace "default" would.
func encodedWith(t *testing.T, keyringPath, offloadDir string, values ...any) []*commonpb.Payload {
	t.Helper()
	ring, err := codec.LoadKeyringFile(keyringPath)
	require.NoError(t, err)
	opts := payloadkit.Options{Encryption: &codec.EncryptionOptions{Keys: ring}}
	if offloadDir != "" {
		store, err := offload.NewFileStore(offloadDir)
		require.NoError(t, err)
		opts.Offload = &offload.Options{Store: store, Threshold: 1024}
	}
	kit, err := payloadkit.New(context.Background(), opts)
	require.NoError(t, err)
	defer func() { _ = kit.Close() }()
	ps, err := kit.DataConverterFor("default").ToPayloads(values...)
	require.NoError(t, err)
	return ps.GetPayloads()
}

// payloadHistory writes a history whose started event has payloads as input and, if set,
// memo as its memo.
func payloadHistory(t *testing.T, payloads []*commonpb.Payload) string {
	t.Helper()
	h := &historypb.History{Events: []*historypb.HistoryEvent{{
		EventId: 1, EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{
			Input: &commonpb.Payloads{Payloads: payloads},
		}},
	}}}
	data, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(h)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "history.json")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

func TestKeysRotateThenDecodeFile(t *testing.T) {
	ring := filepath.Join(t.TempDir(), "keyring.json")
	r := runBinary(t, nil, nil, "keys", "generate", "--keyring-file", ring, "--key-id", "k1")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "created "+ring+": primary k1, 1 key\n", r.stdout)
	old := encodedWith(t, ring, "", "before rotation")

	r = runBinary(t, nil, nil, "keys", "rotate", "--keyring-file", ring, "--key-id", "k2")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "rotated "+ring+": primary k2 (was k1), 2 keys: k2, k1\n", r.stdout)
	newer := encodedWith(t, ring, "", map[string]int{"after": 2})
	raw, err := os.ReadFile(ring)
	require.NoError(t, err)
	var kr keyringJSON
	require.NoError(t, json.Unmarshal(raw, &kr))
	for _, k := range kr.Keys {
		assert.NotContains(t, r.stdout+r.stderr, k, "key material printed without --show-key-material")
	}
	st, err := os.Stat(ring)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	path := payloadHistory(t, append(old, newer...))
	r = runBinary(t, nil, nil, "decode", "--history", path, "--keyring-file", ring)
	require.Equal(t, exitOK, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	assert.Contains(t, r.stdout, `WorkflowExecutionStarted  workflowExecutionStartedEventAttributes.input.payloads[0]  json/plain  "before rotation"`)
	assert.Contains(t, r.stdout, `workflowExecutionStartedEventAttributes.input.payloads[1]  json/plain  {"after":2}`)

	r = runBinary(t, nil, nil, "decode", "--history", path, "--keyring-file", ring, "-o", "json")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"before rotation"`)

	r = runBinary(t, nil, nil, "inspect", "--history", path, "-o", "json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var rep inspectReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	require.Len(t, rep.Keys, 2)
	assert.Equal(t, "k1", rep.Keys[0].KeyID)
	assert.Equal(t, 1, rep.Keys[0].Payloads)
	assert.Equal(t, "k2", rep.Keys[1].KeyID)
	assert.Equal(t, codec.CipherAES256GCMCommitV1, rep.Payloads[0].Cipher)
	assert.Equal(t, map[string]string{"namespace": "default"}, rep.Payloads[0].Context)

	r = runBinary(t, nil, nil, "keys", "list", "--keyring-file", ring, "--show-key-material")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "* k2 "+kr.Keys["k2"]+"\n  k1 "+kr.Keys["k1"]+"\n", r.stdout)
}

func TestDecodeErrors(t *testing.T) {
	ring := filepath.Join(t.TempDir(), "keyring.json")
	other := filepath.Join(t.TempDir(), "other.json")
	require.Equal(t, exitOK, runBinary(t, nil, nil, "keys", "generate", "--keyring-file", ring, "--key-id", "k1").code)
	require.Equal(t, exitOK, runBinary(t, nil, nil, "keys", "generate", "--keyring-file", other, "--key-id", "k1").code)
	good := encodedWith(t, ring, "", "secret value")
	unknown := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("binary/rot13")}, Data: []byte("frperg")}
	path := payloadHistory(t, append(good, unknown))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	truncated := filepath.Join(t.TempDir(), "truncated.json")
	require.NoError(t, os.WriteFile(truncated, data[:len(data)/2], 0o600))

	t.Run("unknown encoding", func(t *testing.T) {
		r := runBinary(t, nil, nil, "decode", "--history", path, "--keyring-file", ring)
		assert.Equal(t, exitProblem, r.code)
		assert.Contains(t, r.stderr, `event 1 (WorkflowExecutionStarted) workflowExecutionStartedEventAttributes.input.payloads[1]: unknown encoding "binary/rot13"`)
		assert.Contains(t, r.stderr, "1 of 2 payloads of "+path+" could not be decoded")
		assert.Contains(t, r.stdout, `"secret value"`, "the other payloads are still printed")
	})
	t.Run("wrong key", func(t *testing.T) {
		r := runBinary(t, nil, nil, "decode", "--history", path, "--keyring-file", other)
		assert.Equal(t, exitProblem, r.code)
		assert.Contains(t, r.stderr, "event 1 (WorkflowExecutionStarted) workflowExecutionStartedEventAttributes.input.payloads[0]: encryption decode [payload=0, key=k1]")
		assert.Contains(t, r.stderr, "decryption failed")
		assert.NotContains(t, r.stdout, "secret value")
		t.Log(r.stderr)
	})
	t.Run("other namespace", func(t *testing.T) {
		r := runBinary(t, nil, nil, "decode", "--history", path, "--keyring-file", ring, "--namespace", "payments")
		assert.Equal(t, exitProblem, r.code)
		assert.Contains(t, r.stderr, "workflowExecutionStartedEventAttributes.input.payloads[0]: ")
		assert.Contains(t, r.stderr, "payments")
		assert.NotContains(t, r.stdout, "secret value")
		t.Log(r.stderr)
	})
	t.Run("no key", func(t *testing.T) {
		r := runBinary(t, nil, nil, "decode", "--history", path)
		assert.Equal(t, exitProblem, r.code)
		assert.Contains(t, r.stderr, `payloads[0]: encrypted with master key "k1", but no key is configured`)
	})
	t.Run("truncated JSON", func(t *testing.T) {
		r := runBinary(t, nil, nil, "decode", "--history", truncated, "--keyring-file", ring)
		assert.Equal(t, exitUsage, r.code)
		assert.Contains(t, r.stderr, "history "+truncated+" is not a workflow history in JSON")
		assert.Empty(t, r.stdout)
	})
	t.Run("two sources", func(t *testing.T) {
		r := runBinary(t, nil, nil, "decode", "--history", path, "--payloads", path)
		assert.Equal(t, exitUsage, r.code)
		assert.Contains(t, r.stderr, "exactly one of --history FILE, --payloads FILE and --workflow-id ID")
	})
	t.Run("namespace not configured", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "codec.json")
		require.NoError(t, os.WriteFile(cfg, []byte(`{"namespaces":{"default":{"encryption":{"keyring_file":"`+ring+`"}},"billing":{}}}`), 0o600))
		r := runBinary(t, nil, nil, "decode", "--history", path, "--config", cfg, "--namespace", "payments")
		assert.Equal(t, exitUsage, r.code)
		assert.Contains(t, r.stderr, `namespace "payments" is not configured (configured: billing, default)`)
		r = runBinary(t, nil, []string{"PAYLOADKIT_CODEC_CONFIG=" + cfg, "PAYLOADKIT_CODEC_NAMESPACE=default"}, "decode", "--history", path)
		assert.Equal(t, exitProblem, r.code, "configuration from the environment: the good payload decodes, the unknown one fails")
		assert.Contains(t, r.stdout, `"secret value"`)
	})
	t.Run("inspect unknown encoding is listed", func(t *testing.T) {
		r := runBinary(t, nil, nil, "inspect", "--history", path)
		assert.Equal(t, exitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, "binary/rot13")
		assert.True(t, strings.Contains(r.stdout, "TOTAL"), r.stdout)
	})
}

func TestDecodePayloadsBody(t *testing.T) {
	ring := filepath.Join(t.TempDir(), "keyring.json")
	require.Equal(t, exitOK, runBinary(t, nil, nil, "keys", "generate", "--keyring-file", ring, "--key-id", "k1").code)
	dir := t.TempDir()
	var rnd [2048]byte
	_, _ = rand.Read(rnd[:])
	big := hex.EncodeToString(rnd[:]) // incompressible: offloaded
	ps := encodedWith(t, ring, dir, "small", big)
	body, err := temporalproto.CustomJSONMarshalOptions{}.Marshal(&commonpb.Payloads{Payloads: ps})
	require.NoError(t, err)

	r := runBinary(t, body, nil, "decode", "--payloads", "-", "--keyring-file", ring, "--offload-dir", dir, "-o", "json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var out commonpb.Payloads
	require.NoError(t, temporalproto.CustomJSONUnmarshalOptions{}.Unmarshal([]byte(r.stdout), &out))
	require.Len(t, out.Payloads, 2)
	assert.Equal(t, `"small"`, string(out.Payloads[0].Data))
	assert.Equal(t, `"`+big+`"`, string(out.Payloads[1].Data))

	r = runBinary(t, body, nil, "inspect", "--payloads", "-", "--offload-dir", dir)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "binary/claim-check")
	assert.Regexp(t, `(?m)^k1\s+2\s+1\s+\d+$`, r.stdout, "both payloads under k1, one offloaded (key id read from the object)")
	t.Log("\n" + r.stdout)
}

func TestHelpOnEveryLevel(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"serve", "--help"}, {"decode", "--help"}, {"inspect", "--help"}, {"keys", "--help"},
		{"keys", "rotate", "--help"}, {"offload", "verify", "--help"}, {"completion", "bash"},
	} {
		r := runBinary(t, nil, nil, args...)
		assert.Equal(t, exitOK, r.code, "%v: %s", args, r.stderr)
		assert.NotEmpty(t, r.stdout, args)
		if args[0] != "completion" && args[0] != "--help" && len(args) == 2 {
			assert.Contains(t, r.stdout, "Exit codes:", args)
		}
	}
}

func TestServeConfigurationErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		msg  string
	}{
		{[]string{"serve", "--namespace", "a"}, nil, "no authentication configured"},
		{[]string{"serve", "--insecure"}, nil, "no namespaces"},
		{[]string{"serve", "--insecure", "--keyring-file", "k.json"}, nil, "need --namespace"},
		{[]string{"serve"}, []string{"PAYLOADKIT_CODEC_INSECURE=true", "PAYLOADKIT_CODEC_NAMESPACE=a", "PAYLOADKIT_CODEC_COMPRESSION=lz4"}, `compression "lz4"`},
		{[]string{"serve", "--insecure", "--namespace", "a", "--keyring-file", filepath.Join(t.TempDir(), "missing.json")}, nil, "missing.json"},
	} {
		r := runBinary(t, nil, tc.env, tc.args...)
		assert.Equal(t, exitUsage, r.code, "%v: %s", tc.args, r.stderr)
		assert.Contains(t, r.stderr, tc.msg, tc.args)
	}
}

func TestInspectClaimWithoutStore(t *testing.T) {
	ring := filepath.Join(t.TempDir(), "keyring.json")
	require.Equal(t, exitOK, runBinary(t, nil, nil, "keys", "generate", "--keyring-file", ring, "--key-id", "k1").code)
	var rnd [2048]byte
	_, _ = rand.Read(rnd[:])
	ps := encodedWith(t, ring, t.TempDir(), "small", hex.EncodeToString(rnd[:]))
	r := runBinary(t, nil, nil, "inspect", "--history", payloadHistory(t, ps))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `(?m)^\(offloaded, not read\)\s+1\s+1\s+\d+$`, r.stdout)
	assert.Regexp(t, `(?m)^k1\s+1\s+0\s+\d+$`, r.stdout)
}
