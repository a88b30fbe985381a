package provider

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/internal/metricsutil"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/audit"
	"github.com/satchel-net/satchel/protocol/audit/pb"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// countingChain counts the chain reads a node makes.
type countingChain struct {
	*fakeChain
	bagReads, bucketReads, workerReads atomic.Int64
}

func (c *countingChain) Bag(ctx context.Context, id chain.BagID) (chain.Bag, error) {
	c.bagReads.Add(1)
	return c.fakeChain.Bag(ctx, id)
}

func (c *countingChain) StorageBucket(ctx context.Context, id chain.StorageBucketID) (chain.StorageBucket, error) {
	c.bucketReads.Add(1)
	return c.fakeChain.StorageBucket(ctx, id)
}

func (c *countingChain) Worker(ctx context.Context, g chain.Group, id chain.WorkerID) (chain.Worker, error) {
	c.workerReads.Add(1)
	return c.fakeChain.Worker(ctx, g, id)
}

// A flood of signed results about this node's bag from a peer that operates
// none of its buckets is dropped after one (cached) chain read of the bag's
// operators — no worker reads, no DHT look-up, nothing kept — and a real
// FAIL from an operator, published while the flood goes on, still makes the
// node re-check the object.
func TestAuditJunkResultsDroppedRealFailResyncs(t *testing.T) {
	// The pubsub options of a real node (cmd/satchel): a deeper validation
	// queue than gossipsub's default.
	net := testnet.New(t, 3, testnet.WithHostOptions(func(int) []p2p.Option {
		return []p2p.Option{p2p.WithPubSubOptions(contracts.ScoreOptions()...)}
	}))
	node, junk, operator := net.Host(0), net.Host(1), net.Host(2)
	bag := chain.ChannelBag(1)
	fc := &countingChain{fakeChain: newFakeChain()}
	fc.fakeChain.bags[bag] = chain.Bag{ID: bag, StorageBuckets: []chain.StorageBucketID{1, 2}}
	for id, h := range map[chain.StorageBucketID]*p2p.Host{1: node, 2: operator} {
		w := chain.WorkerID(id)
		fc.fakeChain.buckets[id] = chain.StorageBucket{ID: id, OperatorStatus: chain.OperatorActive, Operator: &w,
			Metadata: &chain.StorageOperatorMetadata{PeerID: h.ID().String()}, Bags: []chain.BagID{bag}}
	}
	// The junk host operates a bucket of another bag: its results about
	// this bag are ignored (the node's view of the bag may be stale), not
	// rejected as a stranger's are (TestAuditResultsRelayLimitedNodeWide),
	// so it can flood on.
	w3 := chain.WorkerID(3)
	fc.fakeChain.buckets[3] = chain.StorageBucket{ID: 3, OperatorStatus: chain.OperatorActive, Operator: &w3,
		Metadata: &chain.StorageOperatorMetadata{PeerID: junk.ID().String()}, Bags: []chain.BagID{chain.ChannelBag(2)}}
	bs, put := heldFixture(t)
	m := put(string(bag), 7, []byte("an object this node holds, whole"), nil)
	reg := prometheus.NewRegistry()
	s := auditNode(t, node, bs, fc, WithMetrics(reg))
	s.setAssigned(bag, true)
	for _, h := range []*p2p.Host{junk, operator} {
		joinAudits(t, h, node)
	}
	ctx := context.Background()
	fail := func(h *p2p.Host, bag string, object uint64) []byte {
		r := &pb.AuditResult{Auditor: []byte(h.ID()), Provider: []byte(node.ID()), Bag: bag, Object: object,
			Verdict: pb.Verdict_VERDICT_FAIL, Reason: "junk", Repair: RepairResync, TimeUnixMs: time.Now().UnixMilli()}
		data, err := audit.SignResult(h.Libp2p().Peerstore().PrivKey(h.ID()), r)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	// The junk flows until the real FAIL is acted on: FAILs of this node's
	// bag (each object once, so no cooldown hides them).
	began := time.Now()
	stop := make(chan struct{})
	flowing := make(chan struct{})
	var sent atomic.Int64
	go func() {
		defer close(flowing)
		for i := uint64(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			data := fail(junk, string(bag), 1000+i)
			if err := junk.Publish(ctx, audit.Topic, data); err != nil {
				return
			}
			sent.Add(1)
		}
	}()
	waitUntil(t, "junk flowing", func() bool { return sent.Load() >= 200 })
	resyncs := func() float64 {
		v, err := metricsutil.Counter(reg, "satchel_provider_audit_resyncs_total")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// Gossip is best effort: a flood as fast as this one (the junk host
	// shares the cores with the node) can fill the node's validation queue
	// at the moment a result arrives, and gossipsub drops it. An auditor
	// publishes each round's results anew, so the operator does too until
	// one is acted on; the cooldown makes it one re-check.
	published, publishing := 0, time.Now()
	waitUntil(t, "the real FAIL re-checked the object", func() bool {
		if time.Since(publishing) >= time.Duration(published)*time.Second {
			if err := operator.Publish(ctx, audit.Topic, fail(operator, string(bag), m.Object)); err != nil {
				t.Fatal(err)
			}
			published++
		}
		return resyncs() >= 1
	})
	onPath := func() {
		t.Helper()
		if n := fc.workerReads.Load(); n != 0 {
			t.Errorf("%d worker reads on the results' path", n)
		}
		s.peers.mu.Lock()
		looked := len(s.peers.cache)
		s.peers.mu.Unlock()
		if looked != 0 {
			t.Errorf("the peer finder (chain + DHT) was asked about %d bags", looked)
		}
	}
	onPath()
	if !t.Failed() {
		dropped := func() float64 {
			v, _ := metricsutil.Counter(reg, "satchel_provider_audit_results_dropped_total")
			return v
		}
		waitUntil(t, "junk about the node's bag dropped", func() bool { return dropped() >= 50 })
	}
	close(stop)
	<-flowing
	onPath()
	// One read of the bag's operators serves every result about it within
	// peerCacheTTL: one more per peerCacheTTL the flood lasted.
	if n := fc.bagReads.Load(); n < 1 || n > 1+int64(time.Since(began)/peerCacheTTL) {
		t.Errorf("%d chain reads of the bag for %d results", n, sent.Load())
	}
	for _, h := range s.Heard(nil) {
		if h.Auditor == junk.ID().String() {
			t.Fatalf("kept a junk result: %+v", h)
		}
	}
	if n := len(s.Heard(nil)); n < 1 || n > published {
		t.Fatalf("kept %d results, want the operator's (%d published)", n, published)
	}
	if n := resyncs(); n != 1 {
		t.Fatalf("%v re-checks of the object, want 1 (the cooldown)", n)
	}
}

// auditNode starts the audit part of a provider on node over c (the
// blockstore holds what bs holds): the validator, the topic, heardLoop.
func auditNode(t *testing.T, node *p2p.Host, bs *blockstore.Store, c chainAPI, opts ...Option) *Server {
	t.Helper()
	key, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]Option{WithAudits(0, 0), WithScrub(0, 0), WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	s, err := newServer(node, bs, c, Identity{Worker: 1, Bucket: 1, Transactor: key}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.startAudits(ctx, node.Libp2p().Peerstore().PrivKey(node.ID())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = s.stopAudits()
		s.wg.Wait()
	})
	return s
}

// joinAudits joins h to the audit topic and waits until it sees node there.
func joinAudits(t *testing.T, h, node *p2p.Host) {
	t.Helper()
	if _, err := h.Join(audit.Topic); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the node seen on the audit topic", func() bool { return slices.Contains(h.TopicPeers(audit.Topic), node.ID()) })
}

// waitUntil polls cond until it holds, failing t after a minute. (The
// testnet package's Wait imports this one.)
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("waiting for %s: timed out", what)
		}
	}
}

