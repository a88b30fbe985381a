package contracts

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/contracts/pb"
)

// This file holds the provider's side of /satchel/contract/1.0.0: CONSIGN,
// RENEW, RETRIEVE and MIRROR.

// serve answers a request of /satchel/contract/1.0.0 the host's contract
// handler passed to the provider (any but OFFER).
func (r *Responder) serve(ctx context.Context, s network.Stream, req *pb.Request) error {
	var resp *pb.Response
	var err error
	kind := "other"
	switch b := req.Body.(type) {
	case *pb.Request_Consign:
		kind = "consign"
		resp, err = r.consign(ctx, b.Consign.GetContract(), s.Conn().RemotePeer(), s.Conn().RemotePublicKey())
	case *pb.Request_Renew:
		kind = "renew"
		resp, err = r.renew(ctx, b.Renew.GetContract())
	case *pb.Request_Retrieve:
		kind = "retrieve"
		resp, err = r.retrieve(b.Retrieve)
	case *pb.Request_Mirror:
		kind = "mirror"
		resp, err = r.mirrorReq(ctx, b.Mirror, s.Conn().RemotePeer())
	default:
		err = malformed("a provider takes CONSIGN, RETRIEVE, MIRROR or RENEW, not %T", req.Body)
	}
	if err != nil {
		r.log.Debug("contract request refused", "remote", s.Conn().RemotePeer(), "kind", kind, "err", err)
		rf := refusal(err)
		r.metrics.request(kind, rf.Code.String())
		resp = &pb.Response{Body: &pb.Response_Refusal{Refusal: rf}}
	} else {
		r.metrics.request(kind, "ok")
	}
	werr := r.h.Protocol().WriteMsg(s, resp)
	if sg := resp.GetStoreGrant(); sg != nil && len(sg.Session) == 16 {
		r.answered([16]byte(sg.Session), werr == nil)
	}
	return werr
}

// consign takes the renter's countersignature of a pending offer, sent by
// peer from (the one peer its grant lets drop the session), whose
// connection authenticated fromKey (the grant keeps it to check the
// renter's hop tokens). The offer is
// taken from the pending ones before anything slow is checked, so
// concurrent CONSIGNs of one offer open one grant; it is put back when the
// CONSIGN fails, so a bad CONSIGN by anyone who read the proposal's ID
// does not cancel the renter's offer. A CONSIGN of the very contract
// consigned already, by the peer it was granted to, is answered with the
// same grant while it is live (the renter's answer was lost); one sent
// while that CONSIGN is still in flight (a slow provider: the renter's
// answer did not come in time) waits for it, then is answered so.
func (r *Responder) consign(ctx context.Context, m *pb.Contract, from peer.ID, fromKey crypto.PubKey) (*pb.Response, error) {
	c, err := ContractFromPB(m)
	if err != nil {
		return nil, err
	}
	// A contract other than the one offered, or not signed by its renter,
	// is refused before it claims the ID (CPU only, no chain read):
	// CONSIGNs anyone can send, knowing the proposal's ID, do not make the
	// renter's own CONSIGN busy.
	r.mu.Lock()
	po := r.pending[c.ID]
	r.mu.Unlock()
	if po.c != nil {
		if f := firstDiff(po.c, c, true); f != "" {
			return nil, fmt.Errorf("%w: field %s differs from the offer", errMismatch, f)
		}
	}
	if err := c.Verify(); err != nil {
		return nil, err
	}
	// The renter's retry of a CONSIGN still in flight waits for it, as
	// long as the renter waits for an answer (StreamTimeout).
	wctx, cancel := context.WithTimeout(ctx, StreamTimeout)
	release, err := r.claimWait(wctx, c.ID)
	cancel()
	if err != nil {
		return nil, err
	}
	defer release()
	po, err = r.takePending(c.ID)
	if errors.Is(err, ErrNotFound) {
		// Consigned already? The renter asks again when the answer was lost.
		if g, ok := r.regrant(c, from); ok {
			r.log.Debug("contract consigned again", "contract", c.ID, "renter", from)
			return grantResponse(c.ID, g), nil
		}
	}
	if err != nil {
		return nil, err
	}
	g, err := r.consignOffered(ctx, po.c, c)
	if err != nil {
		r.restorePending(c.ID, po)
		return nil, err
	}
	g.Renter, g.RenterKey = from, fromKey
	r.mu.Lock()
	r.sweepGrantsLocked(time.Now())
	r.grants[g.Session] = g
	r.grantsSweepAt = minNonZero(r.grantsSweepAt, g.Expires)
	r.consigned[c.ID] = g.Session
	r.mu.Unlock()
	r.count(func(s *ResponderStats) { s.Consigned++ })
	r.log.Info("contract consigned", "contract", c.ID, "bag", c.Bag, "size", c.Size, "renter", c.Renter, "end", c.End.UTC())
	return grantResponse(c.ID, g), nil
}

