package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/node"
	"github.com/satchel-net/satchel/chain/rpc"
)

// testChain is a real single-validator chain with its RPC on loopback, a
// home laid out as `satchel chain init` leaves it (lead keys under
// home/keys) and a config file pointing at the node, so commands run
// exactly as a user runs them.
type testChain struct {
	t       *testing.T
	home    string
	cfgPath string
	cfg     Config
	node    *node.Node
	client  *chain.Client

	storageLead, distributionLead chain.Key
}

// freeAddr returns a free 127.0.0.1 host:port.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startTestChain initialises a network with `satchel chain init` (which
// creates the lead keys under home/keys, where leader commands look for
// them) and runs its node with a loopback RPC and 10 ms blocks.
func startTestChain(t *testing.T) *testChain {
	t.Helper()
	return startTestChainWith(t, nil)
}

// startTestChainWith is startTestChain with prepare run on the chain home
// after init, before the node starts, and opts for the node.
func startTestChainWith(t *testing.T, prepare func(chainHome string), opts ...node.Option) *testChain {
	t.Helper()
	home := t.TempDir()
	tc := &testChain{t: t, home: home, cfgPath: filepath.Join(home, "config.yml")}
	tc.cfg = DefaultConfig()
	tc.cfg.Home = home
	tc.cfg.Chain.RPC = "http://" + freeAddr(t)
	writeFile(t, tc.cfgPath, "home: "+home+"\nchain:\n  rpc: "+tc.cfg.Chain.RPC+"\n")
	tc.ok("chain", "init")
	var err error
	if tc.storageLead, err = chain.LoadKey(leadKeyFile(tc.cfg, chain.StorageGroup)); err != nil {
		t.Fatalf("chain init left no storage lead key: %v", err)
	}
	if tc.distributionLead, err = chain.LoadKey(leadKeyFile(tc.cfg, chain.DistributionGroup)); err != nil {
		t.Fatalf("chain init left no distribution lead key: %v", err)
	}
	if prepare != nil {
		prepare(filepath.Join(home, "chain"))
	}
	n, err := node.New(filepath.Join(home, "chain"), append([]node.Option{
		node.WithRPCAddr(strings.TrimPrefix(tc.cfg.Chain.RPC, "http://")), node.WithP2PAddr(freeAddr(t)),
		node.WithBlockInterval(10 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("stop chain node: %v", err)
		}
	})
	tc.node = n
	tc.client = chain.NewClient(n.Transport())
	return tc
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// run runs satchel with the chain's config and returns stdout, stderr and
// the exit code.
func (tc *testChain) run(args ...string) (string, string, int) {
	tc.t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"-c", tc.cfgPath}, args...), &out, &errOut)
	return out.String(), errOut.String(), code
}

// ok runs satchel and fails the test unless it exits 0; it returns stdout.
func (tc *testChain) ok(args ...string) string {
	tc.t.Helper()
	out, errOut, code := tc.run(args...)
	if code != 0 {
		tc.t.Fatalf("satchel %s: exit %d\nstderr: %s\nstdout: %s", strings.Join(args, " "), code, errOut, out)
	}
	return out
}