// A failed result makes the node re-check an object once per cooldown,
// whichever auditors failed it (before session 14 the cooldown was per
// auditor, so each operator of the bag made the node read the object
// again): a failure of another object is acted on at once, and the
// remembered re-checks stay bounded.
func TestAuditResyncCooldownPerObject(t *testing.T) {
	s := &Server{audits: newAuditor(defaultAuditConfig())}
	r := func(auditor string, object uint64) *pb.AuditResult {
		return &pb.AuditResult{Auditor: []byte(auditor), Bag: "dynamic:channel:1", Object: object}
	}
	if !s.shouldResync(r("a", 7)) || s.shouldResync(r("a", 7)) {
		t.Fatal("the same auditor's failure of an object is acted on twice within the cooldown")
	}
	if s.shouldResync(r("b", 7)) {
		t.Fatal("another auditor's failure of the object is acted on within its cooldown")
	}
	if !s.shouldResync(r("a", 8)) {
		t.Fatal("another object's failure waited for a cooldown it does not share")
	}
	for i := range 2 * maxResyncEntries {
		s.shouldResync(r("c", uint64(100+i)))
	}
	if n := s.audits.resync.Len(); n > maxResyncEntries {
		t.Fatalf("%d re-checks remembered, over the bound of %d", n, maxResyncEntries)
	}
}

