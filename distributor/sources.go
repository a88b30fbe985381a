package distributor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/p2p"
)

// How sources are found and ranked.
const (
	// sourcesTTL is how long a bag's provider list is reused before the
	// chain and the DHT are asked again (events about the bag's storage
	// side drop it sooner).
	sourcesTTL = 30 * time.Second
	// dhtTimeout bounds one DHT lookup of a bag's providers.
	dhtTimeout = 3 * time.Second
	// maxDHTSources bounds the providers a bag's DHT lookup adds to the
	// chain's operators: announcing a bag key is free, so the DHT may name
	// any number of fresh peer IDs, and each costs a fetch attempt.
	maxDHTSources = 20
	// dhtFetchTimeout bounds one fetch attempt from a provider only the
	// DHT names and that has delivered nothing yet: a peer that announced
	// a bag it does not serve costs a miss this long, not the fetch
	// timeout.
	dhtFetchTimeout = 3 * time.Second
	// dhtPenalty is the seconds a provider only the DHT names adds to its
	// score: the chain's operators, answerable for the bag, go first
	// unless they are busy or failing.
	dhtPenalty = 100
	// maxSourceStats bounds the providers whose measurements are kept
	// (about 200 bytes each), least recently used dropped first: each
	// fresh peer ID the DHT names would otherwise add one for good.
	maxSourceStats = 1024
	// maxStatusSources bounds the providers the status and the metrics
	// list, best first.
	maxStatusSources = 64
	// ewmaWeight is the weight of a new sample in a source's averages.
	ewmaWeight = 0.3
	// smallBlock is the size below which a fetch measures time to first
	// byte; larger ones measure throughput.
	smallBlock = 64 << 10
	// failBackoff is how long a failed source goes to the end of the
	// ranking, doubled per consecutive failure up to maxFailBackoff.
	failBackoff    = 2 * time.Second
	maxFailBackoff = time.Minute
	// busyPause is how long a source that answered busy (its memory
	// budget for all readers spent) ranks after the sources that did not,
	// and before failed ones; busy is not a failure.
	busyPause = 5 * time.Second
	// busyPenalty and failPenalty are the seconds a busy and a failed
	// source's score gains while paused.
	busyPenalty = 1e3
	failPenalty = 1e6
)

// sources finds the storage providers of a bag (the chain's operator
// metadata, then the DHT) and ranks them by what fetches measured.
type sources struct {
	h      *p2p.Host
	c      ChainReader
	health *chainHealth

	mu    sync.Mutex
	bags  map[chain.BagID]bagSources
	stats *simplelru.LRU[peer.ID, *sourceStats]
}

type bagSources struct {
	peers []source
	at    time.Time
}

// source is a provider of a bag as a fetch tries it.
type source struct {
	id peer.ID
	// onChain: it operates one of the bag's storage buckets; else only
	// the DHT names it.
	onChain bool
	// proven: it delivered a block before (its measurements say so).
	proven bool
}

// timeout bounds one fetch attempt from src: full for the chain's
// operators and for peers that delivered before, short for the others.
func (src source) timeout(full time.Duration) time.Duration {
	if src.onChain || src.proven {
		return full
	}
	return min(full, dhtFetchTimeout)
}

// sourceStats are the measurements of one provider.
type sourceStats struct {
	ttfb       time.Duration // EWMA of small fetches' duration
	throughput float64       // EWMA of bytes per second of large fetches
	fetches    uint64
	bytes      uint64
	failures   uint64
	failStreak int
	until      time.Time // ranked last until then
	busy       uint64
	busyUntil  time.Time // ranked after the sources not busy until then
}

// SourceStatus is one storage provider as the node ranks it.
type SourceStatus struct {
	Peer       string  `json:"peer"`
	TTFBMillis float64 `json:"ttfbMs"`
	// Throughput is in bytes per second (0 until measured).
	Throughput float64 `json:"throughput"`
	Fetches    uint64  `json:"fetches"`
	Bytes      uint64  `json:"bytes"`
	Failures   uint64  `json:"failures"`
	// Busy counts the fetches it refused busy (not failures).
	Busy uint64 `json:"busy"`
	// Score is the expected seconds to fetch a 1 MiB chunk (lower first).
	Score float64 `json:"score"`
}

func newSources(h *p2p.Host, c ChainReader, health *chainHealth) *sources {
	stats, err := simplelru.NewLRU[peer.ID, *sourceStats](maxSourceStats, nil)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &sources{h: h, c: c, health: health, bags: map[chain.BagID]bagSources{}, stats: stats}
}

// invalidate forgets the providers of bag (nil: of every bag).
func (s *sources) invalidate(bag *chain.BagID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if bag == nil {
		clear(s.bags)
		return
	}
	delete(s.bags, *bag)
}

// ranked returns the providers of bag, best first: by score, where a
// provider only the DHT names scores dhtPenalty more than an operator.
func (s *sources) ranked(ctx context.Context, bag chain.BagID, size int) ([]source, error) {
	ps, err := s.find(ctx, bag)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(ps)
	scores := make(map[peer.ID]float64, len(out))
	for i, p := range out {
		var sc float64
		if st, ok := s.stats.Peek(p.id); ok { // no entry for the unmeasured
			sc = st.score(size, now)
			out[i].proven = st.fetches > 0
		}
		if !p.onChain {
			sc += dhtPenalty
		}
		scores[p.id] = sc
	}
	slices.SortStableFunc(out, func(a, b source) int {
		switch {
		case scores[a.id] < scores[b.id]:
			return -1
		case scores[a.id] > scores[b.id]:
			return 1
		}
		return 0
	})
	return out, nil
}

