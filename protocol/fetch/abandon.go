package fetch

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/protocol/fetch/pb"
)

// Abandoned replies. A stall is judged by how long one reply write has
// been blocked (WithStallEviction), so a reader that resets each stream
// just before the stall age and opens another is never judged stalled: it
// holds its share of the fetch budget for ever, and makes the provider read
// blocks it never takes. So the replies a stream leaves unsent when its
// write fails (its reader reset it, or read nothing until the write timed
// out) — the one being written and those prepared behind it — are charged
// to the peer's abandonment budget, a token bucket of bytes (burst, refilled at
// rate, down to minus the burst). While a peer's bucket is spent its GETs
// are REFUSED (its own budget, not busy) before anything is read, and while
// it owes more than a little (MaxGetBytes, or half a smaller burst) its
// blocked streams count as stalled whatever their age: a GET that finds the
// shared budget spent resets them first. An honest reader reads what it
// asks for and never resets with replies pending, except when it gives up
// on a provider; the burst is for that, and a reply or two abandoned keeps
// its streams' protection.

const (
	// DefaultAbandonRate and DefaultAbandonBurst are a peer's abandonment
	// budget (see WithAbandonBudget): 16 MiB at once (four streams' held
	// replies), refilled at 512 KiB a second, so a peer that abandons its
	// whole 64 MiB share is refused for 32 s and unprotected 24 s more.
	DefaultAbandonRate  = 512 << 10
	DefaultAbandonBurst = 16 << 20
)

// WithAbandonBudget sets each peer's budget of reply bytes left unsent by
// streams it resets: rate bytes a second, burst bytes at once (defaults
// DefaultAbandonRate, DefaultAbandonBurst). A rate of 0 never refills.
// Non-positive bursts keep the default.
func WithAbandonBudget(rate, burst int64) Option {
	return func(c *config) {
		if burst > 0 {
			c.abandonRate, c.abandonBurst = max(rate, 0), burst
		}
	}
}

// abandonBudget holds the buckets of peers that abandoned replies lately;
// a peer not in it has a full bucket.
type abandonBudget struct {
	rate, burst float64
	now         func() time.Time

	mu    sync.Mutex
	peers map[peer.ID]*bucket
}

func newAbandonBudget(rate, burst int64) *abandonBudget {
	if burst <= 0 {
		rate, burst = DefaultAbandonRate, DefaultAbandonBurst
	}
	return &abandonBudget{rate: float64(rate), burst: float64(burst), now: time.Now, peers: make(map[peer.ID]*bucket)}
}

// charge takes n bytes abandoned by p from its bucket, down to minus the
// burst. When the record is full of peers still refilling the charge is
// dropped (the record stays bounded).
func (a *abandonBudget) charge(p peer.ID, n int64) {
	if n <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	b := a.peers[p]
	if b == nil {
		if len(a.peers) >= maxBudgetPeers && !a.prune(now) {
			return
		}
		b = &bucket{tokens: a.burst, at: now}
		a.peers[p] = b
	}
	b.fill(a.rate, a.burst, now)
	b.tokens = max(-a.burst, b.tokens-float64(n))
}

// state reports whether p's bucket is spent (its GETs are refused) and
// whether it owes more than MaxGetBytes, or half a smaller burst (its
// blocked streams count as stalled).
func (a *abandonBudget) state(p peer.ID) (spent, owing bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.peers[p]
	if b == nil {
		return false, false
	}
	b.fill(a.rate, a.burst, a.now())
	return b.tokens <= 0, b.tokens < a.burst-min(MaxGetBytes, a.burst/2)
}

// prune forgets the buckets that have refilled, and reports whether it
// made room; the caller holds a.mu.
func (a *abandonBudget) prune(now time.Time) bool {
	for p, b := range a.peers {
		if b.fill(a.rate, a.burst, now); b.tokens >= a.burst {
			delete(a.peers, p)
		}
	}
	return len(a.peers) < maxBudgetPeers
}

// abandonRefusal is the reply to a GET of a peer whose abandonment budget
// is spent. It is marked busy: the budget refills within seconds, and an
// honest reader charged by closing its streams with replies in flight
// (an interrupted get, read-ahead it no longer wanted) should wait and ask
// again rather than count the provider as failed.
func abandonRefusal() *pb.FetchReply {
	return &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_REFUSED, Busy: true,
		Reason: "this peer reset streams leaving more replies unread than its budget allows; read the replies you ask for, and retry in a few seconds"}
}

// unsent is the block bytes of j's reply, which a reset stream leaves
// unsent: the whole of it (the part already sent is not known, and is at
// most a flow-control window).
func unsent(j *job) int64 {
	if j.reply == nil {
		return 0
	}
	return int64(len(j.reply.Data))
}
