package provider_test

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/blocktest"
	"github.com/satchel-net/satchel/protocol/audit"
	"github.com/satchel-net/satchel/protocol/audit/pb"
	"github.com/satchel-net/satchel/provider"
	"github.com/satchel-net/satchel/testnet"
)

// auditOptions make providers audit each other every 200 ms for every
// chunk of an object, with no grace, and turn the scrub off so that only
// audits find what the tests break.
func auditOptions() testnet.Option {
	return testnet.ProviderOptions(
		provider.WithAudits(200*time.Millisecond, 0),
		provider.WithAuditGrace(0),
		provider.WithAuditSamples(audit.MaxSamples),
		provider.WithAuditRate(100, 100),
		provider.WithScrub(0, 0),
	)
}

// heardVerdict reports whether any provider heard, since then, an audit of
// victim for obj with the verdict pass (a failure naming the resync
// repair).
func heardVerdict(net *testnet.Network, victim peer.ID, obj chain.DataObject, pass bool, since time.Time) func() bool {
	return func() bool {
		for _, p := range net.Providers() {
			for _, h := range p.Server().Heard(nil) {
				if h.Provider == victim.String() && h.Object == uint64(obj.ID) && h.Pass == pass && !h.HeardAt.Before(since) &&
					(pass || h.Repair == provider.RepairResync) {
					return true
				}
			}
		}
		return false
	}
}

// A provider that lost a chunk (its file deleted) and then one that holds
// a chunk with a flipped byte fail their audits within an audit period, and
// are repaired; the honest providers pass.
func TestAuditFailsLostAndCorruptChunksAndRepairs(t *testing.T) {
	net := newNet(t, auditOptions())
	ctx := testCtx(t)
	const chunkSize = 4 << 10
	data := randomBytes(t, 3*chunkSize)
	obj, err := net.UploadChunked(ctx, data, chunkSize, 0)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "accepted", accepted(net, obj))
	for _, p := range net.Providers() {
		testnet.Wait(t, "synced", holds(p, obj))
	}
	res, err := chunker.Sum(ctx, bytes.NewReader(data), chunker.WithChunkSize(chunkSize))
	if err != nil {
		t.Fatal(err)
	}
	p0, p1, p2 := net.Provider(0), net.Provider(1), net.Provider(2)
	testnet.Wait(t, "honest provider passes", heardVerdict(net, p0.AddrInfo().ID, obj, true, time.Time{}))
	// A second object: audits take the bag's objects in turn, so it is
	// audited too.
	second, err := net.UploadChunked(ctx, randomBytes(t, chunkSize), chunkSize, 0)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "second object audited", heardVerdict(net, p0.AddrInfo().ID, second, true, time.Time{}))
	// (Audits made while a provider was still syncing may have failed;
	// what follows counts only audits made after each fault.)

	lost := res.Chunks[1].CID
	since := time.Now()
	// Lost: its bytes read as zeros, as a punched-out record does.
	blocktest.Overwrite(t, p1.Store(), lost, func(b []byte) { clear(b) })
	testnet.Wait(t, "lost chunk fails an audit", heardVerdict(net, p1.AddrInfo().ID, obj, false, since))
	testnet.Wait(t, "lost chunk repaired", func() bool {
		got, err := p1.Store().Get(lost)
		return err == nil && bytes.Equal(got, data[chunkSize:2*chunkSize])
	})

	bad := res.Chunks[2].CID
	since = time.Now()
	blocktest.Overwrite(t, p2.Store(), bad, func(b []byte) { b[100] ^= 0x01 })
	testnet.Wait(t, "corrupt chunk fails an audit", heardVerdict(net, p2.AddrInfo().ID, obj, false, since))
	testnet.Wait(t, "corrupt chunk repaired", func() bool {
		got, err := p2.Store().Get(bad)
		return err == nil && bytes.Equal(got, data[2*chunkSize:])
	})

	// The auditors counted them, per peer, in metrics and status.
	fails := 0.0
	for _, p := range []*testnet.Provider{p0, p2} {
		fails += counter(t, p.Registry(), "satchel_provider_audits_total", map[string]string{"peer": p1.AddrInfo().ID.String(), "result": "fail"})
	}
	if fails < 1 {
		t.Errorf("audits of %s failed = %v in the auditors' metrics", p1.AddrInfo().ID, fails)
	}
	st := p0.Server().Status()
	if st.Audits == nil || len(st.Audits.Peers) != 2 || st.Audits.Heard == 0 {
		t.Fatalf("status audits = %+v", st.Audits)
	}
	// And once repaired they pass again.
	since = time.Now()
	testnet.Wait(t, "repaired provider passes", func() bool {
		for _, h := range p0.Server().Heard(nil) {
			if h.Provider == p2.AddrInfo().ID.String() && h.Pass && h.HeardAt.After(since) {
				return true
			}
		}
		return false
	})
}

