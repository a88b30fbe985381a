package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/client"
	"github.com/satchel-net/satchel/testnet"
)

// putNet is a whole network (chain with its RPC on loopback, three
// providers) and a config file whose key is the bag owner's, so put and get
// run exactly as a user runs them.
type putNet struct {
	t       *testing.T
	net     *testnet.Network
	home    string
	cfgPath string
}

func startPutNet(t *testing.T) *putNet {
	t.Helper()
	addr := freeAddr(t)
	net := testnet.New(t, testnet.Providers(3), testnet.Configure(func(c *testnet.Config) { c.ChainRPCAddr = addr }))
	home := t.TempDir()
	keyPath := filepath.Join(home, "keys", "member.key")
	if err := chain.SaveKey(keyPath, net.Member); err != nil {
		t.Fatal(err)
	}
	pn := &putNet{t: t, net: net, home: home, cfgPath: filepath.Join(home, "config.yml")}
	writeFile(t, pn.cfgPath, "home: "+home+"\nkey: "+keyPath+"\nchain:\n  rpc: http://"+addr+"\n  genesis: "+net.Chain.GenesisFile()+"\n")
	return pn
}

func (pn *putNet) run(args ...string) (string, string, int) {
	pn.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, append(args, "-c", pn.cfgPath), &out, &errb)
	return out.String(), errb.String(), code
}

func (pn *putNet) ok(args ...string) string {
	pn.t.Helper()
	out, errs, code := pn.run(args...)
	if code != 0 {
		pn.t.Fatalf("satchel %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	if errs != "" {
		pn.t.Fatalf("satchel %s wrote to stderr (not a terminal): %s", strings.Join(args, " "), errs)
	}
	return out
}

func (pn *putNet) fails(want string, args ...string) {
	pn.t.Helper()
	out, errs, code := pn.run(args...)
	if code == 0 {
		pn.t.Fatalf("satchel %s succeeded: %s", strings.Join(args, " "), out)
	}
	if !strings.Contains(errs, want) {
		pn.t.Fatalf("satchel %s: error does not say %q:\n%s", strings.Join(args, " "), want, errs)
	}
}

func putTestFile(t *testing.T, n int) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	path := filepath.Join(t.TempDir(), "file.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func TestPutGetCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	pn := startPutNet(t)
	bag := pn.net.Bag.String()
	path, data := putTestFile(t, 3<<20+99)

	var put putOutput
	if err := json.Unmarshal([]byte(pn.ok("put", path, "--bag", bag, "--chunk-size", "256KiB", "--json")), &put); err != nil {
		t.Fatal(err)
	}
	if put.Size != int64(len(data)) || put.Bag != pn.net.Bag || len(put.Providers) != 3 || !strings.HasPrefix(put.CID, "bafy") {
		t.Fatalf("put output %+v", put)
	}
	if o, err := pn.net.Client.DataObject(context.Background(), pn.net.Bag, put.Object); err != nil || !o.Accepted || o.ContentID != put.CID {
		t.Fatalf("chain object %+v %v", o, err)
	}

	// By object ID with its bag, by object ID alone, and by CID.
	for i, args := range [][]string{
		{put.Object.String(), "--bag", bag},
		{put.Object.String()},
		{put.CID},
	} {
		out := filepath.Join(t.TempDir(), "out.bin")
		text := pn.ok(append([]string{"get", "-o", out}, args...)...)
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get %v: %v (%d bytes)", args, err, len(got))
		}
		if !strings.Contains(text, "wrote 3145827 bytes") {
			t.Fatalf("get %d said %q", i, text)
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*.part")); len(left) != 0 {
			t.Fatalf("temporary files left: %v", left)
		}
	}

	// A range, as JSON.
	out := filepath.Join(t.TempDir(), "part.bin")
	var got getOutput
	if err := json.Unmarshal([]byte(pn.ok("get", put.Object.String(), "--bag", bag, "--offset", "1000", "--length", "300KiB", "-o", out, "--json")), &got); err != nil {
		t.Fatal(err)
	}
	part, _ := os.ReadFile(out)
	if got.Bytes != 300<<10 || got.Offset != 1000 || !bytes.Equal(part, data[1000:1000+300<<10]) {
		t.Fatalf("ranged get %+v, %d bytes", got, len(part))
	}
	// To standard output.
	if s := pn.ok("get", put.CID, "--bag", bag, "--offset", "5", "--length", "10"); s != string(data[5:15]) {
		t.Fatalf("get to stdout: %q", s)
	}

	// To a FIFO: written straight into it, never replaced by a file.
	pn.getIntoFIFO(put.CID, bag, data[:300<<10])

	// Pipelined on request, whatever the size: byte-exact on get.
	path2, data2 := putTestFile(t, 1<<20+7)
	var put2 putOutput
	if err := json.Unmarshal([]byte(pn.ok("put", path2, "--bag", bag, "--chunk-size", "256KiB", "--replication", "pipelined", "--json")), &put2); err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(t.TempDir(), "out2.bin")
	pn.ok("get", "-o", out2, put2.CID)
	if got, err := os.ReadFile(out2); err != nil || !bytes.Equal(got, data2) || len(put2.Providers) != 3 {
		t.Fatalf("pipelined put %+v, get: %v (%d bytes)", put2, err, len(got))
	}

	// Errors name the cause.
	pn.fails("want auto, direct or pipelined", "put", path, "--bag", bag, "--replication", "sideways")
	pn.fails("does not exist", "put", filepath.Join(t.TempDir(), "nope"), "--bag", bag)
	// A bag that does not exist is the one error: no word of contracts
	// falling back to a path that cannot store it either.
	if _, errs, code := pn.run("put", path, "--bag", "dynamic:channel:77"); code == 0 ||
		errs != "error: bag dynamic:channel:77 does not exist; list bags with `satchel bag list`\n" {
		t.Errorf("put to a missing bag: exit %d, stderr %q", code, errs)
	}
	pn.fails(`required flag(s) "bag" not set`, "put", path)
	pn.fails("--json needs -o FILE", "get", put.CID, "--json")
	pn.fails("neither an object ID nor a CID", "get", "what", "-o", filepath.Join(t.TempDir(), "x"))
	pn.fails("data object 999 is in no bag", "get", "999", "-o", filepath.Join(t.TempDir(), "x"))
	if _, err := pn.net.Client.Submit(context.Background(), pn.net.StorageLead, chain.MsgSetUploadingBlocked{Blocked: true}); err != nil {
		t.Fatal(err)
	}
	pn.fails("uploading is blocked", "put", path, "--bag", bag)
}

