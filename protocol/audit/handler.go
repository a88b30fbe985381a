package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/internal/debtbucket"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/audit/pb"
)

// Objects is what a handler needs to know about the objects a provider
// holds. The provider node implements it.
type Objects interface {
	// Object returns the content ID and the chunk CIDs, in file order, of
	// object id of bag as held here, or an error wrapping ErrNotFound.
	Object(ctx context.Context, bag string, id uint64) (root cid.Cid, chunks []cid.Cid, err error)
}

// Blocks reads a provider's blocks (chunks and interior DAG nodes).
type Blocks interface {
	// Get returns block c, verified against c, or an error wrapping
	// ErrNotFound or ErrCorruptBlock.
	Get(c cid.Cid) ([]byte, error)
}

// Handler answers /satchel/audit/1.0.0 challenges from a provider's blocks:
// it checks the challenge (signature, provider, time, nonce not seen
// before), limits each challenger's rate, and sends each sampled chunk (or
// range) with its proof path from the object's root.
type Handler struct {
	objects     Objects
	blocks      Blocks
	cfg         handlerConfig
	log         *slog.Logger
	metrics     *metrics
	guard       *guard
	challengers *challengerBudgets

	p2p.Registration // where it is served
}

// HandlerOption configures NewHandler.
type HandlerOption func(*handlerConfig)

type handlerConfig struct {
	rate      float64
	burst     int
	budget    int64 // answer bytes a second, node-wide
	budgetMax int64
	// each challenger's share of it (0: budget/ChallengerShare,
	// budgetMax/ChallengerBurstShare)
	challenger, challengerMax int64
	// known says whether a challenger has a share of its own; nil: all do
	known     func(ctx context.Context, p peer.ID) bool
	onLeave   func() // called when a challenger leaves before its answer is complete (tests)
	onCorrupt func(cid.Cid)
	reg       prometheus.Registerer
	log       *slog.Logger
	now       func() time.Time
}

// WithRate sets the per-challenger limit: perSecond challenges on average,
// burst at once (defaults DefaultRate, DefaultBurst).
func WithRate(perSecond float64, burst int) HandlerOption {
	return func(c *handlerConfig) {
		if perSecond > 0 {
			c.rate = perSecond
		}
		if burst > 0 {
			c.burst = burst
		}
	}
}

// WithAnswerBudget sets the node-wide budget answers are read within:
// bytesPerSecond of chunks and proof blocks on average, burst at once
// (defaults DefaultAnswerRate, DefaultAnswerBurst). A challenge that finds
// it spent is refused (ErrRefused for the challenger).
func WithAnswerBudget(bytesPerSecond, burst int64) HandlerOption {
	return func(c *handlerConfig) {
		if bytesPerSecond > 0 {
			c.budget = bytesPerSecond
		}
		if burst > 0 {
			c.budgetMax = burst
		}
	}
}

// WithKnownChallengers makes the challengers known does not name share one
// challenger's budget (and MaxChallengerAnswers answers at once) among all
// of them, so fresh peer IDs together get no more than one; a known
// challenger — a storage provider asks whether it is a storage operator —
// has a share of its own. known is asked once per challenge, before its
// answer begins. Without it every challenger has its own share.
func WithKnownChallengers(known func(ctx context.Context, p peer.ID) bool) HandlerOption {
	return func(c *handlerConfig) { c.known = known }
}

// strangers is the budget key the challengers WithKnownChallengers does not
// know share.
const strangers = peer.ID("")

// WithChallengerBudget sets what one challenger's answers may read:
// bytesPerSecond of chunks and proof blocks on average, burst at once
// (defaults: the node-wide budget divided by ChallengerShare and
// ChallengerBurstShare). A challenge from a challenger over it is refused
// (ErrRefused) while others are still answered.
func WithChallengerBudget(bytesPerSecond, burst int64) HandlerOption {
	return func(c *handlerConfig) {
		if bytesPerSecond > 0 {
			c.challenger = bytesPerSecond
		}
		if burst > 0 {
			c.challengerMax = burst
		}
	}
}

// WithCorruptBlock sets fn, called with every block found corrupt while
// answering; the node should repair it from a peer.
func WithCorruptBlock(fn func(cid.Cid)) HandlerOption {
	return func(c *handlerConfig) { c.onCorrupt = fn }
}

// WithMetrics registers the handler's collectors on reg:
// satchel_provider_audit_challenges_total{status} and
// satchel_provider_audit_bytes_out_total.
func WithMetrics(reg prometheus.Registerer) HandlerOption {
	return func(c *handlerConfig) { c.reg = reg }
}

