package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/node"
)

// chainCmdEnv is a satchel home and config for the chain commands.
type chainCmdEnv struct {
	t       *testing.T
	dir     string
	home    string
	cfgPath string
	rpc     string // host:port the config's chain.rpc names
}

func newChainCmdEnv(t *testing.T) *chainCmdEnv {
	t.Helper()
	dir := t.TempDir()
	e := &chainCmdEnv{t: t, dir: dir, home: filepath.Join(dir, "satchel"), cfgPath: filepath.Join(dir, "config.yml"), rpc: freeAddr(t)}
	cfg := "home: " + e.home + "\nchain:\n  rpc: http://" + e.rpc + "\n"
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// satchel runs a command with the env's config.
func (e *chainCmdEnv) satchel(ctx context.Context, args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := run(ctx, append([]string{"-c", e.cfgPath}, args...), &out, &errOut)
	return out.String(), errOut.String(), code
}

// json runs a command with --json, wants exit 0 and decodes stdout into v.
func (e *chainCmdEnv) json(v any, args ...string) {
	e.t.Helper()
	out, errOut, code := e.satchel(context.Background(), append(args, "--json")...)
	if code != 0 {
		e.t.Fatalf("satchel %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("satchel %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// fails runs a command and wants a non-zero exit naming every want.
func (e *chainCmdEnv) fails(want string, args ...string) {
	e.t.Helper()
	out, errOut, code := e.satchel(context.Background(), args...)
	if code == 0 {
		e.t.Fatalf("satchel %s: exit 0, want a failure\n%s", strings.Join(args, " "), out)
	}
	if !strings.Contains(errOut, want) {
		e.t.Errorf("satchel %s: stderr does not say %q:\n%s", strings.Join(args, " "), want, errOut)
	}
}

// runningNode is a `satchel chain start` running in the background.
type runningNode struct {
	cancel      context.CancelFunc
	done        chan int
	out, errOut bytes.Buffer
}

// start runs `satchel chain start args...` until the test stops it.
func (e *chainCmdEnv) start(args ...string) *runningNode {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningNode{cancel: cancel, done: make(chan int, 1)}
	go func() {
		r.done <- run(ctx, append([]string{"-c", e.cfgPath, "chain", "start"}, args...), &r.out, &r.errOut)
	}()
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

// stop cancels the node's context and returns its exit code (the output is
// safe to read afterwards).
func (r *runningNode) stop(t *testing.T) int {
	t.Helper()
	r.cancel()
	select {
	case code, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return code
	case <-time.After(20 * time.Second):
		t.Fatal("satchel chain start did not stop after its context was cancelled")
		return -1
	}
}

// waitStatus polls `satchel chain status` until ok accepts the status.
func (e *chainCmdEnv) waitStatus(r *runningNode, ok func(node.Status) bool, args ...string) node.Status {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		out, errOut, code := e.satchel(context.Background(), append([]string{"chain", "status", "--json"}, args...)...)
		var st node.Status
		if code == 0 && json.Unmarshal([]byte(out), &st) == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("chain status never satisfied the test; last: exit %d %s %s", code, out, errOut)
		}
		select {
		case <-tick.C:
		case code := <-r.done:
			r.done <- code
			e.t.Fatalf("satchel chain start exited with %d", code)
		}
	}
}

// TestChainInitStartJoinStatus runs the chain commands as a user does: init
// a network, start its validator, join a full node with the genesis file,
// read both with status, then stop them with their contexts.
func TestChainInitStartJoinStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts chain nodes")
	}
	e := newChainCmdEnv(t)

	var res chainInitResult
	e.json(&res, "chain", "init")
	if res.ChainID != chain.DefaultChainID || res.Home != filepath.Join(e.home, "chain") {
		t.Fatalf("init = %+v", res)
	}
	for _, p := range []string{res.Genesis, res.StorageLeadKey, res.DistributionLeadKey} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("init did not write %s: %v", p, err)
		}
	}
	storageLead, err := chain.LoadKey(res.StorageLeadKey)
	if err != nil || storageLead.Account() != res.StorageLead {
		t.Fatalf("storage lead key %s: %v (account %s, genesis names %s)", res.StorageLeadKey, err, storageLead.Account(), res.StorageLead)
	}
	e.fails("already initialised", "chain", "init")

	// An address in use is named by its flag, and changes nothing.
	held := heldAddr(t)
	e.fails("--p2p "+held+": address already in use", "chain", "start", "--p2p", held)
	e.fails("--rpc "+held+": address already in use", "chain", "start", "--rpc", held, "--p2p", freeAddr(t))

	// The validator, listening where the config's chain.rpc points.
	val := e.start("--p2p", freeAddr(t))
	vs := e.waitStatus(val, func(s node.Status) bool { return s.Height > 0 })
	if !vs.Validator || vs.ChainID != res.ChainID || vs.NodeID != res.NodeID {
		t.Fatalf("validator status = %+v", vs)
	}
	// The genesis made the lead keys init wrote the leads of the chain.
	tr, err := node.Dial(e.rpc)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	params, err := chain.NewClient(tr).Params(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if params.Lead(chain.StorageGroup) != res.StorageLead || params.Lead(chain.DistributionGroup) != res.DistributionLead {
		t.Fatalf("chain leads %s/%s, init made %s/%s", params.Lead(chain.StorageGroup), params.Lead(chain.DistributionGroup), res.StorageLead, res.DistributionLead)
	}

	// A full node of the same network, from the genesis file and the
	// validator's P2P address.
	fullRPC := freeAddr(t)
	full := e.start("--home", filepath.Join(e.dir, "full"), "--rpc", fullRPC, "--p2p", freeAddr(t),
		"--join", vs.P2PAddress, "--genesis", res.Genesis)
	fs := e.waitStatus(full, func(s node.Status) bool { return s.Height >= vs.Height && !s.CatchingUp }, "--rpc", "http://"+fullRPC)
	if fs.Validator || fs.ChainID != vs.ChainID || fs.NodeID == vs.NodeID {
		t.Fatalf("full node status = %+v (validator %+v)", fs, vs)
	}

	// Human output names what a user needs.
	out, _, code := e.satchel(context.Background(), "chain", "status")
	if code != 0 || !strings.Contains(out, "height") || !strings.Contains(out, vs.NodeID) {
		t.Fatalf("chain status: exit %d\n%s", code, out)
	}

	// Ctrl-C: both stop cleanly and report where they listened.
	for name, r := range map[string]*runningNode{"validator": val, "full node": full} {
		if code := r.stop(t); code != 0 {
			t.Fatalf("%s exited %d: %s", name, code, r.errOut.String())
		}
		if !strings.Contains(r.out.String(), "RPC") || !strings.Contains(r.out.String(), "P2P") {
			t.Errorf("%s start output does not show its addresses:\n%s", name, r.out.String())
		}
	}
	if !strings.Contains(val.out.String(), "validator") || !strings.Contains(full.out.String(), "full node") {
		t.Errorf("start output does not name the role:\nvalidator: %s\nfull: %s", val.out.String(), full.out.String())
	}
	e.fails("cannot reach the chain node", "chain", "status")
}