// A FILE that is missing or a directory is the first error put and
// contract publish report: before the missing key or the unreachable
// chain of this config, which fixing would not help.
func TestFileArgumentCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	writeFile(t, cfg, "home: "+filepath.Join(dir, "home")+"\nchain:\n  rpc: http://"+freeAddr(t)+"\n")
	missing := filepath.Join(dir, "nope.mp4")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"put", missing, "--bag", "dynamic:channel:0"}, "file " + missing + " does not exist; check the path"},
		{[]string{"put", dir, "--bag", "dynamic:channel:0"}, dir + " is a directory; satchel put takes a file"},
		{[]string{"contract", "publish", missing, "--bag", "dynamic:channel:0", "--duration", "1d"}, "file " + missing + " does not exist"},
		{[]string{"contract", "publish", dir, "--bag", "dynamic:channel:0", "--duration", "1d"}, dir + " is a directory"},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"-c", cfg}, tc.args...), &out, &errOut)
		if code == 0 || !strings.HasPrefix(errOut.String(), "error: "+tc.want) {
			t.Errorf("satchel %s: exit %d, stderr %q; want %q", strings.Join(tc.args, " "), code, errOut.String(), tc.want)
		}
	}
}

func TestPutStdinCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	pn := startPutNet(t)
	_, data := putTestFile(t, 700<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	app := &App{Out: &out, Err: &errb}
	root := newRootCmd(app)
	root.SetArgs([]string{"put", "-", "--bag", pn.net.Bag.String(), "--json", "-c", pn.cfgPath})
	root.SetIn(bytes.NewReader(data))
	root.SetOut(&out)
	root.SetErr(&errb)
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("put -: %v\n%s", err, errb.String())
	}
	var put putOutput
	if err := json.Unmarshal(out.Bytes(), &put); err != nil || put.Size != int64(len(data)) {
		t.Fatalf("put - output %q: %v", out.String(), err)
	}
}

// fakeTerminal makes the command's stderr count as a terminal.
func fakeTerminal(t *testing.T) {
	old := stderrIsTerminal
	stderrIsTerminal = func(io.Writer) bool { return true }
	t.Cleanup(func() { stderrIsTerminal = old })
}