// Re-checks are paid for in bytes read, from the auditor's budget and the
// node's: an auditor whose re-checks read its burst has its further FAILs
// skipped (no cooldown started), another auditor's are still queued, and
// once re-checks read the node's whole burst FAILs are still queued: they
// wait for the node's budget (session 15; before, they were skipped while
// it was in debt). Before session 14 re-checks read with no budget, so an
// operator failing many large objects kept the node's disk busy.
func TestAuditResyncByteBudget(t *testing.T) {
	s := &Server{audits: newAuditor(defaultAuditConfig()), am: newAuditMetrics()}
	at := time.Now()
	b := s.audits.resyncBudget
	b.now = func() time.Time { return at }
	var waited time.Duration
	b.sleep = func(_ context.Context, d time.Duration) bool { waited += d; at = at.Add(d); return true }
	fail := func(auditor string, object uint64) *pb.AuditResult {
		return &pb.AuditResult{Auditor: []byte(auditor), Bag: "dynamic:channel:1", Object: object, Verdict: pb.Verdict_VERDICT_FAIL}
	}
	s.queueResync(fail("big", 1))
	if got := drainResyncs(s); len(got) != 1 {
		t.Fatalf("%d re-checks queued, want 1", len(got))
	}
	ctx := context.Background()
	b.spend(ctx, "big", AuditorResyncBurst) // it read its burst
	s.queueResync(fail("big", 2))
	s.queueResync(fail("other", 3))
	if got := drainResyncs(s); len(got) != 1 || got[0].auditor != "other" {
		t.Fatalf("queued %+v; want only the other auditor's", got)
	}
	if waited != 0 {
		t.Fatalf("a read within the node's burst waited %v", waited)
	}
	b.spend(ctx, "other", ResyncBurst-AuditorResyncBurst) // the rest of the node's burst
	if waited != 0 {
		t.Fatalf("a read within the node's burst waited %v", waited)
	}
	s.queueResync(fail("third", 4))
	if got := drainResyncs(s); len(got) != 1 || got[0].auditor != "third" {
		t.Fatalf("queued %+v with the node's budget spent; want the third auditor's, to wait for it", got)
	}
	b.spend(ctx, "third", 8<<20) // read once the node's budget pays for it
	if want := time.Second; waited != want {
		t.Fatalf("8 MiB read past the node's burst waited %v; want %v", waited, want)
	}
	at = at.Add(time.Minute)      // the big auditor's paid back
	s.queueResync(fail("big", 2)) // skipped before: no cooldown started
	if got := drainResyncs(s); len(got) != 1 {
		t.Fatalf("queued %+v once the auditor's budget refilled; want its FAIL", got)
	}
}

// drainResyncs takes what is queued for re-checks, as resyncLoop does
// (without reading the objects).
func drainResyncs(s *Server) []resyncRequest {
	var got []resyncRequest
	for {
		req, _, ok := s.audits.nextResync()
		if !ok {
			return got
		}
		got = append(got, req)
		s.audits.resyncDone(req)
	}
}

