package contracts

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/topics"
)

const day = 24 * time.Hour

var (
	topicA = topics.New(topics.Low, topics.Medium, topics.High, topics.High) // 0f01020303
	topicB = topics.New(topics.High, topics.High, topics.Low, topics.Low)    // 0f03030101
)

// TestContractsOverGossipsub runs 20 providers, a renter and a forger on a
// mocknet with the real chain: proposals reach the subscribers of their
// topic and no one else, only providers the chain assigned the bag offer,
// forged proposals die in validation, and contracts are consigned, renewed
// within the rules, retrieved and kept across restarts.
func TestContractsOverGossipsub(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain and 22 hosts")
	}
	// Hosts 21 to 27 forge one proposal each: one rejected message is
	// enough for a receiver to graylist its sender, so a forger that sent
	// two would have its second dropped before validation.
	const providers, renterHost, forgerHost, forgers = 20, 20, 21, 7
	w := newWorld(t, providers+1+forgers, providers, 4, 0)
	assigned, unassigned := w.split()
	subsA := append(append([]int{}, assigned...), unassigned[:6]...)
	subsB := unassigned[6:]
	nodes := map[int]*tnode{}
	for _, i := range subsA {
		nodes[i] = w.responder(i, "", topicA)
	}
	for _, i := range subsB {
		nodes[i] = w.responder(i, "", topicB)
	}
	w.waitMesh(topicA, subsA)
	w.waitMesh(topicB, subsB)
	w.waitTopicPeers(renterHost, topicA, len(subsA))
	w.waitTopicPeers(renterHost, topicB, len(subsB))
	renter := w.renterAt(renterHost)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	req := w.request(5<<20, 60*day, 2)
	req.Window = 20 * time.Second
	req.Enough = len(assigned)
	n, err := renter.renter.Negotiate(ctx, req)
	if err != nil {
		t.Fatalf("Negotiate: %v (offers %+v)", err, n)
	}
	if n.Proposal.Topic != topicA {
		t.Fatalf("proposal on %s, want %s", n.Proposal.Topic, topicA)
	}

	t.Run("only authorised providers offer", func(t *testing.T) {
		from := map[int]bool{}
		for _, o := range n.Offers {
			if o.Err != nil {
				t.Errorf("offer from %s unusable: %v", o.From, o.Err)
			}
			i := hostIndex(w, o.From)
			if !w.assigned[i] {
				t.Errorf("offer from provider %d, whose bucket does not store the bag", i)
			}
			from[i] = true
		}
		if len(from) != len(assigned) {
			t.Errorf("offers from %v, want one from each of %v", from, assigned)
		}
		for _, i := range assigned {
			eventually(t, "the offer counted", func() bool {
				return counter(t, nodes[i].reg, "satchel_contracts_proposals_answered_total", "offered") == 1
			})
		}
		for _, i := range unassigned[:6] {
			eventually(t, "unassigned subscriber saw the proposal", func() bool { return nodes[i].resp.Stats().NotAssigned == 1 })
			if s := nodes[i].resp.Stats(); s.Offers != 0 {
				t.Errorf("provider %d (not assigned) made %d offers", i, s.Offers)
			}
		}
	})

	t.Run("consigned with the best N on both sides", func(t *testing.T) {
		if len(n.Contracts) != 2 {
			t.Fatalf("%d contracts consigned, want 2 (failed: %+v)", len(n.Contracts), n.Failed)
		}
		for _, cs := range n.Contracts {
			c := cs.Contract
			if err := c.Verify(); err != nil {
				t.Errorf("consigned contract: %v", err)
			}
			if cs.Grant.MaxBytes != c.Size || cs.Grant.Bag != w.bag || cs.Grant.Session == [16]byte{} {
				t.Errorf("grant %+v does not open an upload of the contract", cs.Grant)
			}
			i := hostIndex(w, c.ProviderPeer)
			if g, ok := nodes[i].resp.Grant(cs.Grant.Session[:]); !ok || g.ContractID != c.ID || g.MaxBytes != c.Size {
				t.Errorf("provider %d does not know the session it granted: %+v, %v", i, g, ok)
			}
			if _, ok := nodes[i].resp.Grant(make([]byte, 16)); ok {
				t.Errorf("provider %d grants a session it never opened", i)
			}
			got, err := nodes[i].store.Get(c.ID, c.Provider)
			if err != nil || !proto.Equal(got.ToPB(), c.ToPB()) {
				t.Errorf("provider %d store: %v, %v", i, got, err)
			}
		}
		mine, err := renter.store.ByID(n.Proposal.ID)
		if err != nil || len(mine) != 2 {
			t.Errorf("renter store holds %d contracts of the proposal (%v), want 2", len(mine), err)
		}
	})

	t.Run("a proposal reaches its topic's subscribers only", func(t *testing.T) {
		// A proposal on topic B, then every subscriber of each topic has
		// seen exactly one proposal: its own topic's.
		reqB := w.request(30_000_000, 365*day, 1)
		reqB.Availability, reqB.Speed = topics.Low, topics.Low
		reqB.Window = 200 * time.Millisecond
		nb, err := renter.renter.Negotiate(ctx, reqB)
		if !errors.Is(err, ErrNoOffers) || nb.Proposal.Topic != topicB {
			t.Fatalf("Negotiate on B: %v, want ErrNoOffers on %s", err, topicB)
		}
		for _, i := range append(append([]int{}, subsA...), subsB...) {
			eventually(t, "subscribers saw their topic's proposal", func() bool { return nodes[i].resp.Stats().Proposals >= 1 })
		}
		for _, i := range append(append([]int{}, subsA...), subsB...) {
			if got := nodes[i].resp.Stats().Proposals; got != 1 {
				t.Errorf("provider %d saw %d proposals, want 1", i, got)
			}
		}
	})

	t.Run("forged proposals are rejected before the application", func(t *testing.T) {
		for f := range forgers {
			w.waitTopicPeers(forgerHost+f, topicA, len(subsA))
		}
		// Forger f publishes case f; proposals name their own publisher as
		// renter peer unless the case is about that.
		author := func(f int) peer.ID { return w.net.Host(forgerHost + f).ID() }
		stranger, _ := chain.GenerateKey()
		good := func(f int, key chain.Key, member chain.MemberID, size uint64) *Proposal {
			p := &Proposal{ID: NewID(), Terms: w.request(size, 60*day, 1).Terms, Duration: 60 * day, Member: member,
				RenterPeer: author(f), Created: time.Now().Truncate(time.Second), TTL: time.Minute, Topic: topicA}
			p.Sign(key)
			return p
		}
		badSig := good(0, w.member, w.memberID, 5<<20)
		badSig.Signature[0] ^= 1
		replayed := good(4, w.member, w.memberID, 5<<20)
		replayed.RenterPeer = w.net.Host(renterHost).ID()
		replayed.Sign(w.member)
		forged := []struct {
			name string
			data []byte
		}{
			{"bad signature", marshal(t, badSig)},
			{"unknown key", marshal(t, good(1, stranger, w.memberID, 5<<20))},
			{"unknown member", marshal(t, good(2, stranger, 9999, 5<<20))},
			{"topic not size", marshal(t, good(3, w.member, w.memberID, 30_000_000))},
			{"not the author", marshal(t, replayed)},
			{"not a proposal", []byte("\x0a\x03abc\xff\xff")},
			{"oversized", make([]byte, MaxProposalSize+1)},
		}
		before := map[int]GossipStats{}
		for _, i := range subsA {
			before[i] = nodes[i].gossip.Stats()
		}
		for f, fp := range forged {
			if err := w.net.Host(forgerHost+f).Publish(ctx, topicA.String(), fp.data); err != nil {
				t.Fatalf("forger publishes %s: %v", fp.name, err)
			}
		}
		for _, i := range subsA {
			eventually(t, "every forged proposal rejected", func() bool {
				return nodes[i].gossip.Stats().Rejected-before[i].Rejected >= int64(len(forged))
			})
			if s := nodes[i].resp.Stats(); s.Proposals != 1 {
				t.Errorf("provider %d's application saw %d proposals, want only the genuine one", i, s.Proposals)
			}
			if got := counter(t, nodes[i].reg, "satchel_contracts_proposals_validated_total", "reject"); got < float64(len(forged)) {
				t.Errorf("provider %d counted %v rejections, want %d", i, got, len(forged))
			}
		}
		for f := range forgers {
			eventually(t, "the forgers' scores to go negative", func() bool {
				s, ok := w.score(subsA[0], w.net.Host(forgerHost+f).ID())
				return ok && s < 0
			})
		}
	})

	c := n.Contracts[0].Contract
	pi := hostIndex(w, c.ProviderPeer)

	t.Run("RENEW may change only end and start", func(t *testing.T) {
		for name, change := range map[string]func(*Contract){
			"size":    func(c *Contract) { c.Size++ },
			"bucket":  func(c *Contract) { c.Bucket++ },
			"content": func(c *Contract) { c.ContentID = "bafkreiforged" },
		} {
			bad := *c
			bad.End = bad.End.Add(30 * day)
			change(&bad)
			bad.SignAsRenter(w.member)
			_, err := renter.renter.sendRenew(ctx, &bad)
			if !errors.Is(err, ErrRefused) || !errors.Is(err, ErrForbiddenChange) {
				t.Errorf("RENEW changing %s: %v, want a refusal wrapping ErrForbiddenChange", name, err)
			}
		}
		stored, _ := nodes[pi].store.Get(c.ID, c.Provider)
		if !stored.End.Equal(c.End) {
			t.Fatalf("a refused RENEW changed the stored end to %v", stored.End)
		}
		renewed, err := renter.renter.Renew(ctx, c, c.End.Add(30*day))
		if err != nil {
			t.Fatalf("Renew: %v", err)
		}
		stored, _ = nodes[pi].store.Get(c.ID, c.Provider)
		if !stored.End.Equal(renewed.End) || stored.Verify() != nil {
			t.Errorf("provider keeps end %v, want %v", stored.End, renewed.End)
		}
		mine, _ := renter.store.Get(c.ID, c.Provider)
		if !mine.End.Equal(renewed.End) {
			t.Errorf("renter keeps end %v, want %v", mine.End, renewed.End)
		}
	})

	t.Run("RETRIEVE grants the renter only", func(t *testing.T) {
		tok, exp, err := renter.renter.Retrieve(ctx, c)
		if err != nil || len(tok) != 16 || !exp.After(time.Now()) {
			t.Fatalf("Retrieve: %x, %v, %v", tok, exp, err)
		}
		stranger, _ := chain.GenerateKey()
		other := NewRenter(w.net.Host(forgerHost), NewGossip(w.net.Host(forgerHost), w.chain, quiet()), stranger, w.memberID, w.chain, nil, quiet())
		defer other.Close()
		if _, _, err := other.Retrieve(ctx, c); !errors.Is(err, ErrSignature) {
			t.Errorf("Retrieve by another key: %v, want ErrSignature", err)
		}
	})

	t.Run("MIRROR hands a consigned copy to the provider", func(t *testing.T) {
		// An authorised provider whose offer was not consigned mirrors the
		// object from the two that hold it.
		var offer *Contract
		for _, o := range n.Offers {
			if !slices.ContainsFunc(n.Contracts, func(cs Consigned) bool { return cs.Contract.ProviderPeer == o.From }) {
				offer = o.Contract
				break
			}
		}
		if offer == nil {
			t.Fatal("every offer was consigned")
		}
		mi := hostIndex(w, offer.ProviderPeer)
		mc := *offer
		// MIRROR copies a registered object: the provider signed the
		// contract naming it (the proposal named none).
		mc.Object = 1
		mc.SignAsProvider(w.provs[mi].Key)
		mc.SignAsRenter(w.member)
		sources := []peer.ID{n.Contracts[0].Contract.ProviderPeer, n.Contracts[1].Contract.ProviderPeer}
		wrong := mc
		wrong.ProviderPeer = sources[0]
		if err := renter.renter.Mirror(ctx, &wrong, sources); err == nil {
			t.Error("MIRROR of a contract naming another peer was accepted")
		}
		if err := renter.renter.Mirror(ctx, &mc, sources); err != nil {
			t.Fatalf("Mirror: %v", err)
		}
		select {
		case call := <-nodes[mi].mirrors:
			if call.contract != mc.ID || !slices.Equal(call.sources, sources) {
				t.Errorf("mirror of %s from %v, want %s from %v", call.contract, call.sources, mc.ID, sources)
			}
		case <-ctx.Done():
			t.Fatal("the provider never started the copy")
		}
		if got, err := nodes[mi].store.Get(mc.ID, mc.Provider); err != nil || got.Verify() != nil {
			t.Errorf("the mirroring provider does not keep the contract: %v", err)
		}
	})

	t.Run("contracts survive a restart", func(t *testing.T) {
		want, _ := nodes[pi].store.Get(c.ID, c.Provider)
		nodes[pi].close()
		st, err := OpenStore(nodes[pi].dir)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		got, err := st.Get(c.ID, c.Provider)
		if err != nil || !proto.Equal(got.ToPB(), want.ToPB()) || got.Verify() != nil {
			t.Fatalf("after restart: %v, %v", got, err)
		}
		all, err := st.List()
		if err != nil || len(all) != 1 {
			t.Errorf("List after restart: %d contracts, %v", len(all), err)
		}
	})
}

func marshal(t testing.TB, p *Proposal) []byte {
	b, err := proto.Marshal(p.ToPB())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hostIndex(w *world, p interface{ String() string }) int {
	for i, h := range w.net.Hosts() {
		if h.ID().String() == p.String() {
			return i
		}
	}
	return -1
}

// counter reads the counter of family name whose one label has value.
func counter(t testing.TB, reg *prometheus.Registry, name, value string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