// WithLogger sets the logger (records carry component=audit).
func WithLogger(l *slog.Logger) HandlerOption { return func(c *handlerConfig) { c.log = l } }

// WithHandlerClock sets the clock challenges are checked against (default
// time.Now).
func WithHandlerClock(now func() time.Time) HandlerOption {
	return func(c *handlerConfig) { c.now = now }
}

// NewHandler returns a handler answering from objects and blocks. Register
// it on a host's stream framework.
func NewHandler(objects Objects, blocks Blocks, opts ...HandlerOption) *Handler {
	cfg := handlerConfig{rate: DefaultRate, burst: DefaultBurst, budget: DefaultAnswerRate, budgetMax: DefaultAnswerBurst,
		now: time.Now, log: slog.Default()}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.challenger == 0 {
		cfg.challenger = max(cfg.budget/ChallengerShare, 1)
	}
	if cfg.challengerMax == 0 {
		cfg.challengerMax = max(cfg.budgetMax/ChallengerBurstShare, 1)
	}
	return &Handler{
		objects:     objects,
		blocks:      blocks,
		cfg:         cfg,
		log:         cfg.log.With("component", "audit"),
		metrics:     newMetrics(cfg.reg),
		guard:       newGuard(cfg.rate, cfg.burst, debtbucket.New(cfg.budget, cfg.budgetMax)),
		challengers: newChallengerBudgets(cfg.challenger, cfg.challengerMax),
	}
}

// Register serves the audit protocol on p. Close stops serving.
func (h *Handler) Register(p *p2p.Protocol) {
	h.Serve(p, p2p.AuditProtocol, h.serveStream, p2p.WithIdleTimeout(AnswerTimeout))
}

