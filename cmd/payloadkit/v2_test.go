package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/offload"
)

// v2Payloads encodes values in envelope format v2 as a worker of namespace "default" would,
// with master key "k1" and the key objects in the file store at dir: two small payloads (one
// key object) and, offloaded to dir, a large one. It returns the payloads and the key object's
// file path.
func v2Payloads(t *testing.T, dir string) ([]*commonpb.Payload, string) {
	t.Helper()
	store, err := offload.NewFileStore(dir)
	require.NoError(t, err)
	ring, err := codec.NewStaticKeyring("k1", map[string][]byte{"k1": bytes.Repeat([]byte{9}, codec.DataKeySize)})
	require.NoError(t, err)
	enc, err := codec.NewEncryptionCodec(&codec.EncryptionOptions{Keys: ring, Format: codec.FormatV2, KeyObjects: store,
		Context: map[string]string{"app": "orders"}})
	require.NoError(t, err)
	defer func() { _ = enc.Close() }()
	bound := enc.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "default"})
	plain := func(s string) *commonpb.Payload {
		return &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(s)}
	}
	ps, err := bound.Encode([]*commonpb.Payload{plain(`"small"`), plain(`"other"`), plain(`"` + strings.Repeat("x", 4096) + `"`)})
	require.NoError(t, err)
	for _, p := range ps {
		require.True(t, codec.IsEnvelopeV2(p))
	}
	oc, err := offload.NewCodec(&offload.Options{Store: store, Threshold: 1024})
	require.NoError(t, err)
	big, err := oc.WithSerializationContext(converter.WorkflowSerializationContext{Namespace: "default"}).Encode(ps[2:])
	require.NoError(t, err)
	ps[2] = big[0]
	require.True(t, offload.IsClaim(ps[2]))
	ref, err := codec.ReadKeyObjectRef(ps[0])
	require.NoError(t, err)
	path, err := store.Path(codec.KeyObjectKey(codec.DefaultKeyObjectPrefix, ref))
	require.NoError(t, err)
	require.FileExists(t, path)
	return ps, path
}

func TestInspectV2(t *testing.T) {
	dir := t.TempDir()
	ps, keyPath := v2Payloads(t, dir)
	history := payloadHistory(t, ps)
	refHex := filepath.Base(keyPath)

	t.Run("with the store", func(t *testing.T) {
		r := runBinary(t, nil, nil, "inspect", "--history", history, "--offload-dir", dir)
		require.Equal(t, exitOK, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		assert.Contains(t, r.stdout, "KEY-OBJECT")
		assert.Contains(t, r.stdout, codec.CipherAES256GCMCommitV2)
		assert.Contains(t, r.stdout, refHex[:12])
		assert.Contains(t, r.stdout, "app=orders,namespace=default")
		assert.Regexp(t, `(?m)^k1\s+3\s+1\s+\d+$`, r.stdout)
		assert.NotContains(t, r.stdout, notReadV2Object)

		r = runBinary(t, nil, nil, "inspect", "--history", history, "--offload-dir", dir, "-o", "json")
		require.Equal(t, exitOK, r.code, r.stderr)
		var rep inspectReport
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
		require.Len(t, rep.Payloads, 3)
		for _, p := range rep.Payloads {
			assert.Equal(t, "k1", p.KeyID)
			assert.Equal(t, codec.CipherAES256GCMCommitV2, p.Cipher)
			assert.Equal(t, "payloadkit/keys/"+refHex, p.KeyObject)
			assert.Equal(t, map[string]string{"app": "orders", "namespace": "default"}, p.Context)
		}
		assert.Equal(t, []keyTotal{{KeyID: "k1", Payloads: 3, Bytes: rep.Total.Bytes, Offloaded: 1}}, rep.Keys)
	})
	t.Run("without a store", func(t *testing.T) {
		r := runBinary(t, nil, nil, "inspect", "--history", history)
		require.Equal(t, exitOK, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		assert.Regexp(t, `(?m)^\(v2, key object not read\)\s+2\s+0\s+\d+$`, r.stdout)
		assert.Regexp(t, `(?m)^\(offloaded, not read\)\s+1\s+1\s+\d+$`, r.stdout)
		assert.Contains(t, r.stdout, refHex[:12])
	})
	t.Run("corrupt key object", func(t *testing.T) {
		obj, err := os.ReadFile(keyPath)
		require.NoError(t, err)
		defer func() { require.NoError(t, os.WriteFile(keyPath, obj, 0o600)) }()
		bad := bytes.Clone(obj)
		bad[len(bad)-1] ^= 1
		require.NoError(t, os.WriteFile(keyPath, bad, 0o600))
		r := runBinary(t, nil, nil, "inspect", "--history", history, "--offload-dir", dir)
		assert.Equal(t, exitProblem, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		assert.Contains(t, r.stderr, "3 of 3 payloads")
		assert.Contains(t, r.stderr, "key object")
	})
}

func TestVerifyV2KeyObjects(t *testing.T) {
	dir := t.TempDir()
	ps, keyPath := v2Payloads(t, dir)
	history := payloadHistory(t, ps)
	key := "payloadkit/keys/" + filepath.Base(keyPath)

	r := runBinary(t, nil, nil, "offload", "verify", "--history", history, "--offload-dir", dir)
	assert.Equal(t, exitOK, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	assert.Equal(t, "OK: store=file (directory "+dir+") claims=1 key-objects=3 objects=2 ok=4 missing=0 corrupt=0 malformed=0 other-store=0 errors=0\n", r.stdout)

	obj, err := os.ReadFile(keyPath)
	require.NoError(t, err)
	bad := bytes.Clone(obj)
	bad[len(bad)-1] ^= 1 // same size, other bytes
	require.NoError(t, os.WriteFile(keyPath, bad, 0o600))
	r = runBinary(t, nil, nil, "offload", "verify", "--history", history, "--offload-dir", dir)
	assert.Equal(t, exitProblem, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 4, r.stdout)
	assert.True(t, strings.HasPrefix(lines[0], "corrupt event 1 workflowExecutionStartedEventAttributes.input.payloads[0] key-object="+key+": "), lines[0])
	assert.Contains(t, lines[2], "payloads[2] key-object="+key+" (offloaded): ")
	assert.Equal(t, "DAMAGED: store=file (directory "+dir+") claims=1 key-objects=3 objects=2 ok=1 missing=0 corrupt=3 malformed=0 other-store=0 errors=0", lines[3])

	require.NoError(t, os.Remove(keyPath))
	r = runBinary(t, nil, nil, "offload", "verify", "--history", history, "--offload-dir", dir)
	assert.Equal(t, exitProblem, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	assert.Contains(t, r.stdout, "missing event 1 workflowExecutionStartedEventAttributes.input.payloads[1] key-object="+key+": ")
	assert.Contains(t, r.stdout, "missing=3")

	// Another prefix: no key object there.
	require.NoError(t, os.WriteFile(keyPath, obj, 0o600))
	r = runBinary(t, nil, nil, "offload", "verify", "--history", history, "--offload-dir", dir, "--key-object-prefix", "tenant")
	assert.Equal(t, exitProblem, r.code, r.stdout)
	assert.Contains(t, r.stdout, "key-object=tenant/keys/")
	r = runBinary(t, nil, nil, "offload", "verify", "--history", history, "--offload-dir", dir, "--key-object-prefix", "tenant/")
	assert.Equal(t, exitUsage, r.code, r.stdout)
}
