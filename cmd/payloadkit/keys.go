package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/payloadkit/payloadkit/codec"
	"github.com/payloadkit/payloadkit/internal/cliconfig"
)

// keyringJSON is the keyring file format of codec.LoadKeyringFile.
type keyringJSON struct {
	Primary string            `json:"primary"`
	Keys    map[string]string `json:"keys"`
}

type keysFlags struct {
	cfg          *cliconfig.Flags
	keyID        string
	showMaterial bool
}

func newKeysCommand(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Generate, rotate and list static keyring files",
		Long: `keys manages static keyring files, the JSON files the encryption codec and
the Codec Server read with --keyring-file:

  {"primary": "k2", "keys": {"k2": "<base64 32 bytes>", "k1": "<base64 32 bytes>"}}

The primary key encrypts new payloads; every key decrypts. Rotating adds a
new primary and keeps the old keys, so payloads already in histories still
decode; remove an old key only once 'payloadkit inspect' shows no history
uses it. Files are written with mode 0600, atomically. Key material is never
printed unless --show-key-material is given.

The file is --keyring-file, or the keyring_file of --namespace in --config.

Exit codes:
  0  success
  1  the file could not be written
  2  usage error, or the file is missing, exists already (generate) or is not
     a valid keyring`,
		Args: cobra.NoArgs,
		RunE: showHelp,
	}
	cmd.AddCommand(
		newKeysSubcommand(s, "generate", "Create a new keyring file holding one new key", runKeysGenerate),
		newKeysSubcommand(s, "rotate", "Add a new primary key to a keyring file, keeping the old keys", runKeysRotate),
		newKeysSubcommand(s, "list", "List the key ids of a keyring file and its primary", runKeysList),
	)
	return cmd
}

func newKeysSubcommand(s streams, name, short string, run func(s streams, path string, f *keysFlags) error) *cobra.Command {
	f := &keysFlags{}
	cmd := &cobra.Command{
		Use:   name + " --keyring-file FILE [flags]",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, f.cfg, s.env)
			if err != nil {
				return err
			}
			path := ""
			if p, ok := cfg.Namespaces[f.cfg.Namespace()]; ok && p.Encryption != nil {
				path = p.Encryption.KeyringFile
			}
			if path == "" {
				return usageErrorf("no keyring file: give --keyring-file, or --config with a keyring_file for --namespace")
			}
			return run(s, path, f)
		},
	}
	fs := cmd.Flags()
	f.cfg = cliconfig.Register(fs, cliconfig.PipelineScope)
	fs.VisitAll(func(fl *pflag.Flag) {
		if fl.Name != "config" && fl.Name != "namespace" && fl.Name != "keyring-file" {
			fl.Hidden = true
		}
	})
	if name != "list" {
		fs.StringVar(&f.keyID, "key-id", "", `id of the new key (default "k-<UTC time>", e.g. k-20260102T150405Z)`)
	}
	fs.BoolVar(&f.showMaterial, "show-key-material", false, "print key material (base64) on standard output: keep it out of logs")
	return cmd
}

func newKeyID(id string) string {
	if id != "" {
		return id
	}
	return "k-" + time.Now().UTC().Format("20060102T150405Z")
}

func runKeysGenerate(s streams, path string, f *keysFlags) error {
	if _, err := os.Stat(path); err == nil {
		return usageErrorf("%s exists already: use 'payloadkit keys rotate' to add a key", path)
	}
	id := newKeyID(f.keyID)
	kr := keyringJSON{Primary: id, Keys: map[string]string{id: base64.StdEncoding.EncodeToString(codec.GenerateKey())}}
	if err := writeKeyring(path, kr, false); err != nil {
		return err
	}
	fmt.Fprintf(s.out, "created %s: primary %s, 1 key\n", path, id)
	printMaterial(s, f, kr, id)
	return nil
}

func runKeysRotate(s streams, path string, f *keysFlags) error {
	kr, err := readKeyring(path)
	if err != nil {
		return err
	}
	id := newKeyID(f.keyID)
	if _, dup := kr.Keys[id]; dup {
		return usageErrorf("%s already holds a key %q: choose another --key-id", path, id)
	}
	old := kr.Primary
	kr.Keys[id] = base64.StdEncoding.EncodeToString(codec.GenerateKey())
	kr.Primary = id
	if err := writeKeyring(path, kr, true); err != nil {
		return err
	}
	fmt.Fprintf(s.out, "rotated %s: primary %s (was %s), %d keys: %s\n", path, id, old, len(kr.Keys), strings.Join(sortedIDs(kr), ", "))
	printMaterial(s, f, kr, id)
	return nil
}

func runKeysList(s streams, path string, f *keysFlags) error {
	kr, err := readKeyring(path)
	if err != nil {
		return err
	}
	for _, id := range sortedIDs(kr) {
		mark := " "
		if id == kr.Primary {
			mark = "*"
		}
		if f.showMaterial {
			fmt.Fprintf(s.out, "%s %s %s\n", mark, id, kr.Keys[id])
		} else {
			fmt.Fprintf(s.out, "%s %s\n", mark, id)
		}
	}
	return nil
}

// printMaterial prints the new key's material with --show-key-material, and says otherwise.
func printMaterial(s streams, f *keysFlags, kr keyringJSON, id string) {
	if f.showMaterial {
		fmt.Fprintf(s.out, "key %s: %s\n", id, kr.Keys[id])
	}
}

// sortedIDs lists the key ids, primary first, then the others in order.
func sortedIDs(kr keyringJSON) []string {
	ids := make([]string, 0, len(kr.Keys))
	for id := range kr.Keys {
		if id != kr.Primary {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return append([]string{kr.Primary}, ids...)
}

// readKeyring reads and validates a keyring file (with codec.LoadKeyringFile's checks).
func readKeyring(path string) (keyringJSON, error) {
	if _, err := codec.LoadKeyringFile(path); err != nil {
		return keyringJSON{}, usageErrorf("%w", err)
	}
	b, err := cliconfig.ReadBounded(path)
	if err != nil {
		return keyringJSON{}, usageErrorf("keyring: %w", err)
	}
	defer clear(b)
	var kr keyringJSON
	if err := json.Unmarshal(b, &kr); err != nil {
		return keyringJSON{}, usageErrorf("%s is not a JSON keyring", path) // JSON errors may quote key material
	}
	return kr, nil
}

// writeKeyring writes kr to path with mode 0600: to a new file in the same directory, renamed
// over path (replace) or linked to it (no replace, failing if path appeared meanwhile).
func writeKeyring(path string, kr keyringJSON, replace bool) error {
	data, err := json.MarshalIndent(kr, "", "  ")
	if err != nil {
		return &exitError{code: exitProblem, err: fmt.Errorf("encoding the keyring: %w", err)}
	}
	defer clear(data)
	data = append(data, '\n')
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keyring-*.tmp")
	if err != nil {
		return &exitError{code: exitProblem, err: fmt.Errorf("writing %s: %w", path, err)}
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), 0o600)
	}
	if werr == nil {
		if replace {
			werr = os.Rename(tmp.Name(), path)
		} else if werr = os.Link(tmp.Name(), path); errors.Is(werr, os.ErrExist) {
			return usageErrorf("%s exists already", path)
		}
	}
	if werr != nil {
		return &exitError{code: exitProblem, err: fmt.Errorf("writing %s: %w", path, werr)}
	}
	return nil
}
