// Command codec-server runs the payloadkit Codec Server for the Temporal Web UI and CLI.
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
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

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

// run starts the server and serves until ctx is done, then shuts down gracefully. ready, if set,
// receives the listening address.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready func(net.Addr)) error {
	cfg, err := loadConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	baseLog := slog.New(slog.NewJSONHandler(stderr, nil))
	log := baseLog
	if cfg.Insecure {
		log = log.With("insecure", true)
	}
	b, err := build(ctx, cfg, log, baseLog)
	if err != nil {
		return err
	}
	defer b.close()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           b.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() {
		if cfg.TLS.CertFile != "" {
			errc <- srv.ServeTLS(ln, cfg.TLS.CertFile, cfg.TLS.KeyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	log.Info("codec server listening", "addr", ln.Addr().String(), "tls", cfg.TLS.CertFile != "", "namespaces", len(cfg.Namespaces))
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", time.Duration(cfg.ShutdownTimeout).String())
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.ShutdownTimeout))
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}
