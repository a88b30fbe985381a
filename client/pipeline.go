package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
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
// in its head's queue. Targets that may head no more (canHead) come last
// (byHeading): they are only last hops, where they forward to no one, and
// a group with no target that may head gets the chunk pushed directly to
// each. The order of each part rotates with the chunk index, so heading
// and forwarding are spread over the providers' uplinks.
func (p *pusher) feedPipelines(j *chunkJob, to []*target) {
	order, heading := byHeading(to)
	order = append(rotated(order[:heading], j.index), rotated(order[heading:], j.index)...)
	var heads []*target
	var forwards [][]*target
	for at := 0; at < len(order); {
		n := min(len(order)-at, store.MaxForwardHops+1)
		g := order[at : at+n]
		if at >= heading { // no target of the group may head: each is pushed directly
			for _, t := range g {
				heads, forwards = append(heads, t), append(forwards, nil)
			}
		} else {
			heads, forwards = append(heads, g[0]), append(forwards, g[1:])
		}
		at += n
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

// hops returns the forward list of a pipeline's targets after its head,
// each at the addresses the uploader dials it at (target.addrs).
func hops(ts []*target) []store.Hop {
	out := make([]store.Hop, len(ts))
	for i, t := range ts {
		out[i] = store.Hop{Peer: t.cand.peer, Addrs: t.addrs(), Session: t.cand.session}
	}
	return out
}

// pipelined records the outcome of a pipelined push of chunk j along
// forward whose head signed, begun at began: every hop's receipt (already
// verified against the hop's key by store.PushPipeline) counts for its
// target, and every hop that did not sign gets the chunk pushed directly:
// one reported out of disk (hopNoRoom) once, and is given up only if it
// says so itself.
//
// A failed hop's report comes from the nearest provider before it in the
// pipeline that signed (store.Relay.forward: in H→X→Y, X reports Y), the
// head when none did. A hop so reported that signs the direct push at
// once contradicts its reporter (forwardContradicted), which may head no
// more past the limit of canHead; unless a hop it reported is excused:
// reported busy (its budget may have freed since), or holding the chunk
// already (the reporter gave up waiting on a slow hop that then stored
// it, and the hops after it were not tried once the forward deadline
// passed). A liar that claims busy is not counted: failures are not
// signed, so it cannot be told from an honest reporter; it costs the
// uploader a direct push per hop of the pipelines it heads, as a
// provider that predates forward would without the limit.
func (p *pusher) pipelined(ctx context.Context, head *target, j *chunkJob, forward []*target, res store.PipelineResult, began time.Time) {
	at := make(map[peer.ID]int, len(forward))
	for i, ft := range forward {
		at[ft.cand.peer] = i
	}
	signedAt := p.hopReceipts(j, forward, at, res, began)
	// Every provider that signed with hops after it forwarded the chunk.
	countForwarded(head)
	for i, ok := range signedAt[:len(signedAt)-1] {
		if ok {
			countForwarded(forward[i])
		}
	}
	p.failedHops(ctx, head, j, forward, at, res, signedAt)
}

// hopReceipts records the receipts the pipeline relayed for j, each checked
// against the hop it names, and returns which hops of forward signed.
func (p *pusher) hopReceipts(j *chunkJob, forward []*target, at map[peer.ID]int, res store.PipelineResult, began time.Time) []bool {
	type hopReceipt struct {
		t      *target
		r      *storepb.Receipt
		stored bool // the hop held the chunk before the push
	}
	var signed []hopReceipt
	signedAt := make([]bool, len(forward))
	for _, hr := range res.Receipts[1:] { // the head's is recorded by push
		i, ok := at[hr.Peer]
		if !ok {
			continue // PushPipeline returns only hops of the forward list
		}
		ht := forward[i]
		if err := p.checkReceipt(ht, j, hr.Receipt); err != nil {
			p.c.log.Debug("relayed receipt refused", "peer", hr.Peer, "chunk", j.index, "err", err)
			continue
		}
		stored := heldBefore(hr.Receipt, began)
		if !stored {
			p.markSent(j.index) // before any receipt of the chunk is counted
		}
		signedAt[i] = true
		signed = append(signed, hopReceipt{ht, hr.Receipt, stored})
	}
	for _, s := range signed {
		// The hop's storage link was signed by way of the pipeline.
		p.tr.link(-1, LinkSigned)
		p.signed(s.t, j, s.r, s.stored)
	}
	return signedAt
}

// failedHops pushes j directly to each live hop the pipeline reported
// failed, and counts a contradiction against the provider that reported
// it (the nearest hop before it that signed, else the head) when the hop
// signed at once and nothing excuses the report (busy, already stored).
func (p *pusher) failedHops(ctx context.Context, head *target, j *chunkJob, forward []*target, at map[peer.ID]int, res store.PipelineResult, signedAt []bool) {
	reporter := func(i int) *target {
		for k := i - 1; k >= 0; k-- {
			if signedAt[k] {
				return forward[k]
			}
		}
		return head
	}
	// The failed hops' direct pushes, side by side: each may wait out a
	// busy hop, and the worker holds the chunk's buffer meanwhile.
	type direct struct {
		i   int
		err error
		out linkOutcome
	}
	var pushes []*direct
	var wg sync.WaitGroup
	for _, f := range res.Failed {
		i, ok := at[f.Peer]
		if !ok || !forward[i].alive() {
			continue
		}
		// A relayed failure is only the reporter's word (receipts
		// verify, failures do not): a full disk it reports is a hint.
		// The hop gets the chunk directly once, and is given up only on
		// its own no_space answer (pushLinks), so a lying provider
		// cannot evict honest hops.
		once := hopNoRoom(f.Err)
		p.c.log.Debug("pipeline hop failed; pushing to it directly", "peer", f.Peer, "chunk", j.index, "once", once, "err", f.Err)
		d := &direct{i: i, err: f.Err}
		pushes = append(pushes, d)
		wg.Go(func() {
			d.out = p.pushLinks(ctx, forward[i], &chunkJob{index: j.index, info: j.info, data: j.data, proof: j.proof, once: once})
		})
	}
	wg.Wait()
	// Per reporter: whether a hop it reported contradicted it, and
	// whether one was excused.
	type verdict struct{ contradicted, excused bool }
	verdicts := make(map[*target]*verdict)
	for _, d := range pushes {
		r := reporter(d.i)
		v := verdicts[r]
		if v == nil {
			v = &verdict{}
			verdicts[r] = v
		}
		v.excused = v.excused || d.out.stored || errors.Is(d.err, store.ErrProviderBusy)
		v.contradicted = v.contradicted || (d.out.signed && d.out.first)
	}
	for r, v := range verdicts {
		if v.contradicted && !v.excused {
			p.forwardContradicted(r, j.index)
		}
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

// Dropping a forwarder: a provider whose reports of failed hops the hops
// contradict (each signed the uploader's direct push at once) costs the
// uploader a direct push per such hop, and saves nothing on those. Past
// headLieLimit contradicted pipelines, when they are more than
// 1/headLieShare of the pipelines it forwarded in, it heads no more: it
// goes last in every pipeline, where it forwards to no one. A lying or
// pre-`forward` provider is contradicted in every pipeline it forwards in,
// and is dropped at headLieLimit; an honest one whose hops are at times
// unreachable or gone, or not tried once the forward deadline passed,
// keeps heading while its pipelines mostly succeed, however long the
// upload. It stays a target, and the receipts it signed stay counted.
const (
	// headLieLimit is the fewest contradicted pipelines that drop a
	// forwarder.
	headLieLimit = 3
	// headLieShare: more than one contradicted pipeline in headLieShare
	// it forwarded in drops a forwarder.
	headLieShare = 8
)

// canHead reports whether t may head pipelines (and forward chunks it
// holds): fewer than headLieLimit of the pipelines it forwarded in were
// contradicted, or no more than 1/headLieShare of them.
func (t *target) canHead() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mayHeadLocked()
}

func (t *target) mayHeadLocked() bool {
	return t.fwdLies < headLieLimit || t.fwdLies*headLieShare <= t.forwarded
}

// countForwarded counts a pipeline in which t signed the chunk with hops after
// it: it forwarded the chunk, or reported the hops failed.
func countForwarded(t *target) {
	t.mu.Lock()
	t.forwarded++
	t.mu.Unlock()
}

// forwardContradicted counts a pipelined push of chunk i in which a hop t
// reported failed contradicted it.
func (p *pusher) forwardContradicted(t *target, i int) {
	t.mu.Lock()
	could := t.mayHeadLocked()
	t.fwdLies++
	n, of := t.fwdLies, t.forwarded
	drop := could && !t.mayHeadLocked()
	t.mu.Unlock()
	p.c.log.Debug("pipeline hop reported failed took the chunk at once", "reporter", t.cand.peer, "chunk", i, "times", n, "of", of)
	if drop {
		p.c.log.Info("pipeline provider's reports of failed hops were contradicted by the hops (it lies, predates forward, or its links to them are bad); it heads no more pipelines in this upload for now",
			"bag", p.bag, "peer", t.cand.peer, "contradicted", n, "pipelines", of)
	}
}

// rotated returns a copy of ts rotated left by i.
func rotated(ts []*target, i int) []*target {
	if len(ts) == 0 {
		return nil
	}
	k := i % len(ts)
	return append(slices.Clone(ts[k:]), ts[:k]...)
}

// byHeading returns ts with the targets that may head (canHead) first,
// each part in its order, and how many may: ts itself when no target
// that may not head comes before one that may.
func byHeading(ts []*target) ([]*target, int) {
	may := make([]bool, len(ts))
	n := 0
	sorted := true
	for i, t := range ts {
		may[i] = t.canHead()
		if may[i] {
			sorted = sorted && n == i
			n++
		}
	}
	if sorted {
		return ts, n
	}
	out := make([]*target, 0, len(ts))
	for i, t := range ts {
		if may[i] {
			out = append(out, t)
		}
	}
	for i, t := range ts {
		if !may[i] {
			out = append(out, t)
		}
	}
	return out, n
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
// caller's worker: as a pipeline under a target of ts that may head, the
// targets that may not last (byHeading), or, when none may, pushed to
// each directly, in parallel, so that one busy or slow target does not
// hold up the others' copies.
func (p *pusher) pushAlong(ctx context.Context, ts []*target, j *chunkJob) {
	if len(ts) == 0 {
		return
	}
	if ts, n := byHeading(ts); n > 0 {
		p.push(ctx, ts[0], &chunkJob{index: j.index, info: j.info, data: j.data, proof: j.proof, forward: ts[1:]})
		return
	}
	var wg sync.WaitGroup
	for _, t := range ts {
		wg.Go(func() { p.push(ctx, t, &chunkJob{index: j.index, info: j.info, data: j.data, proof: j.proof}) })
	}
	wg.Wait()
}
