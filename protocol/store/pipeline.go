package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/satchel-net/satchel/protocol/store/pb"
)

// Pipelined replication, the uploader's side: the chunk goes once to the
// stream's provider with a forward list; each provider stores it and pushes
// it on to the next hop, and the receipts of every hop come back relayed in
// the SIGNED reply (docs/PROTOCOL.md, "Pipelined replication").

// ErrNotForwarded means a pipeline hop was neither signed for nor reported
// failed by the provider before it: that provider does not forward (it
// predates pipelining), or it stopped before it reached the hop. Push the
// chunk to the hop directly.
var ErrNotForwarded = errors.New("store: chunk not forwarded to this hop")

// Hop is one provider further down a replication pipeline.
type Hop struct {
	// Peer is the hop's peer ID.
	Peer peer.ID
	// Addrs are addresses the provider before it may dial it at (at most
	// MaxForwardAddrs are sent); empty when the providers find each other.
	Addrs []ma.Multiaddr
	// Session is the uploader's streamed-upload session with this hop (its
	// storage contract's grant), or nil for a registered object's chunk.
	Session []byte
	// Token is the uploader's hop token for the chunk at this hop
	// (SignHopToken), for a Session; PushPipeline signs it with the
	// stream's key when the uploader leaves it nil.
	Token []byte
}

// HopReceipt is a receipt of one provider of a pipeline, verified against
// that provider's key.
type HopReceipt struct {
	Peer    peer.ID
	Receipt *pb.Receipt
}

// HopError is why one provider of a pipeline did not sign a chunk. Err
// matches ErrProviderBusy (errors.Is) when the hop refused as busy with
// other peers: it is alive, and may take the chunk later; push to another
// provider now rather than count it lost.
type HopError struct {
	Peer peer.ID
	Err  error
}

// Error names the hop and the cause.
func (e *HopError) Error() string { return fmt.Sprintf("pipeline hop %s: %v", e.Peer, e.Err) }

// Unwrap returns the cause.
func (e *HopError) Unwrap() error { return e.Err }

// PipelineResult is the outcome of PushPipeline: every provider of the
// pipeline appears once, in Receipts when it signed the chunk, in Failed
// when it did not.
type PipelineResult struct {
	// Receipts are the verified receipts: the stream's provider's first,
	// then the hops', in the order they were relayed.
	Receipts []HopReceipt
	// Failed are the hops that did not sign, with the reason their
	// previous hop gave (matching ErrProviderBusy for a hop that refused
	// as busy), or ErrNotForwarded.
	Failed []HopError
}

// PushPipeline stores one chunk with the stream's provider and has it
// passed along c.Forward, each hop storing it durably before it signs. It
// returns once every hop signed or was given up by the hop before it (which
// then tried the hops after it): the stream's provider's receipt, the
// relayed receipts, each checked against the key of the hop it names
// (which must be in c.Forward, at most once, for this chunk, object and
// bag, the hop's Session for an unregistered object's chunk, and this
// push's nonce, which the providers pass along), and the hops that failed.
// A relayed receipt that does not verify or answers another session or
// push (one replayed from an earlier upload) fails the whole push with an
// error wrapping ErrBadReceipt: the provider before it relayed a lie. A refusal by the stream's provider returns a
// *RefusedError, as Push does.
func (s *Stream) PushPipeline(ctx context.Context, c ChunkPush) (PipelineResult, error) {
	if err := checkForwardList(s.peer, c.Forward); err != nil {
		return PipelineResult{}, fmt.Errorf("store: push: %w", err)
	}
	if err := s.signHopTokens(&c); err != nil {
		return PipelineResult{}, err
	}
	r, err := s.push(ctx, &c)
	if err != nil {
		return PipelineResult{}, err
	}
	return checkRelay(s.peer, &c, r)
}

