package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/protocol/fetch"
)

// Source selection limits.
const (
	// perSourceInFlight is how many blocks a download asks one provider for
	// at once (the fetch protocol's fetch.MaxInFlight).
	perSourceInFlight = 8
	// sourceFailures is how many failed reads in a row make a provider
	// skipped for the rest of a download.
	sourceFailures = 3
	// getTimeout bounds one block read from one provider.
	getTimeout = 30 * time.Second
	// rateAlpha is the weight of a new sample in a provider's throughput
	// and latency averages.
	rateAlpha = 0.3
	// busyPause is how long a provider that answered busy (its memory
	// budget for all readers spent) goes behind the providers that did
	// not; it is asked again after, or sooner when no other is left.
	busyPause = 5 * time.Second
)

// errLied marks a provider that sent bytes that do not match the CID asked
// for.
var errLied = errors.New("sent bytes that do not match the CID")

// source is one provider a download reads from, with what it has shown of
// its speed.
type source struct {
	peer     peer.ID
	index    int // order of preference before any measurement
	inflight int
	rate     float64       // bytes per second, moving average; 0 until measured
	latency  time.Duration // time to the first block, moving average
	samples  int
	fails    int   // failed reads in a row
	skipped  error // why it is no longer used
	// busyUntil is when a provider that answered busy is ranked with the
	// others again; busy counts its busy answers. Busy is neither a
	// failure nor "not held".
	busyUntil time.Time
	busy      int
}

// expected estimates how long a new read of size bytes from s would take,
// counting the reads already queued on it. Unmeasured sources score zero,
// so each is tried early: measuring them is how the fastest are found.
func (s *source) expected(size int64) float64 {
	if s.samples == 0 {
		return float64(s.inflight) * 1e-3
	}
	per := s.latency.Seconds() + float64(size)/s.rate
	return per * float64(s.inflight+1)
}

// sources picks, for every block of a download, the provider expected to
// deliver it first, and skips providers that fail or lie. Providers that
// answered busy lately come after the others.
type sources struct {
	c   *Client
	bag chain.BagID
	now func() time.Time

	mu    sync.Mutex
	cond  *sync.Cond
	all   []*source
	tried []PeerError // first failure of every skipped source
	// more finds providers the download could not reach at first
	// (Client.reachAgain); it runs once, when a block has no source left,
	// and moreRun is closed when it has (nil before more is set and after).
	// A run its caller called off is not spent: more is set again.
	// moreErr is why the run found none, noted in the errors of reads
	// with no source.
	more    func(ctx context.Context) ([]peer.ID, error)
	moreRun chan struct{}
	moreErr error
}

func newSources(c *Client, bag chain.BagID, peers []peer.ID) *sources {
	s := &sources{c: c, bag: bag, now: time.Now}
	s.cond = sync.NewCond(&s.mu)
	for i, p := range peers {
		s.all = append(s.all, &source{peer: p, index: i})
	}
	return s
}

// acquire returns the best source for a block of about size bytes that has
// not been tried for it (exclude), waiting while every candidate is busy.
// It fails when no candidate is left.
func (s *sources) acquire(ctx context.Context, size int64, exclude map[peer.ID]error) (*source, error) {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var best *source
		waiting := false
		now := s.now()
		for _, src := range s.all {
			if src.skipped != nil {
				continue
			}
			if _, ok := exclude[src.peer]; ok {
				continue
			}
			if src.inflight >= perSourceInFlight {
				waiting = true
				continue
			}
			if best == nil || better(src, best, size, now) {
				best = src
			}
		}
		if best != nil {
			best.inflight++
			return best, nil
		}
		if !waiting {
			return nil, errNoSource
		}
		s.cond.Wait()
	}
}

var errNoSource = errors.New("no source left")

// errNoNewBlock is why providers not reached were not looked up again: the
// chain made no block to read their addresses after (Client.reachAgain).
var errNoNewBlock = errors.New("the chain made no new block")

// count returns the number of sources.
func (s *sources) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.all)
}

