package contracts

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

// TestRenterAndResponderOnOneHost: a renter and a responder run side by
// side on one libp2p host, each with its own Gossip (host 0) or sharing
// one (host 1): both subscribe and publish on the same topic with one
// validator, OFFERs reach the renter and CONSIGN, RETRIEVE reach the
// responder on the same protocol. Closing one part leaves the other
// serving; closing both stops the protocol.
func TestRenterAndResponderOnOneHost(t *testing.T) {
	w, ctx := chainWorld(t, 2, 2, 2, 2*time.Minute)

	prov0 := w.responder(0, "", topicA)
	rent0 := w.renterAt(0) // its own Gossip beside the responder's
	prov1 := w.responder(1, "", topicA)
	st1, err := OpenStore(t.TempDir())
	must(t, err)
	t.Cleanup(func() { _ = st1.Close() })
	rent1 := NewRenter(w.net.Host(1), prov1.gossip, w.member, w.memberID, w.chain, st1, quiet()) // the responder's Gossip
	t.Cleanup(func() { _ = rent1.Close() })
	w.waitMesh(topicA, []int{0, 1})

	req := w.request(5<<20, 60*day, 1)
	req.Enough = 1
	negotiate := func(r *Renter, want int) *Consigned {
		t.Helper()
		n, err := r.Negotiate(ctx, req)
		if err != nil {
			t.Fatalf("Negotiate: %v (offers %+v)", err, n)
		}
		if n.Proposal.Topic != topicA || len(n.Contracts) != 1 {
			t.Fatalf("proposal on %s, %d contracts; want 1 on %s", n.Proposal.Topic, len(n.Contracts), topicA)
		}
		cs := n.Contracts[0]
		if i := hostIndex(w, cs.Contract.ProviderPeer); i != want {
			t.Fatalf("consigned with provider %d, want %d (a responder does not answer its own host's renter)", i, want)
		}
		return &cs
	}
	at1 := negotiate(rent0.renter, 1)
	at0 := negotiate(rent1, 0)
	for i, tn := range []*tnode{prov0, prov1} {
		if st := tn.resp.Stats(); st.Offers != 1 || st.Consigned != 1 {
			t.Errorf("responder %d: %+v, want one offer, consigned", i, st)
		}
		if st := tn.gossip.Stats(); st.Accepted < 2 {
			t.Errorf("host %d's validator (its responder's Gossip, the topic's first) %+v, want both proposals accepted", i, st)
		}
	}
	if st := rent0.gossip.Stats(); st != (GossipStats{}) {
		t.Errorf("host 0's renter's Gossip judged %+v, want nothing: the responder's, holding the topic first, judges", st)
	}

	// Host 0's renter closed: its responder still answers.
	rent0.close()
	if _, _, err := rent1.Retrieve(ctx, at0.Contract); err != nil {
		t.Fatalf("RETRIEVE from host 0's responder after its renter closed: %v", err)
	}
	// Host 1's responder closed: its renter still takes offers, and the
	// host refuses what only a responder takes.
	must(t, prov1.resp.Close())
	negotiate(rent1, 0)
	again := w.renterAt(0).renter
	if _, _, err := again.Retrieve(ctx, at1.Contract); !errors.Is(err, ErrMalformed) {
		t.Fatalf("RETRIEVE from host 1 with its responder closed: %v, want a refusal", err)
	}
	// Both parts on host 1 closed: the protocol is no longer served.
	must(t, rent1.Close())
	if _, _, err := again.Retrieve(ctx, at1.Contract); err == nil || errors.Is(err, ErrRefused) {
		t.Fatalf("RETRIEVE from host 1 with nothing serving contracts: %v, want the protocol unsupported", err)
	}
}

// TestTwoRentersOnOneHost: two renters on one host, negotiating at once,
// each get the offers for their own proposal: the host's one handler
// passes an OFFER to the renter whose proposal it answers.
func TestTwoRentersOnOneHost(t *testing.T) {
	w, ctx := chainWorld(t, 2, 1, 1, 2*time.Minute)
	w.responder(0, "", topicA)
	renters := []*tnode{w.renterAt(1), w.renterAt(1)}
	w.waitTopicPeers(1, topicA, 1)

	req := w.request(5<<20, 60*day, 1)
	req.Enough = 1
	var g errgroup.Group
	for i, r := range renters {
		g.Go(func() error {
			n, err := r.renter.Negotiate(ctx, req)
			if err != nil {
				return fmt.Errorf("renter %d: %w (offers %+v)", i, err, n)
			}
			if len(n.Contracts) != 1 || len(n.Offers) != 1 || n.Offers[0].Contract.ID != n.Proposal.ID {
				return fmt.Errorf("renter %d: %d contracts of %d offers, want its own proposal's one", i, len(n.Contracts), len(n.Offers))
			}
			return nil
		})
	}
	must(t, g.Wait())
}

// TestConsignReachesOfferingResponder: with two responders on one host (a
// provider started again beside the one it replaces), a CONSIGN goes to
// the one that made the offer, though the other is the latest, and its
// retry of the consigned contract too (the renter's answer was lost).
func TestConsignReachesOfferingResponder(t *testing.T) {
	w, ctx := chainWorld(t, 2, 1, 1, 2*time.Minute)
	older := w.responder(0, "", topicA)
	latest := w.responder(0, "") // subscribed to nothing yet: only the older offers
	rn := w.renterAt(1)
	w.waitTopicPeers(1, topicA, 1)

	n, err := rn.renter.Negotiate(ctx, w.request(5<<20, 60*day, 1))
	if err != nil || len(n.Contracts) != 1 {
		t.Fatalf("Negotiate: %v (%+v), want the older responder's offer consigned", err, n)
	}
	if st := older.resp.Stats(); st.Offers != 1 || st.Consigned != 1 {
		t.Errorf("older responder %+v, want its offer consigned", st)
	}
	if st := latest.resp.Stats(); st != (ResponderStats{}) {
		t.Errorf("latest responder %+v, want nothing", st)
	}
	cs := n.Contracts[0]
	got, err := rn.renter.Consign(ctx, cs.Contract)
	if err != nil || got.Grant.Session != cs.Grant.Session {
		t.Fatalf("CONSIGN again: %v (grant %x), want the same grant %x from the older responder", err, got.Grant.Session, cs.Grant.Session)
	}
}
