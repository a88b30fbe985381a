package client

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/protocol/store"
	storepb "github.com/satchel-net/satchel/protocol/store/pb"
)

// Replication is how an upload gets a chunk to its N providers.
type Replication int

const (
	// ReplicateAuto, the default, pipelines objects of at least
	// PipelineMinSize bytes stored on two providers or more, and pushes
	// smaller ones directly: a pipeline saves the uplink N-1 copies of every
	// chunk, direct pushes save a small object the pipeline's hops of
	// latency.
	ReplicateAuto Replication = iota
	// ReplicateDirect pushes every chunk to each provider (N copies over
	// the uploader's uplink).
	ReplicateDirect
	// ReplicatePipelined sends every chunk once, to one provider, which
	// stores it and passes it along the others (store.PushPipeline); their
	// receipts come back relayed, each checked against its provider's key.
	// A provider that does not forward, or that drops out of the pipeline,
	// gets the chunk pushed directly.
	ReplicatePipelined
)

// PipelineMinSize is the smallest object ReplicateAuto pipelines.
const PipelineMinSize = 4 << 20

// String names the mode.
func (r Replication) String() string {
	switch r {
	case ReplicateAuto:
		return "auto"
	case ReplicateDirect:
		return "direct"
	case ReplicatePipelined:
		return "pipelined"
	}
	return fmt.Sprintf("Replication(%d)", int(r))
}

// ParseReplication reads a mode by its name: "auto", "direct" or
// "pipelined".
func ParseReplication(s string) (Replication, error) {
	for _, r := range []Replication{ReplicateAuto, ReplicateDirect, ReplicatePipelined} {
		if s == r.String() {
			return r, nil
		}
	}
	return 0, fmt.Errorf("replication %q: want auto, direct or pipelined", s)
}

// WithReplication sets how the upload's chunks reach its providers
// (default ReplicateAuto).
func WithReplication(r Replication) PutOption {
	return putOption(func(o *putOptions) { o.replication = r })
}

// pipelines reports whether an upload of size bytes (-1: unknown) to want
// providers goes through a pipeline.
func (r Replication) pipelines(size int64, want int) bool {
	switch {
	case want < 2:
		return false
	case r == ReplicatePipelined:
		return true
	case r == ReplicateAuto:
		return size >= PipelineMinSize
	}
	return false
}

// feedPipelines hands chunk j to the targets that need it as pipelines of
// at most store.MaxForwardHops+1 targets (one unless N is larger), each
// in its head's queue. The head rotates with the chunk index, so
// forwarding is spread over the providers' uplinks; a target that may
// head no more (canHead) is only a hop, and a group with no target that
// may head gets the chunk pushed directly to each.
func (p *pusher) feedPipelines(j *chunkJob, to []*target) {
	k := j.index % len(to)
	order := make([]*target, 0, len(to))
	order = append(order, to[k:]...)
	order = append(order, to[:k]...)
	var heads []*target
	var forwards [][]*target
	for len(order) > 0 {
		n := min(len(order), store.MaxForwardHops+1)
		g, ok := headFirst(order[:n])
		order = order[n:]
		if !ok { // no target of the group may head: each is pushed directly
			for _, t := range g {
				heads, forwards = append(heads, t), append(forwards, nil)
			}
			continue
		}
		heads, forwards = append(heads, g[0]), append(forwards, g[1:])
	}
	j.refs.Store(int32(len(heads)))
	p.tr.chunkStarted(j.index)
	for i, head := range heads {
		job := j
		if i > 0 {
			job = &chunkJob{index: j.index, info: j.info, data: j.data, proof: j.proof, parent: j}
		}
		job.forward = forwards[i]
		head.queue <- job // never blocks: a queue holds as many jobs as the pool has buffers
	}
}

