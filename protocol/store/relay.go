package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/satchel-net/satchel/protocol/store/pb"
)

// Relay is the forwarding side of pipelined replication: a Handler given one
// (WithRelay) passes a chunk whose request carries a forward list on to the
// next hop over a store stream of its own, as the uploader would, and
// relays the receipts back. It keeps one store stream per next-hop provider,
// shared by every upload. A hop that fails is routed around: the chunk goes
// to the hop after it, and the failure is reported so the uploader can push
// to a replacement.
type Relay struct {
	h    host.Host
	opts []StreamOption

	mu      sync.Mutex
	streams map[peer.ID]*Stream
	closed  bool
}

// NewRelay returns a relay opening its streams on h with opts.
func NewRelay(h host.Host, opts ...StreamOption) *Relay {
	return &Relay{h: h, opts: opts, streams: make(map[peer.ID]*Stream)}
}

// Close closes the relay's streams; forwarding afterwards fails.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.closed = true
	ss := r.streams
	r.streams = map[peer.ID]*Stream{}
	r.mu.Unlock()
	for _, s := range ss {
		_ = s.Close()
	}
	return nil
}

// stream returns the open stream to hop, opening one (with hop's
// addresses added to the peerstore for a while) when there is none; fresh
// says it was just opened.
func (r *Relay) stream(ctx context.Context, hop Hop) (s *Stream, fresh bool, err error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, false, errors.New("relay closed")
	}
	if s := r.streams[hop.Peer]; s != nil {
		r.mu.Unlock()
		return s, false, nil
	}
	r.mu.Unlock()
	if len(hop.Addrs) > 0 {
		r.h.Peerstore().AddAddrs(hop.Peer, hop.Addrs, peerstore.TempAddrTTL)
	}
	opened, err := Open(ctx, r.h, hop.Peer, r.opts...)
	if err != nil {
		return nil, false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		go func() { _ = opened.Close() }()
		return nil, false, errors.New("relay closed")
	}
	if old := r.streams[hop.Peer]; old != nil {
		go func() { _ = opened.Close() }()
		return old, false, nil
	}
	r.streams[hop.Peer] = opened
	return opened, true, nil
}

// forget drops a failed stream so the next chunk opens a new one.
func (r *Relay) forget(p peer.ID, s *Stream) {
	r.mu.Lock()
	if r.streams[p] == s {
		delete(r.streams, p)
	}
	r.mu.Unlock()
	go func() { _ = s.Close() }()
}

// forward pushes c (c.Session and c.Forward are set per hop) to hops in
// order until one hop takes it with the hops after it: that hop's receipt
// and those it relays are returned, with the hops that failed. Every
// receipt returned was verified against its hop's key.
func (r *Relay) forward(ctx context.Context, c ChunkPush, hops []Hop) ([]*pb.Receipt, []*pb.HopFailure) {
	var failures []*pb.HopFailure
	for i, hop := range hops {
		if err := ctx.Err(); err != nil {
			for _, h := range hops[i:] {
				failures = append(failures, &pb.HopFailure{Peer: []byte(h.Peer), Reason: fmt.Sprintf("not tried: the forward deadline passed (%v)", err)})
			}
			return nil, failures
		}
		c.Session, c.Forward = hop.Session, hops[i+1:]
		res, err := r.pushHop(ctx, hop, c)
		if err != nil {
			failures = append(failures, &pb.HopFailure{Peer: []byte(hop.Peer), Reason: hopReason(err)})
			continue
		}
		receipts := make([]*pb.Receipt, len(res.Receipts))
		for j, hr := range res.Receipts {
			receipts[j] = hr.Receipt
		}
		for _, f := range res.Failed {
			failures = append(failures, &pb.HopFailure{Peer: []byte(f.Peer), Reason: hopReason(f.Err)})
		}
		return receipts, failures
	}
	return nil, failures
}

// pushHop pushes c to one hop, once more on a new stream when a cached
// one turns out broken.
func (r *Relay) pushHop(ctx context.Context, hop Hop, c ChunkPush) (PipelineResult, error) {
	for {
		s, fresh, err := r.stream(ctx, hop)
		if err != nil {
			return PipelineResult{}, err
		}
		res, err := s.PushPipeline(ctx, c)
		if err == nil {
			return res, nil
		}
		// Only a broken stream is dropped: a refusal, a bad receipt or
		// this chunk's deadline leaves it to the other chunks using it.
		broken := errors.Is(err, ErrStreamClosed) || errors.Is(err, ErrProtocol)
		if broken {
			r.forget(hop.Peer, s)
		}
		if fresh || !broken || ctx.Err() != nil {
			return PipelineResult{}, err
		}
	}
}

// hopReason is the reason relayed for a failed hop, cut to MaxHopReason
// bytes, so a hop's long answer cannot swell the replies up the pipeline.
func hopReason(err error) string {
	r := err.Error()
	if len(r) > MaxHopReason {
		r = strings.ToValidUTF8(r[:MaxHopReason], "") + "…"
	}
	return r
}
