package provider

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/protocol/audit"
	"github.com/satchel-net/satchel/protocol/audit/pb"
)

// Results heard on the audit topic: kept in a bounded ring for the status
// API, and acted on when they say this node failed.

// heardLoop reads the audit topic until ctx ends. Messages arrive
// validated (audit.Validator): signed by the auditor they name.
func (s *Server) heardLoop(ctx context.Context, sub *pubsub.Subscription) {
	for {
		msg, err := sub.Next(ctx)
		if err != nil {
			return
		}
		r, err := audit.OpenResult(msg.GetData())
		if err != nil {
			continue // the validator lets none through; belt and braces
		}
		if !s.fromBagProvider(ctx, r) {
			// Anyone can sign a result; only those of the bag's own
			// providers are kept, so strangers cannot crowd them out.
			continue
		}
		s.hear(r)
		if r.Verdict == pb.Verdict_VERDICT_FAIL && string(r.Provider) == string(s.h.ID()) && s.shouldResync(r) {
			s.resyncObject(ctx, chain.BagID(r.Bag), r.Object)
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
// result further failed results for it are ignored.
const resyncCooldown = time.Minute

// maxResyncEntries bounds the remembered re-checks.
const maxResyncEntries = 4096

// fromBagProvider reports whether a result's auditor is this node or the
// operator of another storage bucket of the result's bag, as the chain
// says (cached briefly by the peer finder).
func (s *Server) fromBagProvider(ctx context.Context, r *pb.AuditResult) bool {
	if string(r.Auditor) == string(s.h.ID()) {
		return true
	}
	bag, err := chain.ParseBagID(r.Bag)
	if err != nil {
		return false
	}
	peers, err := s.peers.chainPeers(ctx, bag)
	if err != nil {
		return false
	}
	for _, p := range peers {
		if string(p.ID) == string(r.Auditor) {
			return true
		}
	}
	return false
}

// shouldResync decides whether a failed result naming this node (from one
// of the bag's providers) is acted on: not if the object was re-checked
// within resyncCooldown.
func (s *Server) shouldResync(r *pb.AuditResult) bool {
	a := s.audits
	a.mu.Lock()
	defer a.mu.Unlock()
	if at, ok := a.resync[r.Object]; ok && time.Since(at) < resyncCooldown {
		return false
	}
	if len(a.resync) >= maxResyncEntries {
		clear(a.resync)
	}
	a.resync[r.Object] = time.Now()
	return true
}

// resyncObject re-checks every block of an object this node was found
// failing: each is read and verified (a corrupt one is quarantined), and
// whatever is missing or quarantined is fetched again from peers.
func (s *Server) resyncObject(ctx context.Context, bag chain.BagID, obj uint64) {
	m, ok, err := s.bs.Manifest(obj)
	if err != nil || !ok || m.Bag != string(bag) {
		// Not held at all: the reconcile syncs objects the bucket lacks.
		s.recon.markObjects(bag, []chain.ObjectID{chain.ObjectID(obj)}, "")
		return
	}
	s.log.Warn("an audit found this node failing; re-checking the object", "bag", bag, "object", obj)
	for _, c := range m.Blocks() {
		if ctx.Err() != nil {
			return
		}
		if _, err := s.bs.Get(c); err != nil {
			s.repairs.add(c)
		}
	}
	missing, err := s.bs.MissingBlocks(obj)
	if err == nil {
		for _, c := range missing {
			s.repairs.add(c)
		}
	}
	s.am.resyncs.Inc()
}
