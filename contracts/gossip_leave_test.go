package contracts

import (
	"context"
	"testing"
	"time"

	"github.com/satchel-net/satchel/p2p/testnet"
)

// TestResponderStartedAgainOnHost: a responder closed on a host lets go of
// its topic's validator, so a new responder (with its own Gossip) starts on
// the same host, and its validator, not the closed one's, judges the
// proposals it answers.
func TestResponderStartedAgainOnHost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	w := newWorld(t, 2, 1, 1, 0)
	first := w.responder(0, "", topicA)
	first.close()
	again := w.responder(0, "", topicA) // fails "duplicate validator" while the first's stays
	renter := w.renterAt(1)
	w.waitTopicPeers(1, topicA, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	req := w.request(5<<20, 60*day, 1)
	n, err := renter.renter.Negotiate(ctx, req)
	if err != nil {
		t.Fatalf("Negotiate: %v (offers %+v)", err, n)
	}
	if len(n.Contracts) != 1 {
		t.Fatalf("%d contracts, want the restarted responder's", len(n.Contracts))
	}
	if st := again.resp.Stats(); st.Offers != 1 {
		t.Errorf("restarted responder stats %+v, want 1 offer", st)
	}
	if st := again.gossip.Stats(); st.Accepted < 1 {
		t.Errorf("restarted responder's validator stats %+v, want the proposal accepted by it", st)
	}
	if st := first.gossip.Stats(); st.Accepted != 0 {
		t.Errorf("closed responder's validator stats %+v, want nothing judged after its close", st)
	}
}

// TestGossipHoldsValidatorWhileUsed: a Gossip keeps a topic's validator
// while a subscription or a Publish holds the topic, and unregisters it
// with the last hold (Leave, Close), after which another Gossip on the host
// registers its own.
func TestGossipHoldsValidatorWhileUsed(t *testing.T) {
	net := testnet.NewMock(t, 1, 0)
	h := net.Host(0)
	g := NewGossip(h, nil, quiet())
	other := NewGossip(h, nil, quiet())
	taken := func(what string) {
		t.Helper()
		if sub, err := other.Subscribe(topicA); err == nil {
			sub.Cancel()
			other.Leave(topicA)
			t.Fatalf("%s: another Gossip subscribed, want the topic's validator still registered", what)
		}
	}

	sub1, err := g.Subscribe(topicA)
	must(t, err)
	sub2, err := g.Subscribe(topicA)
	must(t, err)
	_, err = g.publishTopic(topicA)
	must(t, err)
	_, err = g.publishTopic(topicA) // held once for every Publish
	must(t, err)
	sub1.Cancel()
	g.Leave(topicA)
	taken("one subscription left")
	sub2.Cancel()
	g.Leave(topicA)
	taken("Publish holds it until Close")
	must(t, g.Close())
	g.Leave(topicA) // one too many changes nothing

	sub, err := other.Subscribe(topicA)
	if err != nil {
		t.Fatalf("after the last hold, another Gossip's Subscribe: %v", err)
	}
	sub.Cancel()
	other.Leave(topicA)
}