// checkRelay verifies the receipts and failures a SIGNED reply relays for
// c's forward list and accounts for every hop.
func checkRelay(head peer.ID, c *ChunkPush, r *pb.StoreReply) (PipelineResult, error) {
	res := PipelineResult{Receipts: []HopReceipt{{Peer: head, Receipt: r.Receipt}}}
	seen := make(map[peer.ID]bool, len(c.Forward))
	inList := make(map[peer.ID]*Hop, len(c.Forward))
	for i := range c.Forward {
		inList[c.Forward[i].Peer] = &c.Forward[i]
	}
	for _, rc := range r.GetRelayed() {
		p, err := peer.IDFromBytes(rc.GetProvider())
		if err != nil || inList[p] == nil || seen[p] {
			return PipelineResult{}, fmt.Errorf("%w: %s relayed a receipt of %s, which is not a hop of the pipeline or was relayed twice", ErrBadReceipt, head, peerString(rc.GetProvider()))
		}
		if err := VerifyReceipt(rc, p); err != nil {
			return PipelineResult{}, fmt.Errorf("%s relayed a receipt of hop %s that does not verify: %w", head, p, err)
		}
		// The hop holds the chunk under the session it was pushed with, and
		// signed in answer to this push (its nonce): an older receipt of the
		// same chunk does not pass for a replica made now.
		if err := checkReceiptFor(rc, c, inList[p].Session, fmt.Sprintf("receipt of hop %s relayed by %s", p, head)); err != nil {
			return PipelineResult{}, err
		}
		seen[p] = true
		res.Receipts = append(res.Receipts, HopReceipt{Peer: p, Receipt: rc})
	}
	failed := make(map[peer.ID]error)
	for _, f := range r.GetHopFailures() {
		p, err := peer.IDFromBytes(f.GetPeer())
		if err != nil || inList[p] == nil || seen[p] {
			return PipelineResult{}, fmt.Errorf("%w: %s reported a failure of %s, which is not an unsigned hop of the pipeline", ErrBadReceipt, head, peerString(f.GetPeer()))
		}
		if _, dup := failed[p]; !dup {
			failed[p] = hopFailure(f)
		}
	}
	for _, h := range c.Forward {
		if seen[h.Peer] {
			continue
		}
		err, ok := failed[h.Peer]
		if !ok {
			err = ErrNotForwarded
		}
		res.Failed = append(res.Failed, HopError{Peer: h.Peer, Err: err})
	}
	return res, nil
}

// relayedHop is the error of a relayed hop failure: its text is the
// relayed reason, and it matches ErrProviderBusy when the hop was busy,
// ErrNoSpace when its disk was full.
type relayedHop struct {
	reason        string
	busy, noSpace bool
}

func (e relayedHop) Error() string { return e.reason }

// Is reports whether target is ErrProviderBusy or ErrNoSpace, as the hop said.
func (e relayedHop) Is(target error) bool {
	return target == ErrProviderBusy && e.busy || target == ErrNoSpace && e.noSpace
}

// hopFailure is the error of a relayed hop failure, its reason cut to
// MaxHopReason bytes.
func hopFailure(f *pb.HopFailure) error {
	return relayedHop{reason: hopReason(errors.New(f.GetReason())), busy: f.GetBusy(), noSpace: f.GetNoSpace()}
}

// checkForwardList checks a forward list for a pipeline whose head is
// head: bounded, and naming no peer twice or the head.
func checkForwardList(head peer.ID, hops []Hop) error {
	if len(hops) > MaxForwardHops {
		return fmt.Errorf("forward list of %d hops exceeds the limit of %d", len(hops), MaxForwardHops)
	}
	seen := make(map[peer.ID]bool, len(hops))
	for i, h := range hops {
		if h.Peer == "" {
			return fmt.Errorf("forward hop %d names no peer", i)
		}
		if h.Peer == head {
			return fmt.Errorf("forward hop %d is %s, the pipeline's own provider: a loop", i, h.Peer)
		}
		if seen[h.Peer] {
			return fmt.Errorf("forward hop %d names %s a second time: a loop", i, h.Peer)
		}
		seen[h.Peer] = true
	}
	return nil
}

