package contracts

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// ownerDir is the chain as a provider reads it, except that once set it
// reports another owner for one bag. The chain has no message that hands a
// bag to another account, so a bag changing hands is the one fault these
// tests cannot cause on it.
type ownerDir struct {
	Directory
	bag chain.BagID

	mu    sync.Mutex
	owner chain.Account
}

func (d *ownerDir) Bag(ctx context.Context, id chain.BagID) (chain.Bag, error) {
	b, err := d.Directory.Bag(ctx, id)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil && id == d.bag && d.owner != "" {
		b.Owner = d.owner
	}
	return b, err
}

func (d *ownerDir) setOwner(a chain.Account) {
	d.mu.Lock()
	d.owner = a
	d.mu.Unlock()
}

// TestRenewChecksBag: RENEW extends a contract only while the chain still
// assigns the bag to the provider's bucket and the renter still owns it,
// as CONSIGN checks. The renter's renewals with two providers storing its
// bag work; then the storage lead moves the bag off provider 0's bucket (on
// chain) and provider 1 sees the bag owned by another account: each
// provider's RENEW is refused (NOT_ASSIGNED, NOT_OWNER), and the contract
// each stores keeps its end, as does the renter's copy.
func TestRenewChecksBag(t *testing.T) {
	w := newWorld(t, 3, 2, 2, 0)
	provs := []*tnode{w.responder(0, "", topicA)}
	owners := &ownerDir{bag: w.bag}
	w.wrapDir = func(d Directory) Directory { owners.Directory = d; return owners }
	provs = append(provs, w.responder(1, "", topicA))
	w.waitTopicPeers(2, topicA, 2)
	renter := w.renterAt(2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	req := w.request(5<<20, 60*day, 2)
	req.Enough = 2
	n, err := renter.renter.Negotiate(ctx, req)
	must(t, err)
	if len(n.Contracts) != 2 {
		t.Fatalf("%d contracts consigned, want one with each provider", len(n.Contracts))
	}
	held := make([]*Contract, 2)
	for _, k := range n.Contracts {
		i := hostIndex(w, k.Contract.ProviderPeer)
		renewed, err := renter.renter.Renew(ctx, k.Contract, k.Contract.End.Add(day))
		if err != nil {
			t.Fatalf("provider %d: the owner's renewal of a contract for a bag the provider stores: %v", i, err)
		}
		held[i] = renewed
	}
	for i, c := range held {
		if st, err := provs[i].store.Get(c.ID, c.Provider); err != nil || !st.End.Equal(c.End) {
			t.Fatalf("provider %d after the renewal: %v; stores the end %v, want %v", i, err, endOf(st), c.End)
		}
	}

	_, err = w.chain.Submit(ctx, w.lead, chain.MsgUpdateBagStorageBuckets{Bag: w.bag, Remove: []chain.StorageBucketID{w.provs[0].Bucket}})
	must(t, err)
	stranger, _ := chain.GenerateKey()
	owners.setOwner(stranger.Account())
	// A provider reuses a bag it read for bagCacheTTL: wait until each sees
	// the change, through the very authority RENEW asks.
	eventually(t, "the providers see the bag moved and owned by another", func() bool {
		return errors.Is(provs[0].resp.auth.CheckBag(ctx, w.bag, w.member.Account()), ErrNotAuthorised) &&
			errors.Is(provs[1].resp.auth.CheckBag(ctx, w.bag, w.member.Account()), ErrNotOwner)
	})

	for i, want := range []error{ErrNotAuthorised, ErrNotOwner} {
		c := held[i]
		if _, err := renter.renter.Renew(ctx, c, c.End.Add(day)); !errors.Is(err, ErrRefused) || !errors.Is(err, want) {
			t.Errorf("provider %d: RENEW after the bag changed: %v, want a refusal wrapping %v", i, err, want)
		}
		st, err := provs[i].store.Get(c.ID, c.Provider)
		if err != nil || !st.End.Equal(c.End) || !bytes.Equal(st.RenterSignature, c.RenterSignature) || !bytes.Equal(st.ProviderSignature, c.ProviderSignature) {
			t.Errorf("provider %d after a refused RENEW: %v; stores the contract ending %v, want it as renewed before, ending %v", i, err, endOf(st), c.End)
		}
		if mine, err := renter.store.Get(c.ID, c.Provider); err != nil || !mine.End.Equal(c.End) {
			t.Errorf("the renter after a refused RENEW with provider %d: %v; keeps the end %v, want %v", i, err, endOf(mine), c.End)
		}
	}
	if got := counter(t, provs[1].reg, "satchel_contracts_requests_total", "CODE_NOT_OWNER"); got != 1 {
		t.Errorf("provider 1 counted %v NOT_OWNER requests, want the one RENEW", got)
	}
}

// endOf is c's end, or the zero time for no contract.
func endOf(c *Contract) time.Time {
	if c == nil {
		return time.Time{}
	}
	return c.End
}
