package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/pflag"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/provider"
	"github.com/satchel-net/satchel/testnet"
)

// `satchel audit PEER OBJECT` passes an honest provider and fails one that
// does not hold the object; `satchel audit report` shows what a node heard
// from the providers' own audits of each other.
func TestAuditCommands(t *testing.T) {
	addr := freeAddr(t)
	net := testnet.New(t, testnet.Providers(3),
		testnet.ProviderOptions(provider.WithAudits(200*time.Millisecond, 0), provider.WithAuditGrace(0), provider.WithAuditRate(100, 100), provider.WithScrub(0, 0)),
		testnet.Configure(func(c *testnet.Config) {
			c.ChainRPCAddr = addr
			c.StatusAddrs = func(int) string { return "127.0.0.1:0" }
		}))
	home := t.TempDir()
	pn := &putNet{t: t, net: net, home: home, cfgPath: filepath.Join(home, "config.yml")}
	writeFile(t, pn.cfgPath, "home: "+home+"\nchain:\n  rpc: http://"+addr+"\n  genesis: "+net.Chain.GenesisFile()+"\n")
	ctx, cancel := context.WithTimeout(context.Background(), testnet.WaitTimeout)
	defer cancel()

	data := bytes.Repeat([]byte("satchel audit "), 2000)
	obj, err := net.UploadChunked(ctx, data, 4<<10, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range net.Providers() {
		testnet.Wait(t, "synced", func() bool { return p.Holds(obj.ID) })
	}
	p1 := net.Provider(1)
	peerID := p1.AddrInfo().ID.String()
	id := strconv.FormatUint(uint64(obj.ID), 10)

	var v auditVerdict
	out := pn.ok("audit", peerID, id, "--bag", string(net.Bag), "--json")
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("audit --json: %v\n%s", err, out)
	}
	if !v.Pass || v.Bucket != uint64(p1.Bucket) || len(v.Chunks) != provider.DefaultAuditSamples || v.BytesIn == 0 {
		t.Fatalf("audit of an honest provider: %+v", v)
	}
	if out := pn.ok("audit", peerID, id, "--bag", string(net.Bag)); !strings.HasPrefix(out, "PASS ") {
		t.Errorf("audit text:\n%s", out)
	}

	// An object registered on chain that no provider was ever sent.
	missing := []byte("never uploaded")
	ghost, err := net.Register(ctx, uint64(len(missing)), chunker.ChunkCID(missing).String())
	if err != nil {
		t.Fatal(err)
	}
	out, _, code := pn.run("audit", peerID, strconv.FormatUint(uint64(ghost.ID), 10), "--bag", string(net.Bag), "--json")
	if code != 1 {
		t.Fatalf("audit of an object not held: exit %d\n%s", code, out)
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Pass || !strings.Contains(v.Reason, "not hold") {
		t.Fatalf("audit of an object not held: %+v (%v)", v, err)
	}
	stranger, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	strangerID, _ := peer.IDFromPrivateKey(stranger)
	pn.fails("operates none of the storage buckets", "audit", strangerID.String(), id, "--bag", string(net.Bag))
	pn.fails("is not a peer ID", "audit", "not-a-peer", id, "--bag", string(net.Bag))
	pn.fails("--bag is required", "audit", peerID, id)
	pn.fails("data object 99 does not exist in bag "+string(net.Bag)+"; list a bag's objects", "audit", peerID, "99", "--bag", string(net.Bag))
	pn.fails("bag dynamic:channel:99 does not exist; list bags", "audit", peerID, id, "--bag", "dynamic:channel:99")

	status := net.Provider(0).Server().StatusAddr()
	testnet.Wait(t, "provider 0 heard an audit of provider 1", func() bool {
		bucket := uint64(p1.Bucket)
		return len(net.Provider(0).Server().Heard(&bucket)) > 0
	})
	var rows []auditReportRow
	out = pn.ok("audit", "report", "--status", status, "--bucket", strconv.FormatUint(uint64(p1.Bucket), 10), "--json")
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("report --json: %v\n%s", err, out)
	}
	// (An audit may fail while the provider is still syncing the object;
	// passes are what must show.)
	if len(rows) != 1 || rows[0].Provider != peerID || rows[0].Passed == 0 || rows[0].Bucket != uint64(p1.Bucket) {
		t.Fatalf("report for bucket %d: %+v", p1.Bucket, rows)
	}
	if out := pn.ok("audit", "report", "--status", status); !strings.Contains(out, "PROVIDER") || !strings.Contains(out, peerID) {
		t.Errorf("report text:\n%s", out)
	}
	// A bucket that does not exist is an error, not an empty report.
	pn.fails("--bucket 99: storage bucket 99 does not exist", "audit", "report", "--status", status, "--bucket", "99")
	pn.fails(`storage bucket ID "x": want a non-negative integer`, "audit", "report", "--status", status, "--bucket", "x")
}

// The answer budget's size flags: empty keeps the defaults, a size is
// read with its unit, and nonsense or a budget that cannot hold one chunk
// is an error naming the flag.
func TestAuditAnswerBudgetFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" for no error
	}{
		{nil, ""},
		{[]string{"--audit-answer-rate", "20MB", "--audit-answer-burst", "1GiB"}, ""},
		{[]string{"--audit-answer-rate", "0"}, "--audit-answer-rate \"0\": must be at least 1 B"},
		{[]string{"--audit-answer-rate", "fast"}, "--audit-answer-rate \"fast\""},
		{[]string{"--audit-answer-burst", "1MiB"}, "--audit-answer-burst \"1MiB\": must be at least 2 MiB"},
	} {
		var a auditFlags
		f := pflag.NewFlagSet("t", pflag.ContinueOnError)
		a.add(f)
		if err := f.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		err := a.parse()
		switch {
		case tc.want == "" && (err != nil || a.answerBudget == nil):
			t.Errorf("%v: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v; want one naming %q", tc.args, err, tc.want)
		}
	}
}