// holder returns a live target of the pass that holds chunk i of the
// registered object and may head (canHead), to head a pipeline to the
// targets lacking it (it answers "already stored" and forwards the chunk
// read back from its store), or nil. A streamed session's chunk is always sent, so only a
// registered object's chunks are forwarded by a holder.
func (p *pusher) holder(i int) *target {
	if !p.registered {
		return nil
	}
	var holders []*target
	for _, t := range p.alive() {
		if t.queue != nil && t.has(i) && t.canHead() {
			holders = append(holders, t)
		}
	}
	if len(holders) == 0 {
		return nil
	}
	return holders[i%len(holders)]
}

// liveOf returns the targets of ts not given up: ts itself when all are
// live, else a copy without the others.
func liveOf(ts []*target) []*target {
	for i, t := range ts {
		if !t.alive() {
			out := slices.Clone(ts[:i])
			for _, t := range ts[i+1:] {
				if t.alive() {
					out = append(out, t)
				}
			}
			return out
		}
	}
	return ts
}

// hops returns the forward list of a pipeline's targets after its head.
func hops(ts []*target) []store.Hop {
	out := make([]store.Hop, len(ts))
	for i, t := range ts {
		out[i] = store.Hop{Peer: t.cand.peer, Addrs: t.cand.addrs, Session: t.cand.session}
	}
	return out
}

// pipelined records the outcome of a pipelined push of chunk j along
// forward whose head signed, begun at began: every hop's receipt (already
// verified against the hop's key by store.PushPipeline) counts for its
// target, and every hop that did not sign gets the chunk pushed directly:
// one the head says is out of disk (hopNoRoom) once, and is given up only
// if it says so itself. A hop the head reported failed that signs the
// direct push at once proves the head's report false: the head is
// contradicted (headContradicted), and may head no more past headLieLimit.
func (p *pusher) pipelined(ctx context.Context, head *target, j *chunkJob, forward []*target, res store.PipelineResult, began time.Time) {
	byPeer := make(map[peer.ID]*target, len(forward))
	for _, ft := range forward {
		byPeer[ft.cand.peer] = ft
	}
	type hopReceipt struct {
		t      *target
		r      *storepb.Receipt
		stored bool // the hop held the chunk before the push
	}
	var signed []hopReceipt
	for _, hr := range res.Receipts[1:] { // the head's is recorded by push
		ht := byPeer[hr.Peer]
		if ht == nil {
			continue // PushPipeline returns only hops of the forward list
		}
		if err := p.checkReceipt(ht, j, hr.Receipt); err != nil {
			p.c.log.Debug("relayed receipt refused", "peer", hr.Peer, "chunk", j.index, "err", err)
			continue
		}
		stored := heldBefore(hr.Receipt, began)
		if !stored {
			p.markSent(j.index) // before any receipt of the chunk is counted
		}
		signed = append(signed, hopReceipt{ht, hr.Receipt, stored})
	}
	for _, s := range signed {
		// The hop's storage link was signed by way of the pipeline.
		p.tr.link(-1, LinkSigned)
		p.signed(s.t, j, s.r, s.stored)
	}
	contradicted := false
	for _, f := range res.Failed {
		ft := byPeer[f.Peer]
		if ft == nil || !ft.alive() {
			continue
		}
		// A relayed failure is only the head's word (receipts verify,
		// failures do not): a full disk it reports is a hint. The hop
		// gets the chunk directly once, and is given up only on its own
		// no_space answer (pushLinks), so a lying head cannot evict
		// honest hops.
		once := hopNoRoom(f.Err)
		p.c.log.Debug("pipeline hop failed; pushing to it directly", "peer", f.Peer, "chunk", j.index, "once", once, "err", f.Err)
		ok, first := p.pushLinks(ctx, ft, &chunkJob{index: j.index, info: j.info, data: j.data, proof: j.proof, once: once})
		contradicted = contradicted || (ok && first)
	}
	if contradicted {
		p.headContradicted(head, j.index)
	}
}

// receiptClockSlack is how far a pipeline hop's clock may run behind the
// uploader's before a chunk it stores during a push reads as one it held.
const receiptClockSlack = 2 * time.Second

