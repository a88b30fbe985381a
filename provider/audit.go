package provider

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/internal/operators"
	"github.com/satchel-net/satchel/protocol/audit"
	"github.com/satchel-net/satchel/protocol/audit/pb"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// Audits: the node answers /satchel/audit/1.0.0 challenges for what it
// holds, audits the other providers of its bags in turn (one object of
// each bag per peer per round, rotating through the bag's objects), and
// publishes each verdict, signed, on the audit topic. It listens on that
// topic too: the results it hears are kept for the status API (`satchel
// audit report`), and a failed result naming this node makes it re-check
// the object and fetch whatever is missing or corrupt from its peers — the
// repair a failed audit triggers ("provider-resync").

// Defaults of the audit options.
const (
	// DefaultAuditInterval is the time between audit rounds; each round
	// audits one object of every bag per peer sharing it.
	DefaultAuditInterval = 10 * time.Minute
	// DefaultAuditBandwidth bounds the bytes a node's audits ask its peers
	// to send, per second, averaged.
	DefaultAuditBandwidth = 1_000_000
	// DefaultAuditSamples is how many chunks one audit asks for.
	DefaultAuditSamples = 4
	// DefaultAuditGrace is how long after this node stored an object its
	// peers are left to sync it before they are audited for it.
	DefaultAuditGrace = 10 * time.Minute
	// DefaultAuditHistory is how many heard results the node keeps.
	DefaultAuditHistory = 10000

	// auditRangeMin is the chunk size from which all but the first sample
	// of an audit ask for a range (checked against the auditor's own
	// copy), and auditRangeLen the range's length.
	auditRangeMin = 256 << 10
	auditRangeLen = 16 << 10
	// RepairResync is the repair an audit result names when the failing
	// provider is to re-check and re-fetch the object.
	RepairResync = "provider-resync"
)

type auditConfig struct {
	interval  time.Duration
	bandwidth int64
	samples   int
	grace     time.Duration
	history   int
	rate      float64
	burst     int
	answer    int64 // bytes a second all answers may read (0: audit.DefaultAnswerRate)
	answerMax int64
}

func defaultAuditConfig() auditConfig {
	return auditConfig{interval: DefaultAuditInterval, bandwidth: DefaultAuditBandwidth, samples: DefaultAuditSamples,
		grace: DefaultAuditGrace, history: DefaultAuditHistory, rate: audit.DefaultRate, burst: audit.DefaultBurst}
}

// WithAudits sets how often the node audits its peers (every interval, one
// object of each shared bag per peer; 0 turns auditing off) and the bytes
// per second its audits may ask for (defaults DefaultAuditInterval,
// DefaultAuditBandwidth). The node always answers audits.
func WithAudits(interval time.Duration, bytesPerSecond int64) Option {
	return func(c *config) {
		c.audit.interval = max(interval, 0)
		if bytesPerSecond > 0 {
			c.audit.bandwidth = bytesPerSecond
		}
	}
}

// WithAuditSamples sets how many chunks one audit asks for (default
// DefaultAuditSamples, at most audit.MaxSamples); an object with fewer
// chunks has all of them checked.
func WithAuditSamples(n int) Option {
	return func(c *config) { c.audit.samples = min(max(n, 1), audit.MaxSamples) }
}

// WithAuditGrace sets how long peers are given to sync an object this node
// stored before they are audited for it (default DefaultAuditGrace).
func WithAuditGrace(d time.Duration) Option {
	return func(c *config) { c.audit.grace = max(d, 0) }
}

// WithAuditRate sets the rate the node answers challenges at, per
// challenger (default audit.DefaultRate, audit.DefaultBurst).
func WithAuditRate(perSecond float64, burst int) Option {
	return func(c *config) {
		if perSecond > 0 {
			c.audit.rate = perSecond
		}
		if burst > 0 {
			c.audit.burst = burst
		}
	}
}