func TestChainInitWithAccounts(t *testing.T) {
	e := newChainCmdEnv(t)
	sl, dl := mustChainKey(t), mustChainKey(t)
	var res chainInitResult
	e.json(&res, "chain", "init", "--home", filepath.Join(e.dir, "c"), "--chain-id", "test-net",
		"--storage-lead", string(sl.Account()), "--distribution-lead", strings.ToUpper(string(dl.Account())))
	if res.ChainID != "test-net" || res.StorageLead != sl.Account() || res.DistributionLead != dl.Account() ||
		res.StorageLeadKey != "" || res.DistributionLeadKey != "" {
		t.Fatalf("init = %+v", res)
	}
	if _, err := os.Stat(filepath.Join(e.home, "keys")); !os.IsNotExist(err) {
		t.Fatalf("init with both leads given wrote keys: %v", err)
	}
	e.fails("--storage-lead", "chain", "init", "--home", filepath.Join(e.dir, "d"), "--storage-lead", "nope")
	e.fails("satchel chain init", "chain", "start", "--home", filepath.Join(e.dir, "none"))
	e.fails("--genesis", "chain", "start", "--home", filepath.Join(e.dir, "none"), "--join", "abc@127.0.0.1:1")
}

// A chain home given with --home gets the chain; the lead keys stay in the
// satchel home, where the leader commands look, and the output lists each
// with whether this run made it, so no one looks for them under --home.
func TestChainInitLeadKeysNamed(t *testing.T) {
	e := newChainCmdEnv(t)
	first := filepath.Join(e.dir, "first")
	out, errOut, code := e.satchel(context.Background(), "chain", "init", "--home", first)
	if code != 0 {
		t.Fatalf("chain init: exit %d\n%s", code, errOut)
	}
	keys := []string{leadKeyFile(Config{Home: e.home}, chain.StorageGroup), leadKeyFile(Config{Home: e.home}, chain.DistributionGroup)}
	for _, k := range keys {
		if _, err := os.Stat(k); err != nil {
			t.Fatalf("no lead key at %s: %v", k, err)
		}
		if !strings.Contains(out, k+" (new)") {
			t.Errorf("init output does not list %s as new:\n%s", k, out)
		}
	}
	if !strings.Contains(out, "under the satchel home "+e.home) || !strings.Contains(out, "not the chain home") {
		t.Errorf("init output does not say where the keys are:\n%s", out)
	}
	if ents, err := os.ReadDir(first); err != nil || slices.ContainsFunc(ents, func(d os.DirEntry) bool { return d.Name() == "keys" }) {
		t.Fatalf("chain home %s: %v, %v", first, ents, err)
	}

	// A second network with the same leads: the keys are found, not made.
	var res chainInitResult
	e.json(&res, "chain", "init", "--home", filepath.Join(e.dir, "second"))
	if len(res.CreatedKeys) != 0 || res.StorageLeadKey != keys[0] || res.DistributionLeadKey != keys[1] {
		t.Fatalf("second init = %+v; want the keys of the first, none created", res)
	}
	var vk struct {
		PubKey string `json:"pubKey"`
	}
	e.json(&vk, "chain", "validator-key", "--home", filepath.Join(e.dir, "v"))
	out, _, code = e.satchel(context.Background(), "chain", "genesis", "--validator", vk.PubKey, "--out", filepath.Join(e.dir, "g.json"))
	if code != 0 || !strings.Contains(out, keys[0]+" (existing, used as is)") {
		t.Errorf("chain genesis: exit %d, output does not list the existing storage lead key:\n%s", code, out)
	}
}

func mustChainKey(t *testing.T) chain.Key {
	t.Helper()
	k, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A chain home another node has open is refused with what is wrong, not the
// system's "resource temporarily unavailable" alone.
func TestChainStartHomeInUse(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain node")
	}
	tc := startTestChain(t)
	tc.fails([]string{"resource temporarily unavailable; another process holds it open (the same node running already?)"},
		"chain", "start", "--home", filepath.Join(tc.home, "chain"), "--rpc", freeAddr(t), "--p2p", freeAddr(t))
}
