package distributor

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/satchel-net/satchel/chain"
)

// IndexFootprint returns how many object ID runs and object records the
// node's index holds (for tests of its memory).
func (s *Server) IndexFootprint() (runs, records int) { return s.index.footprint() }

// HoldMissSlots takes every --max-misses slot until release is called (for
// tests of answers that wait for one).
func (s *Server) HoldMissSlots() (release func()) {
	for range cap(s.misses) {
		s.misses <- struct{}{}
	}
	return func() {
		for range cap(s.misses) {
			<-s.misses
		}
	}
}

// FetchesRunning returns how many block fetches the node runs.
func (s *Server) FetchesRunning() int {
	s.fetch.mu.Lock()
	defer s.fetch.mu.Unlock()
	return len(s.fetch.calls)
}

// EvictCached evicts object id from the cache through the cache's own
// removal (the one eviction to make room and a deletion on chain use).
func (s *Server) EvictCached(id chain.ObjectID) { s.cache.remove(id) }

// HoldFetchSlots takes every --max-fetches slot until release is called.
func (s *Server) HoldFetchSlots() (release func()) {
	for range cap(s.fetch.slots) {
		s.fetch.slots <- struct{}{}
	}
	return func() {
		for range cap(s.fetch.slots) {
			<-s.fetch.slots
		}
	}
}

// IdleHTTPConns returns how many HTTP connections the node knows idle
// (those it may close for room at --max-conns).
func (s *Server) IdleHTTPConns() int {
	l := s.ln.(*connLimiter)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.idle.Len()
}

// RecordPriority reports whether the node's DHT keeps p's provider records
// first: the rule the node installs on its host, called as the DHT calls
// it.
func (s *Server) RecordPriority(p peer.ID) bool { return s.priority != nil && s.priority.Is(p) }

// MissSlotsHeld returns how many --max-misses slots answers hold.
func (s *Server) MissSlotsHeld() int { return len(s.misses) }

// Bounds of the providers a miss tries, for tests of a DHT flood.
const (
	MaxDHTSources    = maxDHTSources
	DHTFetchTimeout  = dhtFetchTimeout
	MaxStatusSources = maxStatusSources
)

// LookUpSources looks the providers of bag up again, as a miss does once
// their list is stale, and returns them (kept for the misses that
// follow): the chain's operators and the peers only the DHT names.
func (s *Server) LookUpSources(ctx context.Context, bag chain.BagID) (onChain, dhtOnly []peer.ID, err error) {
	s.srcs.invalidate(&bag)
	ps, err := s.srcs.find(ctx, bag)
	for _, p := range ps {
		if p.onChain {
			onChain = append(onChain, p.id)
		} else {
			dhtOnly = append(dhtOnly, p.id)
		}
	}
	return onChain, dhtOnly, err
}

// WithFollowBackoff sets the follower's backoff after a failure: first,
// doubled per failure up to most.
func WithFollowBackoff(first, most time.Duration) Option {
	return func(c *config) { c.followBackoff, c.maxFollowBackoff = first, most }
}

// ReadBlockFile returns the block a cached block file at path holds (the
// file without its checksum trailer).
func ReadBlockFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < blockTrailer {
		return nil, fmt.Errorf("block file %s: %d bytes, shorter than its trailer", path, len(b))
	}
	return b[:len(b)-blockTrailer], nil
}