// WithAuditAnswerBudget sets the node-wide budget the node answers
// challenges within: bytesPerSecond of chunks and proof blocks read, burst
// at once (defaults audit.DefaultAnswerRate, audit.DefaultAnswerBurst).
// Challenges beyond it are refused, which is no verdict for the auditor.
func WithAuditAnswerBudget(bytesPerSecond, burst int64) Option {
	return func(c *config) { c.audit.answer, c.audit.answerMax = max(bytesPerSecond, 0), max(burst, 0) }
}

// auditor is the node's audit state.
type auditor struct {
	budget    *rate.Limiter
	client    *audit.Client
	key       crypto.PrivKey
	operators *bagOperators       // who may publish results about this node's bags
	wake      chan struct{}       // resyncLoop's: a re-check was queued
	relay     *resultRelay        // what results about others' bags are relayed
	results   *audit.ResultFilter // results taken within the window (replays ignored)
	// resyncBudget is what re-checks may read, per auditor and node-wide.
	resyncBudget *resyncBudgets
	// publishPace keeps this node's own results within what others take
	// from one auditor.
	publishPace *rate.Limiter

	mu     sync.Mutex
	cursor map[auditCursorKey]uint64            // last object audited per (bag, peer)
	resync *simplelru.LRU[resyncKey, time.Time] // when a failed result last made this node re-check an object (any auditor's)
	queue  resyncQueue                          // what waits for resyncLoop or it re-checks
	peers  map[peer.ID]*PeerAudits              // what this node's own audits found
	heard  []HeardResult                        // ring of results heard on the topic
	next   int
	cap    int
}

type auditCursorKey struct {
	bag  chain.BagID
	peer peer.ID
}

// PeerAudits is what this node's audits of one peer found.
type PeerAudits struct {
	Peer   string `json:"peer"`
	Bucket uint64 `json:"bucket"`
	Run    int    `json:"run"`
	Passed int    `json:"passed"`
	Failed int    `json:"failed"`
	// Last is when it was last audited; LastFailure why it last failed.
	Last        time.Time `json:"last"`
	LastFailure string    `json:"lastFailure,omitempty"`
}

// HeardResult is one audit result heard on the audit topic (this node's
// own included), its signature checked.
type HeardResult struct {
	Auditor  string `json:"auditor"`
	Provider string `json:"provider"`
	Bucket   uint64 `json:"bucket"`
	Bag      string `json:"bag"`
	Object   uint64 `json:"object"`
	Pass     bool   `json:"pass"`
	Reason   string `json:"reason,omitempty"`
	Repair   string `json:"repair,omitempty"`
	// Time is when the audit was made (the challenge's time); HeardAt when
	// this node received the result.
	Time    time.Time `json:"time"`
	HeardAt time.Time `json:"heardAt"`
}

// AuditStatus is the audit part of a node's Status.
type AuditStatus struct {
	// Peers are this node's own audits, per peer.
	Peers []PeerAudits `json:"peers"`
	// Heard counts the results kept (see AuditsPath).
	Heard int `json:"heard"`
}

// AuditsPath is where the status server lists the audit results the node
// heard, oldest first; ?bucket=N keeps those of one storage bucket.
const AuditsPath = "/api/v1/audits"

func newAuditor(cfg auditConfig) *auditor {
	burst := max(int(cfg.bandwidth), audit.MaxSamples*audit.MaxChunkSize)
	resync, _ := simplelru.NewLRU[resyncKey, time.Time](maxResyncEntries, nil) // errors only for a size <= 0
	return &auditor{
		budget:       rate.NewLimiter(rate.Limit(cfg.bandwidth), burst),
		cursor:       map[auditCursorKey]uint64{},
		resync:       resync,
		wake:         make(chan struct{}, 1),
		resyncBudget: newResyncBudgets(),
		queue:        resyncQueue{byAuditor: map[string]int{}, objects: map[resyncObj]bool{}},
		relay:        newResultRelay(),
		results:      audit.NewResultFilter(),
		// Half the limit others apply: room for clock skew between them.
		publishPace: rate.NewLimiter(ResultRate/2, ResultBurst/2),
		peers:       map[peer.ID]*PeerAudits{},
		cap:         max(cfg.history, 1),
	}
}