// score is the expected seconds to fetch size bytes; unmeasured sources
// score 0 so that each is tried; busy ones score high for busyPause,
// failed ones higher until their backoff ends.
func (st *sourceStats) score(size int, now time.Time) float64 {
	s := st.ttfb.Seconds()
	if st.throughput > 0 {
		s += float64(size) / st.throughput
	}
	if now.Before(st.busyUntil) {
		s += busyPenalty
	}
	if now.Before(st.until) {
		s += failPenalty
	}
	return s
}

// statsOf returns p's measurements, kept from now on (under mu).
func (s *sources) statsOf(p peer.ID) *sourceStats {
	st, ok := s.stats.Get(p)
	if !ok {
		st = &sourceStats{}
		s.stats.Add(p, st)
	}
	return st
}

// observe records a successful fetch of n bytes from p that took d.
func (s *sources) observe(p peer.ID, n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.statsOf(p)
	st.fetches++
	st.bytes += uint64(n)
	st.failStreak = 0
	st.until = time.Time{}
	if n < smallBlock || st.ttfb == 0 {
		if st.ttfb == 0 {
			st.ttfb = d
		} else {
			st.ttfb = time.Duration(ewmaWeight*float64(d) + (1-ewmaWeight)*float64(st.ttfb))
		}
	}
	if n >= smallBlock && d > 0 {
		bps := float64(n) / d.Seconds()
		if st.throughput == 0 {
			st.throughput = bps
		} else {
			st.throughput = ewmaWeight*bps + (1-ewmaWeight)*st.throughput
		}
	}
}

// fail records a failed fetch from p.
func (s *sources) fail(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.statsOf(p)
	st.failures++
	st.failStreak++
	back := min(failBackoff<<min(st.failStreak-1, 10), maxFailBackoff)
	st.until = time.Now().Add(back)
}

// busy records that p refused a fetch busy: it holds the block but its
// budget for all readers is spent. It goes after the others for
// busyPause; its failures and measurements stay as they were.
func (s *sources) busy(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.statsOf(p)
	st.busy++
	st.busyUntil = time.Now().Add(busyPause)
}

// status returns the measured sources, best first, at most
// maxStatusSources.
func (s *sources) status() []SourceStatus {
	s.mu.Lock()
	now := time.Now()
	out := make([]SourceStatus, 0, s.stats.Len())
	for _, p := range s.stats.Keys() {
		st, _ := s.stats.Peek(p)
		out = append(out, SourceStatus{
			Peer: p.String(), TTFBMillis: float64(st.ttfb.Microseconds()) / 1000, Throughput: st.throughput,
			Fetches: st.fetches, Bytes: st.bytes, Failures: st.failures, Busy: st.busy, Score: st.score(1<<20, now),
		})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b SourceStatus) int {
		// Sources that never delivered (failed or busy) after those that did.
		if (a.Fetches == 0) != (b.Fetches == 0) {
			if a.Fetches == 0 {
				return 1
			}
			return -1
		}
		if a.Score != b.Score {
			if a.Score < b.Score {
				return -1
			}
			return 1
		}
		if a.Peer < b.Peer {
			return -1
		}
		return 1
	})
	return out[:min(len(out), maxStatusSources)]
}

// find returns the bag's providers: the active operators of its storage
// buckets (whose published addresses go into the peerstore), then at most
// maxDHTSources others the DHT names for the bag key. The list is cached
// for sourcesTTL.
func (s *sources) find(ctx context.Context, bag chain.BagID) ([]source, error) {
	s.mu.Lock()
	c, ok := s.bags[bag]
	s.mu.Unlock()
	if ok && time.Since(c.at) < sourcesTTL && len(c.peers) > 0 {
		return c.peers, nil
	}
	seen := map[peer.ID]bool{s.h.ID(): true}
	var out []source
	b, err := s.c.Bag(ctx, bag)
	if err != nil && !errors.Is(err, chain.ErrNotFound) {
		if ctx.Err() == nil {
			s.health.fail("a bag's storage buckets", err)
		}
		return nil, fmt.Errorf("%w: bag %s: %v", ErrChainUnavailable, bag, err)
	}
	s.health.ok()
	for _, id := range b.StorageBuckets {
		bkt, err := s.c.StorageBucket(ctx, id)
		if err != nil || bkt.OperatorStatus != chain.OperatorActive || bkt.Metadata == nil {
			continue
		}
		ai, err := p2p.ParseAddrInfo(bkt.Metadata.PeerID, bkt.Metadata.Multiaddrs)
		if err != nil {
			continue
		}
		if len(ai.Addrs) > 0 {
			s.h.Libp2p().Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.AddressTTL)
		}
		if !seen[ai.ID] {
			seen[ai.ID] = true
			out = append(out, source{id: ai.ID, onChain: true})
		}
	}
	// The operators announce the bag too: ask for enough to leave
	// maxDHTSources others.
	dctx, cancel := context.WithTimeout(ctx, dhtTimeout)
	found, _ := s.h.FindProviders(dctx, p2p.BagKey(string(bag)), len(out)+maxDHTSources)
	cancel()
	others := 0
	for _, ai := range found {
		if seen[ai.ID] || others == maxDHTSources {
			continue
		}
		seen[ai.ID] = true
		others++
		if len(ai.Addrs) > 0 {
			// Kept no longer than the lookup is: a peer the DHT named
			// once is no lasting entry of the peerstore.
			s.h.Libp2p().Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
		}
		out = append(out, source{id: ai.ID})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: bag %s has no storage provider with published addresses on chain or in the DHT", ErrNoSource, bag)
	}
	s.mu.Lock()
	s.bags[bag] = bagSources{peers: out, at: time.Now()}
	s.mu.Unlock()
	return out, nil
}
