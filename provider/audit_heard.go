package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/internal/operators"
	"github.com/satchel-net/satchel/protocol/audit"
	"github.com/satchel-net/satchel/protocol/audit/pb"
)

// Results heard on the audit topic: kept in a bounded ring for the status
// API, and acted on when they say this node failed.

// resultValidationTimeout bounds the chain read validateResult may make.
const resultValidationTimeout = 5 * time.Second

// validateResult is the audit topic's validator: a result must be signed by
// the auditor it names, that auditor must be the message's author, its time
// within audit.ResultWindow of this node's clock and it must not have been
// taken before (audit.ResultFilter: a signed result never expires, so a
// replay is ignored), and a result about one of this node's bags must come
// from this node or the operator of a storage bucket of the bag as the
// chain names it (bagOperators: cached, no DHT). Results about other bags
// are relayed for their providers to check when their auditor actively
// operates some storage bucket (operators.Set, cached; anyone else's are
// rejected), up to ResultRate a second from one auditor and RelayRate from
// all (resultRelay); this node does not keep them.
// It runs in pubsub's validation goroutines, so a chain read here never
// holds up heardLoop.
func (s *Server) validateResult(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	// Opened (and its signature checked) once, here: heardLoop reads the
	// result from ValidatorData, so a flood of results about other bags
	// costs the subscriber no signature checks and cannot make it fall
	// behind and lose a real one.
	r, key, err := s.audits.results.Open(msg)
	late := errors.Is(err, audit.ErrStale) || errors.Is(err, audit.ErrReplay)
	if err != nil && !late {
		return pubsub.ValidationReject
	}
	bag, err := chain.ParseBagID(r.Bag)
	if err != nil {
		// Signed by its auditor but naming a bag this node cannot read
		// (a kind or working group a newer version may add): not relayed,
		// and no penalty for the peers that relay it.
		return pubsub.ValidationIgnore
	}
	if late {
		// Signed by its auditor but old, or taken already: ignored, with
		// no penalty (an honest relay's clock may be off, gossip may bring
		// a copy late) — unless its auditor operates no bucket and never
		// did, as for any result.
		s.am.stale.Inc()
		if string(r.Auditor) != string(s.h.ID()) && s.operatesNothing(ctx, peer.ID(r.Auditor)) {
			return pubsub.ValidationReject
		}
		return pubsub.ValidationIgnore
	}
	if string(r.Auditor) == string(s.h.ID()) {
		return s.take(msg, r, key) // this node's own
	}
	if !s.isAssigned(bag) {
		if v := s.validateRelay(ctx, peer.ID(r.Auditor)); v != pubsub.ValidationAccept {
			return v
		}
	} else {
		ok, err := s.audits.operators.operates(ctx, bag, peer.ID(r.Auditor))
		if err != nil || !ok {
			// Not an operator of the bag as far as the chain (cached)
			// says: not kept, not relayed, not penalised (the view may
			// be a few seconds old) — unless it operates no bucket at
			// all and never did, which rejects it as for any bag.
			s.am.dropped.Inc()
			if err == nil && s.operatesNothing(ctx, peer.ID(r.Auditor)) {
				return pubsub.ValidationReject
			}
			return pubsub.ValidationIgnore
		}
	}
	return s.take(msg, r, key)
}

// take accepts r, remembering it so that a copy is ignored, unless a copy
// validated at the same time was taken first.
func (s *Server) take(msg *pubsub.Message, r *pb.AuditResult, key audit.ResultKey) pubsub.ValidationResult {
	if !s.audits.results.Take(r, key) {
		s.am.stale.Inc()
		return pubsub.ValidationIgnore
	}
	msg.ValidatorData = r
	return pubsub.ValidationAccept
}

// operatesNothing reports whether the chain (cached) says auditor actively
// operates no storage bucket, and no read of it ever found auditor
// operating one; a chain it cannot read says nothing.
func (s *Server) operatesNothing(ctx context.Context, auditor peer.ID) bool {
	lister, ok := s.c.(operators.Lister)
	if !ok {
		return false
	}
	ops := &s.audits.relay.operators
	op, err := ops.Operates(ctx, lister, auditor)
	return err == nil && !op && !ops.EverOperated(auditor)
}

// validateRelay decides whether a result about a bag this node does not
// store, from auditor (its author), is relayed: only if auditor actively
// operates a storage bucket, and within the per-auditor and node-wide
// rates (else ignored: an honest relay may pass on a busy operator's
// results). A result of a peer that operates nothing and never did, as far
// as this node has read the chain, is rejected, so gossipsub scores down
// the peer that sent it; one of a peer that operated a bucket once is only
// ignored: a relay whose view of the chain is seconds older (an operator
// just removed, or its peer ID changed) passed it on in good faith, and
// one reject graylists a peer on every topic. A chain that cannot be read
// yet is no verdict: ignored.
func (s *Server) validateRelay(ctx context.Context, auditor peer.ID) pubsub.ValidationResult {
	lister, ok := s.c.(operators.Lister)
	if !ok {
		return pubsub.ValidationIgnore
	}
	op, err := s.audits.relay.operators.Operates(ctx, lister, auditor)
	switch {
	case err != nil:
		return pubsub.ValidationIgnore
	case !op && !s.audits.relay.operators.EverOperated(auditor):
		s.am.dropped.Inc()
		return pubsub.ValidationReject
	case !op:
		s.am.dropped.Inc()
		return pubsub.ValidationIgnore
	case !s.audits.relay.allow(auditor):
		s.am.limited.Inc()
		return pubsub.ValidationIgnore
	}
	return pubsub.ValidationAccept
}

