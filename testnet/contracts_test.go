package testnet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/provider"
	"github.com/satchel-net/satchel/testnet"
	"github.com/satchel-net/satchel/topics"
)

// TestSessionsOnlyUnderContracts pushes streamed-session chunks (object ID
// 0) to real providers over the real store protocol: without a contract they
// are refused; under the grant a consigned contract opened they are stored,
// up to the room the contract reserved and for its bag only; and a chunk the
// provider holds for another object cannot join the session by its CID
// alone: it is answered AGREED and must be sent.
func TestSessionsOnlyUnderContracts(t *testing.T) {
	net := testnet.New(t, testnet.Providers(2), testnet.Configure(func(c *testnet.Config) {
		c.Contracts = true
		c.StatusAddrs = func(int) string { return "127.0.0.1:0" }
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var boot []peer.AddrInfo
	for _, p := range net.Providers() {
		boot = append(boot, p.AddrInfo())
	}
	h, err := p2p.New(ctx, p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), p2p.WithDHTMode(dht.ModeClient),
		p2p.WithBootstrap(boot...), p2p.WithPubSubOptions(contracts.ScoreOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })

	data := bytes.Repeat([]byte("contract"), 16<<10) // 128 KiB
	res, err := chunker.Sum(ctx, bytes.NewReader(data), chunker.WithChunkSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	push := func(st *store.Stream, session []byte, bag string, i int, body []byte) (*store.RefusedError, []store.PushStep, error) {
		var steps []store.PushStep
		_, err := st.Push(ctx, store.ChunkPush{Bag: bag, Index: i, CID: res.Chunks[i].CID, Data: body,
			Session: session, OnStep: func(s store.PushStep) { steps = append(steps, s) }})
		var refused *store.RefusedError
		errors.As(err, &refused)
		return refused, steps, err
	}
	chunk := func(i int) []byte { c := res.Chunks[i]; return data[c.Offset : c.Offset+int64(c.Size)] }
	open := func(p *testnet.Provider) *store.Stream {
		if err := h.Connect(ctx, p.AddrInfo()); err != nil {
			t.Fatal(err)
		}
		st, err := store.Open(ctx, h.Libp2p(), p.AddrInfo().ID)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		return st
	}

	// No contract: refused, nothing stored.
	st0 := open(net.Provider(0))
	refused, _, err := push(st0, bytes.Repeat([]byte{7}, store.SessionIDLength), string(net.Bag), 0, chunk(0))
	if refused == nil || !strings.Contains(refused.Reason, "storage contract") {
		t.Fatalf("session push without a contract: %v, want a refusal naming the contract", err)
	}
	if ok, _ := net.Provider(0).Store().Has(res.Chunks[0].CID); ok {
		t.Fatal("a refused session chunk was stored")
	}

	// A contract for one chunk's bytes.
	renter := contracts.NewRenter(h, contracts.NewGossip(h, net.Client, nil), net.Member, net.MemberID, net.Client, nil, nil)
	t.Cleanup(func() { _ = renter.Close() })
	req := contracts.Request{
		Terms: contracts.Terms{Bag: net.Bag, Size: uint64(res.Chunks[0].Size) + 32<<10, Chunks: 2,
			Availability: topics.High, Speed: topics.High, Redundancy: 1},
		Duration: 30 * 24 * time.Hour,
		// Both providers' offers end collection; the window only bounds a
		// loaded machine's wait for them.
		Window: offerWindow, Enough: 2,
	}
	topic, err := req.Topic()
	if err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, h, topic, 2)
	neg, err := renter.Negotiate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	cs := neg.Contracts[0]
	var p *testnet.Provider
	for _, q := range net.Providers() {
		if q.Host().ID() == cs.Contract.ProviderPeer {
			p = q
		}
	}
	if p == nil {
		t.Fatalf("consigned provider %s is not in the network", cs.Contract.ProviderPeer)
	}
	st := open(p)
	session := cs.Grant.Session[:]

	// The status page shows the topics and the contract.
	resp, err := http.Get("http://" + p.Server().StatusAddr() + provider.StatusPath)
	if err != nil {
		t.Fatal(err)
	}
	var status provider.Status
	err = json.NewDecoder(resp.Body).Decode(&status)
	resp.Body.Close()
	if err != nil || status.Contracts == nil || len(status.Contracts.Topics) != len(net.ContractTopics()) ||
		!slices.Contains(status.Contracts.Topics, topic.String()) || status.Contracts.Consigned != 1 || status.Contracts.OpenSessions != 1 {
		t.Fatalf("status page contracts: %+v (%v); want %d topics with %s, 1 consigned, 1 open session", status.Contracts, err, len(net.ContractTopics()), topic)
	}

	// Another bag's name under the grant: refused.
	if refused, _, err := push(st, session, "dynamic:channel:99", 0, chunk(0)); refused == nil {
		t.Fatalf("push under the grant for another bag: %v, want refused", err)
	}
	// The grant's chunk: stored.
	if _, _, err := push(st, session, string(net.Bag), 0, chunk(0)); err != nil {
		t.Fatalf("push under the grant: %v", err)
	}
	if ok, _ := p.Store().Has(res.Chunks[0].CID); !ok {
		t.Fatal("the granted chunk is not stored")
	}
	// More than the contract reserved: refused.
	if refused, _, err := push(st, session, string(net.Bag), 1, chunk(1)); refused == nil || !strings.Contains(refused.Reason, "reserved") {
		t.Fatalf("push past the contract's room: %v, want refused", err)
	}

	// A block the provider holds for another object cannot be claimed into
	// the session by its CID: it is answered AGREED, and bytes that are not
	// the block fail; the session does not grow.
	secret := bytes.Repeat([]byte("secret!!"), 4<<10)
	secretObj, err := net.Upload(ctx, secret, p.Index)
	if err != nil {
		t.Fatal(err)
	}
	sres, err := chunker.Sum(ctx, bytes.NewReader(secret))
	if err != nil {
		t.Fatal(err)
	}
	_, before, _, err := p.Store().SessionInfo(store.ClientSessionID(session))
	if err != nil {
		t.Fatal(err)
	}
	var steps []store.PushStep
	_, err = st.Push(ctx, store.ChunkPush{Bag: string(net.Bag), CID: sres.Chunks[0].CID, Data: make([]byte, sres.Chunks[0].Size),
		Session: session, OnStep: func(s store.PushStep) { steps = append(steps, s) }})
	if err == nil || slices.Contains(steps, store.PushAlreadyStored) || !slices.Contains(steps, store.PushAgreed) {
		t.Fatalf("claiming a held block into a session: steps %v, err %v; want AGREED, then a failure", steps, err)
	}
	_, after, _, err := p.Store().SessionInfo(store.ClientSessionID(session))
	if err != nil || after != before {
		t.Fatalf("session holds %d bytes after the claim, %d before (%v)", after, before, err)
	}

	// Another peer that learned the session ID (as a provider a pipeline
	// forwards through does) cannot drop it; the renter can.
	other, err := p2p.New(ctx, p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), p2p.WithDHTMode(dht.ModeClient))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	if err := other.Connect(ctx, p.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	ost, err := store.Open(ctx, other.Libp2p(), p.AddrInfo().ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ost.Close() })
	var refusedDrop *store.RefusedError
	if err := ost.Drop(ctx, session, string(net.Bag)); !errors.As(err, &refusedDrop) || !strings.Contains(refusedDrop.Reason, "only the renter") {
		t.Fatalf("a drop by a peer other than the renter: %v, want refused naming the renter", err)
	}
	// Nor end it by binding an object of the bag it holds under it.
	err = ost.Bind(ctx, store.BindRequest{Session: session, Bag: string(net.Bag), Object: uint64(secretObj.ID), Chunks: sres.Chunks})
	if !errors.As(err, &refusedDrop) || !strings.Contains(refusedDrop.Reason, "only the renter") {
		t.Fatalf("a bind naming the session by a peer other than the renter: %v, want refused naming the renter", err)
	}
	if _, n, open, err := p.Store().SessionInfo(store.ClientSessionID(session)); err != nil || !open || n != before {
		t.Fatalf("after a refused drop the session holds %d bytes (open %v, %v), want %d", n, open, err, before)
	}
	if err := st.Drop(ctx, session, string(net.Bag)); err != nil {
		t.Fatalf("the renter's drop: %v", err)
	}
	if _, _, open, err := p.Store().SessionInfo(store.ClientSessionID(session)); err != nil || open {
		t.Fatalf("after the renter's drop the session is open %v (%v)", open, err)
	}
}

// offerWindow bounds a negotiation's wait for offers: as long as the
// proposal takes them. Collection ends as soon as Enough offers came, so
// the window is only reached when an offer is missing; a loaded machine's
// slow offers still count.
const offerWindow = contracts.DefaultTTL

// waitTopicPeers waits until h knows want peers subscribed to topic.
func waitTopicPeers(t testing.TB, h *p2p.Host, topic topics.Topic, want int) {
	t.Helper()
	if _, err := h.Join(topic.String()); err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "the providers on the contract topic", func() bool { return len(h.TopicPeers(topic.String())) >= want })
}

