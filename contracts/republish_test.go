package contracts

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// failingFirst is an Authority whose first CheckBag fails as a chain read
// that timed out does: the provider drops the proposal it was checking.
type failingFirst struct {
	Authority
	calls atomic.Int64
}

func (f *failingFirst) CheckBag(ctx context.Context, bag chain.BagID, renter chain.Account) error {
	if f.calls.Add(1) == 1 {
		return errors.New("read bag: context deadline exceeded (injected)")
	}
	return f.Authority.CheckBag(ctx, bag, renter)
}

// TestProposalPublishedAgain: a provider that dropped a proposal — its check
// failed for its own reasons — answers the copy the renter publishes again
// while offers are short, and answers it once: the copies after its offer
// count as duplicates, not as proposals.
func TestProposalPublishedAgain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	w := newWorld(t, 2, 1, 1, 0)
	flaky := &failingFirst{}
	w.wrapAuth = func(a Authority) Authority { flaky.Authority = a; return flaky }
	prov := w.responder(0, "", topicA)
	renter := w.renterAt(1)
	w.waitTopicPeers(1, topicA, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	req := w.request(5<<20, 60*day, 1)
	// Collection runs the whole window (two offers never come from one
	// provider), so the renter publishes copies after the offer too.
	req.Window = 5 * time.Second
	req.Enough = 2
	n, err := renter.renter.Negotiate(ctx, req)
	if err != nil {
		t.Fatalf("Negotiate: %v (offers %+v)", err, n)
	}
	if len(n.Contracts) != 1 || len(n.Offers) != 1 {
		t.Fatalf("%d offers, %d contracts; want the one provider's offer, consigned", len(n.Offers), len(n.Contracts))
	}
	if got := flaky.calls.Load(); got < 2 {
		t.Errorf("the provider checked the bag %d times, want at least 2 (the dropped proposal and the copy it answered)", got)
	}
	if st := prov.resp.Stats(); st.Proposals != 2 || st.Offers != 1 || st.Busy != 0 {
		t.Errorf("responder stats %+v: want 2 proposals handled (the dropped one and the answered copy), 1 offer, 0 busy", st)
	}
	if dup := counter(t, prov.reg, "satchel_contracts_proposals_answered_total", "duplicate"); dup < 1 {
		t.Errorf("%v copies counted as duplicates, want at least 1 (the window outlasts the offer)", dup)
	}
}