// heardLoop reads the audit topic until ctx ends. Messages arrive
// validated (validateResult), so it keeps, without any further look-up,
// the results about this node's bags: those are from this node or an
// operator of the bag.
func (s *Server) heardLoop(ctx context.Context, sub *pubsub.Subscription) {
	for {
		msg, err := sub.Next(ctx)
		if err != nil {
			return
		}
		r, ok := msg.ValidatorData.(*pb.AuditResult)
		if !ok {
			continue // the validator opened every message it let through
		}
		if !s.isAssigned(chain.BagID(r.Bag)) {
			continue // relayed for the bag's own providers
		}
		s.hear(r)
		if r.Verdict == pb.Verdict_VERDICT_FAIL && string(r.Provider) == string(s.h.ID()) {
			s.queueResync(r)
		}
	}
}

// hear keeps a result in the ring and counts it.
func (s *Server) hear(r *pb.AuditResult) {
	auditor, _ := peer.IDFromBytes(r.Auditor)
	prov, _ := peer.IDFromBytes(r.Provider)
	h := HeardResult{
		Auditor: auditor.String(), Provider: prov.String(), Bucket: r.Bucket, Bag: r.Bag, Object: r.Object,
		Pass: r.Verdict == pb.Verdict_VERDICT_PASS, Reason: r.Reason, Repair: r.Repair, Time: time.UnixMilli(r.TimeUnixMs).UTC(),
		HeardAt: time.Now().UTC(),
	}
	verdict := "fail"
	if h.Pass {
		verdict = "pass"
	}
	s.am.heard.WithLabelValues(verdict).Inc()
	a := s.audits
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.heard) < a.cap {
		a.heard = append(a.heard, h)
		return
	}
	a.heard[a.next] = h
	a.next = (a.next + 1) % a.cap
}

// Heard returns the audit results the node heard, oldest first, those of
// storage bucket bucket only when bucket is not nil.
func (s *Server) Heard(bucket *uint64) []HeardResult {
	a := s.audits
	a.mu.Lock()
	all := append(slices.Clone(a.heard[a.next:]), a.heard[:a.next]...)
	a.mu.Unlock()
	out := make([]HeardResult, 0, len(all))
	for _, h := range all {
		if bucket == nil || h.Bucket == *bucket {
			out = append(out, h)
		}
	}
	return out
}

// auditStatus is the audit part of Status.
func (s *Server) auditStatus() *AuditStatus {
	a := s.audits
	a.mu.Lock()
	defer a.mu.Unlock()
	st := &AuditStatus{Peers: []PeerAudits{}, Heard: len(a.heard)}
	for _, p := range a.peers {
		st.Peers = append(st.Peers, *p)
	}
	slices.SortFunc(st.Peers, func(x, y PeerAudits) int { return int(x.Bucket) - int(y.Bucket) })
	return st
}

// serveHeard answers AuditsPath.
func (s *Server) serveHeard(w http.ResponseWriter, r *http.Request) {
	var bucket *uint64
	if b := r.URL.Query().Get("bucket"); b != "" {
		v, err := strconv.ParseUint(b, 10, 64)
		if err != nil {
			http.Error(w, "bucket must be a storage bucket number", http.StatusBadRequest)
			return
		}
		bucket = &v
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.Heard(bucket))
}

// resyncCooldown is how long after re-checking an object on a failed
// result further failed results for it, from any auditor, are ignored (the
// object's bag's operators audit it at the same time, and each failure
// would read it all again).
const resyncCooldown = time.Minute

// maxResyncEntries bounds the remembered re-checks (least recent dropped
// first).
const maxResyncEntries = 4096

// resyncKey is what a re-check's cooldown is kept by: one object.
type resyncKey struct {
	bag    string
	object uint64
}

// shouldResync decides whether a failed result naming this node (from one
// of the bag's operators) is acted on: not if any auditor's failure of the
// object made the node re-check it within resyncCooldown.
func (s *Server) shouldResync(r *pb.AuditResult) bool {
	s.audits.mu.Lock()
	defer s.audits.mu.Unlock()
	return s.audits.cooledLocked(r)
}

// cooledLocked is shouldResync with a.mu held: it starts the cooldown.
func (a *auditor) cooledLocked(r *pb.AuditResult) bool {
	key := resyncKey{bag: r.Bag, object: r.Object}
	if at, ok := a.resync.Get(key); ok && time.Since(at) < resyncCooldown {
		return false
	}
	a.resync.Add(key, time.Now())
	return true
}

// auditOperators returns who may publish audit results about this node's
// bags, or nil for a node without audits.
func (s *Server) auditOperators() *bagOperators {
	if s.audits == nil {
		return nil
	}
	return s.audits.operators
}
