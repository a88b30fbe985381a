package contracts

import (
	"context"
	"sync"
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
// with the last hold (a subscription's release, Close), after which
// another Gossip on the host registers its own.
func TestGossipHoldsValidatorWhileUsed(t *testing.T) {
	net := testnet.NewMock(t, 1, 0)
	h := net.Host(0)
	g := NewGossip(h, nil, quiet())
	other := NewGossip(h, nil, quiet())

	_, release1, err := g.Subscribe(topicA)
	must(t, err)
	_, release2, err := g.Subscribe(topicA)
	must(t, err)
	_, err = g.publishTopic(topicA)
	must(t, err)
	_, err = g.publishTopic(topicA) // held once for every Publish
	must(t, err)
	release1()
	validatorTaken(t, other, "one subscription left")
	release2()
	validatorTaken(t, other, "Publish holds it until Close")
	must(t, g.Close())
	validatorFree(t, other, "after the last hold")
}

// TestGossipReleaseDropsOnlyItsHold: a release called again, or Close
// called with no Publish, drops no other subscription's hold, so its
// validator stays registered while it is live.
func TestGossipReleaseDropsOnlyItsHold(t *testing.T) {
	net := testnet.NewMock(t, 1, 0)
	h := net.Host(0)
	g := NewGossip(h, nil, quiet())
	other := NewGossip(h, nil, quiet())

	_, live, err := g.Subscribe(topicA)
	must(t, err)
	_, done, err := g.Subscribe(topicA)
	must(t, err)
	done()
	done()
	done()
	must(t, g.Close())
	validatorTaken(t, other, "a release called three times, a Close")
	live()
	validatorFree(t, other, "after the live subscription's release")
}

// TestGossipConcurrentHolds: subscriptions released and Publish holds
// closed from many goroutines at once leave no hold behind.
func TestGossipConcurrentHolds(t *testing.T) {
	net := testnet.NewMock(t, 1, 0)
	h := net.Host(0)
	g := NewGossip(h, nil, quiet())
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				_, release, err := g.Subscribe(topicA)
				if err != nil {
					t.Error(err)
					return
				}
				release()
				release()
			}
		})
		wg.Go(func() {
			for range 50 {
				if _, err := g.publishTopic(topicA); err != nil {
					t.Error(err)
					return
				}
				_ = g.Close()
			}
		})
	}
	wg.Wait()
	must(t, g.Close())
	validatorFree(t, NewGossip(h, nil, quiet()), "after every hold was let go")
}

// validatorTaken fails t unless topicA's validator is registered by
// another Gossip than other (other cannot subscribe).
func validatorTaken(t *testing.T, other *Gossip, what string) {
	t.Helper()
	if _, release, err := other.Subscribe(topicA); err == nil {
		release()
		t.Fatalf("%s: another Gossip subscribed, want the topic's validator still registered", what)
	}
}

// validatorFree fails t unless other can register topicA's validator.
func validatorFree(t *testing.T, other *Gossip, what string) {
	t.Helper()
	_, release, err := other.Subscribe(topicA)
	if err != nil {
		t.Fatalf("%s: another Gossip's Subscribe: %v, want the validator unregistered", what, err)
	}
	release()
}

// TestResponderCloseTwiceAtOnce: two Close calls at once (run with -race)
// release the responder's subscription once, so another subscription on
// its Gossip keeps the topic's validator.
func TestResponderCloseTwiceAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	w := newWorld(t, 1, 1, 1, 0)
	n := w.responder(0, "", topicA)
	_, release, err := n.gossip.Subscribe(topicA)
	must(t, err)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { _ = n.resp.Close() })
	}
	wg.Wait()
	other := NewGossip(w.net.Host(0), nil, quiet())
	validatorTaken(t, other, "responder closed twice, a subscription left on its Gossip")
	release()
	validatorFree(t, other, "after the last subscription's release")
}