// A result published on the audit topic by someone other than the auditor
// it names, or with a bad signature, is dropped by validation; a genuine
// one from a peer that is no provider of the bag is not kept; a genuine
// one from a provider of the bag is heard.
func TestForgedAuditResultRejected(t *testing.T) {
	net := newNet(t, testnet.ProviderOptions(provider.WithAudits(0, 0), provider.WithScrub(0, 0)))
	ctx := testCtx(t)
	h, err := net.ClientHost(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p0 := net.Provider(0)
	if err := h.Connect(ctx, p0.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Join(audit.Topic); err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "provider seen on the audit topic", func() bool {
		for _, p := range h.TopicPeers(audit.Topic) {
			if p == p0.AddrInfo().ID {
				return true
			}
		}
		return false
	})
	other, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherID, _ := peer.IDFromPrivateKey(other)
	result := func(auditor peer.ID, object uint64) *pb.AuditResult {
		return &pb.AuditResult{Auditor: []byte(auditor), Provider: []byte(p0.AddrInfo().ID), Bag: string(net.Bag),
			Object: object, Verdict: pb.Verdict_VERDICT_FAIL, Reason: "forged", TimeUnixMs: time.Now().UnixMilli()}
	}
	// Signed by a key that is not the publisher's.
	forged, err := audit.SignResult(other, result(otherID, 101))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Publish(ctx, audit.Topic, forged); err != nil {
		t.Fatal(err)
	}
	// Signature broken.
	key := h.Libp2p().Peerstore().PrivKey(h.ID())
	broken, err := audit.SignResult(key, result(h.ID(), 102))
	if err != nil {
		t.Fatal(err)
	}
	broken[len(broken)-1] ^= 1
	if err := h.Publish(ctx, audit.Topic, broken); err != nil {
		t.Fatal(err)
	}
	stranger, err := audit.SignResult(key, result(h.ID(), 103))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Publish(ctx, audit.Topic, stranger); err != nil {
		t.Fatal(err)
	}
	p1 := net.Provider(1).Host()
	// Provider 1 publishes only once it knows provider 0 takes the topic: a
	// message published before would reach no one (gossipsub sends to the
	// topic's known subscribers; its gossip keeps a message 3 heartbeats).
	testnet.Wait(t, "provider 0 seen on the audit topic by provider 1", func() bool {
		for _, p := range p1.TopicPeers(audit.Topic) {
			if p == p0.AddrInfo().ID {
				return true
			}
		}
		return false
	})
	p1Key := p1.Libp2p().Peerstore().PrivKey(p1.ID())
	// Provider 0 keeps results of the bag's providers only, as far as its
	// view of them goes (cached up to 10 s, refreshed by block events):
	// until that view has provider 1, its results are dropped like a
	// stranger's. So the genuine result is published again, fresh, until
	// it is heard; the forged ones above went out once, and never count.
	var published time.Time
	testnet.Wait(t, "genuine result heard", func() bool {
		for _, r := range p0.Server().Heard(nil) {
			if r.Object == 104 {
				return true
			}
		}
		if time.Since(published) < 250*time.Millisecond {
			return false
		}
		published = time.Now()
		genuine, err := audit.SignResult(p1Key, result(p1.ID(), 104))
		if err != nil {
			t.Fatal(err)
		}
		if err := p1.Publish(ctx, audit.Topic, genuine); err != nil {
			t.Fatal(err)
		}
		return false
	})
	for _, r := range p0.Server().Heard(nil) {
		if r.Object != 104 {
			t.Errorf("kept a result that should have been rejected: %+v", r)
		}
	}
}

// The scrub finds a flipped byte in a block nobody reads, quarantines it
// and the node fetches it again from a peer.
func TestScrubFindsFlippedByte(t *testing.T) {
	net := newNet(t, testnet.ProviderOptions(provider.WithAudits(0, 0), provider.WithScrub(64<<20, 50*time.Millisecond)))
	ctx := testCtx(t)
	const chunkSize = 4 << 10
	data := randomBytes(t, 4*chunkSize)
	obj, err := net.UploadChunked(ctx, data, chunkSize, 0)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "accepted", accepted(net, obj))
	for _, p := range net.Providers() {
		testnet.Wait(t, "synced", holds(p, obj))
	}
	res, err := chunker.Sum(ctx, bytes.NewReader(data), chunker.WithChunkSize(chunkSize))
	if err != nil {
		t.Fatal(err)
	}
	p1 := net.Provider(1)
	victim := res.Chunks[3].CID
	blocktest.Overwrite(t, p1.Store(), victim, func(b []byte) { b[7] ^= 0x80 })
	testnet.Wait(t, "scrub finds and repairs the block", func() bool {
		st := p1.Server().Status().Scrub
		return st != nil && st.Failed >= 1 && st.Repaired >= 1
	})
	got, err := p1.Store().Get(victim)
	if err != nil || !bytes.Equal(got, data[3*chunkSize:]) {
		t.Fatalf("repaired block: %v", err)
	}
	st := p1.Server().Status().Scrub
	if st.Checked < 5 || st.Passes < 1 {
		t.Errorf("scrub status %+v", st)
	}
	if n := counter(t, p1.Registry(), "satchel_provider_scrub_blocks_failed_total", nil); n < 1 {
		t.Errorf("scrub failed metric = %v", n)
	}
}

// A node answers audits within its answer budget: with a budget of a byte
// a second its peers' challenges are refused (busy), which the auditors
// count as refused, not as a verdict.
func TestAuditAnswerBudgetRefusesPeers(t *testing.T) {
	net := newNet(t, auditOptions(), testnet.ProviderOptions(provider.WithAuditAnswerBudget(1, 1)))
	ctx := testCtx(t)
	const chunkSize = 4 << 10
	obj, err := net.UploadChunked(ctx, randomBytes(t, 3*chunkSize), chunkSize, 0)
	if err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "accepted", accepted(net, obj))
	for _, p := range net.Providers() {
		testnet.Wait(t, "synced", holds(p, obj))
	}
	sum := func(name string, labels map[string]string) float64 {
		n := 0.0
		for _, p := range net.Providers() {
			n += counter(t, p.Registry(), name, labels)
		}
		return n
	}
	testnet.Wait(t, "audits refused as over the answer budget", func() bool {
		return sum("satchel_provider_audit_challenges_total", map[string]string{"status": "busy"}) >= 3 &&
			sum("satchel_provider_audits_total", map[string]string{"result": "refused"}) >= 3
	})
}
