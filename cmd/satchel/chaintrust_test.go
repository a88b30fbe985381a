package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/chain/node"
)

// The CLI reads the chain node with proofs by default: from the genesis in
// the chain home, from chain.genesis, or from a trusted header. Without a
// root it refuses and says how to set one; --trust-rpc reads unproven; a
// header the endpoint does not match is refused with the endpoint named.
func TestChainTrustRoot(t *testing.T) {
	tc := startTestChain(t)
	tc.ok("params") // proven from HOME/chain/config/genesis.json

	elsewhere := t.TempDir()
	withConfig := func(extra string) *testChain {
		c := *tc
		c.cfgPath = filepath.Join(elsewhere, strconv.Itoa(len(extra))+".yml")
		writeFile(t, c.cfgPath, "home: "+elsewhere+"\nchain:\n  rpc: "+tc.cfg.Chain.RPC+"\n"+extra)
		return &c
	}
	noRoot := withConfig("")
	noRoot.fails([]string{"no trust root", "chain.genesis", "--trust-rpc"}, "params")
	noRoot.ok("params", "--trust-rpc")
	withConfig("  trustRPC: true\n").ok("params")
	withConfig("  genesis: "+node.GenesisPath(filepath.Join(tc.home, "chain"))+"\n").ok("bag", "list")

	var st node.Status
	tc.okJSON(&st, "chain", "status")
	withConfig("  trustHeight: " + strconv.FormatInt(st.LatestBlockHeight, 10) + "\n  trustHash: " + st.LatestBlockHash + "\n").ok("params")
	forged := strings.Repeat("AB", 32)
	withConfig("  trustHeight: "+strconv.FormatInt(st.LatestBlockHeight, 10)+"\n  trustHash: "+forged+"\n").
		fails([]string{"fails verification", tc.cfg.Chain.RPC}, "params")
	withConfig("  trustHeight: 5\n").fails([]string{"give both its height and its hash"}, "params")

	// The genesis of another network (same chain ID, other validators): the
	// likelier mistake is the file, and the error says so beside the
	// endpoint. The warning goes through the command's logger, not Go's
	// default one.
	other := filepath.Join(t.TempDir(), "other")
	tc.ok("chain", "init", "--home", other)
	errOut := withConfig("  genesis: "+node.GenesisPath(other)+"\n").fails([]string{"fails verification",
		node.GenesisPath(other) + " is the genesis of another network than the node's"}, "params")
	if !strings.Contains(errOut, "level=WARN") {
		t.Errorf("the verifier's warning is not in the command's log format:\n%s", errOut)
	}

	// chain.trustingPeriod bounds how old a header may start verification:
	// this chain's genesis (and any header saved since) is older than 1 ms.
	genesis := "  genesis: " + node.GenesisPath(filepath.Join(tc.home, "chain")) + "\n"
	withConfig(genesis + "  trustingPeriod: 720h\n").ok("params")
	withConfig(genesis+"  trustingPeriod: 1ms\n").fails([]string{"older than the trusting period", "chain.trustHeight"}, "params")
	withConfig(genesis+"  trustingPeriod: -1h\n").fails([]string{"trusting period -1h0m0s: want a positive duration"}, "params")
}
