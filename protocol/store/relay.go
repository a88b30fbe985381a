package store

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

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
	streams map[peer.ID]*relayStream
	lru     list.List // of *relayStream, most recently used first
	closed  bool
	// max bounds the open streams (least recently used closed first);
	// idle is how long an unused stream stays open; now is the clock.
	max  int
	idle time.Duration
	now  func() time.Time
}

// MaxRelayStreams bounds the store streams a Relay keeps open: uploaders
// choose the next hops, so without a bound they could make a provider
// hold a stream to every peer they name. The least recently used stream
// is closed to make room.
const MaxRelayStreams = 64

// RelayIdleTimeout is how long a Relay keeps a stream no chunk used open.
const RelayIdleTimeout = 2 * IdleTimeout

// relayStream is one open stream of a relay and its place in the LRU list.
type relayStream struct {
	peer peer.ID
	s    *Stream
	elem *list.Element
	used time.Time
}

// NewRelay returns a relay opening its streams on h with opts.
func NewRelay(h host.Host, opts ...StreamOption) *Relay {
	return &Relay{h: h, opts: opts, streams: make(map[peer.ID]*relayStream),
		max: MaxRelayStreams, idle: RelayIdleTimeout, now: time.Now}
}

// Close closes the relay's streams; forwarding afterwards fails.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.closed = true
	ss := r.streams
	r.streams = map[peer.ID]*relayStream{}
	r.lru.Init()
	r.mu.Unlock()
	for _, e := range ss {
		_ = e.s.Close()
	}
	return nil
}

// Streams returns how many store streams the relay holds open.
func (r *Relay) Streams() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.streams)
}

// stream returns the open stream to hop, opening one (dial) when there is
// none; fresh says it was just opened. A failure to open one wraps
// errUnreachable.
func (r *Relay) stream(ctx context.Context, hop Hop) (s *Stream, fresh bool, err error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, false, errors.New("relay closed")
	}
	r.closeIdleLocked()
	if e := r.streams[hop.Peer]; e != nil {
		r.touchLocked(e)
		r.mu.Unlock()
		return e.s, false, nil
	}
	r.mu.Unlock()
	opened, err := r.dial(ctx, hop)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", errUnreachable, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		go func() { _ = opened.Close() }()
		return nil, false, errors.New("relay closed")
	}
	if e := r.streams[hop.Peer]; e != nil {
		go func() { _ = opened.Close() }()
		r.touchLocked(e)
		return e.s, false, nil
	}
	for len(r.streams) >= max(r.max, 1) {
		r.dropLocked(r.lru.Back().Value.(*relayStream))
	}
	e := &relayStream{peer: hop.Peer, s: opened, used: r.now()}
	e.elem = r.lru.PushFront(e)
	r.streams[hop.Peer] = e
	// A stream that ends (the hop closed or reset it) leaves the relay.
	go func() {
		<-opened.readerDone
		r.forget(hop.Peer, opened)
	}()
	return opened, true, nil
}

func (r *Relay) touchLocked(e *relayStream) {
	e.used = r.now()
	r.lru.MoveToFront(e.elem)
}

// closeIdleLocked closes the streams no chunk used for r.idle.
func (r *Relay) closeIdleLocked() {
	cut := r.now().Add(-r.idle)
	for el := r.lru.Back(); el != nil; el = r.lru.Back() {
		e := el.Value.(*relayStream)
		if e.used.After(cut) {
			return
		}
		r.dropLocked(e)
	}
}

// dropLocked takes e out of the relay and closes its stream in the
// background (Close waits for the exchanges still open on it).
func (r *Relay) dropLocked(e *relayStream) {
	delete(r.streams, e.peer)
	r.lru.Remove(e.elem)
	go func() { _ = e.s.Close() }()
}

// forget drops a failed stream so the next chunk opens a new one.
func (r *Relay) forget(p peer.ID, s *Stream) {
	r.mu.Lock()
	if e := r.streams[p]; e != nil && e.s == s {
		r.dropLocked(e)
	} else {
		go func() { _ = s.Close() }()
	}
	r.mu.Unlock()
}

// errForwardDeadline is the cause of a forward's context ending at its
// deadline (forwardTimeout), as opposed to its provider stopping.
var errForwardDeadline = errors.New("the forward deadline passed")

// forward pushes c (c.Session and c.Forward are set per hop) to hops in
// order until one hop takes it with the hops after it: that hop's receipt
// and those it relays are returned, with the hops that failed. Every
// receipt returned was verified against its hop's key. A hop no stream
// could be opened to is reported with a reason that says only that
// (hopUnreachable); the dial error goes to log, at Debug. When ctx ends
// other than by errForwardDeadline (this provider is stopping, or its
// uploader left), the hops not reached are not reported: the uploader
// sees them not forwarded (ErrNotForwarded) rather than failed, since no
// fault of theirs stopped the chunk. A hop that refused as busy, here or
// further down, is reported busy.
func (r *Relay) forward(ctx context.Context, c ChunkPush, hops []Hop, log *slog.Logger) ([]*pb.Receipt, []*pb.HopFailure) {
	var failures []*pb.HopFailure
	for i, hop := range hops {
		if ctx.Err() != nil {
			if !errors.Is(context.Cause(ctx), errForwardDeadline) {
				return nil, failures
			}
			for _, h := range hops[i:] {
				failures = append(failures, &pb.HopFailure{Peer: []byte(h.Peer), Reason: "not tried: " + errForwardDeadline.Error()})
			}
			return nil, failures
		}
		c.Session, c.Forward, c.relayed, c.hopToken = hop.Session, hops[i+1:], true, hop.Token
		res, err := r.pushHop(ctx, hop, c)
		if err != nil {
			if ctx.Err() != nil && !errors.Is(context.Cause(ctx), errForwardDeadline) {
				return nil, failures
			}
			reason := hopReason(err)
			if errors.Is(err, errUnreachable) {
				log.Debug("pipeline hop not reached", "hop", hop.Peer, "err", err)
				reason = hopUnreachable
			}
			failures = append(failures, &pb.HopFailure{Peer: []byte(hop.Peer), Reason: reason,
				Busy: errors.Is(err, ErrProviderBusy), NoSpace: errors.Is(err, ErrNoSpace)})
			continue
		}
		receipts := make([]*pb.Receipt, len(res.Receipts))
		for j, hr := range res.Receipts {
			receipts[j] = hr.Receipt
		}
		for _, f := range res.Failed {
			if errors.Is(f.Err, ErrNotForwarded) {
				// The hop stopped before it reached them: left
				// unreported here too, so the uploader sees them not
				// forwarded rather than failed.
				continue
			}
			failures = append(failures, &pb.HopFailure{Peer: []byte(f.Peer), Reason: hopReason(f.Err),
				Busy: errors.Is(f.Err, ErrProviderBusy), NoSpace: errors.Is(f.Err, ErrNoSpace)})
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
