package cliconfig

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// loadP parses args with pflag (as cobra does) in scope and loads the configuration.
func loadP(t *testing.T, scope Scope, args []string, env map[string]string) (*Config, *Flags, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f := Register(fs, scope)
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	cfg, err := f.Load(fs.Changed, envOf(env))
	return cfg, f, err
}

func TestPipelineScopeFlagsFileAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "codec.json")
	if err := os.WriteFile(file, []byte(`{"namespaces":{"orders":{"encryption":{"kms_key_id":"alias/orders"},"offload":{"s3_bucket":"b"}},"billing":{}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// The file's pipeline, picked by --namespace.
	cfg, f, err := loadP(t, PipelineScope, []string{"--config", file, "--namespace", "orders"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := cfg.PipelineFor(f.Namespace())
	if err != nil || p.Encryption.KMSKeyID != "alias/orders" || p.Offload.S3Bucket != "b" {
		t.Fatalf("pipeline %+v, %v", p, err)
	}
	// The environment names the file and the namespace.
	cfg, f, err = loadP(t, PipelineScope, nil, map[string]string{"PAYLOADKIT_CODEC_CONFIG": file, "PAYLOADKIT_CODEC_NAMESPACE": "billing"})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := cfg.PipelineFor(f.Namespace()); err != nil || p.Encryption != nil {
		t.Fatalf("billing pipeline %+v, %v", p, err)
	}
	// Pipeline flags without --namespace apply to "default", and override nothing else.
	cfg, f, err = loadP(t, PipelineScope, []string{"--config", file, "--keyring-file", "k.json"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Namespace() != DefaultNamespace || cfg.Namespaces["default"].Encryption.KeyringFile != "k.json" || cfg.Namespaces["orders"].Encryption.KMSKeyID != "alias/orders" {
		t.Fatalf("namespaces %+v", cfg.Namespaces)
	}
	// A flag wins over its environment variable.
	cfg, _, err = loadP(t, PipelineScope, []string{"--keyring-file", "flag.json"}, map[string]string{"PAYLOADKIT_CODEC_KEYRING_FILE": "env.json"})
	if err != nil || cfg.Namespaces["default"].Encryption.KeyringFile != "flag.json" {
		t.Fatalf("%+v %v", cfg, err)
	}
	// An unknown namespace names the configured ones.
	if _, err := cfg.PipelineFor("payments"); !errors.Is(err, ErrConfig) {
		t.Fatalf("unknown namespace: %v", err)
	}
	// No configuration: the default pipeline.
	cfg, _, err = loadP(t, PipelineScope, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := cfg.PipelineFor("anything"); err != nil || p.Encryption != nil || p.Offload != nil {
		t.Fatalf("%+v %v", p, err)
	}
	// Server flags are not registered in PipelineScope.
	if _, _, err := loadP(t, PipelineScope, []string{"--listen", ":1"}, nil); err == nil {
		t.Fatal("--listen accepted in PipelineScope")
	}
	// Invalid pipelines fail validation.
	cfg, _, err = loadP(t, PipelineScope, []string{"--keyring-file", "k", "--kms-key-id", "alias/x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.PipelineFor("default"); !errors.Is(err, ErrConfig) {
		t.Fatalf("two key sources: %v", err)
	}
}

func TestServerScopeBothFlagPackages(t *testing.T) {
	args := []string{"--insecure", "--namespace", "a,b", "--offload-dir", "/tmp/x", "--listen", ":9"}
	cfg, _, err := loadP(t, PipelineScope|ServerScope, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The standard library's flag package reads the same flags into the same configuration.
	gfs := flag.NewFlagSet("test", flag.ContinueOnError)
	gf := Register(gfs, PipelineScope|ServerScope)
	if err := gfs.Parse(args); err != nil {
		t.Fatal(err)
	}
	given := map[string]bool{}
	gfs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	gcfg, err := gf.Load(func(n string) bool { return given[n] }, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Config{cfg, gcfg} {
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if c.Listen != ":9" || len(c.Namespaces) != 2 || c.Namespaces["b"].Offload.Dir != "/tmp/x" {
			t.Fatalf("%+v", c)
		}
	}
	// Pipeline flags without --namespace are an error for the server (they would be ignored).
	if _, _, err := loadP(t, PipelineScope|ServerScope, []string{"--insecure", "--keyring-file", "k"}, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("pipeline flags without --namespace: %v", err)
	}
	// A bad environment value names the variable.
	if _, _, err := loadP(t, PipelineScope|ServerScope, nil, map[string]string{"PAYLOADKIT_CODEC_MAX_PAYLOADS": "many"}); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad env: %v", err)
	}
}