func TestPutProgressBar(t *testing.T) {
	var errb bytes.Buffer
	if b := newProgressBar(&App{Err: &errb}, "put x"); b != nil {
		t.Fatal("a bar on a non-terminal")
	}
	fakeTerminal(t)
	if b := newProgressBar(&App{Err: &errb, JSON: true}, "put x"); b != nil {
		t.Fatal("a bar with --json")
	}
	b := newProgressBar(&App{Err: &errb}, "put x")
	now := time.Unix(1000, 0)
	b.now = func() time.Time { return now }
	p := client.Progress{Op: client.OpPut, File: client.FileUploading, TotalBytes: 100 << 20, Providers: 3}
	p.Links[client.LinkSendingData] = 5
	p.Links[client.LinkFailed] = 1
	for i := range 11 {
		p.Bytes = int64(i) * 5 << 20 // 5 MiB per 100 ms: 50 MiB/s
		b.update(p)
		now = now.Add(100 * time.Millisecond)
	}
	b.done(true)
	s := errb.String()
	t.Logf("%q", s[strings.LastIndex(s, "\r"):])
	for _, want := range []string{"put x [", "50%", "50 MiB/100 MiB", "50 MiB/s", "ETA 1s", "uploading", "3 providers", "5 chunks in flight", "1 failed"} {
		if !strings.Contains(s, want) {
			t.Fatalf("bar %q lacks %q", s, want)
		}
	}
	if !strings.HasPrefix(s, "\r") || !strings.HasSuffix(s, "\n") {
		t.Fatalf("bar %q does not redraw in place and end its line", s)
	}
	if n := strings.Count(s, "\r"); n > 12 {
		t.Fatalf("%d redraws for 11 updates 100 ms apart", n)
	}
	if got := formatETA(3723 * time.Second); got != "1h02m" {
		t.Fatalf("formatETA: %s", got)
	}
}

func TestGetWritesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("provider went away")
	_, err := writeAtomic(path, false, func(w io.Writer) (int64, error) {
		_, _ = w.Write([]byte("partial"))
		return 7, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("a failed get changed the file: %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary file left: %v", entries)
	}
	if _, err := writeAtomic(path, false, func(w io.Writer) (int64, error) { n, err := w.Write([]byte("new")); return int64(n), err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Fatalf("file %q", b)
	}
}

// cancelOnWrite is a standard output that ends the command's context once
// it has taken its first bytes, as Ctrl-C in the middle of a get does.
type cancelOnWrite struct {
	cancel context.CancelFunc
	n      int
}

func (w *cancelOnWrite) Write(p []byte) (int, error) {
	w.n += len(p)
	w.cancel()
	return len(p), nil
}

// TestGetRangeAndInterruption: an offset at or past the end is refused and
// creates no file; a get to standard output interrupted after some bytes
// says the output is partial, not that nothing was written.
func TestGetRangeAndInterruption(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	pn := startPutNet(t)
	bag := pn.net.Bag.String()
	path, data := putTestFile(t, 3<<20+5)
	var put putOutput
	if err := json.Unmarshal([]byte(pn.ok("put", path, "--bag", bag, "--chunk-size", "256KiB", "--no-contracts", "--json")), &put); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "f")
	for _, off := range []string{"3145733", "100MiB"} {
		pn.fails("is past the end of", "get", put.Object.String(), "--bag", bag, "--offset", off, "-o", out)
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("get --offset %s created %s", off, out)
		}
	}
	// The last byte, with a --length past the end.
	pn.ok("get", put.Object.String(), "--bag", bag, "--offset", "3145732", "--length", "10", "-o", out)
	if b, _ := os.ReadFile(out); !bytes.Equal(b, data[len(data)-1:]) {
		t.Fatalf("last byte: %q", b)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stdout := &cancelOnWrite{cancel: cancel}
	var errb bytes.Buffer
	code := run(ctx, []string{"-c", pn.cfgPath, "get", put.CID, "--bag", bag}, stdout, &errb)
	if code == 0 || stdout.n == 0 || stdout.n >= len(data) {
		t.Fatalf("interrupted get: exit %d after %d bytes; stderr %s", code, stdout.n, errb.String())
	}
	if s := errb.String(); !strings.Contains(s, "interrupted after writing") || !strings.Contains(s, "standard output; the output is partial") || strings.Contains(s, "nothing was written") {
		t.Fatalf("interrupted get to stdout says %q", s)
	}
}

// TestPutInterruptedHint: an interrupted put of a file says how to resume
// it; one from standard input says it does not resume.
func TestPutInterruptedHint(t *testing.T) {
	app := &App{Out: io.Discard, Err: io.Discard}
	cfg := DefaultConfig()
	if err := putError(app, cfg, signer{}, false, context.Canceled); !strings.Contains(err.Error(), "run the same command again to resume") {
		t.Errorf("file: %v", err)
	}
	if err := putError(app, cfg, signer{}, true, context.Canceled); !strings.Contains(err.Error(), "standard input does not resume") || strings.Contains(err.Error(), "to resume the upload") {
		t.Errorf("stdin: %v", err)
	}
}
