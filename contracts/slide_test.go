package contracts

import (
	"context"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// TestLedgerExtend: a reservation slides with its upload to one grant TTL
// after its last Extend, never earlier than it was and never past its
// contract's end; it stays counted while it lives, lapses one TTL after
// the last Extend, and neither a lapsed nor a released one comes back.
func TestLedgerExtend(t *testing.T) {
	dir := fakeDir{bucket: chain.StorageBucket{Voucher: chain.Voucher{ObjectsLimit: 10, SizeLimit: 1 << 30}}}
	const ttl = time.Minute
	l := NewLedger(dir, 1, nil, WithGrantTTL(ttl))
	t0 := time.Unix(1_800_000_000, 0)
	now := t0
	l.now = func() time.Time { return now }
	ctx := context.Background()
	c, _, _ := fixedContract(t)
	c.Object, c.Size, c.Start, c.End = 0, 1<<20, t0, t0.Add(30*24*time.Hour)

	g, err := l.Reserve(ctx, c)
	if err != nil || !g.Expires.Equal(t0.Add(ttl)) {
		t.Fatalf("reserve: %v, grant ends %v; want %v", err, g.Expires, t0.Add(ttl))
	}
	now = t0.Add(ttl / 2)
	if until, ok := l.Extend(c.ID); !ok || !until.Equal(now.Add(ttl)) {
		t.Fatalf("extend half a TTL in: %v, %v; want %v", until, ok, now.Add(ttl))
	}
	slid := now.Add(ttl)
	now = t0.Add(ttl + time.Second) // past the grant's first end
	if n := l.Reserved(); n != c.Size {
		t.Fatalf("%d bytes reserved past the grant's first end, want the slid reservation's %d", n, c.Size)
	}
	now = t0
	if until, ok := l.Extend(c.ID); !ok || !until.Equal(slid) {
		t.Fatalf("extend at an earlier time: %v, %v; want the end kept at %v", until, ok, slid)
	}
	// Idle: one TTL after the last Extend it lapses, and stays lapsed.
	now = slid.Add(time.Nanosecond)
	if n := l.Reserved(); n != 0 {
		t.Fatalf("%d bytes reserved a TTL after the last extend, want 0", n)
	}
	if until, ok := l.Extend(c.ID); ok {
		t.Fatalf("a lapsed reservation extended to %v", until)
	}

	// The contract's end bounds the grant, opened or slid.
	short := *c
	short.ID, short.End = NewID(), now.Add(ttl+10*time.Second)
	if g, err := l.Reserve(ctx, &short); err != nil || !g.Expires.Equal(now.Add(ttl)) {
		t.Fatalf("reserve: %v, grant ends %v; want %v", err, g.Expires, now.Add(ttl))
	}
	now = now.Add(30 * time.Second)
	if until, ok := l.Extend(short.ID); !ok || !until.Equal(short.End) {
		t.Fatalf("extend near the contract's end: %v, %v; want the end %v", until, ok, short.End)
	}
	ending := *c
	ending.ID, ending.End = NewID(), now.Add(time.Second)
	if g, err := l.Reserve(ctx, &ending); err != nil || !g.Expires.Equal(ending.End) {
		t.Fatalf("reserve a second before the contract's end: %v, grant ends %v; want %v", err, g.Expires, ending.End)
	}

	// A repeated Reserve does not cut a slid reservation short.
	now = now.Add(ttl / 2)
	until, ok := l.Extend(short.ID)
	if !ok {
		t.Fatal("the short contract's reservation lapsed before its end")
	}
	if _, err := l.Reserve(ctx, &short); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	kept := l.reserved[short.ID].until
	l.mu.Unlock()
	if kept.Before(until) {
		t.Fatalf("a repeated Reserve cut the reservation from %v to %v", until, kept)
	}

	// A released reservation is not extended back.
	l.Release(short.ID)
	if until, ok := l.Extend(short.ID); ok {
		t.Fatalf("a released reservation extended to %v", until)
	}
}

// TestExtendGrant: a consigned grant slides with ExtendGrant, its ledger
// reservation with it; a chunk under it shows its renter has it, so a
// failed answer no longer drops it; once the ledger no longer counts it
// (lapsed there) or BIND released it, it is not extended.
func TestExtendGrant(t *testing.T) {
	w := newWorld(t, 2, 1, 1, 0)
	prov := w.responder(0, "", topicA)
	ledger := prov.resp.room.(*Ledger)
	w.waitTopicPeers(1, topicA, 1)
	renter := w.renterAt(1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := renter.renter.Consign(ctx, w.oneOffer(ctx, t, renter.renter))
	must(t, err)
	session := cs.Grant.Session[:]
	opened, ok := prov.resp.Grant(session)
	if !ok {
		t.Fatal("no grant under the consigned session")
	}

	// A write of its answer failed after all (the renter asks again):
	// the grant waits to be dropped as undelivered ...
	prov.resp.mu.Lock()
	delete(prov.resp.delivered, cs.Grant.Session)
	prov.resp.mu.Unlock()
	prov.resp.answered(cs.Grant.Session, false)
	before := time.Now()
	g, err := prov.resp.ExtendGrant(ctx, session, 1, 0)
	if ok := err == nil; !ok || !g.Expires.After(opened.Expires) || g.Expires.Before(before.Add(GrantTTL)) || g.Expires.After(time.Now().Add(GrantTTL)) {
		t.Fatalf("extend: %v, ends %v; want one grant TTL from now, after its first end %v", ok, g.Expires, opened.Expires)
	}
	if now, _ := prov.resp.Grant(session); !now.Expires.Equal(g.Expires) {
		t.Fatalf("the grant ends %v after extending, want %v", now.Expires, g.Expires)
	}
	ledger.mu.Lock()
	res := ledger.reserved[cs.Contract.ID]
	ledger.mu.Unlock()
	if !res.until.Equal(g.Expires) {
		t.Fatalf("the reservation ends %v, the grant %v", res.until, g.Expires)
	}
	// ... until a chunk under it shows the renter has it.
	prov.resp.mu.Lock()
	_, waiting := prov.resp.undelivered[cs.Grant.Session]
	prov.resp.mu.Unlock()
	if waiting {
		t.Fatal("a grant a chunk came under is still to be dropped as undelivered")
	}

	// A reservation the ledger no longer counts extends no grant.
	ledger.mu.Lock()
	ledger.now = func() time.Time { return time.Now().Add(2 * GrantTTL) }
	ledger.mu.Unlock()
	if g, err := prov.resp.ExtendGrant(ctx, session, 1, 0); err == nil {
		t.Fatalf("a grant whose reservation lapsed extended to %v", g.Expires)
	}
	ledger.mu.Lock()
	ledger.now = time.Now
	ledger.mu.Unlock()

	// BIND (or DROP) releases the grant and its room: nothing to extend.
	prov.resp.Release(session)
	if g, err := prov.resp.ExtendGrant(ctx, session, 1, 0); err == nil {
		t.Fatalf("a released grant extended to %v", g.Expires)
	}
	if n := ledger.Reserved(); n != 0 {
		t.Fatalf("%d bytes reserved after the release, want 0", n)
	}
}
