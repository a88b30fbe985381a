package contracts

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
)

// ownBag gives member (controlled by key) a channel, hence a bag of its
// own, placed by the chain's dynamic bag policy.
func (w *world) ownBag(t *testing.T, key chain.Key, member chain.MemberID) chain.BagID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := w.chain.Submit(ctx, key, chain.MsgCreateChannel{Member: member, Title: "own"})
	must(t, err)
	ch, _ := chain.FindEvent[chain.ChannelCreated](res.Result.Events)
	return ch.Bag
}

// TestOnlyBagOwnerContracts: a member that does not own a bag the provider
// stores gets no offer for it (the provider stays silent and counts it), a
// MIRROR or CONSIGN of a provider-signed contract naming it as the renter
// (one made before the rule, say) is refused NOT_OWNER with nothing
// reserved, stored or granted; the same member contracts into its own bag,
// and the owner into the first.
func TestOnlyBagOwnerContracts(t *testing.T) {
	w := newWorld(t, 3, 1, 1, 0)
	prov := w.responder(0, "", topicA)
	w.waitTopicPeers(1, topicA, 1)
	w.waitTopicPeers(2, topicA, 1)
	owner := w.renterAt(1)
	other, otherKey, otherMember := w.secondMember(t, 2, "other")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ledger := prov.resp.room.(*Ledger)

	p, err := other.Propose(w.request(5<<20, 60*day, 1))
	must(t, err)
	_, stop := openProposal(ctx, t, other, p, 1)
	eventually(t, "the provider handled the proposal", func() bool { return prov.resp.Stats().NotOwner == 1 })
	if offers := stop(); len(offers) != 0 {
		t.Errorf("a member that does not own bag %s got offers %+v, want none", w.bag, offers)
	}
	if s := prov.resp.Stats(); s.Offers != 0 || s.NotAssigned != 0 {
		t.Errorf("stats %+v, want no offer and the proposal counted as not the owner's", s)
	}
	if got := counter(t, prov.reg, "satchel_contracts_proposals_answered_total", "not_owner"); got != 1 {
		t.Errorf("not_owner metric %v, want 1", got)
	}

	// A contract the provider signed for the non-owner: MIRROR and CONSIGN
	// refuse it with a reason.
	signed := func(object chain.ObjectID) *Contract {
		now := time.Now().Truncate(time.Second)
		c := &Contract{ID: NewID(), Topic: topicA, Terms: w.request(5<<20, 60*day, 1).Terms,
			Start: now, End: now.Add(60 * day), Renter: otherKey.Account(), Member: otherMember,
			Provider: w.provs[0].Key.Account(), Worker: w.provs[0].Worker, Bucket: w.provs[0].Bucket, ProviderPeer: w.net.Host(0).ID()}
		c.Object = object
		c.SignAsProvider(w.provs[0].Key)
		return c
	}
	m := signed(3)
	m.SignAsRenter(otherKey)
	if err := other.Mirror(ctx, m, []peer.ID{w.net.Host(1).ID()}); !errors.Is(err, ErrRefused) || !errors.Is(err, ErrNotOwner) {
		t.Errorf("MIRROR by a member that does not own the bag: %v, want a NOT_OWNER refusal", err)
	}
	offered := signed(0)
	prov.resp.mu.Lock()
	prov.resp.pending[offered.ID] = pendingOffer{c: offered, renter: offered.Renter, expires: time.Now().Add(PendingOfferTTL)}
	prov.resp.mu.Unlock()
	if _, err := other.Consign(ctx, offered); !errors.Is(err, ErrRefused) || !errors.Is(err, ErrNotOwner) {
		t.Errorf("CONSIGN by a member that does not own the bag: %v, want a NOT_OWNER refusal", err)
	}
	for _, c := range []*Contract{m, offered} {
		if _, err := prov.store.Get(c.ID, c.Provider); !errors.Is(err, ErrNotFound) {
			t.Errorf("contract %s of a non-owner stored: %v", c.ID, err)
		}
	}
	if n, g := ledger.Reserved(), prov.resp.OpenGrants(); n != 0 || g != 0 {
		t.Errorf("after the non-owner's requests %d bytes reserved, %d grants open; want none", n, g)
	}

	own := w.request(5<<20, 60*day, 1)
	own.Bag = w.ownBag(t, otherKey, otherMember)
	own.Enough = 1
	if n, err := other.Negotiate(ctx, own); err != nil || len(n.Contracts) != 1 {
		t.Errorf("the member's negotiation for its own bag: %v", err)
	}
	req := w.request(5<<20, 60*day, 1)
	req.Enough = 1
	if n, err := owner.renter.Negotiate(ctx, req); err != nil || len(n.Contracts) != 1 {
		t.Errorf("the owner's negotiation: %v", err)
	}
}

// countingDir counts the bags read through it.
type countingDir struct {
	Directory
	bags atomic.Int64
}

func (d *countingDir) Bag(ctx context.Context, id chain.BagID) (chain.Bag, error) {
	d.bags.Add(1)
	return d.Directory.Bag(ctx, id)
}

// TestChainAuthorityCheckBag: CheckBag names who stores and who owns the
// bag, reading each bag that exists once per bagCacheTTL (a missing bag is
// read again, so one created meanwhile is seen at once).
func TestChainAuthorityCheckBag(t *testing.T) {
	w := newWorld(t, 2, 2, 1, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	assigned, unassigned := w.split()
	dir := &countingDir{Directory: w.chain}
	a := NewChainAuthority(dir, w.provs[assigned[0]].Bucket)
	stranger, _ := chain.GenerateKey()
	if err := a.CheckBag(ctx, w.bag, w.member.Account()); err != nil {
		t.Errorf("the owner into its bag: %v", err)
	}
	if err := a.CheckBag(ctx, w.bag, stranger.Account()); !errors.Is(err, ErrNotOwner) {
		t.Errorf("a stranger into the bag: %v, want ErrNotOwner", err)
	}
	if got := dir.bags.Load(); got != 1 {
		t.Errorf("%d bag reads for two checks of one bag, want 1", got)
	}
	if err := NewChainAuthority(w.chain, w.provs[unassigned[0]].Bucket).CheckBag(ctx, w.bag, w.member.Account()); !errors.Is(err, ErrNotAuthorised) {
		t.Errorf("the owner into a bucket that does not store the bag: %v, want ErrNotAuthorised", err)
	}
	missing := chain.ChannelBag(9999)
	for range 2 {
		if err := a.CheckBag(ctx, missing, w.member.Account()); !errors.Is(err, ErrNotAuthorised) {
			t.Errorf("a bag that does not exist: %v, want ErrNotAuthorised", err)
		}
	}
	if got := dir.bags.Load(); got != 3 {
		t.Errorf("%d bag reads after two checks of a missing bag, want 3 (misses are not cached)", got)
	}
}