// serveStream answers the one challenge of a stream.
func (h *Handler) serveStream(ctx context.Context, s network.Stream) error {
	proto := h.Protocol()
	if proto == nil {
		return errors.New("audit: handler closed")
	}
	_ = s.SetDeadline(time.Now().Add(AnswerTimeout))
	fr := proto.NewFrameReader(s, MaxChallengeFrame, AnswerTimeout)
	fw := proto.NewFrameWriter(s, AnswerTimeout)
	var sc pb.SignedChallenge
	if err := fr.ReadMsg(&sc); err != nil {
		h.metrics.challenge("malformed")
		return err
	}
	remote := s.Conn().RemotePeer()
	release, err := h.guard.admit(remote, h.cfg.now())
	if err != nil {
		h.metrics.challenge("rate_limited")
		return h.refuse(fw, nil, err.Error())
	}
	defer release()
	key := remote
	if h.cfg.known != nil && !h.cfg.known(ctx, remote) {
		key = strangers
	}
	share, done, err := h.challengers.admit(key, h.cfg.now())
	if err != nil {
		h.metrics.challenge("rate_limited")
		return h.refuse(fw, nil, err.Error())
	}
	defer done()
	own := prepay(share, h.cfg.now())
	ch, err := OpenChallenge(&sc, remote, s.Conn().LocalPeer(), h.cfg.now())
	if err != nil {
		h.metrics.challenge("invalid")
		h.log.Debug("challenge refused", "peer", remote, "err", err)
		return h.refuse(fw, nil, err.Error())
	}
	if err := h.guard.fresh(remote, key == strangers, ch.Nonce, h.cfg.now()); err != nil {
		h.metrics.challenge("replay")
		return h.refuse(fw, ch.Nonce, err.Error())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go h.watch(ctx, s, cancel)
	return h.answer(ctx, fw, ch, own)
}

// watch ends ctx when the challenger resets the stream (or sends anything
// after its challenge) before the answer is complete, so the handler stops
// reading chunks nobody waits for. A challenger that closed its side (as
// clients before this check did at once) is not watched further.
func (h *Handler) watch(ctx context.Context, s network.Stream, cancel context.CancelFunc) {
	var b [1]byte
	_, err := s.Read(b[:])
	if errors.Is(err, io.EOF) || ctx.Err() != nil {
		return // closed by the challenger, or the answer is done
	}
	cancel()
	if h.cfg.onLeave != nil {
		h.cfg.onLeave()
	}
}

func (h *Handler) refuse(fw *p2p.FrameWriter, nonce []byte, reason string) error {
	return h.writeHeader(fw, &pb.AnswerHeader{Status: pb.AuditStatus_AUDIT_STATUS_REFUSED, Reason: reason, Nonce: nonce})
}

func (h *Handler) writeHeader(fw *p2p.FrameWriter, hdr *pb.AnswerHeader) error {
	if err := fw.WriteMsg(hdr); err != nil {
		return err
	}
	return fw.Flush()
}

// answer reads and verifies every sampled chunk and its proof blocks once,
// within the node's answer budget, stopping if the challenger leaves; then
// sends the header and one proof frame per sample from the bytes read.
func (h *Handler) answer(ctx context.Context, fw *p2p.FrameWriter, ch *pb.Challenge, own *account) error {
	var held int64
	defer func() { h.guard.unhold(held) }()
	proofs, err := h.prepare(ctx, ch, &held, own)
	switch {
	case ctx.Err() != nil:
		h.metrics.challenge("abandoned")
		return ctx.Err()
	case errors.Is(err, ErrRefused):
		h.metrics.challenge("busy")
		return h.refuse(fw, ch.Nonce, err.Error())
	case err != nil:
		return h.fail(fw, ch, err)
	}
	if err := h.writeHeader(fw, &pb.AnswerHeader{Status: pb.AuditStatus_AUDIT_STATUS_OK, Nonce: ch.Nonce, Count: uint32(len(proofs))}); err != nil {
		return err
	}
	for i, p := range proofs {
		if err := ctx.Err(); err != nil {
			h.metrics.challenge("abandoned")
			return err
		}
		if err := fw.WriteMsg(p); err != nil {
			return err
		}
		if err := fw.Flush(); err != nil {
			return err
		}
		h.metrics.bytesOut.Add(float64(len(p.Data)))
		proofs[i] = nil // sent: its chunk's memory goes back
		h.guard.unhold(int64(len(p.Data)))
		held -= int64(len(p.Data))
	}
	h.metrics.challenge("ok")
	return nil
}

// prepare reads what the answer sends: for each sample the proof path (each
// interior block read once per challenge) and the chunk, verified by
// Blocks.Get, or the requested range of it. It stops when ctx ends, and
// with an error wrapping ErrRefused when the answer budget is spent or the
// answers' memory is taken. held counts the bytes it reserved (hold), for
// the caller to give back when the answer is done.
func (h *Handler) prepare(ctx context.Context, ch *pb.Challenge, held *int64, own *account) ([]*pb.SampleProof, error) {
	root, chunks, err := h.objects.Object(ctx, ch.Bag, ch.Object)
	if err != nil {
		return nil, err
	}
	if !root.Equals(mustCast(ch.Root)) {
		return nil, fmt.Errorf("%w: object %d is held with root %s, not %s", ErrNotFound, ch.Object, root, mustCast(ch.Root))
	}
	interior := map[cid.Cid][]byte{}
	path := func(c cid.Cid) ([]byte, error) {
		if b, ok := interior[c]; ok {
			return b, nil
		}
		b, err := h.read(ctx, c, own)
		if err != nil {
			return nil, err
		}
		// Interior blocks are sent too: they count against the answers'
		// memory like chunks (an uploader chose the DAG's shape).
		if !h.guard.hold(int64(len(b))) {
			return nil, errAnswerMemory
		}
		*held += int64(len(b))
		interior[c] = b
		return b, nil
	}
	proofs := make([]*pb.SampleProof, len(ch.Samples))
	for i, smp := range ch.Samples {
		blocks, leaf, err := buildPath(root, len(chunks), int(smp.Index), path)
		if err != nil {
			return nil, err
		}
		if !h.guard.hold(MaxChunkSize) {
			return nil, errAnswerMemory
		}
		*held += MaxChunkSize
		data, err := h.read(ctx, leaf, own)
		if err != nil {
			h.noteCorrupt(leaf, err)
			return nil, err
		}
		if smp.Length > 0 {
			end := min(smp.Offset+smp.Length, uint64(len(data)))
			data = bytes.Clone(data[min(smp.Offset, end):end]) // keep the range, not the chunk
		}
		if keep := int64(len(data)); keep < MaxChunkSize {
			h.guard.unhold(MaxChunkSize - keep)
			*held -= MaxChunkSize - keep
		}
		proofs[i] = &pb.SampleProof{Index: smp.Index, Path: blocks, Data: data}
	}
	return proofs, nil
}

// errAnswerMemory refuses a challenge that finds the answers' memory taken.
var errAnswerMemory = fmt.Errorf("%w: this node's audit answers hold %d MiB of blocks; try again later", ErrRefused, maxAnswerMemory>>20)

// read reads block c for an answer, if the challenger still waits and the
// node-wide answer budget allows, and charges it and the challenger's own
// budget with its size (beyond what the challenge prepaid). (The
// challenger's budget is checked once, when its challenge is admitted: an
// answer once begun is not cut by it.)
func (h *Handler) read(ctx context.Context, c cid.Cid, own *account) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := h.guard.budget
	if !b.Allow(h.cfg.now()) {
		return nil, fmt.Errorf("%w: this node's audit answers are over their budget of %d bytes a second; try again later", ErrRefused, h.cfg.budget)
	}
	data, err := h.blocks.Get(c)
	now := h.cfg.now()
	b.Spend(now, int64(len(data)))
	own.spend(now, len(data))
	return data, err
}