// One auditor failing every object of a bag fills its share of the
// re-check queue, not the queue: another auditor's FAIL is still queued,
// an object waits once however many auditors failed it, and a skipped
// FAIL starts no cooldown, so the next round's is queued once room frees.
func TestAuditResyncQueueFairPerAuditor(t *testing.T) {
	s := &Server{audits: newAuditor(defaultAuditConfig()), am: newAuditMetrics()}
	fail := func(auditor string, object uint64) *pb.AuditResult {
		return &pb.AuditResult{Auditor: []byte(auditor), Bag: "dynamic:channel:1", Object: object, Verdict: pb.Verdict_VERDICT_FAIL}
	}
	for i := range 10 * maxResyncsPerAuditor {
		s.queueResync(fail("flooder", uint64(1000+i)))
	}
	if n := len(s.audits.queue.waiting); n != maxResyncsPerAuditor {
		t.Fatalf("one auditor queued %d re-checks; its share is %d", n, maxResyncsPerAuditor)
	}
	s.queueResync(fail("honest", 7))
	s.queueResync(fail("other", 7)) // the same object: queued once
	s.queueResync(fail("other", 1000))
	if n := len(s.audits.queue.waiting); n != maxResyncsPerAuditor+1 {
		t.Fatalf("%d re-checks queued; want the flooder's %d and the honest auditor's object once", n, maxResyncsPerAuditor)
	}
	got := drainResyncs(s)
	if last := got[len(got)-1]; last.auditor != "honest" || last.object != 7 {
		t.Fatalf("last queued %+v; want the honest auditor's object 7", last)
	}
	// The flooder's skipped FAILs started no cooldown: queued now there is room.
	s.queueResync(fail("flooder", uint64(1000+maxResyncsPerAuditor)))
	if n := len(s.audits.queue.waiting); n != 1 {
		t.Fatalf("a FAIL skipped while the share was full was not queued later (%d queued)", n)
	}
}