func grantResponse(id ID, g Grant) *pb.Response {
	return &pb.Response{Body: &pb.Response_StoreGrant{StoreGrant: &pb.StoreGrant{
		ContractId: id[:], Session: g.Session[:], BagId: string(g.Bag),
		MaxBytes: g.MaxBytes, ExpiresUnix: g.Expires.Unix(),
	}}}
}

// dropGrant forgets grant g. Called with r.mu held.
func (r *Responder) dropGrant(g Grant) {
	delete(r.grants, g.Session)
	delete(r.delivered, g.Session)
	if t, ok := r.undelivered[g.Session]; ok {
		t.Stop()
		delete(r.undelivered, g.Session)
	}
	if s, ok := r.consigned[g.ContractID]; ok && s == g.Session {
		delete(r.consigned, g.ContractID)
	}
}

// regrant returns the grant a CONSIGN of c opened, while it is live, when
// c is the very contract consigned (the same signed form and renter
// signature as the one stored) and from is the peer it was granted to: a
// renter whose CONSIGN was taken but whose answer was lost asks again,
// and gets the same session. Called under c's claim.
func (r *Responder) regrant(c *Contract, from peer.ID) (Grant, bool) {
	r.mu.Lock()
	s, ok := r.consigned[c.ID]
	g, live := r.grants[s]
	r.mu.Unlock()
	if !ok || !live || g.Renter != from || time.Now().After(g.Expires) {
		return Grant{}, false
	}
	held, err := r.store.Get(c.ID, r.id.Key.Account())
	if err != nil || !bytes.Equal(held.SigningBytes(), c.SigningBytes()) || !bytes.Equal(held.RenterSignature, c.RenterSignature) {
		return Grant{}, false
	}
	return g, true
}

// consignOffered checks that c, whose signatures consign verified, is the
// offered contract countersigned by a member that owns the bag, reserves
// its room and stores it.
func (r *Responder) consignOffered(ctx context.Context, offered, c *Contract) (Grant, error) {
	if f := firstDiff(offered, c, true); f != "" {
		return Grant{}, fmt.Errorf("%w: field %s differs from the offer", errMismatch, f)
	}
	if err := r.auth.CheckMember(ctx, c.Renter, c.Member); err != nil {
		return Grant{}, err
	}
	if err := r.auth.CheckBag(ctx, c.Bag, c.Renter); err != nil {
		return Grant{}, err
	}
	if _, err := r.checkStored(c); err != nil {
		return Grant{}, err
	}
	g, err := r.room.Reserve(ctx, c)
	if err != nil {
		return Grant{}, err
	}
	// An upload's contract is stored open: it is deleted once its grant
	// lapsed unbound (the deadline is a grant TTL past the grant's end,
	// moved on as the grant slides), kept to its end once bound.
	if c.Object == 0 {
		g.openUntil = g.Expires.Add(GrantTTL)
		err = r.store.PutOpen(c, g.Session, g.openUntil)
	} else {
		err = r.store.Put(c)
	}
	if err != nil {
		if rel, ok := r.room.(RoomReleaser); ok {
			rel.Release(c.ID)
		}
		return Grant{}, err
	}
	return g, nil
}

