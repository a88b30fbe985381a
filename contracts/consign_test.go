package contracts

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

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
