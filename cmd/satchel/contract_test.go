package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/testnet"
)

// TestContractPublishListShow runs `satchel contract publish` against a
// network whose providers answer proposals, then lists and shows the
// consigned contracts from the renter's store and a provider's.
func TestContractPublishListShow(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	addr := freeAddr(t)
	net := testnet.New(t, testnet.Providers(3), testnet.Configure(func(c *testnet.Config) {
		c.ChainRPCAddr = addr
		c.Contracts = true
	}))
	home := t.TempDir()
	keyPath := filepath.Join(home, "keys", "member.key")
	if err := chain.SaveKey(keyPath, net.Member); err != nil {
		t.Fatal(err)
	}
	var boot []string
	for _, p := range net.Providers() {
		ai := p.AddrInfo()
		boot = append(boot, fmt.Sprintf("    - %s/p2p/%s", ai.Addrs[0], ai.ID))
	}
	pn := &putNet{t: t, net: net, home: home, cfgPath: filepath.Join(home, "config.yml")}
	writeFile(t, pn.cfgPath, "home: "+home+"\nkey: "+keyPath+"\nchain:\n  rpc: http://"+addr+"\n  genesis: "+net.Chain.GenesisFile()+"\np2p:\n  bootstrap:\n"+strings.Join(boot, "\n")+"\n")
	file := filepath.Join(t.TempDir(), "asset")
	writeFile(t, file, strings.Repeat("satchel ", 1000))

	out := pn.ok("contract", "publish", file, "--bag", net.Bag.String(), "--duration", "60d",
		"--availability", "high", "--speed", "high", "--redundancy", "2", "--window", "20s", "--json")
	var pub publishJSON
	if err := json.Unmarshal([]byte(out), &pub); err != nil {
		t.Fatalf("publish --json: %v\n%s", err, out)
	}
	if pub.Topic != "0f01020303" || len(pub.Offers) != 3 || len(pub.Contracts) != 2 {
		t.Fatalf("publish: %+v; want topic 0f01020303, 3 offers, 2 contracts", pub)
	}
	chosen := 0
	for _, o := range pub.Offers {
		if o.Chosen {
			chosen++
		}
	}
	if chosen != 2 {
		t.Errorf("%d offers marked chosen, want 2", chosen)
	}

	// More contracts than the bag has buckets cannot be consigned.
	if _, stderr, code := pn.run("contract", "publish", file, "--bag", net.Bag.String(), "--redundancy", "4"); code == 0 ||
		!strings.Contains(stderr, "stored by 3 storage bucket(s)") {
		t.Fatalf("publish --redundancy 4 on a 3-bucket bag: exit %d, stderr %q", code, stderr)
	}

	var list []contractJSON
	if err := json.Unmarshal([]byte(pn.ok("contract", "list", "--json")), &list); err != nil || len(list) != 2 {
		t.Fatalf("contract list: %v, %+v", err, list)
	}
	for _, c := range list {
		if c.ID != pub.Proposal || c.Bag != net.Bag.String() || !c.Live || c.Topic != pub.Topic {
			t.Errorf("listed %+v", c)
		}
	}
	text := pn.ok("contract", "show", pub.Proposal)
	if strings.Count(text, "provider peer") != 2 {
		t.Errorf("show prints %d contracts, want 2:\n%s", strings.Count(text, "provider peer"), text)
	}
	// satchel put --contracts goes through the same negotiation, then the
	// object reads back.
	// --redundancy 2 on a bag of 3 buckets: the put succeeds and says
	// loudly that the bag's other provider must sync it.
	var put putOutput
	out, errs, code := pn.run("put", file, "--bag", net.Bag.String(), "--redundancy", "2", "--contracts",
		"--duration", "60d", "--json")
	if code != 0 || !strings.Contains(errs, "fewer than the 3 storage buckets") {
		t.Fatalf("put --contracts --redundancy 2: exit %d, stderr %q", code, errs)
	}
	if err := json.Unmarshal([]byte(out), &put); err != nil {
		t.Fatal(err)
	}
	if got := pn.ok("get", put.Object.String()); got != strings.Repeat("satchel ", 1000) {
		t.Fatalf("get after put --contracts returned %d other bytes", len(got))
	}
	if err := json.Unmarshal([]byte(pn.ok("contract", "list", "--json")), &list); err != nil || len(list) != 4 {
		t.Fatalf("contract list after put --contracts: %v, %d contracts; want 4", err, len(list))
	}
	// The put's two contracts say which object their upload became; the
	// published proposal's, never uploaded under, say none.
	bound := 0
	for _, c := range list {
		switch {
		case c.ID == pub.Proposal && c.Bound:
			t.Errorf("a contract no upload was made under is bound to object %d", c.Object)
		case c.ID != pub.Proposal && (!c.Bound || c.Object != uint64(put.Object)):
			t.Errorf("a contract of the put is bound %v to object %d, want object %d", c.Bound, c.Object, put.Object)
		case c.Bound:
			bound++
		}
	}
	if bound != 2 {
		t.Errorf("%d contracts bound, want the put's 2", bound)
	}
	if text := pn.ok("contract", "show", pub.Proposal); !strings.Contains(text, "never completed") {
		t.Errorf("show of a contract never uploaded under does not say so:\n%s", text)
	}
	// Contracts are the default; the negotiation has its progress line.
	// --no-contracts skips it and says the put registers first.
	if _, stderr, code := pn.run("put", file, "--bag", net.Bag.String(), "--redundancy", "2"); code != 0 ||
		!strings.Contains(stderr, "contracts: topic ") || !strings.Contains(stderr, "offers, chosen 12D3") {
		t.Fatalf("default put: exit %d, stderr:\n%s", code, stderr)
	}
	if _, stderr, code := pn.run("put", file, "--bag", net.Bag.String(), "--no-contracts"); code != 0 ||
		!strings.Contains(stderr, "contracts: skipped") || !strings.Contains(stderr, "registering the object first") {
		t.Fatalf("put --no-contracts: exit %d, stderr:\n%s", code, stderr)
	}

	// Without --redundancy a proposal asks every bucket of the bag.
	var all publishJSON
	out = pn.ok("contract", "publish", file, "--bag", net.Bag.String(), "--duration", "60d", "--window", "20s", "--json")
	if err := json.Unmarshal([]byte(out), &all); err != nil || len(all.Contracts) != 3 {
		t.Fatalf("publish without --redundancy on a 3-bucket bag: %v, %d contracts; want 3", err, len(all.Contracts))
	}

	// A provider's store is open while it runs; an operator lists it with
	// the node stopped.
	held := 0
	for _, p := range net.Providers() {
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
		var on []contractJSON
		if err := json.Unmarshal([]byte(pn.ok("contract", "list", "--store", filepath.Join(p.Dir, "contracts"), "--json")), &on); err != nil {
			t.Fatal(err)
		}
		held += len(on)
	}
	if held != 9 { // publish, put --contracts and the default put: two each; publish for every bucket: three
		t.Errorf("the providers hold %d contracts, want 9", held)
	}
}

// A store another process holds open (a running storage server's) is named
// as such, with when it can be read, not "resource temporarily
// unavailable" alone.
func TestContractStoreHeldOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "contracts")
	st, err := contracts.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"contract", "list", "--store", dir}, &out, &errOut); code == 0 ||
		!strings.Contains(errOut.String(), "contract store "+dir+" is open in another process: a running storage server") ||
		strings.Count(errOut.String(), "another process") != 1 {
		t.Errorf("contract list of a held store: exit %d, stderr %q", code, errOut.String())
	}
}