// claim marks contract id as changed by a request (CONSIGN, MIRROR, RENEW)
// until release is called, so no two requests check and write one ID's
// contract at once, and no proposal under it is offered meanwhile; a second
// request is refused with ErrBusy.
func (r *Responder) claim(id ID) (release func(), err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.changing[id]; ok {
		return nil, fmt.Errorf("%w: another request for contract %s is in flight", ErrBusy, id)
	}
	return r.claimLocked(id), nil
}

// claimLocked claims id, free. Called with r.mu held.
func (r *Responder) claimLocked(id ID) (release func()) {
	done := make(chan struct{})
	r.changing[id] = done
	return func() {
		r.mu.Lock()
		delete(r.changing, id)
		r.mu.Unlock()
		close(done)
	}
}

// claimWait claims id as claim does, but while another request holds it
// waits for that one to end, until ctx ends (the request's deadline); then
// it fails with ErrBusy. A CONSIGN waits so: the one request that reaches
// it is the renter's own retry (the contract it sends carries both
// signatures), sent because the answer to its first CONSIGN did not come
// while a slow provider was still checking it. Answered once the first
// ended — the same grant when it was consigned — the retry does not end
// the negotiation refused while the first one's grant holds the room.
func (r *Responder) claimWait(ctx context.Context, id ID) (release func(), err error) {
	counted := false
	for {
		r.mu.Lock()
		busy, ok := r.changing[id]
		if !ok {
			release = r.claimLocked(id)
			r.mu.Unlock()
			return release, nil
		}
		r.mu.Unlock()
		if !counted {
			counted = true
			r.metrics.claimWait()
			r.log.Debug("request waits for the one in flight", "contract", id)
		}
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: another request for contract %s was in flight until this one's deadline; ask again later", ErrBusy, id)
		}
	}
}

// takePending removes the pending offer id and returns it.
func (r *Responder) takePending(id ID) (pendingOffer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	po := r.pending[id]
	if po.c == nil {
		return po, fmt.Errorf("%w: no pending offer for contract %s (expired, consigned, or never offered)", ErrNotFound, id)
	}
	delete(r.pending, id)
	if time.Now().After(po.expires) {
		return po, fmt.Errorf("%w: the offer for contract %s lapsed at %v", ErrExpired, id, po.expires.UTC())
	}
	return po, nil
}

// restorePending puts back an offer a failed CONSIGN took, unless it lapsed.
func (r *Responder) restorePending(id ID, po pendingOffer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.pending[id]; !ok && time.Now().Before(po.expires) {
		r.pending[id] = po
	}
}

// renew accepts a renter-signed contract that changes only what RENEW may
// change, from a renter that is still the member's controller and the
// bag's owner, for a bag still assigned to this provider's bucket;
// re-signs it and stores it. A refused RENEW changes nothing.
func (r *Responder) renew(ctx context.Context, m *pb.Contract) (*pb.Response, error) {
	c, err := ContractFromPB(m)
	if err != nil {
		return nil, err
	}
	release, err := r.claim(c.ID)
	if err != nil {
		return nil, err
	}
	defer release()
	old, err := r.store.Get(c.ID, r.id.Key.Account())
	if err != nil {
		return nil, err
	}
	if err := renewable(old, c, time.Now()); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	// Renter and member are those of the stored contract, so only its
	// renter can sign a renewal.
	if err := verify(old.Renter, c.SigningBytes(), c.RenterSignature, "renter"); err != nil {
		return nil, err
	}
	if err := r.auth.CheckMember(ctx, c.Renter, c.Member); err != nil {
		return nil, err
	}
	// As at CONSIGN: the bag is still this provider's, and still the
	// renter's. A renter that lost the bag, or a bag moved off this
	// bucket, does not extend the contract.
	if err := r.auth.CheckBag(ctx, c.Bag, c.Renter); err != nil {
		return nil, err
	}
	c.SignAsProvider(r.id.Key)
	if err := r.store.Put(c); err != nil {
		return nil, err
	}
	r.log.Info("contract renewed", "contract", c.ID, "end", c.End.UTC())
	return &pb.Response{Body: &pb.Response_Renewed{Renewed: &pb.Renewed{ProviderSignature: c.ProviderSignature}}}, nil
}

