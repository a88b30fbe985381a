package contracts

import (
	"context"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
)

// TestResponderStartedAgainOnHost: a responder closed on a host lets go of
// its topics, so a new responder (with its own Gossip) started on the same
// host judges, with its Gossip, the proposals it answers.
func TestResponderStartedAgainOnHost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	w := newWorld(t, 2, 1, 1, 0)
	first := w.responder(0, "", topicA)
	first.close()
	again := w.responder(0, "", topicA)
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

// TestGossipHoldsValidatorWhileUsed: a topic's validator stays registered
// while a subscription or a Publish in flight of any Gossip on the host
// holds the topic, and is unregistered with the host's last hold (a
// subscription's release, a Publish's return).
func TestGossipHoldsValidatorWhileUsed(t *testing.T) {
	net := testnet.NewMock(t, 1, 0)
	h := net.Host(0)
	g := NewGossip(h, nil, quiet())
	other := NewGossip(h, nil, quiet())

	_, release1, err := g.Subscribe(topicA)
	must(t, err)
	_, release2, err := g.Subscribe(topicA)
	must(t, err)
	done1 := holdPublish(t, g)
	done2 := holdPublish(t, g) // held once for every Publish in flight
	// Another Gossip on the host shares the topic's validator.
	_, otherRelease, err := other.Subscribe(topicA)
	must(t, err)
	release1()
	validatorTaken(t, h, "one subscription left")
	release2()
	validatorTaken(t, h, "two Publishes in flight")
	done1()
	done2()
	must(t, g.Close())
	validatorTaken(t, h, "another Gossip's subscription left")
	otherRelease()
	validatorFree(t, h, "after the last hold")
}

// holdPublish takes a hold of topicA as g's Publish does while it
// publishes, and returns what lets it go as Publish does when it returns.
func holdPublish(t *testing.T, g *Gossip) (done func()) {
	t.Helper()
	_, s, err := g.join(topicA, false)
	must(t, err)
	return func() { g.leave(s, topicA.String(), false) }
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
	_, otherDone, err := other.Subscribe(topicA)
	must(t, err)
	done()
	done()
	done()
	otherDone()
	otherDone()
	must(t, g.Close())
	validatorTaken(t, h, "releases called three times, a Close")
	live()
	validatorFree(t, h, "after the live subscription's release")
}

// TestGossipConcurrentHolds: subscriptions of two Gossips on one host
// released, and Publish holds let go, from many goroutines at once leave
// no hold behind.
func TestGossipConcurrentHolds(t *testing.T) {
	net := testnet.NewMock(t, 1, 0)
	h := net.Host(0)
	gs := []*Gossip{NewGossip(h, nil, quiet()), NewGossip(h, nil, quiet())}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 50 {
				_, release, err := gs[i%2].Subscribe(topicA)
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
				pg := NewGossip(h, nil, quiet())
				_, s, err := pg.join(topicA, false)
				if err != nil {
					t.Error(err)
					return
				}
				pg.leave(s, topicA.String(), false)
			}
		})
	}
	wg.Wait()
	validatorFree(t, h, "after every hold was let go")
	sharesMu.Lock()
	defer sharesMu.Unlock()
	if s := shares[h]; s != nil {
		t.Fatalf("the host's share is kept with %d users, want it forgotten with the last", s.refs)
	}
}

// validatorTaken fails t unless topicA's validator is registered on h.
func validatorTaken(t *testing.T, h *p2p.Host, what string) {
	t.Helper()
	if err := h.PubSub().RegisterTopicValidator(topicA.String(), acceptAll); err == nil {
		_ = h.PubSub().UnregisterTopicValidator(topicA.String())
		t.Fatalf("%s: a validator registered, want the topic's validator still registered", what)
	}
}

// validatorFree fails t unless topicA has no validator on h.
func validatorFree(t *testing.T, h *p2p.Host, what string) {
	t.Helper()
	if err := h.PubSub().RegisterTopicValidator(topicA.String(), acceptAll); err != nil {
		t.Fatalf("%s: %v, want the topic's validator unregistered", what, err)
	}
	must(t, h.PubSub().UnregisterTopicValidator(topicA.String()))
}

func acceptAll(context.Context, peer.ID, *pubsub.Message) bool { return true }

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
	validatorTaken(t, w.net.Host(0), "responder closed twice, a subscription left on its Gossip")
	release()
	validatorFree(t, w.net.Host(0), "after the last subscription's release")
}