// heardBuffer is how many validated results wait for heardLoop before
// gossipsub drops the next ones.
const heardBuffer = 256

// startAudits serves the audit protocol, joins the audit topic and starts
// the audit loop. It is called by Start.
func (s *Server) startAudits(ctx context.Context, key crypto.PrivKey) error {
	s.audits.key = key
	ac, err := audit.NewClient(s.h.Libp2p(), audit.WithLocalChunks(s.bs.Get))
	if err != nil {
		return err
	}
	s.audits.client = ac
	opts := []audit.HandlerOption{audit.WithLogger(s.cfg.log), audit.WithCorruptBlock(s.onCorrupt),
		audit.WithRate(s.cfg.audit.rate, s.cfg.audit.burst), audit.WithAnswerBudget(s.cfg.audit.answer, s.cfg.audit.answerMax)}
	if s.cfg.registerer != nil {
		opts = append(opts, audit.WithMetrics(s.cfg.registerer))
	}
	if _, ok := s.c.(operators.Lister); ok {
		opts = append(opts, audit.WithKnownChallengers(s.knownChallenger))
	}
	s.auditH = audit.NewHandler(s.bs.ForAudit(), s.bs.ForAudit(), opts...)
	s.auditH.Register(s.h.Protocol())
	if err := s.h.PubSub().RegisterTopicValidator(audit.Topic, s.validateResult, pubsub.WithValidatorTimeout(resultValidationTimeout)); err != nil {
		return fmt.Errorf("provider: audit topic validator: %w", err)
	}
	// heardLoop takes a result in well under a microsecond (validateResult
	// opened it); the buffer absorbs bursts while it is descheduled.
	sub, err := s.h.Subscribe(audit.Topic, pubsub.WithBufferSize(heardBuffer))
	if err != nil {
		return err
	}
	// A peer that sends results that do not verify loses score as on a
	// contract topic (without peer scoring on the router this fails, and
	// scoring is optional).
	if t, err := s.h.Join(audit.Topic); err == nil {
		_ = t.SetScoreParams(contracts.TopicScoreParams())
	}
	s.goFunc(func() {
		<-ctx.Done()
		sub.Cancel()
	})
	s.goFunc(func() { s.heardLoop(ctx, sub) })
	s.goFunc(func() { s.resyncLoop(ctx) })
	if s.cfg.audit.interval > 0 {
		s.goFunc(func() { s.auditLoop(ctx) })
	}
	return nil
}

// stopAudits stops answering challenges and leaves the topic's validator;
// the loops stop with the run context.
func (s *Server) stopAudits() error {
	if s.auditH == nil {
		return nil
	}
	_ = s.h.PubSub().UnregisterTopicValidator(audit.Topic)
	return s.auditH.Close()
}

// auditLoop runs an audit round every interval.
func (s *Server) auditLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.audit.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, bag := range s.assignedList() {
			peers, err := s.peers.chainPeers(ctx, bag)
			if err != nil {
				s.log.Debug("audit: peers of bag", "bag", bag, "err", err)
				continue
			}
			for _, p := range peers {
				if ctx.Err() != nil {
					return
				}
				s.auditPeer(ctx, bag, p)
			}
		}
	}
}

// auditPeer audits p for the next object of bag in rotation.
func (s *Server) auditPeer(ctx context.Context, bag chain.BagID, p chainPeer) {
	obj, ok := s.nextAuditObject(bag, p.ID)
	if !ok {
		return
	}
	out, err := s.AuditPeer(ctx, p.ID, bag, chain.ObjectID(obj))
	if err != nil {
		if ctx.Err() == nil {
			s.log.Debug("audit not run", "peer", p.ID, "bag", bag, "object", obj, "err", err)
		}
		return
	}
	if errors.Is(out.Err, audit.ErrRefused) {
		// Over the peer's rate limit, or it is busy: not a verdict on
		// what it holds. Counted, not published.
		s.am.audits.WithLabelValues(p.ID.String(), "refused").Inc()
		s.log.Debug("peer refused an audit", "peer", p.ID, "err", out.Err)
		return
	}
	s.recordAudit(ctx, p, bag, obj, out)
}