// okJSON runs satchel with --json and decodes stdout into v.
func (tc *testChain) okJSON(v any, args ...string) {
	tc.t.Helper()
	out := tc.ok(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		tc.t.Fatalf("satchel %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// fails runs satchel, wants a non-zero exit, empty stdout and every want
// in stderr, and returns stderr.
func (tc *testChain) fails(want []string, args ...string) string {
	tc.t.Helper()
	out, errOut, code := tc.run(args...)
	if code == 0 {
		tc.t.Fatalf("satchel %s: exit 0, want a failure\nstdout: %s", strings.Join(args, " "), out)
	}
	if out != "" {
		tc.t.Errorf("satchel %s: stdout %q on failure, want none", strings.Join(args, " "), out)
	}
	for _, w := range want {
		if !strings.Contains(errOut, w) {
			tc.t.Errorf("satchel %s: stderr does not name %q:\n%s", strings.Join(args, " "), w, errOut)
		}
	}
	return errOut
}

// nonce returns the committed nonce of an account: unchanged means nothing
// it signed was committed.
func (tc *testChain) nonce(a chain.Account) uint64 {
	tc.t.Helper()
	info, err := tc.client.Account(context.Background(), a)
	if err != nil {
		tc.t.Fatal(err)
	}
	return info.Nonce
}

// newKeyFile writes a fresh key to dir/name and returns its path and key.
func newKeyFile(t *testing.T, dir, name string) (string, chain.Key) {
	t.Helper()
	k, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := chain.SaveKey(p, k); err != nil {
		t.Fatal(err)
	}
	return p, k
}

// asTerminal makes the confirmation prompt read input as if typed at a
// terminal, for the rest of the test.
func asTerminal(t *testing.T, input string) {
	t.Helper()
	oldIn, oldTerm := promptInput, stdinIsTerminal
	promptInput, stdinIsTerminal = strings.NewReader(input), func() bool { return true }
	t.Cleanup(func() { promptInput, stdinIsTerminal = oldIn, oldTerm })
}

// notTerminal makes stdin look like a pipe for the rest of the test.
func notTerminal(t *testing.T) {
	t.Helper()
	old := stdinIsTerminal
	stdinIsTerminal = func() bool { return false }
	t.Cleanup(func() { stdinIsTerminal = old })
}

// TestChainCommands drives every chain command against one real embedded
// chain: starting a chain costs seconds, so the subtests share it and run
// in order, each building on the state the previous left.
func TestChainCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain node")
	}
	start := time.Now()
	tc := startTestChain(t)
	t.Logf("chain started in %v", time.Since(start))
	steps := []struct {
		name string
		f    func(t *testing.T, tc *testChain)
	}{
		{"PlacementExample", testPlacementExample},
		{"Permission", testPermission},
		{"BadFlagsSubmitNothing", testBadFlagsSubmitNothing},
		{"Confirmation", testConfirmation},
		{"DistributionOperators", testDistributionOperators},
		{"StorageLeader", testStorageLeader},
		{"StorageOperators", testStorageOperators},
		{"Workers", testWorkers},
		{"Reads", testReads},
	}
	for _, s := range steps {
		stepStart := time.Now()
		ok := t.Run(s.name, func(t *testing.T) {
			tc.t = t
			s.f(t, tc)
		})
		tc.t = t
		t.Logf("%s: %v", s.name, time.Since(stepStart).Round(time.Millisecond))
		if !ok {
			t.FailNow() // later steps build on this one's state
		}
	}
}

func testConfirmation(t *testing.T, tc *testChain) {
	lead := tc.distributionLead.Account()
	before := tc.nonce(lead)

	// No -y and stdin not a terminal: refused, nothing submitted.
	notTerminal(t)
	tc.fails([]string{"refusing to create a distribution bucket family without confirmation: stdin is not a terminal, so pass -y/--yes to confirm; nothing was submitted"},
		"distributor", "leader", "create-bucket-family")
	if got := tc.nonce(lead); got != before {
		t.Fatalf("refused command changed the lead's nonce %d -> %d", before, got)
	}

	// At a terminal, "n" aborts.
	asTerminal(t, "n\n")
	errOut := tc.fails([]string{"aborted; nothing was submitted"}, "distributor", "leader", "create-bucket-family")
	if !strings.Contains(errOut, "Submit this transaction? [y/N]") || !strings.Contains(errOut, "signed by account "+string(lead)) {
		t.Errorf("prompt does not say what is signed by whom:\n%s", errOut)
	}
	if got := tc.nonce(lead); got != before {
		t.Fatalf("declined command changed the lead's nonce %d -> %d", before, got)
	}

	// An empty answer (just Enter, or EOF) is no.
	asTerminal(t, "")
	tc.fails([]string{"aborted"}, "distributor", "leader", "create-bucket-family")

	// "y" submits; the prompt goes to stderr so stdout stays the result.
	asTerminal(t, "y\n")
	out, errOut, code := tc.run("distributor", "leader", "create-bucket-family")
	if code != 0 || !strings.HasPrefix(out, "created distribution bucket family ") || !strings.Contains(errOut, "[y/N]") {
		t.Fatalf("confirmed create-bucket-family: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := tc.nonce(lead); got != before+1 {
		t.Fatalf("confirmed command: lead nonce %d, want %d", got, before+1)
	}
	// Clean up: the empty family would otherwise show in later listings.
	var res struct{ Family chain.FamilyID }
	if err := json.Unmarshal([]byte(tc.ok("distributor", "leader", "create-bucket-family", "-y", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	for _, f := range []chain.FamilyID{res.Family - 1, res.Family} {
		tc.ok("distributor", "leader", "delete-bucket-family", "-f", f.String(), "-y")
	}
}

// TestConfirmWithoutChain shows the confirmation and flag checks happen
// before the node is contacted: the config points at a port nothing
// listens on, yet the errors are about the command, not the connection.
func TestConfirmWithoutChain(t *testing.T) {
	home := t.TempDir()
	cfg := DefaultConfig()
	cfg.Home = home
	if err := chain.SaveKey(leadKeyFile(cfg, chain.DistributionGroup), mustGenerateKey(t)); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(home, "config.yml")
	writeFile(t, cfgPath, "home: "+home+"\nchain:\n  rpc: http://"+freeAddr(t)+"\n")
	acct, _ := newKeyFile(t, t.TempDir(), "account.key")
	peerID := "12D3KooWGRUVh1nTjbgDa3zZzCt5Sf1ncmb6tKBNGWvB9LBQvL7N"
	runIt := func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"-c", cfgPath}, args...), &out, &errOut)
		if out.Len() != 0 {
			t.Errorf("%v: stdout %q", args, out.String())
		}
		return errOut.String(), code
	}
	notTerminal(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"distributor", "leader", "create-bucket-family"}, "stdin is not a terminal"},
		{[]string{"distributor", "leader", "delete-bucket", "-B", "0-1", "-y"}, `invalid argument "0-1" for "-B, --bucketId" flag: distribution bucket ID "0-1": want {familyId}:{bucketIndex}`},
		{[]string{"distributor", "leader", "create-bucket", "-f", "0", "-a", "maybe", "-y"}, `"maybe": want yes or no`},
		{[]string{"distributor", "leader", "update-bucket-mode", "-B", "0:1", "-d", "sometimes", "-y"}, `"sometimes": want on or off`},
		{[]string{"distributor", "leader", "update-dynamic-bag-policy", "-t", "Channel", "-p", "1:5", "2-10", "-y"}, `policy entry "2-10"`},
		{[]string{"distributor", "leader", "update-dynamic-bag-policy", "-t", "Channel", "-p", "1:5", "1:3", "-y"}, "family 1 is listed twice"},
		{[]string{"distributor", "leader", "update-dynamic-bag-policy", "-t", "Video", "-y"}, `dynamic bag type "Video"`},
		{[]string{"distributor", "leader", "update-bag", "-b", "dynamic:channel:x", "-f", "0", "-a", "1", "-y"}, `bag ID "dynamic:channel:x"`},
		{[]string{"distributor", "leader", "update-bag", "-b", "dynamic:channel:1", "-f", "0", "-y"}, "name bucket indexes of family 0 to add (-a) or remove (-r)"},
		{[]string{"distributor", "leader", "update-bag", "-b", "dynamic:channel:1", "-f", "0", "-a", "1", "-r", "1", "-y"}, "listed twice"},
		{[]string{"distributor", "leader", "delete-bucket", "-y"}, `required flag(s) "bucketId" not set`},
		{[]string{"storage", "leader", "create-bucket", "-n", "10", "-s", "10 parsecs", "-y"}, `size "10 parsecs"`},
		{[]string{"storage", "leader", "create-bucket", "-s", "1GiB", "-y"}, `required flag(s) "objects" not set`},
		{[]string{"storage", "leader", "set-uploading-blocked", "maybe", "-y"}, `want on or off`},
		{[]string{"storage", "leader", "delete-bucket", "-i", "0:1", "-y"}, `storage bucket ID "0:1"`},
		{[]string{"storage", "operator", "accept-objects", "-i", "1", "-w", "0", "-b", "static:council", "-o", "1,,2", "-y"}, "empty list entry"},
		{[]string{"storage", "operator", "accept-invitation", "-i", "1", "-w", "0", "-t", "nothex", "-y"}, `account "nothex"`},
		{[]string{"member", "create", "-k", filepath.Join(home, "missing.key"), "-y"}, "missing.key (from --key) does not exist"},
		{[]string{"channel", "create", "--member", "0", "-y"}, "no account key at " + accountKeyFile(cfg) + "; create one with `satchel member create` (a member) or `satchel key new`"},
		{[]string{"workers", "add", "-g", "council", "-a", strings.Repeat("ab", 32), "-y"}, `working group "council"`},
		{[]string{"bucket", "show", "x"}, `storage bucket ID "x"`},
		{[]string{"put", cfgPath, "--bag", "dynamic:channel:1", "-k", acct, "--duration", "100000d"}, "--duration 100000d: want whole seconds from 1s to 3650 days"},
		{[]string{"put", cfgPath, "--bag", "dynamic:channel:1", "-k", acct, "--duration", "0s"}, "--duration 0s: want whole seconds from 1s"},
		{[]string{"put", cfgPath, "--bag", "dynamic:channel:1", "-k", acct, "--duration", "1.5s"}, "--duration 1.5s: want whole seconds"},
		{[]string{"put", cfgPath, "--bag", "dynamic:channel:1", "-k", acct, "--contracts", "--no-contracts"}, "--contracts and --no-contracts contradict each other"},
		{[]string{"contract", "publish", cfgPath, "--bag", "dynamic:channel:1", "-k", acct, "--duration", "0d"}, "--duration 0d: want whole seconds from 1s"},
		{[]string{"get", "1", "-o", filepath.Join(home, "nodir", "x")}, "directory " + filepath.Join(home, "nodir") + " does not exist"},
		// With -y and valid flags the node is finally contacted: the error
		// says it cannot be reached and how to fix that.
		{[]string{"distributor", "leader", "create-bucket-family", "-y"}, "cannot reach the chain node at http://127.0.0.1:"},
		{[]string{"bag", "list"}, "start it with `satchel chain start`, or set chain.rpc in " + cfgPath},
		// Every command that reads the chain says so, not only bag show.
		{[]string{"put", cfgPath, "--bag", "dynamic:channel:1", "-k", acct}, "start it with `satchel chain start`"},
		{[]string{"get", "1", "-o", filepath.Join(home, "out")}, "start it with `satchel chain start`"},
		{[]string{"bag", "locate", "dynamic:channel:1"}, "start it with `satchel chain start`"},
		{[]string{"contract", "publish", cfgPath, "--bag", "dynamic:channel:1", "-k", acct}, "start it with `satchel chain start`"},
		{[]string{"contract", "publish", cfgPath, "--bag", "static:council", "-k", acct, "--member", "0"}, "start it with `satchel chain start`"},
		{[]string{"audit", peerID, "1", "--bag", "dynamic:channel:1"}, "start it with `satchel chain start`"},
	}
	for _, tt := range tests {
		errOut, code := runIt(tt.args...)
		if code == 0 || !strings.Contains(errOut, tt.want) {
			t.Errorf("satchel %s: exit %d, stderr %q; want a failure naming %q", strings.Join(tt.args, " "), code, errOut, tt.want)
		}
		if strings.Contains(errOut, "cannot reach") && !strings.Contains(tt.want, "cannot reach") && !strings.Contains(tt.want, "satchel chain start") {
			t.Errorf("satchel %s contacted the node before refusing: %s", strings.Join(tt.args, " "), errOut)
		}
	}

	if _, err := os.Stat(filepath.Join(home, "out")); err == nil {
		t.Errorf("a failed get created its output file")
	}

	// member create makes the account key only once the transaction is
	// confirmed: a refused one leaves no key file behind.
	errOut, code := runIt("member", "create")
	if code == 0 || !strings.Contains(errOut, "stdin is not a terminal") {
		t.Errorf("member create without -y: exit %d, stderr %s", code, errOut)
	}
	if _, err := os.Stat(accountKeyFile(cfg)); err == nil {
		t.Errorf("a refused member create left the key %s", accountKeyFile(cfg))
	}
	errOut, _ = runIt("member", "create", "-y")
	if !strings.Contains(errOut, "created account key "+accountKeyFile(cfg)) || !strings.Contains(errOut, "cannot reach the chain node") {
		t.Errorf("member create -y: stderr %s", errOut)
	}
}