// reachLater sets more, which reachMore runs once when a read has no
// source left.
func (s *sources) reachLater(more func(ctx context.Context) ([]peer.ID, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.more, s.moreRun = more, make(chan struct{})
}

// reachMore runs more, once per download, for a read that has no source
// left, and adds the providers it reached as sources; reads that find no
// source meanwhile wait for it. A run that found none because ctx ended
// is not spent: the next read with no source runs it again (a read with
// a short deadline would otherwise keep every later read from looking).
// It reports whether the read is to look for a source again.
func (s *sources) reachMore(ctx context.Context) bool {
	s.mu.Lock()
	more, run := s.more, s.moreRun
	s.more = nil
	s.mu.Unlock()
	if run == nil {
		return false
	}
	if more == nil { // another read runs it
		select {
		case <-run:
			return true
		case <-ctx.Done():
			return false
		}
	}
	peers, err := more(ctx)
	s.mu.Lock()
	for _, p := range peers {
		if !slices.ContainsFunc(s.all, func(src *source) bool { return src.peer == p }) {
			s.all = append(s.all, &source{peer: p, index: len(s.all)})
		}
	}
	s.tried = slices.DeleteFunc(s.tried, func(e PeerError) bool { return slices.Contains(peers, e.Peer) })
	if len(peers) == 0 && ctx.Err() != nil {
		// Called off with this read: the reads waiting look again, and
		// the first with no source runs it.
		s.more, s.moreRun = more, make(chan struct{})
	} else {
		s.moreRun, s.moreErr = nil, err
	}
	s.cond.Broadcast()
	s.mu.Unlock()
	close(run)
	return len(peers) > 0
}

// better reports whether a is to be asked before b: one that answered
// busy lately comes after one that did not, then the one expected first.
func better(a, b *source, size int64, now time.Time) bool {
	if ba, bb := now.Before(a.busyUntil), now.Before(b.busyUntil); ba != bb {
		return bb
	}
	ea, eb := a.expected(size), b.expected(size)
	if ea != eb {
		return ea < eb
	}
	return a.index < b.index
}

// release records the outcome of a read from src.
func (s *sources) release(src *source, n int, took time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	src.inflight--
	s.cond.Broadcast()
	switch {
	case err == nil:
		src.fails = 0
		if took <= 0 {
			took = time.Microsecond
		}
		rate := float64(n) / took.Seconds()
		if src.samples == 0 {
			src.rate, src.latency = rate, took
		} else {
			src.rate = (1-rateAlpha)*src.rate + rateAlpha*rate
			src.latency = time.Duration((1-rateAlpha)*float64(src.latency) + rateAlpha*float64(took))
		}
		src.samples++
	case errors.Is(err, errLied) || errors.Is(err, chunker.ErrCIDMismatch):
		s.skip(src, err)
	case errors.Is(err, ErrNotFound):
		// It lacks this block; it may hold others.
	case errors.Is(err, fetch.ErrProviderBusy):
		// Loaded by others: it holds the block and is neither failing nor
		// lying. Ask the others first for a while.
		src.busy++
		src.busyUntil = s.now().Add(busyPause)
		s.c.log.Debug("provider busy; reading from others for a while", "peer", src.peer, "for", busyPause)
	default:
		src.fails++
		if src.fails >= sourceFailures {
			s.skip(src, err)
		}
	}
}

func (s *sources) skip(src *source, err error) {
	if src.skipped != nil {
		return
	}
	src.skipped = err
	s.tried = append(s.tried, PeerError{Peer: src.peer, Err: err})
	level := slog.LevelInfo
	if errors.Is(err, context.Canceled) {
		// The download was called off (Ctrl-C): no news about the provider.
		level = slog.LevelDebug
	}
	s.c.log.Log(context.Background(), level, "provider skipped for this download", "peer", src.peer, "err", err)
}

// get reads block c, from the best source that has it, verifying it.
// A source that fails is not asked for c again; one that lies or keeps
// failing is skipped for the whole download. When every source left
// answered busy, the busy ones are asked again after a pause, for up to
// the client's busy wait.
func (s *sources) get(ctx context.Context, c cid.Cid, sizeHint int64) ([]byte, error) {
	b, err := s.read(ctx, c, sizeHint)
	return b.Data, err
}

// read is get returning the block in a pooled buffer, which the caller
// releases once done with its bytes.
func (s *sources) read(ctx context.Context, c cid.Cid, sizeHint int64) (fetch.Block, error) {
	exclude := map[peer.ID]error{}
	bw := fetch.BusyWait{Max: s.c.opts.busyWait}
	for {
		src, err := s.acquire(ctx, sizeHint, exclude)
		if errors.Is(err, errNoSource) && s.reachMore(ctx) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return fetch.Block{}, ctx.Err()
			}
			busy := busyPeers(exclude)
			if len(busy) == 0 {
				return fetch.Block{}, s.notFound(c, exclude)
			}
			if ok, err := bw.Wait(ctx); err != nil {
				return fetch.Block{}, err
			} else if !ok {
				return fetch.Block{}, busyError(c, busy, bw.Waited())
			}
			for _, p := range busy {
				delete(exclude, p)
			}
			continue
		}
		start := time.Now()
		gctx, cancel := context.WithTimeout(ctx, getTimeout)
		b, err := s.c.fetch.ReadBlock(gctx, src.peer, c)
		cancel()
		n := len(b.Data)
		if err == nil && !s.c.fetchVerifies {
			if err = verifyBlock(c, b.Data); err != nil {
				b.Release()
			}
		} else if ctx.Err() == nil && isNotFound(err) {
			err = errNotHeld{}
		}
		s.release(src, n, time.Since(start), err)
		if err == nil {
			return b, nil
		}
		if ctx.Err() != nil {
			return fetch.Block{}, ctx.Err()
		}
		s.c.log.Debug("block read failed", "peer", src.peer, "cid", c, "err", err)
		exclude[src.peer] = err
	}
}

