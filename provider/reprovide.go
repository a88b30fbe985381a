package provider

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/p2p"
)

// Announcing makes the node findable. On the DHT it provides the bag key
// (p2p.BagKey) of every bag it stores — assigned to its bucket, or moved
// away but not cleaned up yet — when the bag arrives and again every
// reprovide interval, since provider records expire. On chain
// it keeps its operator metadata — peer ID and addresses — current, so
// clients and peers that start from the chain can dial it. Failed
// announcements are retried with a backoff.

const (
	// provideTimeout bounds one DHT provide.
	provideTimeout = time.Minute
	// Retry backoff of failed announcements.
	announceRetryMin = 2 * time.Second
	announceRetryMax = 5 * time.Minute
)

// announcer collects the bags to provide.
type announcer struct {
	mu      sync.Mutex
	pending map[chain.BagID]struct{}
	all     bool
	wake    chan struct{}

	provided map[chain.BagID]time.Time
}

func newAnnouncer() *announcer {
	return &announcer{pending: map[chain.BagID]struct{}{}, provided: map[chain.BagID]time.Time{}, wake: make(chan struct{}, 1)}
}

func (a *announcer) mark(b chain.BagID) {
	a.mu.Lock()
	a.pending[b] = struct{}{}
	a.mu.Unlock()
	a.signal()
}

func (a *announcer) markAll() {
	a.mu.Lock()
	a.all = true
	a.mu.Unlock()
	a.signal()
}

func (a *announcer) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *announcer) take() ([]chain.BagID, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]chain.BagID, 0, len(a.pending))
	for b := range a.pending {
		out = append(out, b)
	}
	clear(a.pending)
	all := a.all
	a.all = false
	return out, all
}

// requeue puts bags back without waking the loop: the retry timer does.
func (a *announcer) requeue(bags []chain.BagID) {
	a.mu.Lock()
	for _, b := range bags {
		a.pending[b] = struct{}{}
	}
	a.mu.Unlock()
}

func (a *announcer) done(b chain.BagID) {
	a.mu.Lock()
	a.provided[b] = time.Now()
	a.mu.Unlock()
}

// lastProvided returns when bag was last provided on the DHT.
func (a *announcer) lastProvided(b chain.BagID) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.provided[b]
}

// announceLoop publishes the operator metadata and provides bags.
func (s *Server) announceLoop(ctx context.Context) {
	tick := time.NewTicker(s.cfg.reprovideInterval)
	defer tick.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	backoff := announceRetryMin
	metadataDone := !s.cfg.publishMetadata
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.announce.wake:
		case <-tick.C:
			s.announce.markAll()
			metadataDone = !s.cfg.publishMetadata // addresses may have changed
			continue
		case <-retry.C:
		}
		failed := false
		if !metadataDone {
			err := s.ensureMetadata(ctx)
			switch {
			case err == nil:
				metadataDone = true
			case ctx.Err() != nil:
				return
			case errors.Is(err, chain.ErrUnauthorized):
				// Retrying cannot help: another key is needed.
				metadataDone = true
				s.log.Error("cannot publish the operator metadata: the chain accepts it only from the worker's role account; pass that key (`satchel storage server --operator-key FILE`, provider.WithOperatorKey in code), or publish with `satchel storage operator set-metadata`",
					"worker", uint64(s.id.Worker), "err", err)
			default:
				failed = true
				s.log.Warn("publish operator metadata", "err", err)
			}
		}
		bags, all := s.announce.take()
		if all {
			bags = append(bags, s.assignedList()...)
			held, err := s.holdings.bagList()
			if err != nil {
				failed = true
				s.log.Warn("list the bags the store holds", "err", err)
			}
			for _, b := range held {
				bags = append(bags, chain.BagID(b))
			}
		}
		slices.Sort(bags)
		var again []chain.BagID
		for _, b := range slices.Compact(bags) {
			// A bag moved away is still announced while the node holds
			// it: its new providers may need this node to sync from.
			if !s.isAssigned(b) && !s.holdings.hasBag(string(b)) {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, provideTimeout)
			err := s.h.Provide(pctx, p2p.BagKey(string(b)))
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				s.m.provides.WithLabelValues("failed").Inc()
				s.log.Debug("provide bag on the DHT failed; retrying", "bag", b, "err", err, "in", backoff)
				again = append(again, b)
				continue
			}
			s.m.provides.WithLabelValues("ok").Inc()
			s.announce.done(b)
		}
		s.announce.requeue(again)
		if len(again) > 0 {
			failed = true
		}
		if failed {
			retry.Reset(backoff)
			backoff = min(backoff*2, announceRetryMax)
		} else {
			backoff = announceRetryMin
		}
	}
}

// ensureMetadata publishes the operator metadata when the chain's copy
// does not name this node's peer ID and addresses. It keeps the location
// and extra text already published unless WithLocation sets a location.
func (s *Server) ensureMetadata(ctx context.Context) error {
	b, err := s.c.StorageBucket(ctx, s.id.Bucket)
	if err != nil {
		return err
	}
	want := chain.StorageOperatorMetadata{PeerID: s.h.ID().String()}
	for _, a := range s.h.Addrs() {
		want.Multiaddrs = append(want.Multiaddrs, a.String())
	}
	slices.Sort(want.Multiaddrs)
	want.Multiaddrs = slices.Compact(want.Multiaddrs)
	if len(want.Multiaddrs) > chain.MaxMultiaddrs {
		want.Multiaddrs = want.Multiaddrs[:chain.MaxMultiaddrs]
	}
	if b.Metadata != nil {
		want.Location, want.Extra = b.Metadata.Location, b.Metadata.Extra
	}
	if s.cfg.location != nil {
		want.Location = s.cfg.location
	}
	if b.Metadata != nil {
		have := *b.Metadata
		have.Multiaddrs = slices.Clone(have.Multiaddrs)
		slices.Sort(have.Multiaddrs)
		if reflect.DeepEqual(have, want) {
			return nil
		}
	}
	if err := want.Validate(); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, submitTimeout)
	defer cancel()
	_, err = s.c.Submit(sctx, s.cfg.operatorKey, chain.MsgSetStorageOperatorMetadata{Worker: s.id.Worker, Bucket: s.id.Bucket, Metadata: want})
	if err != nil {
		return err
	}
	s.peers.invalidateAll()
	s.log.Info("published operator metadata", "peer", want.PeerID, "addrs", want.Multiaddrs)
	return nil
}
