package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
)

func init() { registerGroup(newKeyCmd) }

func newKeyCmd(app *App) *cobra.Command {
	return groupCmd("key", "Make and show account keys: the accounts that sign transactions",
		`An account is an ed25519 key; its account ID (64 hex characters) is what the
leads hire as a worker (workers add -a), what an operator names as a
transactor (accept-invitation -t), and what controls a member. The key file
is the secret: keep it, mode 0600, on the machine that signs.`,
		newKeyNewCmd(app), newKeyShowCmd(app))
}

// keyJSON is a key as `key new|show --json` prints it.
type keyJSON struct {
	Account string `json:"account"`
	Path    string `json:"path"`
}

func newKeyNewCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "new [FILE]",
		Short: "Make a new account key and print its account",
		Long: `Make a new random account key in FILE (default: the config's key, else
HOME/keys/account.key — the key members and operators sign with by default) and
print its account. An existing file is never replaced.`,
		Example: `  satchel key new                         # HOME/keys/account.key
  satchel key new .satchel/keys/tx.key    # a separate transactor for a storage node`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := keyPath(app, args)
			if err != nil {
				return err
			}
			k, err := chain.GenerateKey()
			if err != nil {
				return err
			}
			if err := saveNewKey(path, k); err != nil {
				return err
			}
			return printKey(app, path, k, "made account key %s\naccount %s\n")
		},
	}
}

func newKeyShowCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:     "show [FILE]",
		Short:   "Print the account of a key file (default: the key commands sign with)",
		Example: `  satchel key show .satchel/keys/storage-lead.key`,
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := keyPath(app, args)
			if err != nil {
				return err
			}
			k, err := loadKey(path)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("no key file %s; make one with `satchel key new %s`", path, path)
			}
			if err != nil {
				return err
			}
			return printKey(app, path, k, "key %s\naccount %s\n")
		},
	}
}

// loadKey is chain.LoadKey, except that a file others can read which is
// no key at all is said to be no key file: LoadKey refuses such a file
// before it reads a byte, which would send someone who named the wrong
// file to chmod it. Only the shape of the file is looked at, never its
// secret.
func loadKey(path string) (chain.Key, error) {
	k, err := chain.LoadKey(path)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if fi, serr := os.Stat(path); serr == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o077 != 0 && !looksLikeKey(path) {
		return chain.Key{}, fmt.Errorf("%s is not an account key file (one is the JSON `satchel key new` writes, with a type and a seed); name the key file", path)
	}
	return k, err
}

// looksLikeKey reports whether the file at path has the shape of an
// account key file: a small JSON object of type ed25519 with a seed.
func looksLikeKey(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return true // unreadable: let LoadKey's error stand
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return true
	}
	var kf struct {
		Type string `json:"type"`
		Seed string `json:"seed"`
	}
	return len(b) <= maxKeyFileBytes && json.Unmarshal(b, &kf) == nil && kf.Type == "ed25519" && kf.Seed != ""
}

// maxKeyFileBytes bounds what looksLikeKey reads, as chain.LoadKey
// bounds a key file.
const maxKeyFileBytes = 16 << 10

// saveNewKey writes k to path, which must not exist: chain.CreateKey
// fails rather than replace a file (two runs at once cannot replace a key
// whose account was shown), and syncs the directory, so the new name
// survives a power loss before its account is shown (a lead may hire it).
func saveNewKey(path string, k chain.Key) error {
	err := chain.CreateKey(path, k)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists already; it is not replaced (see its account with `satchel key show %s`), or name another file", path, path)
	}
	return err
}

// keyPath is the key file named by args, else the one commands sign with
// by default, as loadSigner picks it: the config's key, or the default
// account key.
func keyPath(app *App, args []string) (string, error) {
	if len(args) == 1 {
		return args[0], nil
	}
	cfg, err := app.Config()
	if err != nil {
		return "", err
	}
	if cfg.Key != "" {
		return cfg.Key, nil
	}
	return accountKeyFile(cfg), nil
}

func printKey(app *App, path string, k chain.Key, human string) error {
	out := keyJSON{Account: k.Account().String(), Path: path}
	return app.Printer().Print(out, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, human, out.Path, out.Account)
		return err
	})
}