// renewable checks that c renews old: every field but the dates the same,
// the renter and member too; the end no earlier than old's and in the
// future; the start no earlier than old's, nor later than now.
func renewable(old, c *Contract, now time.Time) error {
	if f := firstDiff(old, c, false); f != "" {
		return fmt.Errorf("%w: RENEW changed %s; only start_unix, end_unix and the renter's signature may change", ErrForbiddenChange, f)
	}
	switch {
	case c.Renter != old.Renter:
		return fmt.Errorf("%w: RENEW changed renter; only the contract's renter %s may renew it", ErrForbiddenChange, old.Renter)
	case c.Member != old.Member:
		return fmt.Errorf("%w: RENEW changed renter_member from %d to %d", ErrForbiddenChange, old.Member, c.Member)
	case c.End.Before(old.End):
		return fmt.Errorf("%w: renewed end %v is before the contract's end %v; RENEW only extends", ErrForbiddenChange, c.End.UTC(), old.End.UTC())
	case c.Start.Before(old.Start) || c.Start.After(now.Add(MaxClockSkew)):
		return fmt.Errorf("%w: renewed start %v is before the contract's start %v or in the future", ErrForbiddenChange, c.Start.UTC(), old.Start.UTC())
	case !c.End.After(now):
		return fmt.Errorf("%w: renewed end %v is in the past", ErrExpired, c.End.UTC())
	}
	return nil
}