// account is what one answer charges its challenger's share: ChallengeCost
// at once, when the challenge is admitted (whatever it then reads, NOT_FOUND
// and refusals included), and the bytes it reads beyond that.
type account struct {
	share   *debtbucket.Bucket
	prepaid int
}

// prepay charges share a challenge's ChallengeCost at now.
func prepay(share *debtbucket.Bucket, now time.Time) *account {
	share.Spend(now, ChallengeCost)
	return &account{share: share, prepaid: ChallengeCost}
}

// spend charges n bytes read at now, beyond what was prepaid.
func (a *account) spend(now time.Time, n int) {
	if n <= a.prepaid {
		a.prepaid -= n
		return
	}
	a.share.Spend(now, int64(n-a.prepaid))
	a.prepaid = 0
}

// challengerBudgets are the per-challenger answer budgets, kept for the
// maxChallengers most recently seen challengers (a busy challenger stays
// among them, so it stays limited however many others come and go).
type challengerBudgets struct {
	perSecond, burst int64
	mu               sync.Mutex
	lru              *simplelru.LRU[peer.ID, *challengerBudget]
}

// challengerBudget is one challenger's budget and its answers under way.
type challengerBudget struct {
	*debtbucket.Bucket
	answering int // guarded by challengerBudgets.mu
}

func newChallengerBudgets(perSecond, burst int64) *challengerBudgets {
	lru, _ := simplelru.NewLRU[peer.ID, *challengerBudget](maxChallengers, nil) // errors only for a size <= 0
	return &challengerBudgets{perSecond: perSecond, burst: burst, lru: lru}
}

// admit lets a challenge of p begin at now if p's budget is not spent (in
// debt) and fewer than MaxChallengerAnswers of its answers are under way,
// so what one challenger can overdraw is bounded; the caller calls done
// when the answer ends. The answer's reads are charged to the budget
// returned.
func (c *challengerBudgets) admit(p peer.ID, now time.Time) (own *debtbucket.Bucket, done func(), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cb, ok := c.lru.Get(p)
	if !ok {
		cb = &challengerBudget{Bucket: debtbucket.New(c.perSecond, c.burst)}
		c.lru.Add(p, cb)
	}
	who, has, is := "challenger "+p.String(), "has", "is over its"
	if p == strangers {
		who, has, is = "the challengers that operate no storage bucket", "have", "are over their shared"
	}
	if cb.answering >= MaxChallengerAnswers {
		return nil, nil, fmt.Errorf("%w: %s %s %d challenges being answered; wait for them", ErrRefused, who, has, cb.answering)
	}
	if !cb.Allow(now) {
		return nil, nil, fmt.Errorf("%w: %s %s answer budget of %d bytes a second; wait", ErrRefused, who, is, c.perSecond)
	}
	cb.answering++
	return cb.Bucket, func() {
		c.mu.Lock()
		cb.answering--
		c.mu.Unlock()
	}, nil
}

// fail answers a challenge the provider cannot meet.
func (h *Handler) fail(fw *p2p.FrameWriter, ch *pb.Challenge, err error) error {
	hdr := &pb.AnswerHeader{Nonce: ch.Nonce, Reason: err.Error()}
	switch {
	case errors.Is(err, ErrNotFound):
		hdr.Status = pb.AuditStatus_AUDIT_STATUS_NOT_FOUND
		h.metrics.challenge("not_found")
	default:
		hdr.Status = pb.AuditStatus_AUDIT_STATUS_FAILED
		h.metrics.challenge("failed")
	}
	h.log.Debug("challenge not met", "object", ch.Object, "err", err)
	return h.writeHeader(fw, hdr)
}

func (h *Handler) noteCorrupt(c cid.Cid, err error) {
	if errors.Is(err, ErrCorruptBlock) {
		h.log.Warn("corrupt block found while answering an audit", "cid", c)
		if h.cfg.onCorrupt != nil {
			h.cfg.onCorrupt(c)
		}
	}
}

// mustCast decodes a CID OpenChallenge already checked.
func mustCast(b []byte) cid.Cid {
	c, _ := cid.Cast(b)
	return c
}