// encodeForward returns the wire form of a forward list.
func encodeForward(hops []Hop) ([]*pb.ForwardHop, error) {
	if len(hops) == 0 {
		return nil, nil
	}
	out := make([]*pb.ForwardHop, len(hops))
	for i, h := range hops {
		if len(h.Session) != 0 && len(h.Session) != SessionIDLength {
			return nil, fmt.Errorf("store: push: forward hop %s has a session of %d bytes, not %d", h.Peer, len(h.Session), SessionIDLength)
		}
		fh := &pb.ForwardHop{Peer: []byte(h.Peer), Session: h.Session, Token: h.Token}
		for _, a := range h.Addrs {
			if len(fh.Addrs) == MaxForwardAddrs {
				break
			}
			if b := a.Bytes(); len(b) <= MaxForwardAddrBytes {
				fh.Addrs = append(fh.Addrs, b)
			}
		}
		out[i] = fh
	}
	return out, nil
}

// decodeForward checks a request's forward list as the provider self
// received it from remote: bounded, well formed, and naming neither self,
// nor remote, nor one peer twice (so it cannot loop). Its error's text is
// the refusal reason.
func decodeForward(self, remote peer.ID, fwd []*pb.ForwardHop) ([]Hop, error) {
	if len(fwd) > MaxForwardHops {
		return nil, fmt.Errorf("forward list of %d hops exceeds the limit of %d; split the pipeline", len(fwd), MaxForwardHops)
	}
	hops := make([]Hop, len(fwd))
	for i, f := range fwd {
		p, err := peer.IDFromBytes(f.GetPeer())
		if err != nil {
			return nil, fmt.Errorf("forward hop %d: invalid peer ID: %v", i, err)
		}
		if p == remote {
			return nil, fmt.Errorf("forward hop %d is %s, the peer that sent the chunk: a loop", i, p)
		}
		if len(f.GetAddrs()) > MaxForwardAddrs {
			return nil, fmt.Errorf("forward hop %d has %d addresses, more than %d", i, len(f.GetAddrs()), MaxForwardAddrs)
		}
		if s := f.GetSession(); len(s) != 0 && len(s) != SessionIDLength {
			return nil, fmt.Errorf("forward hop %d has a session of %d bytes, not %d", i, len(s), SessionIDLength)
		}
		if len(f.GetToken()) > MaxHopToken || (len(f.GetToken()) != 0 && len(f.GetSession()) == 0) {
			return nil, fmt.Errorf("forward hop %d has a token of %d bytes (at most %d, and only with a session)", i, len(f.GetToken()), MaxHopToken)
		}
		h := Hop{Peer: p, Session: f.GetSession(), Token: f.GetToken()}
		for _, b := range f.GetAddrs() {
			if len(b) > MaxForwardAddrBytes {
				return nil, fmt.Errorf("forward hop %d has an address of %d bytes, more than %d", i, len(b), MaxForwardAddrBytes)
			}
			a, err := ma.NewMultiaddrBytes(b)
			if err != nil {
				return nil, fmt.Errorf("forward hop %d has an invalid address: %v", i, err)
			}
			h.Addrs = append(h.Addrs, a)
		}
		hops[i] = h
	}
	if err := checkForwardList(self, hops); err != nil {
		return nil, err
	}
	return hops, nil
}

// signHopTokens gives every hop of c's forward list that has a session and
// no token the uploader's token for the chunk there, signed with the
// stream's key, in a copy of the list (the caller's may serve other
// chunks). A forwarding provider passes on the uploader's tokens as they
// came (c.relayed): its own would not verify, and a hop refuses a chunk
// without the renter's.
func (s *Stream) signHopTokens(c *ChunkPush) error {
	if c.relayed {
		return nil
	}
	cloned := false
	for i := range c.Forward {
		h := c.Forward[i]
		if len(h.Session) == 0 || h.Token != nil {
			continue
		}
		if s.key == nil {
			return errors.New("store: push: the host has no private key to sign hop tokens with")
		}
		if !cloned {
			c.Forward, cloned = slices.Clone(c.Forward), true
		}
		tok, err := SignHopToken(s.key, c.Bag, h.Session, c.CID, h.Peer)
		if err != nil {
			return err
		}
		c.Forward[i].Token = tok
	}
	return nil
}
