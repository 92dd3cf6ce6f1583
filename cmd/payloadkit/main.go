package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes of the command.
const (
	exitOK         = 0
	exitProblem    = 1 // a payload could not be decoded or is malformed, a claim is damaged, a request failed
	exitUsage      = 2 // bad flags, configuration or input
	exitUnverified = 3 // verify: nothing found wrong, but some claims could not be checked
)

// exitError carries the exit code of a failed command. Its message, if any, is printed on
// standard error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf returns an error exiting with exitUsage.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// streams are the command's standard streams.
type streams struct {
	in       io.Reader
	out, err io.Writer
	// getenv reads the environment; nil means os.Getenv.
	getenv envGetter
}

// env returns the environment variable name.
func (s streams) env(name string) string {
	if s.getenv == nil {
		return os.Getenv(name)
	}
	return s.getenv(name)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], streams{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, s streams) int {
	root := newRootCommand(s)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// Cobra's own errors: unknown commands and flags, missing arguments.
		ee = &exitError{code: exitUsage, err: err}
	}
	if ee.err != nil {
		fmt.Fprintf(s.err, "payloadkit: %v\n", ee.err)
		if ee.code == exitUsage {
			fmt.Fprintln(s.err, "Run 'payloadkit --help' for usage.")
		}
	}
	return ee.code
}

func newRootCommand(s streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "payloadkit",
		Short: "Operate payloadkit: Codec Server, decode and audit payloads, keyrings, offload store",
		Long: `payloadkit is the operator tool of the payloadkit codecs (compression,
encryption, claim-check offload) for Temporal:

  serve      the Codec Server for the Temporal Web UI and CLI
  decode     print a history (file, standard input or fetched from a server)
             or Codec Server payloads with every payload decoded
  inspect    audit payloads without keys: key ids, ciphers, claims, totals
  keys       generate, rotate and list static keyring files
  offload    verify a history's claims against the store; S3 lifecycle rule

serve, decode and inspect read one configuration: the Codec Server's JSON
file (--config), environment variables PAYLOADKIT_CODEC_<FLAG> and flags.
Progress bars are shown on a terminal only. Shell completion: 'payloadkit
completion bash|zsh|fish|powershell --help'.

Exit codes (each command's help details them):
  0  success
  1  a problem was found or an operation failed: a payload could not be
     decoded or is malformed, a claim is damaged, a server or S3 request
     failed
  2  usage, configuration or input error (bad flags, unreadable or
     malformed files)
  3  offload verify: nothing found wrong, but some claims could not be
     checked`,
		Args:          cobra.NoArgs,
		RunE:          showHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().BoolVarP(&quietProgress, "quiet", "q", false, "no progress bars (they are shown only when standard error is a terminal)")
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	root.AddCommand(newServeCommand(s), newDecodeCommand(s), newInspectCommand(s), newKeysCommand(s), newOffloadCommand(s))
	return root
}

func newOffloadCommand(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "offload",
		Short: "Offloaded payloads (claim checks): verify histories, S3 lifecycle",
		Args:  cobra.NoArgs,
		RunE:  showHelp,
	}
	cmd.AddCommand(newVerifyCommand(s), newLifecycleCommand(s))
	return cmd
}

// showHelp is the action of commands that only group others: it prints their help. (Being
// runnable with cobra.NoArgs makes an unknown subcommand an error instead of the help.)
func showHelp(cmd *cobra.Command, _ []string) error { return cmd.Help() }