// nextAuditObject returns the object of bag to audit p for next: the
// held objects in ID order, one after the other, so every object is
// covered once per len(objects) rounds. Objects stored less than the
// grace ago are skipped.
func (s *Server) nextAuditObject(bag chain.BagID, p peer.ID) (uint64, bool) {
	objs, err := s.bs.Objects(string(bag))
	if err != nil || len(objs) == 0 {
		return 0, false
	}
	slices.Sort(objs)
	a := s.audits
	a.mu.Lock()
	last := a.cursor[auditCursorKey{bag, p}]
	a.mu.Unlock()
	start, _ := slices.BinarySearch(objs, last+1)
	for i := range objs {
		o := objs[(start+i)%len(objs)]
		m, ok, err := s.bs.Manifest(o)
		if err != nil || !ok {
			continue
		}
		if at, err := s.bs.StoredAt(m.Root); err != nil || time.Since(at) < s.cfg.audit.grace {
			continue
		}
		a.mu.Lock()
		a.cursor[auditCursorKey{bag, p}] = o
		a.mu.Unlock()
		return o, true
	}
	return 0, false
}

// AuditPeer audits peer p for object obj of bag, which this node holds,
// against the content ID on chain: random chunks (the first whole, the
// others as ranges when chunks are large), within the bandwidth budget.
// It does not record or publish the outcome (the audit loop does).
func (s *Server) AuditPeer(ctx context.Context, p peer.ID, bag chain.BagID, obj chain.ObjectID) (audit.Outcome, error) {
	if s.audits.client == nil {
		return audit.Outcome{}, errors.New("provider: not started")
	}
	m, ok, err := s.bs.Manifest(uint64(obj))
	if err != nil || !ok || m.Bag != string(bag) {
		return audit.Outcome{}, fmt.Errorf("provider: object %d of bag %s is not held here: %v", obj, bag, err)
	}
	o, err := s.c.DataObject(ctx, bag, obj)
	if err != nil {
		return audit.Outcome{}, fmt.Errorf("provider: object %d on chain: %w", obj, err)
	}
	if !o.Accepted {
		return audit.Outcome{}, fmt.Errorf("provider: object %d is not accepted on chain yet; its providers may still be syncing it", obj)
	}
	root, err := cid.Decode(o.ContentID)
	if err != nil || !root.Equals(m.Root) {
		return audit.Outcome{}, fmt.Errorf("provider: object %d: chain content ID %q is not the held root %s", obj, o.ContentID, m.Root)
	}
	samples, want := pickSamples(m.Chunks, s.cfg.audit.samples)
	if err := s.audits.budget.WaitN(ctx, min(want, s.audits.budget.Burst())); err != nil {
		return audit.Outcome{}, err
	}
	return s.audits.client.Audit(ctx, p, audit.Target{Bag: string(bag), Object: uint64(obj), Root: root}, samples)
}

// pickSamples chooses n distinct random chunks (all if fewer) and returns
// them with the bytes the answer will carry.
func pickSamples(chunks []blockstore.ChunkRef, n int) ([]audit.Sample, int) {
	idx := rand.Perm(len(chunks))
	if len(idx) > n {
		idx = idx[:n]
	}
	out := make([]audit.Sample, 0, len(idx))
	bytes := 0
	for i, k := range idx {
		size := chunks[k].Size
		smp := audit.Sample{Index: k}
		if i > 0 && size >= auditRangeMin {
			smp.Offset = rand.Uint64N(size - auditRangeLen)
			smp.Length = auditRangeLen
			size = auditRangeLen
		}
		bytes += int(size)
		out = append(out, smp)
	}
	return out, bytes
}

