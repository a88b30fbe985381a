package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

// key new makes a key an operator can be hired with (its account printed,
// the file 0600) and never replaces one; key show prints the account of
// the file, and says how to make one that is missing.
func TestKeyNewShow(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, []byte("home: "+filepath.Join(dir, "home")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	satchel := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"-c", cfg}, args...), &out, &errOut)
		return out.String(), errOut.String(), code
	}
	out, errs, code := satchel("key", "new", "--json")
	var made keyJSON
	if code != 0 || json.Unmarshal([]byte(out), &made) != nil {
		t.Fatalf("key new: exit %d, %q %q", code, out, errs)
	}
	want := filepath.Join(dir, "home", "keys", "account.key")
	k, err := chain.LoadKey(want)
	if err != nil || made.Path != want || made.Account != k.Account().String() {
		t.Fatalf("key new made %+v, the file at %s holds %v (%v)", made, want, k.Account(), err)
	}
	if fi, err := os.Stat(want); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if ents, err := os.ReadDir(filepath.Dir(want)); err != nil || len(ents) != 1 {
		t.Fatalf("key new left %v (%v) in the key directory; want the key only", ents, err)
	}
	before, _ := os.ReadFile(want)
	if _, errs, code := satchel("key", "new"); code == 0 || !strings.Contains(errs, "exists already") {
		t.Fatalf("key new over an existing key: exit %d, %q", code, errs)
	}
	if after, _ := os.ReadFile(want); !bytes.Equal(before, after) {
		t.Fatal("key new replaced an existing key")
	}
	if out, _, code := satchel("key", "show"); code != 0 || !strings.Contains(out, made.Account) {
		t.Fatalf("key show: exit %d, %q; want account %s", code, out, made.Account)
	}
	tx := filepath.Join(dir, "tx.key")
	out, _, code = satchel("key", "new", tx)
	if code != 0 || !strings.Contains(out, "account ") {
		t.Fatalf("key new %s: exit %d, %q", tx, code, out)
	}
	// With a key in the config, key show names the key commands sign with.
	txKey, err := chain.LoadKey(tx)
	if err != nil {
		t.Fatal(err)
	}
	txAcct := txKey.Account().String()
	if err := os.WriteFile(cfg, []byte("home: "+filepath.Join(dir, "home")+"\nkey: "+tx+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errs, code := satchel("key", "show"); code != 0 || !strings.Contains(out, txAcct) || strings.Contains(out, made.Account) {
		t.Fatalf("key show with key: %s in the config: exit %d, %q %q; want account %s", tx, code, out, errs, txAcct)
	}
	missing := filepath.Join(dir, "none.key")
	if _, errs, code := satchel("key", "show", missing); code == 0 || !strings.Contains(errs, "satchel key new "+missing) {
		t.Fatalf("key show of a missing file: exit %d, %q", code, errs)
	}
	// A key others can read is refused with the fix, as the identity is.
	if err := os.Chmod(tx, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errs, code := satchel("key", "show", tx); code == 0 || !strings.Contains(errs, "has permissions 0644") ||
		!strings.Contains(errs, "run chmod 600 "+tx) || strings.Contains(out, "account") {
		t.Fatalf("key show of a 0644 key: exit %d, %q %q; want a refusal saying chmod 600", code, out, errs)
	}
}

// key show of a file others can read that is no key at all (a config, a
// peer identity, a typo) says it is not a key file rather than asking for
// chmod 600; a key others can read is still refused with the chmod fix.
func TestKeyShowNotAKey(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, []byte("home: "+filepath.Join(dir, "home")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "open.key")
	if err := chain.SaveKey(keyFile, k); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, bytes.Repeat([]byte(" "), 20<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want, notWant string
	}{
		{"a config", cfg, "is not an account key file", "chmod"},
		{"a file too large", big, "is not an account key file", "chmod"},
		{"a key others can read", keyFile, "run chmod 600 " + keyFile, "not an account key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.Chmod(tc.path, 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			code := run(context.Background(), []string{"-c", cfg, "key", "show", tc.path}, &out, &errOut)
			if code == 0 || !strings.Contains(errOut.String(), tc.want) || strings.Contains(errOut.String(), tc.notWant) || out.Len() > 0 {
				t.Fatalf("key show %s: exit %d, %q %q; want an error saying %q", tc.path, code, out.String(), errOut.String(), tc.want)
			}
		})
	}
}
