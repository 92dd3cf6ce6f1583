package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/internal/cliconfig"
)

// envGetter reads environment variables; tests replace it.
type envGetter func(string) string

// loadConfig reads the configuration of cmd's cliconfig flags: file, environment, flags.
func loadConfig(cmd *cobra.Command, flags *cliconfig.Flags, getenv envGetter) (*cliconfig.Config, error) {
	cfg, err := flags.Load(func(name string) bool { return cmd.Flags().Changed(name) }, getenv)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: err}
	}
	return cfg, nil
}

func newServeCommand(s streams) *cobra.Command {
	var flags *cliconfig.Flags
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "Run the Codec Server for the Temporal Web UI and CLI",
		Long: `serve runs the payloadkit Codec Server: POST /encode and /decode for the
Temporal Web UI and 'temporal --codec-endpoint'. It is cmd/codec-server (still
built for existing deployments) with double-dash flags.

Settings come from a JSON file (--config), environment variables
(` + cliconfig.EnvPrefix + `<FLAG>, for example ` + cliconfig.EnvPrefix + `JWKS_URL) and flags,
flags winning over the environment and the environment over the file. The
same file and variables configure 'payloadkit decode' and 'payloadkit inspect'.
The server refuses to start without authentication (a JWKS or a static tokens
file) unless --insecure is given. It logs JSON lines on standard error and
shuts down gracefully on SIGINT and SIGTERM.

  payloadkit serve --insecure --namespace default --keyring-file keyring.json \
      --origins http://localhost:8233

Exit codes:
  0  stopped by a signal after a graceful shutdown
  1  the server failed (listen, TLS, shutdown)
  2  usage or configuration error`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, flags, s.env)
			if err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return usageErrorf("%w", err)
			}
			if err := cliconfig.Serve(cmd.Context(), cfg, s.err, nil); err != nil {
				code := exitProblem
				if errors.Is(err, cliconfig.ErrConfig) || errors.Is(err, codec.ErrInvalidKeyring) {
					code = exitUsage
				}
				return &exitError{code: code, err: fmt.Errorf("codec server: %w", err)}
			}
			return nil
		},
	}
	flags = cliconfig.Register(cmd.Flags(), cliconfig.PipelineScope|cliconfig.ServerScope)
	return cmd
}