// recordAudit counts an audit's outcome and publishes it, signed.
func (s *Server) recordAudit(ctx context.Context, p chainPeer, bag chain.BagID, obj uint64, out audit.Outcome) {
	a := s.audits
	a.mu.Lock()
	pa := a.peers[p.ID]
	if pa == nil {
		pa = &PeerAudits{Peer: p.ID.String(), Bucket: uint64(p.Bucket)}
		a.peers[p.ID] = pa
	}
	pa.Run++
	pa.Last = time.Now()
	verdict, reason, repair := pb.Verdict_VERDICT_PASS, "", ""
	if out.Pass {
		pa.Passed++
	} else {
		pa.Failed++
		verdict, reason, repair = pb.Verdict_VERDICT_FAIL, out.Err.Error(), RepairResync
		pa.LastFailure = reason
	}
	a.mu.Unlock()
	result := "pass"
	if !out.Pass {
		result = "fail"
		s.log.Warn("peer failed its audit; it is asked to re-sync the object", "peer", p.ID, "bucket", uint64(p.Bucket), "bag", bag, "object", obj, "err", out.Err)
	}
	s.am.audits.WithLabelValues(p.ID.String(), result).Inc()
	s.am.auditBytes.Add(float64(out.BytesIn))
	r := &pb.AuditResult{
		Auditor: []byte(s.h.ID()), Provider: []byte(p.ID), Bag: string(bag), Object: obj, Root: out.Challenge.Root,
		Bucket: uint64(p.Bucket), Verdict: verdict, Reason: reason, Samples: out.Challenge.Samples,
		Nonce: out.Challenge.Nonce, TimeUnixMs: out.Challenge.TimeUnixMs, Repair: repair,
	}
	data, err := audit.SignResult(a.key, r)
	if err != nil {
		s.log.Warn("sign audit result", "err", err)
		return
	}
	// Paced below what other nodes take from one auditor (ResultRate), so
	// a round of many small objects does not have its results ignored.
	if !s.waitPublish(ctx, r) {
		return
	}
	if err := s.h.Publish(ctx, audit.Topic, data); err != nil {
		s.log.Debug("publish audit result", "err", err)
	}
}

// publishMargin is how long before its window closes an audit result is
// last published, so that it reaches nodes whose clocks are ahead, after
// the network's delay, before their window closes: half the clock skew
// the protocol allows (audit.ResultWindow − audit.AnswerTimeout, 30 s).
// The other half is the pace's, so the result of an audit that timed out
// (AnswerTimeout after its challenge) still waits its turn; a margin of
// the whole skew would drop every such result.
const publishMargin = (audit.ResultWindow - audit.AnswerTimeout) / 2

// waitPublish waits for the publish pace to let r out, and reports whether
// it may be published: not once its time (its challenge's, which the
// result names with its nonce and samples) is ResultWindow old less
// publishMargin, since other nodes would ignore it. One the pace would
// hold that long is dropped at once, counted, and its turn left to the
// next. (The audit loop records one result at a time, so it takes a pace
// far slower than the audits to get there. A result is not stamped anew
// when published: its time says when the provider was challenged.)
func (s *Server) waitPublish(ctx context.Context, r *pb.AuditResult) bool {
	stale := time.UnixMilli(r.TimeUnixMs).Add(audit.ResultWindow - publishMargin)
	wctx, cancel := context.WithDeadline(ctx, stale)
	defer cancel()
	if err := s.audits.publishPace.Wait(wctx); err != nil {
		if ctx.Err() == nil {
			s.am.unpublished.Inc()
			s.log.Warn("audit result not published: the publish pace would send it too close to the end of its window, when other nodes may ignore it",
				"bag", r.Bag, "object", r.Object, "challenged", time.UnixMilli(r.TimeUnixMs).UTC())
		}
		return false
	}
	return true
}

// knownChallenger reports whether p has an audit answer budget of its own:
// it actively operates a storage bucket (the chain's list, cached as for
// relaying results) or did when this node last read it — all but the
// peers operatesNothing names. Anyone else — a member auditing with
// `satchel audit`, or a fresh peer ID — shares one budget with all others;
// a chain that cannot be read counts p as known, so an outage refuses no
// honest auditor.
func (s *Server) knownChallenger(ctx context.Context, p peer.ID) bool {
	ctx, cancel := context.WithTimeout(ctx, resultValidationTimeout)
	defer cancel()
	return !s.operatesNothing(ctx, p)
}
