package p2p

import (
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// Memory budgets. Every host runs libp2p's resource manager with these
// limits, so what remote peers can make a node hold has a ceiling: the stream
// handlers reserve the memory of a frame, a chunk buffer or a BIND rebuild
// through their stream's scope (network.Stream.Scope, see Reserve) before
// allocating it, and refuse the request when the reservation fails. A
// reservation counts against the stream, the remote peer, the protocol, the
// protocol for that peer, and the whole host at once; the first limit reached
// refuses it.

// MemoryLimits are the memory budgets of a host's resource manager, in bytes.
// Zero fields take DefaultMemoryLimits' value.
type MemoryLimits struct {
	// System bounds everything the host reserves for all peers together,
	// libp2p's own buffers (yamux windows) included.
	System int64
	// Peer bounds what one remote peer's connections and streams may hold,
	// across every protocol.
	Peer int64
	// Stream bounds one stream.
	Stream int64
	// Protocol bounds one protocol's streams, of all peers together, and
	// ProtocolPeer one protocol's streams of one peer. They apply to
	// StoreProtocol and FetchProtocol, except that FetchPeer replaces
	// ProtocolPeer for FetchProtocol.
	Protocol     int64
	ProtocolPeer int64
	// FetchPeer bounds one peer's FetchProtocol streams: a small share of
	// Protocol, so that peers who stop reading pin little of what every
	// reader shares (a fetch stream holds at most two replies' memory, see
	// fetch.MaxHeldGETs).
	FetchPeer int64
	// ProtocolPeerStreams bounds how many inbound streams of one protocol
	// one peer may hold open at once.
	ProtocolPeerStreams int
}

// DefaultMemoryLimits are the budgets of a host built without
// WithMemoryLimits: a storage node's store and fetch handlers hold at most
// 1 GiB each, 256 MiB per peer for store and 64 MiB per peer for fetch
// (1/16 of the protocol's), and the host 2 GiB in all. An honest
// uploader's store stream holds at most 64 chunks of up to 2 MiB in flight
// (128 MiB), so it stays inside the per-stream budget; an honest reader's
// fetch stream holds two replies of up to 2 MiB (fetch.MaxHeldGETs), and
// 16 such streams nearly fill a peer's fetch share.
var DefaultMemoryLimits = MemoryLimits{
	System:              2 << 30,
	Peer:                384 << 20,
	Stream:              256 << 20,
	Protocol:            1 << 30,
	ProtocolPeer:        256 << 20,
	FetchPeer:           64 << 20,
	ProtocolPeerStreams: 16,
}

// WithMemoryLimits replaces DefaultMemoryLimits (zero fields keep their
// default). It cannot be combined with WithHost, whose host has its own
// resource manager.
func WithMemoryLimits(l MemoryLimits) Option {
	return func(c *config) error {
		if l.System < 0 || l.Peer < 0 || l.Stream < 0 || l.Protocol < 0 || l.ProtocolPeer < 0 || l.FetchPeer < 0 || l.ProtocolPeerStreams < 0 {
			return errors.New("WithMemoryLimits: negative limit")
		}
		c.memory = l.withDefaults()
		c.memorySet = true
		return nil
	}
}

func (l MemoryLimits) withDefaults() MemoryLimits {
	d := DefaultMemoryLimits
	pick := func(v, def int64) int64 {
		if v > 0 {
			return v
		}
		return def
	}
	out := MemoryLimits{
		System:              pick(l.System, d.System),
		Peer:                pick(l.Peer, d.Peer),
		Stream:              pick(l.Stream, d.Stream),
		Protocol:            pick(l.Protocol, d.Protocol),
		ProtocolPeer:        pick(l.ProtocolPeer, d.ProtocolPeer),
		FetchPeer:           pick(l.FetchPeer, d.FetchPeer),
		ProtocolPeerStreams: l.ProtocolPeerStreams,
	}
	if out.ProtocolPeerStreams <= 0 {
		out.ProtocolPeerStreams = d.ProtocolPeerStreams
	}
	return out
}

// resourceManager builds the libp2p resource manager of l: libp2p's
// defaults scaled to the machine, with Satchel's memory budgets on top.
func resourceManager(l MemoryLimits) (libp2p.Option, error) {
	base := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&base)
	scaled := base.AutoScale() // what libp2p.New would use
	partial := scaled.ToPartialLimitConfig()
	partial.System.Memory = rcmgr.LimitVal64(l.System)
	partial.PeerDefault.Memory = rcmgr.LimitVal64(l.Peer)
	partial.Stream.Memory = rcmgr.LimitVal64(l.Stream)
	if partial.Protocol == nil {
		partial.Protocol = map[protocol.ID]rcmgr.ResourceLimits{}
	}
	if partial.ProtocolPeer == nil {
		partial.ProtocolPeer = map[protocol.ID]rcmgr.ResourceLimits{}
	}
	for id, perPeer := range map[protocol.ID]int64{StoreProtocol: l.ProtocolPeer, FetchProtocol: l.FetchPeer} {
		pl := partial.ProtocolDefault
		pl.Memory = rcmgr.LimitVal64(l.Protocol)
		partial.Protocol[id] = pl
		ppl := partial.ProtocolPeerDefault
		ppl.Memory = rcmgr.LimitVal64(perPeer)
		ppl.StreamsInbound = rcmgr.LimitVal(l.ProtocolPeerStreams)
		partial.ProtocolPeer[id] = ppl
	}
	limits := partial.Build(scaled)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits), rcmgr.WithMetricsDisabled())
	if err != nil {
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	return libp2p.ResourceManager(rm), nil
}

