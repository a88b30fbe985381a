package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/testnet"
)

// keptFile is an output file that exists before a get: what it holds, to
// compare after.
type keptFile struct {
	path string
	old  []byte
}

func newKeptFile(t *testing.T) keptFile {
	t.Helper()
	k := keptFile{path: filepath.Join(t.TempDir(), "video.bin"), old: bytes.Repeat([]byte("keep me "), 50_000)}
	if err := os.WriteFile(k.path, k.old, 0o640); err != nil {
		t.Fatal(err)
	}
	return k
}

// holds fails unless the file holds want, at mode 0640, alone in its
// directory (no temporary file left).
func (k keptFile) holds(t *testing.T, what string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(k.path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s: %s holds %d bytes (%v), not the %d bytes expected", what, k.path, len(got), err, len(want))
	}
	if fi, err := os.Stat(k.path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("%s: %s has mode %v (%v), want 0640 kept", what, k.path, fi.Mode(), err)
	}
	entries, err := os.ReadDir(filepath.Dir(k.path))
	if err != nil || len(entries) != 1 {
		t.Fatalf("%s: the directory holds %v (%v); want the output alone", what, entries, err)
	}
}

// withDirect runs fn with the output written with direct I/O or not.
func withDirect(direct bool, fn func()) {
	old := useDirectOutput
	useDirectOutput = direct
	defer func() { useDirectOutput = old }()
	fn()
}

// TestGetKeepsFileOnFailure: `satchel get -o FILE` over an existing file
// replaces it only with the whole, verified object. Against real
// providers: a get interrupted midway (Ctrl-C) and one that fails midway
// (a block no provider holds any more) leave FILE byte-exact, mode and
// all, and no temporary file; a good get replaces it. Each with direct
// I/O and through the page cache, with and without --fsync.
func TestGetKeepsFileOnFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	pn := startPutNet(t)
	bag := pn.net.Bag.String()
	path, data := putTestFile(t, 4<<20+77) // leaves of 1 MiB: the fourth fails
	var put putOutput
	if err := json.Unmarshal([]byte(pn.ok("put", path, "--bag", bag, "--chunk-size", "1MiB", "--json")), &put); err != nil {
		t.Fatal(err)
	}
	variants := []struct {
		direct bool
		fsync  []string
	}{{true, nil}, {false, nil}, {true, []string{"--fsync"}}, {false, []string{"--fsync"}}}
	for _, v := range variants {
		withDirect(v.direct, func() {
			k := newKeptFile(t)
			pn.ok(append([]string{"get", put.CID, "--bag", bag, "-o", k.path}, v.fsync...)...)
			k.holds(t, fmt.Sprintf("a good get (direct %v, %v)", v.direct, v.fsync), data)
		})
	}

	// -o /dev/stdout is standard output: written through the command's
	// own, never resolved to whatever file it is redirected to and
	// replaced.
	for _, stdout := range []string{"/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"} {
		if got := pn.ok("get", put.CID, "--bag", bag, "--length", "1000", "-o", stdout); got != string(data[:1000]) {
			t.Fatalf("get -o %s wrote %d bytes to the command's standard output, want the object's first 1000", stdout, len(got))
		}
	}

	// Interrupted midway: the third block is left only on provider 0,
	// which is held busy, so the get writes the first two blocks (from
	// the others) and then waits for it until Ctrl-C.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	third := chunker.ChunkCID(data[2<<20 : 3<<20])
	busy := pn.net.Provider(0)
	for _, p := range pn.net.Providers()[1:] {
		if err := p.Store().Delete(third); err != nil {
			t.Fatal(err)
		}
	}
	if err := busy.LimitFetchBudget(ctx); err != nil {
		t.Fatal(err)
	}
	release, err := busy.HoldFetchBudget(ctx, third)
	if err != nil {
		t.Fatal(err)
	}
	for _, direct := range []bool{true, false} {
		withDirect(direct, func() {
			k := newKeptFile(t)
			getCtx, interrupt := context.WithCancel(ctx)
			defer interrupt()
			var errb bytes.Buffer
			exit := make(chan int, 1)
			go func() {
				exit <- run(getCtx, []string{"-c", pn.cfgPath, "get", put.CID, "--bag", bag, "--busy-wait", "1m", "-o", k.path}, &bytes.Buffer{}, &errb)
			}()
			// Direct I/O holds the two blocks in its buffer; the page
			// cache has them in the temporary file.
			want := int64(2 << 20)
			if direct {
				want = 0
			}
			testnet.Wait(t, "the first two blocks written", func() bool { return partBytes(k.path) >= want })
			testnet.Wait(t, "the get waiting on the busy provider", func() bool { return busy.RefusedGETs() > 0 })
			interrupt() // Ctrl-C
			if code := <-exit; code == 0 || !strings.Contains(errb.String(), "interrupted") {
				t.Fatalf("interrupted get (direct %v): exit %d, stderr %q", direct, code, errb.String())
			}
			k.holds(t, fmt.Sprintf("an interrupted get (direct %v)", direct), k.old)
		})
	}
	release()

	// Failing midway: no provider holds the fourth block any more.
	for _, p := range pn.net.Providers() {
		if err := p.Store().Delete(chunker.ChunkCID(data[3<<20 : 4<<20])); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range variants {
		withDirect(v.direct, func() {
			k := newKeptFile(t)
			_, errs, code := pn.run(append([]string{"get", put.CID, "--bag", bag, "-o", k.path}, v.fsync...)...)
			if code == 0 {
				t.Fatalf("get of an object missing a block succeeded (direct %v, %v)", v.direct, v.fsync)
			}
			if strings.Contains(errs, "partial") {
				t.Fatalf("failed get says the output is partial: %s", errs)
			}
			k.holds(t, fmt.Sprintf("a failed get (direct %v, %v)", v.direct, v.fsync), k.old)
		})
	}
}

// partBytes returns the size of the temporary file a get to path writes,
// or -1 while there is none.
func partBytes(path string) int64 {
	parts, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".*.part"))
	if len(parts) != 1 {
		return -1
	}
	fi, err := os.Stat(parts[0])
	if err != nil {
		return -1
	}
	return fi.Size()
}
