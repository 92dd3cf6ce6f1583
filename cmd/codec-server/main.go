// Command codec-server runs the payloadkit Codec Server for the Temporal Web UI and CLI. It is
// the same server, with the same configuration (package internal/cliconfig), as
// `payloadkit serve`; it is kept for existing deployments and accepts single-dash flags.
//
// Settings come from a JSON file (-config), environment variables (PAYLOADKIT_CODEC_<FLAG>, for
// example PAYLOADKIT_CODEC_JWKS_URL) and flags, flags winning over the environment and the
// environment over the file. The server refuses to start without authentication (a JWKS or a
// static tokens file) unless -insecure is given. It shuts down gracefully on SIGINT and SIGTERM.
//
// A minimal local run, one namespace with the default zstd compression and a static keyring:
//
//	codec-server -insecure -namespace default -keyring-file keyring.json -origins http://localhost:8233
//
// A config file:
//
//	{
//	  "listen": ":8081",
//	  "tls": {"cert_file": "server.crt", "key_file": "server.key"},
//	  "allowed_origins": ["https://temporal.example.com"],
//	  "auth": {
//	    "jwks_url": "https://issuer.example.com/.well-known/jwks.json",
//	    "issuer": "https://issuer.example.com/",
//	    "audience": ["temporal-codec"],
//	    "static_tokens_file": "tokens.json"
//	  },
//	  "limits": {"max_body_bytes": 4194304, "max_payloads": 1000, "claim_display_limit": 1048576},
//	  "namespaces": {
//	    "orders": {
//	      "compression": "zstd",
//	      "encryption": {"kms_key_id": "alias/temporal-orders"},
//	      "offload": {"s3_bucket": "temporal-payloads"}
//	    }
//	  }
//	}
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/payloadkit/payloadkit/internal/cliconfig"
)

// Aliases of the shared configuration types.
type (
	// Config is the codec server configuration.
	Config = cliconfig.Config
	// Pipeline is the codec chain of one namespace.
	Pipeline = cliconfig.Pipeline
	// EncryptionConfig selects the key provider.
	EncryptionConfig = cliconfig.EncryptionConfig
	// OffloadConfig selects the offload store.
	OffloadConfig = cliconfig.OffloadConfig
	// TLSConfig names the certificate and key files.
	TLSConfig = cliconfig.TLSConfig
	// AuthConfig configures authentication.
	AuthConfig = cliconfig.AuthConfig
	// LimitsConfig bounds requests.
	LimitsConfig = cliconfig.LimitsConfig
	// Duration is a time.Duration written as a Go duration string in JSON.
	Duration = cliconfig.Duration
)

// EnvPrefix prefixes the environment variable of every flag.
const EnvPrefix = cliconfig.EnvPrefix

var errConfig = cliconfig.ErrConfig

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "codec-server:", err)
		os.Exit(1)
	}
}

// loadConfig builds and validates the configuration: the file (if any), then flags and
// environment.
func loadConfig(args []string, getenv func(string) string, out io.Writer) (*Config, error) {
	fs := flag.NewFlagSet("codec-server", flag.ContinueOnError)
	fs.SetOutput(out)
	flags := cliconfig.Register(fs, cliconfig.PipelineScope|cliconfig.ServerScope)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected arguments %q", errConfig, fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	cfg, err := flags.Load(func(name string) bool { return given[name] }, getenv)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// run starts the server and serves until ctx is done, then shuts down gracefully. ready, if set,
// receives the listening address.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready func(net.Addr)) error {
	cfg, err := loadConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	return cliconfig.Serve(ctx, cfg, stderr, ready)
}
