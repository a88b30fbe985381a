package contracts

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/node"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/topics"
)

// world is a real embedded chain and a mocknet of hosts: hosts 0..P-1 are
// storage providers, each the active operator of its own bucket with its
// peer ID published on chain; the member's channel bag is placed in
// bagBuckets of the buckets by the chain's dynamic bag policy.
type world struct {
	t        testing.TB
	chain    *chain.Client
	net      *testnet.Network
	member   chain.Key
	memberID chain.MemberID
	bag      chain.BagID
	provs    []Identity
	assigned map[int]bool // provider index → bucket stores the bag

	// wrapRoom, if set, wraps the Ledger of the responders started next;
	// mirrorer, if set, replaces their recording Mirrorer; wrapDir, if
	// set, wraps the chain their ChainAuthority reads; wrapAuth, if set,
	// wraps their ChainAuthority.
	wrapRoom func(Room) Room
	mirrorer Mirrorer
	wrapDir  func(Directory) Directory
	wrapAuth func(Authority) Authority

	lead chain.Key // the storage lead

	scoreMu sync.Mutex
	scores  map[int]map[peer.ID]*pubsub.PeerScoreSnapshot
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newWorld starts the world; full connects every host to every other,
// otherwise the hosts are connected as p2p/testnet does (a ring, then the
// DHT's refresh). tracer, if set, gives host i a gossipsub raw tracer.
func newWorld(t testing.TB, hosts, providers, bagBuckets int, latency time.Duration) *world {
	return newWorldWith(t, hosts, providers, bagBuckets, latency, true, nil)
}

// chainWorld starts a world of hosts with a chain, as newWorld (no
// latency), skipping the test in -short, and returns it with a context
// that ends after timeout or with the test.
func chainWorld(t *testing.T, hosts, providers, bagBuckets int, timeout time.Duration) (*world, context.Context) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a chain")
	}
	w := newWorld(t, hosts, providers, bagBuckets, 0)
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return w, ctx
}