// ErrMemoryBudget is what Reserve returns, wrapped, when a reservation would
// take a stream, its peer, its protocol or the host past its memory budget.
// A handler answers the request it was for with a refusal that says so, and
// the peer may retry later with less in flight.
var ErrMemoryBudget = errors.New("p2p: memory budget exhausted")

// Reserve reserves n bytes of memory in s's resource scope before the
// caller allocates them; Release gives them back. It fails, with an error
// wrapping ErrMemoryBudget that names the limit reached, when the stream, its
// peer, its protocol or the host has no room left. A stream's reservations
// are returned when it closes, so a handler that returns early leaks nothing.
func Reserve(s network.Stream, n int) error {
	if n <= 0 {
		return nil
	}
	if err := s.Scope().ReserveMemory(n, network.ReservationPriorityAlways); err != nil {
		return fmt.Errorf("%w: %d bytes for a %s stream of %s: %w", ErrMemoryBudget, n, s.Protocol(), s.Conn().RemotePeer(), err)
	}
	return nil
}

// Release returns n bytes reserved with Reserve.
func Release(s network.Stream, n int) {
	if n > 0 {
		s.Scope().ReleaseMemory(n)
	}
}

// BudgetScope returns the resource scope whose limit a failed reservation
// (err, from Reserve) names as reached, and whether every peer shares that
// scope. libp2p's resource manager wraps its limit error in the name of the
// scope that refused: "stream-N", "conn-N", "peer:ID" or
// "protocol:ID.peer:ID" are the reservation's own peer's (shared false: it
// should retry with fewer requests in flight); "system", "transient",
// "protocol:ID" and "service:…" are every peer's together (shared true:
// the node is busy with others, and the peer should go to another one). An
// error naming no scope returns "" and false.
func BudgetScope(err error) (scope string, shared bool) {
	scope = exhaustedScope(err)
	return scope, sharedScope(scope)
}

// exhaustedScope returns the name of the resource scope whose limit err
// reports reached, or "" if err names none.
func exhaustedScope(err error) string {
	for err != nil {
		if multi, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range multi.Unwrap() {
				if s := exhaustedScope(e); s != "" {
					return s
				}
			}
			return ""
		}
		next := errors.Unwrap(err)
		if limitError(next) {
			return strings.TrimSuffix(err.Error(), ": "+next.Error())
		}
		err = next
	}
	return ""
}

// limitError reports whether err is the resource manager's own error for
// a limit reached, which the scope that reached it wraps with its name.
func limitError(err error) bool {
	_, mem := err.(*rcmgr.ErrMemoryLimitExceeded)
	return mem || err == network.ErrResourceLimitExceeded
}

// sharedScope reports whether the scope named is shared by every peer: the
// host's (system, transient), a protocol's or a service's, as opposed to a
// stream's, a connection's or a peer's (alone or within a protocol).
func sharedScope(name string) bool {
	switch {
	case name == "system" || name == "transient":
		return true
	case strings.Contains(name, ".peer:"):
		return false
	default:
		return strings.HasPrefix(name, "protocol:") || strings.HasPrefix(name, "service:")
	}
}