func mustGenerateKey(t *testing.T) chain.Key {
	t.Helper()
	k, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true},
		{"1024", 1024, true},
		{"10GiB", 10 << 30, true},
		{"10 gib", 10 << 30, true},
		{"500MB", 500e6, true},
		{"1.5TB", 1.5e12, true},
		{"1TiB", 1 << 40, true},
		{"2kB", 2000, true},
		{"", 0, false},
		{"GiB", 0, false},
		{"10 parsecs", 0, false},
		{"-1", 0, false},
		{"99999999999999999999", 0, false},
		{"20000000000EiB", 0, false},
		{"18446744073709551615", 18446744073709551615, true},
	}
	for _, tt := range tests {
		got, err := parseBytes(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 10 << 30: "10 GiB", 1 << 40: "1 TiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestListFlag(t *testing.T) {
	f := newListFlag(parseCount, "ints")
	for _, s := range []string{"1", "2,3", " 4 "} {
		if err := f.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.String(); got != "1,2,3,4" {
		t.Errorf("list = %q, want 1,2,3,4", got)
	}
	for _, bad := range []string{"", "1,", "x", "1,-2"} {
		if err := newListFlag(parseCount, "ints").Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}

// TestChainCommandHelp checks every chain command says what it does and
// shows an example.
func TestChainCommandHelp(t *testing.T) {
	root := newRootCmd(&App{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
	groups := map[string]bool{"storage": true, "distributor": true, "member": true, "channel": true, "workers": true,
		"bag": true, "bucket": true, "family": true, "object": true, "params": true}
	var walk func(c *cobra.Command)
	count := 0
	walk = func(c *cobra.Command) {
		if c.Short == "" {
			t.Errorf("%s has no Short help", c.CommandPath())
		}
		if len(c.Commands()) == 0 && c.Runnable() {
			count++
			if c.Example == "" {
				t.Errorf("%s has no Example", c.CommandPath())
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	// Only the subtrees this file's commands live in: other files add
	// subcommands (e.g. storage server) with their own tests.
	mine := map[string]bool{"leader": true, "operator": true}
	for _, c := range root.Commands() {
		if !groups[c.Name()] {
			continue
		}
		delete(groups, c.Name())
		if c.Short == "" {
			t.Errorf("%s has no Short help", c.CommandPath())
		}
		if c.Name() == "storage" || c.Name() == "distributor" {
			for _, sub := range c.Commands() {
				if mine[sub.Name()] {
					walk(sub)
				}
			}
			continue
		}
		walk(c)
	}
	if len(groups) != 0 {
		t.Errorf("command groups missing: %v", groups)
	}
	if count < 40 {
		t.Errorf("found %d chain commands, want at least 40", count)
	}
}

// TestExplain checks errors name their cause and the next step, and still
// match their sentinels.
func TestExplain(t *testing.T) {
	app := &App{ConfigPath: "satchel.yml"}
	cfg := DefaultConfig()
	objectErr := func(sentinel *chain.Error) error {
		return fmt.Errorf("register objects: %w", chain.Errorf(sentinel, "object 0 refused"))
	}
	tests := []struct {
		name string
		err  error
		is   error
		want []string
	}{
		{"too large", objectErr(chain.ErrObjectTooLarge), chain.ErrObjectTooLarge,
			[]string{"object 0 refused; ", "`satchel params`", "ask the storage lead", "`satchel storage leader set-max-object-size`"}},
		{"blacklisted", objectErr(chain.ErrBlacklisted), chain.ErrBlacklisted,
			[]string{"ask the storage lead", "`satchel storage leader update-blacklist -r CID`"}},
		{"zero size", objectErr(chain.ErrZeroSize), chain.ErrZeroSize, []string{"leave empty files out"}},
		{"uploading blocked", objectErr(chain.ErrUploadingBlocked), chain.ErrUploadingBlocked,
			[]string{"`satchel storage leader set-uploading-blocked off`"}},
		{"dropped", fmt.Errorf("%w (tx AB)", node.ErrDropped), node.ErrDropped,
			[]string{"dropped from the mempool", "run the command again to sign and submit it anew"}},
		{"duplicate", rpc.ErrDuplicateTx, rpc.ErrDuplicateTx, []string{"check whether it committed before you run the command again"}},
		{"catching up", rpc.ErrCatchingUp, rpc.ErrCatchingUp,
			[]string{"`satchel chain status`", "set chain.rpc in satchel.yml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := explain(app, cfg, tt.err, nil)
			if !errors.Is(got, tt.is) {
				t.Errorf("explain(%v) = %v, which is not %v", tt.err, got, tt.is)
			}
			for _, w := range tt.want {
				if !strings.Contains(got.Error(), w) {
					t.Errorf("explain(%v) = %q; want it to say %q", tt.err, got, w)
				}
			}
		})
	}
}

// TestExplainNode checks a node that refuses connections is reported
// unreachable, and one that accepts them but answers late is not.
func TestExplainNode(t *testing.T) {
	app := &App{ConfigPath: "satchel.yml"}
	params := func(rpc string, timeout time.Duration) (Config, error) {
		cfg := DefaultConfig()
		cfg.Chain.RPC = rpc
		cfg.Chain.TrustRPC = true // the connection's errors, not a trust root's
		c, closeFn, err := connectChain(cfg, slog.Default())
		if err != nil {
			t.Fatal(err)
		}
		defer closeFn()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, err = c.Params(ctx)
		if err == nil {
			t.Fatalf("params from %s succeeded", rpc)
		}
		return cfg, err
	}

	cfg, err := params("http://"+freeAddr(t), time.Minute)
	got := explain(app, cfg, err, nil).Error()
	if !strings.Contains(got, "cannot reach the chain node at "+cfg.Chain.RPC) || !strings.Contains(got, "satchel chain start") {
		t.Errorf("nothing listening: %s", got)
	}

	// A node that takes the request and never answers: a timeout, not
	// unreachable, and a transaction may still commit.
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop); srv.Close() })
	cfg, err = params(srv.URL, 50*time.Millisecond)
	for _, tt := range []struct {
		got  error
		want []string
	}{
		{explain(app, cfg, err, nil), []string{"the chain node at " + srv.URL + " did not answer in time", "still catching up", "`satchel chain status`"}},
		{explainWithin(app, cfg, err, &txContext{}, txTimeout), []string{"did not answer within 1m0s", "the transaction may still commit"}},
	} {
		if !errors.Is(tt.got, context.DeadlineExceeded) || strings.Contains(tt.got.Error(), "cannot reach") {
			t.Errorf("slow node: %v", tt.got)
		}
		for _, w := range tt.want {
			if !strings.Contains(tt.got.Error(), w) {
				t.Errorf("slow node: %q; want it to say %q", tt.got, w)
			}
		}
	}

	// A failed dial to another host (a provider, say) is not the chain's.
	other := &url.Error{Op: "Get", URL: "http://" + freeAddr(t) + "/x", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}
	if got := explain(app, DefaultConfig(), other, nil); got != error(other) {
		t.Errorf("dial error of another host: %v", got)
	}
}
