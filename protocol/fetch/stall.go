package fetch

import (
	"context"
	"sync"
	"time"

	"github.com/satchel-net/satchel/p2p"
)

// Stalled streams. A stream whose reader stops reading holds the memory of
// MaxHeldGETs replies until its write times out (IdleTimeout); peer IDs are
// free, so enough such readers could hold the whole budget every peer
// shares and have every honest GET refused as busy. So a GET that finds the
// shared budget spent first resets the stream whose reply write has been
// blocked longest — at least the stall age (WithStallEviction) — and takes
// the memory it frees. A reader whose writes complete within the stall
// age is never reset for another; a refused GET is the last resort. The
// age is a stream's, so a reader could reset each stream just before it
// and open another; the replies it leaves unsent are charged to its peer
// (abandonBudget), whose blocked streams then count as stalled at any age.

const (
	// DefaultStallEviction is the stall age of WithStallEviction: a reply
	// write blocked 10 s is a reader taking in less than 210 KB/s of a
	// 2 MiB block (105 KB/s of a 1 MiB one), a third of IdleTimeout, after
	// which the stream would be reset anyway.
	DefaultStallEviction = 10 * time.Second
	// maxEvictions bounds the streams one GET resets to make room.
	maxEvictions = 4
	// evictWait bounds how long a GET waits for a reset stream to give its
	// memory back (it normally takes a few milliseconds).
	evictWait = 5 * time.Second
)

// WithStallEviction sets the stall age after which a stream whose reply
// write is blocked may be reset to serve another peer's GET when the memory
// budget shared by all peers (the fetch protocol's or the node's) is spent.
// The default is DefaultStallEviction; 0 lets any blocked write be reset; a
// negative age never resets, and such a GET is refused busy.
func WithStallEviction(after time.Duration) Option {
	return func(c *config) { c.stallAfter = after }
}

// streamSet is the streams a handler serves.
type streamSet struct {
	mu sync.Mutex
	m  map[*stream]struct{}
}

func (ss *streamSet) add(st *stream) {
	ss.mu.Lock()
	ss.m[st] = struct{}{}
	ss.mu.Unlock()
}

func (ss *streamSet) remove(st *stream) {
	ss.mu.Lock()
	delete(ss.m, st)
	ss.mu.Unlock()
}

// stalest returns the stream other than self holding GET memory whose
// reply write is blocked and began longest ago, and no later than before
// (UnixNano), marked evicted, with when that write began; nil if there is
// none. A stream of a peer that abandoned replies lately (see
// abandonBudget) counts as stalled whatever its write's age, and goes
// first.
func (ss *streamSet) stalest(self *stream, before int64, abandons *abandonBudget) (*stream, int64) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var victim *stream
	var oldest int64
	var victimOwes bool
	for st := range ss.m {
		w := st.writing.Load()
		if st == self || st.evicted.Load() || w == 0 || st.reserved.Load() == 0 {
			continue
		}
		_, owes := abandons.state(st.from)
		if !owes && w > before {
			continue
		}
		if victim == nil || owes && !victimOwes || owes == victimOwes && w < oldest {
			victim, oldest, victimOwes = st, w, owes
		}
	}
	if victim != nil {
		victim.evicted.Store(true)
	}
	return victim, oldest
}

// fetchFrees reports whether err, a failed reservation, reached a budget
// every peer shares that resetting a fetch stream gives memory back to:
// the fetch protocol's or the node's (not a peer's own, nor the transient
// scope, which holds no fetch stream's memory).
func fetchFrees(err error) bool {
	scope, shared := p2p.BudgetScope(err)
	return shared && (scope == "system" || scope == "protocol:"+string(p2p.FetchProtocol))
}

// reserveGET reserves a GET's memory in the stream's scope. When the budget
// every peer shares is spent it resets the stalest stream (see
// WithStallEviction), waits for it to give its memory back and tries again,
// up to maxEvictions times; it returns the last reservation's error.
func (st *stream) reserveGET(ctx context.Context) error {
	err := p2p.Reserve(st.s, getMemory)
	for range maxEvictions {
		if err == nil || st.h.cfg.stallAfter < 0 {
			break
		}
		if !fetchFrees(err) {
			break
		}
		victim, since := st.h.streams.stalest(st, time.Now().Add(-st.h.cfg.stallAfter).UnixNano(), st.h.abandons)
		if victim == nil {
			break
		}
		st.h.metrics.evicted.Inc()
		st.h.log.Debug("resetting a stalled stream to make room", "peer", victim.s.Conn().RemotePeer(),
			"stalled", time.Since(time.Unix(0, since)), "for", st.s.Conn().RemotePeer())
		_ = victim.s.Reset()
		t := time.NewTimer(evictWait)
		select {
		case <-victim.done:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		if ctx.Err() != nil {
			return err
		}
		err = p2p.Reserve(st.s, getMemory)
	}
	if err == nil {
		st.reserved.Add(getMemory)
	}
	return err
}
