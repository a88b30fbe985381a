package contracts

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/contracts/pb"
	"github.com/satchel-net/satchel/p2p"
)

// droppingRoom is a Ledger that, on its first Reserve, reserves and then
// closes the provider's connections to the renter's peer: the provider
// takes the CONSIGN, and its answer cannot reach the renter.
type droppingRoom struct {
	*Ledger
	h      *p2p.Host
	renter peer.ID

	mu    sync.Mutex
	calls int
}

func (d *droppingRoom) Reserve(ctx context.Context, c *Contract) (Grant, error) {
	g, err := d.Ledger.Reserve(ctx, c)
	d.mu.Lock()
	d.calls++
	first := d.calls == 1
	d.mu.Unlock()
	if first {
		_ = d.h.Libp2p().Network().ClosePeer(d.renter)
	}
	return g, err
}

func (d *droppingRoom) reserves() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls
}

// TestConsignAnswerLost: the renter's CONSIGN is taken by the provider but
// the connection drops before the answer arrives; the renter sends it
// again and gets the same grant (the same session, the room reserved and
// the contract stored once). Another contract under the consigned ID is
// still refused, as is the same contract sent by another peer, and the
// grant stays as it was.
func TestConsignAnswerLost(t *testing.T) {
	w := newWorld(t, 3, 1, 1, 0)
	var room *droppingRoom
	w.wrapRoom = func(r Room) Room {
		room = &droppingRoom{Ledger: r.(*Ledger), h: w.net.Host(0), renter: w.net.Host(1).ID()}
		return room
	}
	prov := w.responder(0, "", topicA)
	w.waitTopicPeers(1, topicA, 1)
	renter := w.renterAt(1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	offered := w.oneOffer(ctx, t, renter.renter)

	got, err := renter.renter.Consign(ctx, offered)
	if err != nil {
		t.Fatalf("CONSIGN whose first answer was lost: %v, want the grant on the retry", err)
	}
	if n := room.reserves(); n != 1 {
		t.Fatalf("the provider reserved %d times, want once (the first CONSIGN was taken, its answer lost)", n)
	}
	prov.resp.mu.Lock()
	session, ok := prov.resp.consigned[offered.ID]
	prov.resp.mu.Unlock()
	if !ok || got.Grant.Session != session {
		t.Errorf("the renter got session %x, the provider granted %x (%v)", got.Grant.Session, session, ok)
	}
	if g, ok := prov.resp.Grant(got.Grant.Session[:]); !ok || g.ContractID != offered.ID || g.MaxBytes != offered.Size {
		t.Errorf("the provider's grant of the session: %+v, %v", g, ok)
	}
	if n, r := prov.resp.OpenGrants(), room.Reserved(); n != 1 || r != offered.Size {
		t.Errorf("%d grants open, %d bytes reserved; want 1 and %d", n, r, offered.Size)
	}
	if s := prov.resp.Stats(); s.Consigned != 1 {
		t.Errorf("%d contracts consigned, want 1", s.Consigned)
	}

	// The very contract again: the same grant; another contract under its
	// ID (signed by both, another end): refused, nothing changes.
	again, err := renter.renter.Consign(ctx, offered)
	if err != nil || again.Grant.Session != got.Grant.Session {
		t.Errorf("the same CONSIGN once more: %v, session %x; want %x", err, again.Grant.Session, got.Grant.Session)
	}
	// The same signed contract from another peer is not the renter asking
	// again.
	resp, err := exchange(ctx, w.net.Host(2), offered.ProviderPeer, &pb.Request{Body: &pb.Request_Consign{Consign: &pb.Consign{Contract: got.Contract.ToPB()}}})
	if err != nil || resp.GetRefusal().GetCode() != pb.Code_CODE_UNKNOWN {
		t.Errorf("the consigned contract sent by another peer: %v, %v; want an UNKNOWN refusal", resp, err)
	}
	other := *offered
	other.End = other.End.Add(day)
	other.SignAsProvider(w.provs[0].Key)
	if _, err := renter.renter.Consign(ctx, &other); !errors.Is(err, ErrRefused) || !errors.Is(err, ErrNotFound) {
		t.Errorf("another contract under a consigned ID: %v, want an UNKNOWN refusal", err)
	}
	st, err := prov.store.Get(offered.ID, offered.Provider)
	if err != nil || !st.End.Equal(offered.End) {
		t.Errorf("the provider stores %+v (%v), want the consigned contract", st, err)
	}
	if n, r := prov.resp.OpenGrants(), room.Reserved(); n != 1 || r != offered.Size || room.reserves() != 1 {
		t.Errorf("after the repeats %d grants open, %d bytes reserved, %d reserves; want 1, %d, 1", n, r, room.reserves(), offered.Size)
	}
}

// slowAuth is a provider's real Authority whose CheckBag, once armed,
// holds its next caller until the test releases it: a provider slow to
// check a CONSIGN on chain.
type slowAuth struct {
	Authority
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (a *slowAuth) CheckBag(ctx context.Context, bag chain.BagID, renter chain.Account) error {
	if a.armed.CompareAndSwap(true, false) {
		close(a.entered)
		select {
		case <-a.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return a.Authority.CheckBag(ctx, bag, renter)
}

// countingRoom is a Ledger that counts its Reserve calls.
type countingRoom struct {
	*Ledger
	calls atomic.Int64
}

func (c *countingRoom) Reserve(ctx context.Context, ct *Contract) (Grant, error) {
	c.calls.Add(1)
	return c.Ledger.Reserve(ctx, ct)
}

// unlabelled reads the value of the unlabelled counter name.
func unlabelled(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	must(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// TestConsignWhileProviderSlow: the provider is still checking the
// renter's CONSIGN on chain when the connection drops, so its answer
// cannot come; the renter sends the CONSIGN again while the first is in
// flight. The retry waits for the first and gets its grant: the
// negotiation succeeds, with one grant open and the room reserved once,
// not a refusal with an orphaned grant holding the room.
func TestConsignWhileProviderSlow(t *testing.T) {
	w := newWorld(t, 2, 1, 1, 0)
	slow := &slowAuth{entered: make(chan struct{}), release: make(chan struct{})}
	w.wrapAuth = func(a Authority) Authority { slow.Authority = a; return slow }
	var room *countingRoom
	w.wrapRoom = func(r Room) Room { room = &countingRoom{Ledger: r.(*Ledger)}; return room }
	prov := w.responder(0, "", topicA)
	w.waitTopicPeers(1, topicA, 1)
	renter := w.renterAt(1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	offered := w.oneOffer(ctx, t, renter.renter)

	slow.armed.Store(true)
	type result struct {
		c   Consigned
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := renter.renter.Consign(ctx, offered)
		done <- result{c, err}
	}()
	select {
	case <-slow.entered:
	case <-ctx.Done():
		t.Fatal("the CONSIGN never reached the provider's chain check")
	}
	// The first CONSIGN's answer cannot come: the connection drops while
	// the provider checks it.
	_ = w.net.Host(0).Libp2p().Network().ClosePeer(w.net.Host(1).ID())
	// The chain check ends once the renter's retry waits at the provider,
	// or once the renter gave up.
	var res result
	gotRes := false
	eventually(t, "the renter's retry at the provider, or the renter giving up", func() bool {
		select {
		case res = <-done:
			gotRes = true
			return true
		default:
		}
		return unlabelled(t, prov.reg, "satchel_contracts_consign_waits_total") >= 1
	})
	close(slow.release)
	if !gotRes {
		select {
		case res = <-done:
		case <-ctx.Done():
			t.Fatal("the renter's CONSIGN did not end")
		}
	}
	if res.err != nil {
		t.Fatalf("CONSIGN with a provider slow to check it: %v, want the grant", res.err)
	}
	prov.resp.mu.Lock()
	session, ok := prov.resp.consigned[offered.ID]
	prov.resp.mu.Unlock()
	if !ok || res.c.Grant.Session != session {
		t.Errorf("the renter got session %x, the provider granted %x (%v)", res.c.Grant.Session, session, ok)
	}
	if g, n, r := room.calls.Load(), prov.resp.OpenGrants(), room.Reserved(); g != 1 || n != 1 || r != offered.Size {
		t.Errorf("%d reserves, %d grants open, %d bytes reserved; want 1, 1, %d", g, n, r, offered.Size)
	}
	if s := prov.resp.Stats(); s.Consigned != 1 {
		t.Errorf("%d contracts consigned, want 1", s.Consigned)
	}
	if st, err := renter.store.Get(offered.ID, offered.Provider); err != nil || !bytes.Equal(st.ProviderSignature, offered.ProviderSignature) {
		t.Errorf("the renter keeps %+v (%v), want the consigned contract", st, err)
	}
}
