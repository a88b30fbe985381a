package provider

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"golang.org/x/time/rate"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// Scrub: the node re-reads every block it holds in the background, at a
// bounded disk rate, and verifies it against its CID. A block that fails
// is quarantined by the store and fetched again from a peer by the repair
// loop, so corruption is found even in objects nobody reads.

// Defaults of the scrub options.
const (
	// DefaultScrubRate is the disk read rate a scrub may use, in bytes per
	// second.
	DefaultScrubRate = 8_000_000
	// DefaultScrubPause is the pause between two full passes.
	DefaultScrubPause = time.Hour
)

type scrubConfig struct {
	rate  int64
	pause time.Duration
}

func defaultScrubConfig() scrubConfig {
	return scrubConfig{rate: DefaultScrubRate, pause: DefaultScrubPause}
}

// WithScrub sets the disk rate of the background scrub in bytes per second
// (0 turns it off) and the pause between full passes (defaults
// DefaultScrubRate, DefaultScrubPause).
func WithScrub(bytesPerSecond int64, pause time.Duration) Option {
	return func(c *config) {
		c.scrub.rate = max(bytesPerSecond, 0)
		if pause > 0 {
			c.scrub.pause = pause
		}
	}
}

// ScrubStatus is the scrub part of a node's Status.
type ScrubStatus struct {
	// Rate is the configured disk rate in bytes per second (0: off).
	Rate int64 `json:"rate"`
	// Passes counts full passes finished; LastPass is how long the last
	// took and LastPassEnd when it ended.
	Passes      int           `json:"passes"`
	LastPass    time.Duration `json:"lastPassNs"`
	LastPassEnd *time.Time    `json:"lastPassEnd,omitempty"`
	// Pass* describe the pass under way: blocks checked of those listed.
	PassChecked int `json:"passChecked"`
	PassBlocks  int `json:"passBlocks"`
	// Checked, Failed and Repaired count blocks over the node's life:
	// verified, found corrupt or missing, and found so and held again since.
	Checked  uint64 `json:"checked"`
	Failed   uint64 `json:"failed"`
	Repaired uint64 `json:"repaired"`
}

// scrubber is the scrub's state.
type scrubber struct {
	mu      sync.Mutex
	st      ScrubStatus
	pending map[cid.Cid]struct{} // found corrupt, not yet held again
}

func newScrubber(cfg scrubConfig) *scrubber {
	return &scrubber{st: ScrubStatus{Rate: cfg.rate}, pending: map[cid.Cid]struct{}{}}
}

// scrubLoop runs full passes, pausing between them, until ctx ends.
func (s *Server) scrubLoop(ctx context.Context) {
	r := s.cfg.scrub.rate
	lim := rate.NewLimiter(rate.Limit(r), int(max(r, chunker.MaxChunkSize)))
	for {
		if err := s.scrubPass(ctx, lim); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("scrub pass stopped", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.cfg.scrub.pause):
		}
	}
}

// scrubPass reads and verifies every block held once.
func (s *Server) scrubPass(ctx context.Context, lim *rate.Limiter) error {
	start := time.Now()
	type blk struct {
		c    cid.Cid
		size uint64
	}
	var list []blk
	if err := s.bs.AllBlocks(func(c cid.Cid, size uint64) error {
		list = append(list, blk{c, size})
		return nil
	}); err != nil {
		return err
	}
	sc := s.scrub
	sc.mu.Lock()
	sc.st.PassBlocks, sc.st.PassChecked = len(list), 0
	sc.mu.Unlock()
	for _, b := range list {
		if err := lim.WaitN(ctx, int(min(b.size, uint64(lim.Burst())))); err != nil {
			return err
		}
		_, err := s.bs.Get(b.c)
		bad := errors.Is(err, blockstore.ErrCorrupt)
		sc.mu.Lock()
		sc.st.PassChecked++
		if err == nil || bad {
			sc.st.Checked++
		}
		if bad {
			sc.st.Failed++
			sc.pending[b.c] = struct{}{}
		}
		sc.mu.Unlock()
		s.am.scrubBytes.Add(float64(b.size))
		if err == nil || bad {
			s.am.scrubChecked.Inc()
		}
		if bad {
			s.am.scrubFailed.Inc()
			s.log.Warn("scrub found a corrupt block; repairing it from a peer", "cid", b.c)
			s.repairs.add(b.c)
		}
		s.scrubRepaired()
	}
	end := time.Now()
	sc.mu.Lock()
	sc.st.Passes++
	sc.st.LastPass = end.Sub(start)
	sc.st.LastPassEnd = &end
	sc.mu.Unlock()
	s.am.scrubPassSeconds.Set(end.Sub(start).Seconds())
	s.am.scrubPasses.Inc()
	return nil
}

// scrubRepaired moves the blocks the scrub found corrupt that are held
// again to the repaired count.
func (s *Server) scrubRepaired() {
	sc := s.scrub
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for c := range sc.pending {
		if ok, err := s.bs.Has(c); err == nil && ok {
			delete(sc.pending, c)
			sc.st.Repaired++
			s.am.scrubRepaired.Inc()
		}
	}
}

// scrubStatus is the scrub part of Status.
func (s *Server) scrubStatus() *ScrubStatus {
	s.scrubRepaired()
	s.scrub.mu.Lock()
	defer s.scrub.mu.Unlock()
	st := s.scrub.st
	return &st
}
