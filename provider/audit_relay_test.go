package provider

import (
	"context"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/internal/metricsutil"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/audit"
	"github.com/satchel-net/satchel/protocol/audit/pb"
)

// StorageBuckets lists every storage bucket, as chain.Client does.
func (f *fakeChain) StorageBuckets(context.Context) ([]chain.StorageBucket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]chain.StorageBucket, 0, len(f.buckets))
	for _, b := range f.buckets {
		out = append(out, b)
	}
	return out, nil
}

// One flooder publishing ResultBurst results about bags the node does not
// store from each of 8 auditors (each the active operator of a bucket): the
// node relays (delivers) no more than its node-wide budget — RelayBurst,
// its clock stopped — where the per-auditor limit alone let 8 × ResultBurst
// through. Results signed by a key that operates no bucket are rejected
// (gossipsub scores the sender down), none delivered.
func TestAuditResultsRelayLimitedNodeWide(t *testing.T) {
	const auditors = 8
	const sent = auditors * ResultBurst
	scores := &peerScores{}
	tr := &relayTrace{delivered: map[peer.ID]int{}, rejected: map[string]int{}}
	net := testnet.New(t, 4, testnet.WithHostOptions(func(i int) []p2p.Option {
		opts := contracts.ScoreOptions()
		if i == 0 {
			opts = append(opts, pubsub.WithRawTracer(tr), pubsub.WithPeerScoreInspect(scores.inspect, 20*time.Millisecond))
		} else {
			// Every result reaches the node (none dropped by the
			// flooder's own queue), so its fate there is counted.
			opts = append(opts, pubsub.WithPeerOutboundQueueSize(2*sent))
		}
		return []p2p.Option{p2p.WithPubSubOptions(opts...)}
	}))
	node, flooder, other, relay := net.Host(0), net.Host(1), net.Host(2), net.Host(3)
	bs, _ := heldFixture(t)
	fc := newFakeChain()
	own := chain.ChannelBag(1)
	fc.bags[own] = chain.Bag{ID: own, StorageBuckets: []chain.StorageBucketID{1}}
	w1 := chain.WorkerID(1)
	fc.buckets[1] = chain.StorageBucket{ID: 1, OperatorStatus: chain.OperatorActive, Operator: &w1,
		Metadata: &chain.StorageOperatorMetadata{PeerID: node.ID().String()}, Bags: []chain.BagID{own}}
	keys := make([]crypto.PrivKey, auditors+1) // the last operates nothing
	for i := range keys {
		k, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
		if i == auditors {
			break
		}
		id, _ := peer.IDFromPrivateKey(k)
		b, w := chain.StorageBucketID(i+2), chain.WorkerID(i+2)
		fc.buckets[b] = chain.StorageBucket{ID: b, OperatorStatus: chain.OperatorActive, Operator: &w,
			Metadata: &chain.StorageOperatorMetadata{PeerID: id.String()}}
	}
	reg := prometheus.NewRegistry()
	s := auditNode(t, node, bs, fc, WithMetrics(reg))
	s.setAssigned(own, true)
	joinAudits(t, flooder, node)
	joinAudits(t, other, node)
	joinAudits(t, relay, node)
	ctx := context.Background()
	publishVia := func(h *p2p.Host, key crypto.PrivKey, n int, bag func(i int) chain.BagID) {
		t.Helper()
		topic, err := h.Join(audit.Topic)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := peer.IDFromPrivateKey(key)
		for i := range n {
			r := &pb.AuditResult{Auditor: []byte(id), Provider: []byte(node.ID()), Bag: string(bag(i)),
				Object: 1, Verdict: pb.Verdict_VERDICT_PASS, TimeUnixMs: time.Now().UnixMilli()}
			data, err := audit.SignResult(key, r)
			if err != nil {
				t.Fatal(err)
			}
			if err := topic.Publish(ctx, data, pubsub.WithSecretKeyAndPeerId(key, id)); err != nil {
				t.Fatal(err)
			}
		}
	}
	others := func(i int) chain.BagID { return chain.ChannelBag(chain.ChannelID(1000 + i)) }
	publish := func(key crypto.PrivKey, n int) { t.Helper(); publishVia(flooder, key, n, others) }

	// The relay's clock stands still: nothing refills, so the node-wide
	// burst is all that may pass however long validation takes.
	// Set under the relay's lock: validators may already be running.
	frozen := time.Now()
	s.audits.relay.mu.Lock()
	s.audits.relay.now = func() time.Time { return frozen }
	s.audits.relay.mu.Unlock()
	for _, k := range keys[:auditors] {
		publish(k, ResultBurst)
	}
	waitUntil(t, "every result validated", func() bool { return tr.seen() >= sent })
	allowed := RelayBurst
	if n := tr.total(); n > allowed {
		t.Fatalf("the node relayed %d of %d results from %d operators, want at most %d (node-wide)", n, sent, auditors, allowed)
	}
	if tr.total() == 0 {
		t.Fatal("the node relayed no result of an active operator")
	}

	// A key that operates no bucket: rejected, not ignored.
	stranger, _ := peer.IDFromPrivateKey(keys[auditors])
	publish(keys[auditors], 20)
	waitUntil(t, "the stranger's results rejected", func() bool { return tr.rejectedFor(pubsub.RejectValidationFailed) > 0 })
	// ...and the sender scored down (under ScoreOptions one invalid
	// message graylists it: the rest of its messages are not even read).
	waitUntil(t, "the flooder scored down", func() bool { return scores.of(flooder.ID()) < 0 })
	// A stranger's result about a bag the node holds: rejected too, its
	// sender scored down.
	before := tr.rejectedFor(pubsub.RejectValidationFailed)
	publishVia(other, keys[auditors], 1, func(int) chain.BagID { return own })
	waitUntil(t, "the stranger's result about the node's bag rejected", func() bool {
		return tr.rejectedFor(pubsub.RejectValidationFailed) > before
	})
	waitUntil(t, "the other sender scored down", func() bool { return scores.of(other.ID()) < 0 })
	if n := tr.deliveredFrom(stranger); n != 0 {
		t.Fatalf("the node delivered %d results of a key that operates no bucket", n)
	}

	// An operator removed from its bucket: a relay whose view of the chain
	// is older passes its result on in good faith. Not relayed further,
	// and not rejected: the relay is not scored down.
	former, _ := peer.IDFromPrivateKey(keys[0])
	fc.mu.Lock()
	b := fc.buckets[2]
	b.OperatorStatus = chain.OperatorInvited
	fc.buckets[2] = b
	fc.mu.Unlock()
	s.audits.relay.operators.Forget() // as the operator event does
	failed, ignored := tr.rejectedFor(pubsub.RejectValidationFailed), tr.rejectedFor(pubsub.RejectValidationIgnored)
	delivered := tr.deliveredFrom(former)
	dropped := func() float64 {
		n, _ := metricsutil.Counter(reg, "satchel_provider_audit_results_dropped_total")
		return n
	}
	before = int(dropped())
	publishVia(relay, keys[0], 1, others)
	waitUntil(t, "the former operator's result ignored", func() bool { return tr.rejectedFor(pubsub.RejectValidationIgnored) > ignored })
	if tr.rejectedFor(pubsub.RejectValidationFailed) != failed || tr.deliveredFrom(former) != delivered {
		t.Fatal("a former operator's result was rejected or relayed; want it ignored")
	}
	if int(dropped()) != before+1 {
		t.Fatalf("dropped results %v, want %d: ignored as no operator's, not for its rate", dropped(), before+1)
	}
	if sc := scores.of(relay.ID()); sc < 0 {
		t.Fatalf("the relay of a former operator's result scored %v; want it not penalised", sc)
	}
}