// The operators a node accepts audit results from follow the chain's
// events, not only the cache's age: a bucket added to the bag, or an
// operator's node moving to another peer ID, is seen at once, so a real
// FAIL from the new operator is not dropped for up to peerCacheTTL.
func TestAuditOperatorsFollowChainEvents(t *testing.T) {
	net := testnet.New(t, 1)
	bag := chain.ChannelBag(1)
	fc := newFakeChain()
	ids := make([]peer.ID, 3)
	for i := range ids {
		k, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		if ids[i], err = peer.IDFromPrivateKey(k); err != nil {
			t.Fatal(err)
		}
	}
	w := chain.WorkerID(1)
	fc.bags[bag] = chain.Bag{ID: bag, StorageBuckets: []chain.StorageBucketID{1}}
	fc.buckets[1] = chain.StorageBucket{ID: 1, OperatorStatus: chain.OperatorActive, Operator: &w,
		Metadata: &chain.StorageOperatorMetadata{PeerID: net.Host(0).ID().String()}, Bags: []chain.BagID{bag}}
	bs, _ := heldFixture(t)
	key, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServer(net.Host(0), bs, fc, Identity{Worker: 1, Bucket: 1, Transactor: key},
		WithAudits(0, 0), WithScrub(0, 0), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	operates := func(p peer.ID) bool {
		t.Helper()
		ok, err := s.audits.operators.operates(ctx, bag, p)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if operates(ids[0]) {
		t.Fatal("a peer operating no bucket of the bag was accepted")
	}
	// Bucket 2, operated by ids[0], is added to the bag.
	w2 := chain.WorkerID(2)
	fc.buckets[2] = chain.StorageBucket{ID: 2, OperatorStatus: chain.OperatorActive, Operator: &w2,
		Metadata: &chain.StorageOperatorMetadata{PeerID: ids[0].String()}, Bags: []chain.BagID{bag}}
	fc.bags[bag] = chain.Bag{ID: bag, StorageBuckets: []chain.StorageBucketID{1, 2}}
	s.handleEvent(chain.NewEvent(chain.StorageBagBucketsUpdated{Bag: bag, Added: []chain.StorageBucketID{2}}), 5)
	if !operates(ids[0]) {
		t.Fatal("the operator of a bucket just added to the bag is not accepted")
	}
	// Its node moves to ids[1].
	md := chain.StorageOperatorMetadata{PeerID: ids[1].String()}
	b := fc.buckets[2]
	b.Metadata = &md
	fc.buckets[2] = b
	s.handleEvent(chain.NewEvent(chain.StorageOperatorMetadataSet{Bucket: 2, Worker: 2, Metadata: md}), 6)
	if operates(ids[0]) || !operates(ids[1]) {
		t.Fatal("the operator's old peer ID still accepted, or its new one not")
	}
}

// A peer that publishes results that do not verify (here: a result signed
// by its auditor, published by another peer) is rejected and loses score on
// the audit topic, as on a contract topic, so gossipsub stops hearing it.
func TestAuditForgedResultsCostTheSender(t *testing.T) {
	var mu sync.Mutex
	var scores map[peer.ID]*pubsub.PeerScoreSnapshot
	tr := &rejections{reasons: map[peer.ID][]string{}}
	net := testnet.New(t, 3, testnet.WithHostOptions(func(i int) []p2p.Option {
		opts := contracts.ScoreOptions()
		if i == 0 {
			opts = append(opts, pubsub.WithRawTracer(tr), pubsub.WithPeerScoreInspect(func(m map[peer.ID]*pubsub.PeerScoreSnapshot) {
				mu.Lock()
				scores = m
				mu.Unlock()
			}, 20*time.Millisecond))
		}
		return []p2p.Option{p2p.WithPubSubOptions(opts...)}
	}))
	node, forger, auditor := net.Host(0), net.Host(1), net.Host(2)
	bs, _ := heldFixture(t)
	s := auditNode(t, node, bs, newFakeChain())
	joinAudits(t, forger, node)
	ctx := context.Background()
	r := &pb.AuditResult{Auditor: []byte(auditor.ID()), Provider: []byte(node.ID()), Bag: string(chain.ChannelBag(1)), Object: 1,
		Verdict: pb.Verdict_VERDICT_FAIL, Reason: "forged", TimeUnixMs: time.Now().UnixMilli()}
	data, err := audit.SignResult(auditor.Libp2p().Peerstore().PrivKey(auditor.ID()), r)
	if err != nil {
		t.Fatal(err)
	}
	if err := forger.Publish(ctx, audit.Topic, data); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the forger's score below zero", func() bool {
		mu.Lock()
		defer mu.Unlock()
		sc, ok := scores[forger.ID()]
		return ok && sc.Score < 0
	})
	if n := len(s.Heard(nil)); n != 0 {
		t.Fatalf("kept %d forged results", n)
	}

	// A genuine result about a bag this version cannot parse (a kind a
	// newer one may add) is ignored, not rejected: relaying it costs no one.
	r.Bag, r.Reason = "dynamic:hologram:1", "from the future"
	if data, err = audit.SignResult(auditor.Libp2p().Peerstore().PrivKey(auditor.ID()), r); err != nil {
		t.Fatal(err)
	}
	if err := auditor.Publish(ctx, audit.Topic, data); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the future result turned away", func() bool { return len(tr.of(auditor.ID())) > 0 })
	if got := tr.of(auditor.ID()); got[0] != pubsub.RejectValidationIgnored {
		t.Fatalf("a result about an unknown kind of bag: %q, want %q", got[0], pubsub.RejectValidationIgnored)
	}
}

// rejections records why a pubsub router turned messages away, by author.
type rejections struct {
	nopTracer
	mu      sync.Mutex
	reasons map[peer.ID][]string
}

func (r *rejections) RejectMessage(m *pubsub.Message, reason string) {
	r.mu.Lock()
	r.reasons[m.GetFrom()] = append(r.reasons[m.GetFrom()], reason)
	r.mu.Unlock()
}

func (r *rejections) of(p peer.ID) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reasons[p])
}