// TestMirrorRestoresWipedReplica wipes a provider's block store (directory
// removed, node restarted on an empty one) and has the renter MIRROR its
// contract's object from the other provider: the replica comes back, every
// block fetched from the wiped provider byte-exact.
func TestMirrorRestoresWipedReplica(t *testing.T) {
	net := testnet.New(t, testnet.Providers(2), testnet.Configure(func(c *testnet.Config) { c.Contracts = true }))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	data := make([]byte, 600<<10)
	for i := range data {
		data[i] = byte(i*7 + i/1000)
	}
	res, err := chunker.Sum(ctx, bytes.NewReader(data), chunker.WithChunkSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := net.UploadChunked(ctx, data, 64<<10, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	h, renter, err := net.RenterHost(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := contracts.Request{
		Terms: contracts.Terms{Bag: net.Bag, Object: obj.ID, ContentID: obj.ContentID, Size: obj.Size, Chunks: uint64(len(res.Chunks)),
			Availability: topics.High, Speed: topics.High, Redundancy: 2},
		Duration: 30 * 24 * time.Hour,
		Window:   offerWindow, Enough: 2, // both providers' offers end collection
	}
	topic, err := req.Topic()
	if err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, h, topic, 2)
	neg, err := renter.Negotiate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	victim := net.Provider(1)
	var c *contracts.Contract
	for _, cs := range neg.Contracts {
		if cs.Contract.ProviderPeer == victim.Host().ID() {
			c = cs.Contract
		}
	}
	if c == nil {
		t.Fatalf("no contract consigned with provider 1 (%d contracts)", len(neg.Contracts))
	}
	source := net.Provider(0).Host().ID()

	// The disk is lost: the block store directory goes, the node restarts
	// on an empty one.
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(victim.Dir, "blocks")); err != nil {
		t.Fatal(err)
	}
	if err := victim.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(ctx, victim.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "the restarted provider to serve contracts", func() bool {
		r, _ := victim.Contracts()
		return r != nil
	})
	if err := renter.Mirror(ctx, c, []peer.ID{source}); err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "the wiped provider to hold the object again", func() bool { return victim.Server().Serving(obj.ID) })

	// Every block, from the wiped provider alone, byte-exact.
	fc := fetch.NewClient(h.Libp2p())
	t.Cleanup(func() { _ = fc.Close() })
	for i, ch := range res.Chunks {
		got, err := fc.GetBlock(ctx, victim.Host().ID(), ch.CID)
		if err != nil || !bytes.Equal(got, data[ch.Offset:ch.Offset+int64(ch.Size)]) {
			t.Fatalf("chunk %d from the mirrored provider: %v (equal %v)", i, err, bytes.Equal(got, data[ch.Offset:ch.Offset+int64(ch.Size)]))
		}
	}
	root, err := fc.GetBlock(ctx, victim.Host().ID(), res.Root)
	if err != nil || len(root) == 0 {
		t.Fatalf("root from the mirrored provider: %v", err)
	}
}