// retrieve gives the renter of a stored contract a read grant. The grant
// is informational: the token is kept nowhere and nothing checks it, since
// reads over /satchel/fetch/1.0.0 are authorised by the chain alone (see
// docs/PROTOCOL.md); it tells the renter the provider holds a live
// contract for it.
func (r *Responder) retrieve(m *pb.Retrieve) (*pb.Response, error) {
	id, err := idFrom(m.GetContractId(), "contract id")
	if err != nil {
		return nil, err
	}
	c, err := r.store.Get(id, r.id.Key.Account())
	if err != nil {
		return nil, err
	}
	at := time.Unix(m.GetAtUnix(), 0)
	if d := time.Since(at); d > MaxClockSkew || d < -MaxClockSkew {
		return nil, malformed("retrieve at %v is more than %v from this node's clock", at.UTC(), MaxClockSkew)
	}
	if err := verify(c.Renter, RetrieveSigningBytes(id, c.Provider, at), m.GetSignature(), "renter"); err != nil {
		return nil, err
	}
	if !c.Live(time.Now()) {
		return nil, fmt.Errorf("%w: contract %s ended %v", ErrExpired, id, c.End.UTC())
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	return &pb.Response{Body: &pb.Response_ReadGrant{ReadGrant: &pb.ReadGrant{
		ContractId: id[:], Token: tok[:], ExpiresUnix: time.Now().Add(GrantTTL).Unix(),
	}}}, nil
}

// mirrorReq takes a contract the renter consigned with this provider for an
// object other providers hold, checks it against the object (the
// Mirrorer's CheckMirror) before anything is reserved or stored, and hands
// the copy of the object CheckMirror read to the Mirrorer: one Mirror call
// per contract at a time, at most MaxMirrors in all, each for at most
// MirrorTimeout. A MIRROR of the contract while its Mirror call runs is
// answered as accepted and starts nothing. (The provider node's Mirror
// returns once the copy is queued on its sync, which bounds the copies
// themselves.)
func (r *Responder) mirrorReq(ctx context.Context, m *pb.Mirror, from peer.ID) (*pb.Response, error) {
	if r.mirror == nil {
		return nil, fmt.Errorf("%w: this provider does not take MIRROR requests", ErrRefused)
	}
	c, sources, err := r.mirrorRequest(m)
	if err != nil {
		return nil, err
	}
	accepted := &pb.Response{Body: &pb.Response_MirrorAccepted{MirrorAccepted: &pb.MirrorAccepted{ContractId: c.ID[:]}}}
	release, err := r.claim(c.ID)
	if err != nil {
		return nil, err
	}
	defer release()
	held, err := r.checkStored(c)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	_, running := r.mirroring[c.ID]
	r.mu.Unlock()
	if held && running {
		return accepted, nil
	}
	if err := r.auth.CheckMember(ctx, c.Renter, c.Member); err != nil {
		return nil, err
	}
	if err := r.auth.CheckBag(ctx, c.Bag, c.Renter); err != nil {
		return nil, err
	}
	// The object is checked before room is reserved or the contract
	// stored: a MIRROR whose contract is not for the object changes nothing.
	obj, err := r.mirror.CheckMirror(ctx, c)
	if err != nil {
		return nil, err
	}
	done, err := r.startMirror(c.ID)
	if err != nil {
		return nil, err
	}
	if _, err := r.room.Reserve(ctx, c); err != nil {
		done()
		return nil, err
	}
	if err := r.store.Put(c); err != nil {
		// The room of a contract held before stays reserved for it.
		if rel, ok := r.room.(RoomReleaser); ok && !held {
			rel.Release(c.ID)
		}
		done()
		return nil, err
	}
	r.count(func(s *ResponderStats) { s.Mirrors++ })
	r.wg.Go(func() {
		defer done()
		ctx, cancel := context.WithTimeout(r.ctx, MirrorTimeout)
		defer cancel()
		if err := r.mirror.Mirror(ctx, c, obj, sources); err != nil {
			r.log.Warn("mirror failed", "contract", c.ID, "from", from, "err", err)
		}
	})
	return accepted, nil
}

// mirrorRequest reads a MIRROR: a complete, live contract with this
// provider for a registered object, and its sources.
func (r *Responder) mirrorRequest(m *pb.Mirror) (*Contract, []peer.ID, error) {
	if n := len(m.GetSources()); n == 0 || n > MaxMirrorSources {
		return nil, nil, malformed("%d mirror sources: want 1 to %d", n, MaxMirrorSources)
	}
	c, err := ContractFromPB(m.GetContract())
	if err != nil {
		return nil, nil, err
	}
	if c.Provider != r.id.Key.Account() || c.ProviderPeer != r.h.ID() {
		return nil, nil, fmt.Errorf("%w: contract %s names another provider", errMismatch, c.ID)
	}
	if c.Object == 0 {
		return nil, nil, malformed("contract %s names no registered object to mirror", c.ID)
	}
	if !c.Live(time.Now()) {
		return nil, nil, fmt.Errorf("%w: contract %s runs from %v to %v", ErrExpired, c.ID, c.Start.UTC(), c.End.UTC())
	}
	if err := c.Verify(); err != nil {
		return nil, nil, err
	}
	var sources []peer.ID
	for _, b := range m.GetSources() {
		p, err := peer.IDFromBytes(b)
		if err != nil {
			return nil, nil, malformed("mirror source: %v", err)
		}
		sources = append(sources, p)
	}
	return c, sources, nil
}

// startMirror holds one of the MaxMirrors copy slots for contract id until
// done is called.
func (r *Responder) startMirror(id ID) (done func(), err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.mirroring[id]; ok {
		return nil, fmt.Errorf("%w: contract %s is being mirrored", ErrBusy, id)
	}
	if len(r.mirroring) >= MaxMirrors {
		return nil, fmt.Errorf("%w: %d mirrors running, the most this provider runs at once; ask again later", ErrBusy, len(r.mirroring))
	}
	r.mirroring[id] = struct{}{}
	return func() {
		r.mu.Lock()
		delete(r.mirroring, id)
		r.mu.Unlock()
	}, nil
}