// An auditor that publishes results faster than ResultRate has the rest
// ignored: not delivered, not relayed, counted.
func TestAuditResultsLimitedPerAuditor(t *testing.T) {
	tr := &deliveries{from: map[peer.ID]int{}}
	net := testnet.New(t, 2, testnet.WithHostOptions(func(i int) []p2p.Option {
		opts := contracts.ScoreOptions()
		if i == 0 {
			opts = append(opts, pubsub.WithRawTracer(tr))
		}
		return []p2p.Option{p2p.WithPubSubOptions(opts...)}
	}))
	node, flooder := net.Host(0), net.Host(1)
	bs, _ := heldFixture(t)
	reg := prometheus.NewRegistry()
	// The flooder also operates a bucket of a bag the node stores.
	own := chain.ChannelBag(1)
	fc := newFakeChain()
	fc.bags[own] = chain.Bag{ID: own, StorageBuckets: []chain.StorageBucketID{1, 2}}
	for id, h := range map[chain.StorageBucketID]*p2p.Host{1: node, 2: flooder} {
		w := chain.WorkerID(id)
		fc.buckets[id] = chain.StorageBucket{ID: id, OperatorStatus: chain.OperatorActive, Operator: &w,
			Metadata: &chain.StorageOperatorMetadata{PeerID: h.ID().String()}, Bags: []chain.BagID{own}}
	}
	s := auditNode(t, node, bs, fc, WithMetrics(reg))
	s.setAssigned(own, true)
	joinAudits(t, flooder, node)
	ctx := context.Background()
	fkey := flooder.Libp2p().Peerstore().PrivKey(flooder.ID())
	const sent = 4 * ResultBurst
	began := time.Now()
	for i := range sent {
		// Results about a bag the node does not store: valid, relayed.
		r := &pb.AuditResult{Auditor: []byte(flooder.ID()), Provider: []byte(node.ID()), Bag: string(chain.ChannelBag(chain.ChannelID(1000 + i))),
			Object: 1, Verdict: pb.Verdict_VERDICT_PASS, TimeUnixMs: time.Now().UnixMilli()}
		data, err := audit.SignResult(fkey, r)
		if err != nil {
			t.Fatal(err)
		}
		if err := flooder.Publish(ctx, audit.Topic, data); err != nil {
			t.Fatal(err)
		}
	}
	limited := func() float64 {
		v, err := metricsutil.Counter(reg, "satchel_provider_audit_results_limited_total")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	waitUntil(t, "results beyond the limit ignored", func() bool { return limited() > 0 })
	// Each result the node took was delivered (and relayed); the rest were
	// ignored or, in a burst too fast for the validation queue, dropped.
	allowed := ResultBurst + int(time.Since(began).Seconds()*ResultRate) + 1
	if n := tr.count(flooder.ID()); n > allowed {
		t.Fatalf("the node took %d of %d results from one auditor, want at most %d", n, sent, allowed)
	}

	// Results about the node's own bag from one of its operators are not
	// limited (a FAIL among them must reach the node), though this
	// auditor's limit is spent.
	for i := range 2 * ResultBurst {
		r := &pb.AuditResult{Auditor: []byte(flooder.ID()), Provider: []byte(node.ID()), Bag: string(own),
			Object: uint64(i + 1), Verdict: pb.Verdict_VERDICT_PASS, TimeUnixMs: time.Now().UnixMilli()}
		data, err := audit.SignResult(fkey, r)
		if err != nil {
			t.Fatal(err)
		}
		if err := flooder.Publish(ctx, audit.Topic, data); err != nil {
			t.Fatal(err)
		}
	}
	heard := func() float64 {
		v, _ := metricsutil.Counter(reg, "satchel_provider_audit_results_heard_total", "verdict", "pass")
		return v
	}
	waitUntil(t, "the operator's results about the node's bag heard past the limit", func() bool { return heard() >= ResultBurst })
}

// deliveries counts the messages a pubsub router delivered, by author.
type deliveries struct {
	nopTracer
	mu   sync.Mutex
	from map[peer.ID]int
}

func (d *deliveries) DeliverMessage(m *pubsub.Message) {
	d.mu.Lock()
	d.from[m.GetFrom()]++
	d.mu.Unlock()
}

func (d *deliveries) count(p peer.ID) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.from[p]
}

// nopTracer is a pubsub.RawTracer that does nothing.
type nopTracer struct{}