// relayTrace counts a router's deliveries by author and rejections by
// reason (ignored, throttled and failed validations included).
type relayTrace struct {
	nopTracer
	mu        sync.Mutex
	delivered map[peer.ID]int
	rejected  map[string]int
}

func (r *relayTrace) DeliverMessage(m *pubsub.Message) {
	r.mu.Lock()
	r.delivered[m.GetFrom()]++
	r.mu.Unlock()
}

func (r *relayTrace) RejectMessage(_ *pubsub.Message, reason string) {
	r.mu.Lock()
	r.rejected[reason]++
	r.mu.Unlock()
}

func (r *relayTrace) deliveredFrom(p peer.ID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.delivered[p]
}

func (r *relayTrace) rejectedFor(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rejected[reason]
}

// total is the messages delivered; seen those delivered or rejected.
func (r *relayTrace) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, v := range r.delivered {
		n += v
	}
	return n
}

func (r *relayTrace) seen() int {
	n := r.total()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.rejected {
		n += v
	}
	return n
}

// peerScores keeps the peer scores a router last reported.
type peerScores struct {
	mu     sync.Mutex
	latest map[peer.ID]float64
}

func (s *peerScores) inspect(m map[peer.ID]float64) {
	s.mu.Lock()
	s.latest = m
	s.mu.Unlock()
}

func (s *peerScores) of(p peer.ID) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest[p]
}

// The audit handler gives an answer budget of its own to a challenger that
// operates a storage bucket, or did when last read, and counts anyone else
// among the strangers that share one (audit.WithKnownChallengers).
func TestKnownChallengers(t *testing.T) {
	net := testnet.New(t, 1)
	bs, _ := heldFixture(t)
	fc := newFakeChain()
	ids := make([]peer.ID, 3) // an operator, a former one, a stranger
	for i := range ids {
		k, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		ids[i], _ = peer.IDFromPrivateKey(k)
	}
	for i, id := range ids[:2] {
		b, w := chain.StorageBucketID(i+1), chain.WorkerID(i+1)
		fc.buckets[b] = chain.StorageBucket{ID: b, OperatorStatus: chain.OperatorActive, Operator: &w,
			Metadata: &chain.StorageOperatorMetadata{PeerID: id.String()}}
	}
	s := auditNode(t, net.Host(0), bs, fc)
	ctx := context.Background()
	if !s.knownChallenger(ctx, ids[0]) || !s.knownChallenger(ctx, ids[1]) || s.knownChallenger(ctx, ids[2]) {
		t.Fatal("knownChallenger: want the two operators known, the stranger not")
	}
	fc.mu.Lock()
	b := fc.buckets[2]
	b.OperatorStatus = chain.OperatorInvited
	fc.buckets[2] = b
	fc.mu.Unlock()
	s.audits.relay.operators.Forget()
	if !s.knownChallenger(ctx, ids[1]) {
		t.Fatal("a former operator is a stranger at once; want it known (its auditing may trail the chain)")
	}
	if s.knownChallenger(ctx, ids[2]) {
		t.Fatal("a stranger became known")
	}
}