// busyPeers returns the peers of tried that answered busy.
func busyPeers(tried map[peer.ID]error) []peer.ID {
	var out []peer.ID
	for p, err := range tried {
		if errors.Is(err, fetch.ErrProviderBusy) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// busyError is the error when the providers that could deliver block c
// answered busy after waiting waited for them.
func busyError(c cid.Cid, busy []peer.ID, waited time.Duration) error {
	names := make([]string, len(busy))
	for i, p := range busy {
		names[i] = shortPeer(p)
	}
	return fmt.Errorf("%w: download block %s: the providers that may hold it (%s) were busy serving others for %s; retry later",
		ErrProvidersBusy, c, strings.Join(names, ", "), waited)
}

// notFound is the error when no source could deliver block c, with why
// the providers not reached were not looked up again, if they were not.
func (s *sources) notFound(c cid.Cid, tried map[peer.ID]error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return reachNote(s.notFoundLocked(c, tried), s.moreErr)
}

// reachNote adds to err, which says no provider could deliver, why the
// providers not reached were not looked up again: reachErr, the error of
// Client.reachAgain. A read called off (reachErr a context error) adds
// nothing.
func reachNote(err, reachErr error) error {
	if reachErr == nil || errors.Is(reachErr, context.Canceled) || errors.Is(reachErr, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w; those that could not be connected to were not looked up again: %w", err, reachErr)
}

func (s *sources) notFoundLocked(c cid.Cid, tried map[peer.ID]error) error {
	e := &NoProviderError{Bag: s.bag, Need: 1, Op: "download block " + c.String()}
	seen := map[peer.ID]bool{}
	for _, src := range s.all {
		if err, ok := tried[src.peer]; ok {
			e.Tried = append(e.Tried, PeerError{Peer: src.peer, Err: err})
			seen[src.peer] = true
		}
	}
	for _, t := range s.tried {
		if !seen[t.Peer] {
			e.Tried = append(e.Tried, t)
		}
	}
	var holders []string
	for _, t := range e.Tried {
		if !errors.Is(t.Err, ErrNotFound) {
			return e
		}
		holders = append(holders, shortPeer(t.Peer))
	}
	if len(holders) == 0 {
		return e
	}
	return fmt.Errorf("%w: none of the %d providers asked holds block %s (%s)", ErrNotFound, len(holders), c, strings.Join(holders, ", "))
}

// errNotHeld is a provider's NOT_FOUND: it does not hold the block (or not
// for a bag it stores).
type errNotHeld struct{}

func (errNotHeld) Error() string        { return "does not hold it" }
func (errNotHeld) Is(target error) bool { return target == ErrNotFound }

// isNotFound reports whether a fetch error says the provider does not hold
// the block (NOT_FOUND).
func isNotFound(err error) bool {
	return errors.Is(err, fetch.ErrNotServed) || errors.Is(err, ErrNotFound)
}

// verifyBlock checks that data hashes to c, whatever c's codec: a raw
// chunk or a dag-pb node.
func verifyBlock(c cid.Cid, data []byte) error {
	if c.Type() == cid.Raw && c.Prefix().MhType == multihash.SHA2_256 {
		if err := chunker.VerifyChunk(c, data); err != nil {
			return fmt.Errorf("%w: %v", errLied, err)
		}
		return nil
	}
	got, err := c.Prefix().Sum(data)
	if err != nil {
		return fmt.Errorf("verify block %s: %w", c, err)
	}
	if !got.Equals(c) {
		return fmt.Errorf("%w: block %s hashes to %s", errLied, c, got)
	}
	return nil
}