func newWorldWith(t testing.TB, hosts, providers, bagBuckets int, latency time.Duration, full bool, tracer func(i int) pubsub.RawTracer) *world {
	t.Helper()
	w := &world{t: t, assigned: map[int]bool{}, scores: map[int]map[peer.ID]*pubsub.PeerScoreSnapshot{}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	lead, _ := chain.GenerateKey()
	w.lead = lead
	dlead, _ := chain.GenerateKey()
	n, err := node.New(t.TempDir(),
		node.WithGenesis(chain.DefaultGenesis(lead.Account(), dlead.Account())),
		node.WithRPCAddr(""), node.WithP2PAddr("127.0.0.1:0"),
		node.WithBlockInterval(10*time.Millisecond), node.WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	w.chain = chain.NewClient(n.Transport())

	// The network is set up without latency (a 100-host DHT bootstrap over
	// 50 ms links takes minutes), then every link gets it.
	w.net = testnet.NewMock(t, hosts, 0, testnet.WithHostOptions(func(i int) []p2p.Option {
		opts := append(ScoreOptions(), pubsub.WithPeerScoreInspect(func(m map[peer.ID]*pubsub.PeerScoreSnapshot) {
			w.scoreMu.Lock()
			w.scores[i] = m
			w.scoreMu.Unlock()
		}, 50*time.Millisecond))
		if tracer != nil {
			opts = append(opts, pubsub.WithRawTracer(tracer(i)))
		}
		return []p2p.Option{p2p.WithPubSubOptions(opts...)}
	}))
	if full {
		if err := w.net.Mocknet().ConnectAllButSelf(); err != nil {
			t.Fatal(err)
		}
	}
	if latency > 0 {
		mn := w.net.Mocknet()
		mn.SetLinkDefaults(mocknet.LinkOptions{Latency: latency})
		for _, m := range mn.Links() {
			for _, ls := range m {
				for l := range ls {
					l.SetOptions(mocknet.LinkOptions{Latency: latency})
				}
			}
		}
	}

	keys := make([]chain.Key, providers)
	for i := range providers {
		keys[i], _ = chain.GenerateKey()
		res, err := w.chain.Submit(ctx, lead, chain.MsgAddWorker{Group: chain.StorageGroup, Account: keys[i].Account()})
		must(t, err)
		added, _ := chain.FindEvent[chain.WorkerAdded](res.Result.Events)
		wid := added.Worker
		res, err = w.chain.Submit(ctx, lead, chain.MsgCreateStorageBucket{
			AcceptingNewBags: true, ObjectsLimit: 1000, SizeLimit: 1 << 40, InviteWorker: &wid})
		must(t, err)
		created, _ := chain.FindEvent[chain.StorageBucketCreated](res.Result.Events)
		w.provs = append(w.provs, Identity{Key: keys[i], Worker: wid, Bucket: created.Bucket})
	}
	var g errgroup.Group
	for i, id := range w.provs {
		g.Go(func() error {
			if _, err := w.chain.Submit(ctx, id.Key, chain.MsgAcceptStorageBucketInvitation{Worker: id.Worker, Bucket: id.Bucket}); err != nil {
				return err
			}
			_, err := w.chain.Submit(ctx, id.Key, chain.MsgSetStorageOperatorMetadata{Worker: id.Worker, Bucket: id.Bucket,
				Metadata: chain.StorageOperatorMetadata{PeerID: w.net.Host(i).ID().String()}})
			return err
		})
	}
	must(t, g.Wait())
	_, err = w.chain.Submit(ctx, lead, chain.MsgSetStorageDynamicBagPolicy{BagType: chain.ChannelBagType, StorageBuckets: uint64(bagBuckets)})
	must(t, err)

	w.member, _ = chain.GenerateKey()
	res, err := w.chain.Submit(ctx, w.member, chain.MsgCreateMember{Handle: "renter"})
	must(t, err)
	m, _ := chain.FindEvent[chain.MemberCreated](res.Result.Events)
	w.memberID = m.Member
	res, err = w.chain.Submit(ctx, w.member, chain.MsgCreateChannel{Member: m.Member, Title: "contracts"})
	must(t, err)
	ch, _ := chain.FindEvent[chain.ChannelCreated](res.Result.Events)
	w.bag = ch.Bag
	bag, err := w.chain.Bag(ctx, w.bag)
	must(t, err)
	for i, id := range w.provs {
		w.assigned[i] = bag.HasStorageBucket(id.Bucket)
	}
	if len(bag.StorageBuckets) != bagBuckets {
		t.Fatalf("bag %s in %d buckets, want %d", w.bag, len(bag.StorageBuckets), bagBuckets)
	}
	return w
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// node is one host's contract parts.
type tnode struct {
	mirrors chan mirrorCall // MIRROR requests the responder took
	reg     *prometheus.Registry
	gossip  *Gossip
	resp    *Responder
	renter  *Renter
	store   *Store
	dir     string
}

// responder starts provider i's responder on the given topics with a store
// in dir (a fresh one when dir is "").
func (w *world) responder(i int, dir string, ts ...topics.Topic) *tnode {
	w.t.Helper()
	if dir == "" {
		dir = w.t.TempDir()
	}
	st, err := OpenStore(dir)
	must(w.t, err)
	h := w.net.Host(i)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	must(w.t, err)
	g := NewGossip(h, w.chain, quiet(), WithGossipMetrics(m))
	id := w.provs[i]
	mirrors := make(chan mirrorCall, 4)
	var room Room = NewLedger(w.chain, id.Bucket, nil)
	if w.wrapRoom != nil {
		room = w.wrapRoom(room)
	}
	var mirrorer Mirrorer = mirrorRecorder(mirrors)
	if w.mirrorer != nil {
		mirrorer = w.mirrorer
	}
	var cdir Directory = w.chain
	if w.wrapDir != nil {
		cdir = w.wrapDir(cdir)
	}
	var auth Authority = NewChainAuthority(cdir, id.Bucket)
	if w.wrapAuth != nil {
		auth = w.wrapAuth(auth)
	}
	r, err := NewResponder(h, g, id, auth, room, st,
		WithTopics(ts...), WithLogger(quiet()), WithMirrorer(mirrorer), WithMetrics(m))
	must(w.t, err)
	tn := &tnode{gossip: g, resp: r, store: st, dir: dir, mirrors: mirrors, reg: reg}
	w.t.Cleanup(func() { tn.close() })
	return tn
}

func (tn *tnode) close() {
	if tn.resp != nil {
		_ = tn.resp.Close()
	}
	if tn.renter != nil {
		_ = tn.renter.Close()
	}
	_ = tn.gossip.Close()
	_ = tn.store.Close()
}

// renterAt starts the member's renter on host i.
func (w *world) renterAt(i int) *tnode {
	w.t.Helper()
	dir := w.t.TempDir()
	st, err := OpenStore(dir)
	must(w.t, err)
	h := w.net.Host(i)
	g := NewGossip(h, w.chain, quiet())
	tn := &tnode{gossip: g, renter: NewRenter(h, g, w.member, w.memberID, w.chain, st, quiet()), store: st, dir: dir}
	w.t.Cleanup(func() { tn.close() })
	return tn
}

// waitTopicPeers waits until host i sees at least want peers on topic.
func (w *world) waitTopicPeers(i int, topic topics.Topic, want int) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.net.Host(i).WaitTopicPeers(ctx, topic.String(), want); err != nil {
		w.t.Fatalf("host %d: %v", i, err)
	}
}

// waitMesh waits until every subscriber of topic has joined a mesh (has a
// mesh peer), so published messages reach all of them.
func (w *world) waitMesh(topic topics.Topic, subs []int) {
	w.t.Helper()
	for _, i := range subs {
		w.waitTopicPeers(i, topic, len(subs)-1)
	}
}

// eventually waits for cond with a deadline, for state without an event.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func (w *world) score(at int, of peer.ID) (float64, bool) {
	w.scoreMu.Lock()
	defer w.scoreMu.Unlock()
	s, ok := w.scores[at][of]
	if !ok {
		return 0, false
	}
	return s.Score, true
}

func (w *world) request(size uint64, d time.Duration, redundancy uint32) Request {
	return Request{
		Terms: Terms{Bag: w.bag, ContentID: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
			Size: size, Chunks: max(1, size>>20), Availability: topics.High, Speed: topics.High, Redundancy: redundancy},
		Duration: d,
	}
}

func indexes(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func (w *world) split() (assigned, unassigned []int) {
	for i := range w.provs {
		if w.assigned[i] {
			assigned = append(assigned, i)
		} else {
			unassigned = append(unassigned, i)
		}
	}
	slices.Sort(assigned)
	return assigned, unassigned
}

var _ = fmt.Sprint

// mirrorCall is one MIRROR a responder passed on to its Mirrorer.
type mirrorCall struct {
	contract ID
	sources  []peer.ID
}

// mirrorRecorder is a Mirrorer that reports the copies it is asked for: the
// copy itself is the provider node's sync, outside this package.
type mirrorRecorder chan mirrorCall

func (m mirrorRecorder) CheckMirror(_ context.Context, c *Contract) (chain.DataObject, error) {
	return chain.DataObject{ID: c.Object, Bag: c.Bag, Size: c.Size, ContentID: c.ContentID}, nil
}

func (m mirrorRecorder) Mirror(ctx context.Context, c *Contract, _ chain.DataObject, sources []peer.ID) error {
	select {
	case m <- mirrorCall{c.ID, sources}:
	case <-ctx.Done():
	}
	return nil
}