func (nopTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (nopTracer) OnClosedOutboundStream(peer.ID)           {}
func (nopTracer) Join(string)                              {}
func (nopTracer) Leave(string)                             {}
func (nopTracer) Graft(peer.ID, string)                    {}
func (nopTracer) Prune(peer.ID, string)                    {}
func (nopTracer) ValidateMessage(*pubsub.Message)          {}
func (nopTracer) DeliverMessage(*pubsub.Message)           {}
func (nopTracer) RejectMessage(*pubsub.Message, string)    {}
func (nopTracer) DuplicateMessage(*pubsub.Message)         {}
func (nopTracer) ThrottlePeer(peer.ID)                     {}
func (nopTracer) RecvRPC(*pubsub.RPC)                      {}
func (nopTracer) SendRPC(*pubsub.RPC, peer.ID)             {}
func (nopTracer) DropRPC(*pubsub.RPC, peer.ID)             {}
func (nopTracer) UndeliverableMessage(*pubsub.Message)     {}

// A failed result is acted on and kept once, however often it comes back
// (its auditor publishing the same bytes again is a message gossipsub has
// not seen, as a copy a peer sends once gossipsub forgot it would be), and
// one whose time is out of audit.ResultWindow is ignored. Before session 14
// any peer could replay an operator's FAIL once the seen cache forgot it:
// the node re-read the object and the status API showed a fresh failure.
func TestAuditReplayedAndStaleFailIgnored(t *testing.T) {
	net := testnet.New(t, 2)
	node, operator := net.Host(0), net.Host(1)
	bag := chain.ChannelBag(1)
	fc := newFakeChain()
	fc.bags[bag] = chain.Bag{ID: bag, StorageBuckets: []chain.StorageBucketID{1, 2}}
	for id, h := range map[chain.StorageBucketID]*p2p.Host{1: node, 2: operator} {
		w := chain.WorkerID(id)
		fc.buckets[id] = chain.StorageBucket{ID: id, OperatorStatus: chain.OperatorActive, Operator: &w,
			Metadata: &chain.StorageOperatorMetadata{PeerID: h.ID().String()}, Bags: []chain.BagID{bag}}
	}
	bs, put := heldFixture(t)
	m := put(string(bag), 7, []byte("an object this node holds, whole"), nil)
	reg := prometheus.NewRegistry()
	s := auditNode(t, node, bs, fc, WithMetrics(reg))
	s.setAssigned(bag, true)
	joinAudits(t, operator, node)
	ctx := context.Background()
	fail := func(at time.Time) []byte {
		r := &pb.AuditResult{Auditor: []byte(operator.ID()), Provider: []byte(node.ID()), Bag: string(bag), Object: m.Object,
			Verdict: pb.Verdict_VERDICT_FAIL, Reason: "chunk 0 missing", Repair: RepairResync, TimeUnixMs: at.UnixMilli()}
		data, err := audit.SignResult(operator.Libp2p().Peerstore().PrivKey(operator.ID()), r)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	counter := func(name string) float64 {
		v, err := metricsutil.Counter(reg, name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// publishUntil publishes data (gossip is best effort) until cond holds.
	publishUntil := func(what string, data []byte, cond func() bool) {
		t.Helper()
		last := time.Time{}
		waitUntil(t, what, func() bool {
			if time.Since(last) >= 500*time.Millisecond {
				if err := operator.Publish(ctx, audit.Topic, data); err != nil {
					t.Fatal(err)
				}
				last = time.Now()
			}
			return cond()
		})
	}
	stale := "satchel_provider_audit_results_stale_total"
	publishUntil("a stale FAIL ignored", fail(time.Now().Add(-audit.ResultWindow-time.Second)), func() bool { return counter(stale) >= 1 })
	if n := len(s.Heard(nil)); n != 0 {
		t.Fatalf("kept %d stale results", n)
	}
	data := fail(time.Now())
	publishUntil("the FAIL re-checked the object", data, func() bool { return counter("satchel_provider_audit_resyncs_total") >= 1 })
	before := counter(stale)
	publishUntil("the same FAIL again ignored", data, func() bool { return counter(stale) > before })
	if n := len(s.Heard(nil)); n != 1 {
		t.Fatalf("kept %d results of one FAIL published again, want 1", n)
	}
	if n := counter("satchel_provider_audit_resyncs_total"); n != 1 {
		t.Fatalf("%v re-checks of one FAIL, want 1", n)
	}
}
