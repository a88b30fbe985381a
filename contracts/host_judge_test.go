package contracts

import (
	"context"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// TestClosedRenterLeavesNoHold: a renter that published and closed, its
// Gossip left open (as a caller that forgets it would), leaves nothing of
// itself on its host: no topic hold, no validator, no entry in the
// package's map of host shares. A Publish holds its topic only while it
// publishes, so holds do not pile up per put either.
func TestClosedRenterLeavesNoHold(t *testing.T) {
	w, ctx := chainWorld(t, 1, 0, 0, time.Minute)
	h := w.net.Host(0)
	g := NewGossip(h, w.chain, quiet())
	rn := NewRenter(h, g, w.member, w.memberID, w.chain, nil, quiet())
	p, err := rn.Propose(w.request(5<<20, 60*day, 1))
	must(t, err)
	for range 3 {
		must(t, g.Publish(ctx, p))
	}
	if st := g.Stats(); st.Accepted != 3 {
		t.Fatalf("the renter's Gossip judged %+v, want its 3 proposals accepted while it published", st)
	}
	validatorFree(t, h, "3 Publishes returned")
	must(t, rn.Close())
	sharesMu.Lock()
	s := shares[h]
	sharesMu.Unlock()
	if s != nil {
		t.Fatalf("renter closed: the host's share is kept (%d users, %d holds)", s.refs, len(s.holds[p.Topic.String()]))
	}
}

// TestSubscriptionJudgesBeforePublish: a responder's subscription, taken
// while a renter's Publish holds the topic on the same host, judges the
// proposals the responder answers with its Gossip (its Directory, counts
// and metrics), not the publishing renter's, though the renter's hold is
// older.
func TestSubscriptionJudgesBeforePublish(t *testing.T) {
	w, ctx := chainWorld(t, 2, 1, 1, 2*time.Minute)
	pub := NewGossip(w.net.Host(0), w.chain, quiet())
	t.Cleanup(func() { _ = pub.Close() })
	done := holdPublish(t, pub) // a Publish in flight, from before the responder
	defer done()
	prov := w.responder(0, "", topicA)
	rn := w.renterAt(1)
	w.waitTopicPeers(1, topicA, 1)
	n, err := rn.renter.Negotiate(ctx, w.request(5<<20, 60*day, 1))
	if err != nil || len(n.Contracts) != 1 {
		t.Fatalf("Negotiate: %v (%+v)", err, n)
	}
	if st := prov.gossip.Stats(); st.Accepted < 1 {
		t.Errorf("the responder's Gossip judged %+v, want the proposal it answered", st)
	}
	if st := pub.Stats(); st != (GossipStats{}) {
		t.Errorf("the publishing renter's Gossip judged %+v, want nothing: a subscription judges first", st)
	}
}

// TestNilDirectoryGossipDoesNotJudge: a Gossip without a Directory (as
// tests of the protocol alone make) that holds a topic first on a host
// does not judge when a responder's Gossip holds it too, and alone it
// ignores proposals rather than crash; its Publish fails with the reason.
func TestNilDirectoryGossipDoesNotJudge(t *testing.T) {
	w, ctx := chainWorld(t, 2, 1, 1, 2*time.Minute)
	blind := NewGossip(w.net.Host(0), nil, quiet())
	_, release, err := blind.Subscribe(topicA)
	must(t, err)
	defer release()

	// Alone: a valid proposal from another host is ignored.
	rn := w.renterAt(1)
	w.waitTopicPeers(1, topicA, 1)
	p, err := rn.renter.Propose(w.request(5<<20, 60*day, 1))
	must(t, err)
	must(t, rn.gossip.Publish(ctx, p))
	eventually(t, "the blind Gossip ignoring the proposal", func() bool { return blind.Stats().Ignored == 1 })
	if err := blind.Publish(ctx, p); err == nil {
		t.Fatal("Publish with no Directory succeeded, want it refused")
	}

	// Beside a responder: the responder's Gossip judges, though younger.
	prov := w.responder(0, "", topicA)
	n, err := rn.renter.Negotiate(ctx, w.request(5<<20, 60*day, 1))
	if err != nil || len(n.Contracts) != 1 {
		t.Fatalf("Negotiate: %v (%+v)", err, n)
	}
	if st := prov.gossip.Stats(); st.Accepted < 1 {
		t.Errorf("the responder's Gossip judged %+v, want the proposal it answered", st)
	}
	if st := blind.Stats(); st != (GossipStats{Ignored: 1}) {
		t.Errorf("the blind Gossip judged %+v, want only the first proposal ignored", st)
	}
}

// panicDir is a Directory whose member lookups panic: a bug reached by a
// peer's message while its proposal is judged.
type panicDir struct{ Directory }

func (panicDir) Member(context.Context, chain.MemberID) (chain.Member, error) {
	panic("member lookup failed")
}

// TestValidatorPanicRejects: a panic while a host's validator judges a
// peer's proposal (pubsub does not recover validators) rejects the
// message, counted and logged, and the node lives on to judge the next
// peer's (the first one's next are dropped: the reject penalised it).
func TestValidatorPanicRejects(t *testing.T) {
	w, ctx := chainWorld(t, 3, 0, 0, time.Minute)
	g := NewGossip(w.net.Host(0), panicDir{w.chain}, quiet())
	sub, release, err := g.Subscribe(topicA)
	must(t, err)
	defer release()
	for i, at := range []int{1, 2} {
		rn := w.renterAt(at)
		w.waitTopicPeers(at, topicA, 1)
		p, err := rn.renter.Propose(w.request(5<<20, 60*day, 1))
		must(t, err)
		must(t, rn.gossip.Publish(ctx, p))
		eventually(t, "the proposal rejected", func() bool { return g.Stats().Rejected == int64(i+1) })
	}
	if st := g.Stats(); st != (GossipStats{Rejected: 2}) {
		t.Fatalf("judged %+v, want both proposals rejected", st)
	}
	nctx, ncancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer ncancel()
	if m, err := sub.Next(nctx); err == nil {
		t.Fatalf("the subscription got message %x, want the rejected ones kept from it", m.ID)
	}
}