// heldBefore reports whether a hop's receipt says the hop held the chunk
// before a push begun at began. The uploader does not see the hop answer
// ALREADY_STORED (its previous hop does); the receipt's stored_at_unix,
// when the hop first stored the chunk, tells instead: a chunk stored more
// than receiptClockSlack before the push was not sent to it by the push.
func heldBefore(r *storepb.Receipt, began time.Time) bool {
	return r.GetStoredAtUnix() < began.Add(-receiptClockSlack).Unix()
}

// pushOne runs one storage link of a chunk over conn: a direct push, or,
// with a forward list, a pipelined one (whose hops' receipts the caller
// records with pipelined). It returns the head's own verified receipt.
func (p *pusher) pushOne(ctx context.Context, conn storeConn, forward []*target, c store.ChunkPush) (*storepb.Receipt, store.PipelineResult, error) {
	if len(forward) == 0 {
		r, err := conn.Push(ctx, c)
		return r, store.PipelineResult{}, err
	}
	c.Forward = hops(forward)
	res, err := conn.PushPipeline(ctx, c)
	if err != nil {
		return nil, res, err
	}
	if len(res.Receipts) == 0 {
		return nil, res, fmt.Errorf("%w: pipelined push returned no receipt", store.ErrBadReceipt)
	}
	return res.Receipts[0].Receipt, res, nil
}

// headLieLimit is how many pipelined pushes a target may head whose
// reports of failed hops the hops contradict (each signed the uploader's
// direct push at once) before it heads no more in the upload: a head that
// lies, or whose links to the other providers are bad, costs the uploader
// a direct push per hop of every chunk it heads, and saves nothing. It
// stays a target, and gets chunks as a hop or directly; receipts it
// signed stay counted.
const headLieLimit = 3

// canHead reports whether t may head pipelines (and forward chunks it
// holds): fewer than headLieLimit of its pipelined pushes were
// contradicted.
func (t *target) canHead() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.headLies < headLieLimit
}

// headContradicted counts a pipelined push of chunk i headed by t whose
// report of a failed hop the hop contradicted.
func (p *pusher) headContradicted(t *target, i int) {
	t.mu.Lock()
	t.headLies++
	n := t.headLies
	t.mu.Unlock()
	p.c.log.Debug("pipeline head reported a hop failed that then took the chunk at once", "peer", t.cand.peer, "chunk", i, "times", n)
	if n == headLieLimit {
		p.c.log.Info("pipeline head's reports of failed hops proved false; it heads no more pipelines in this upload",
			"bag", p.bag, "peer", t.cand.peer, "times", n)
	}
}

// headFirst returns ts with a target that may head (canHead) first, and
// whether there is one: ts itself when its first may, else a copy with the
// first that may swapped to the front.
func headFirst(ts []*target) ([]*target, bool) {
	for i, t := range ts {
		if !t.canHead() {
			continue
		}
		if i == 0 {
			return ts, true
		}
		out := slices.Clone(ts)
		out[0], out[i] = out[i], out[0]
		return out, true
	}
	return ts, false
}

// lacking returns the live targets of ts that lack chunk i.
func lacking(ts []*target, i int) []*target {
	var out []*target
	for _, t := range ts {
		if t.alive() && !t.has(i) {
			out = append(out, t)
		}
	}
	return out
}

// pushAlong gets chunk j to the targets ts from the uploader, within the
// caller's worker: as a pipeline under a target of ts that may head, or,
// when none may, pushed to each directly.
func (p *pusher) pushAlong(ctx context.Context, ts []*target, j *chunkJob) {
	if len(ts) == 0 {
		return
	}
	if ts, ok := headFirst(ts); ok {
		p.push(ctx, ts[0], &chunkJob{index: j.index, info: j.info, data: j.data, proof: j.proof, forward: ts[1:]})
		return
	}
	for _, t := range ts {
		if ctx.Err() != nil {
			return
		}
		p.push(ctx, t, &chunkJob{index: j.index, info: j.info, data: j.data, proof: j.proof})
	}
}
