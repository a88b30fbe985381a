package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/sync/errgroup"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/ctxsleep"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/store"
	storepb "github.com/satchel-net/satchel/protocol/store/pb"
)

// Retry policy of a storage link.
const (
	// linkAttempts is how many times one chunk is tried on one provider in
	// one pass before the provider is given up for this upload.
	linkAttempts = 5
	// retryBase and retryMax bound the backoff between attempts: a provider
	// whose view of the chain lags a block behind the registration refuses
	// the first chunks, then agrees.
	retryBase = 100 * time.Millisecond
	retryMax  = 2 * time.Second
	// targetFailures is how many failed links in a row make a provider
	// given up for this upload.
	targetFailures = 12
	// maxRounds bounds the passes over the chunks: each pass sends every
	// chunk some live target lacks; a pass is only repeated when targets
	// failed and others replace them.
	maxRounds = 16
	// bindTimeout bounds one BIND exchange (the provider rebuilds the DAG
	// and checks every chunk it holds).
	bindTimeout = 2 * time.Minute
	// dropTimeout bounds the DROPs of an upload given up: they only spare
	// the providers the wait for the session's expiry.
	dropTimeout = 5 * time.Second
)

// pusher moves the chunks of one upload to its target providers and keeps
// the File / Chunk / StorageLink states: it is the uploader's half of
// /satchel/store/1.0.0 over several providers at once.
type pusher struct {
	c      *Client
	bag    chain.BagID
	object uint64
	// registered is set once the object is on chain: chunks then go in
	// object mode, with proofs, to every target.
	registered bool
	expiry     time.Time
	key        *uploadKey // the journal's key; nil for streamed uploads
	tr         *tracker
	pool       *bufPool
	want       int // N
	min        int
	// pipeline says chunks go to one target each and are passed along the
	// others (WithReplication; client/pipeline.go).
	pipeline bool
	nchunks  int // chunks of the object (known at the end of a stream)

	mu      sync.Mutex
	targets []*target
	spares  []candidate
	failed  []PeerError
	tried   map[peer.ID]bool

	// sentData holds the chunks whose bytes some link had to send: a chunk
	// every provider answered "already stored" counts as resumed.
	sentData bitset

	g          *errgroup.Group // workers of the current pass
	gctx       context.Context
	cancelPass context.CancelFunc
	fatal      error // stops the upload: the file changed under it
}

// open connects store streams to spares until want targets are alive,
// or the spares run out.
func (p *pusher) open(ctx context.Context) {
	for {
		p.mu.Lock()
		alive := 0
		for _, t := range p.targets {
			if t.alive() {
				alive++
			}
		}
		if alive >= p.want || len(p.spares) == 0 {
			p.mu.Unlock()
			return
		}
		cand := p.spares[0]
		p.spares = p.spares[1:]
		p.mu.Unlock()
		t := &target{cand: cand}
		conn, err := p.c.openConn(ctx, cand.peer)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.fail(cand.peer, openFailed(err))
			continue
		}
		t.conn = conn
		p.mu.Lock()
		p.targets = append(p.targets, t)
		p.mu.Unlock()
		p.c.log.Debug("upload target", "bag", p.bag, "peer", cand.peer, "bucket", cand.bucket)
	}
}

// fail records why a provider is not used.
func (p *pusher) fail(id peer.ID, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failed = append(p.failed, PeerError{Peer: id, Err: err})
	p.c.log.Info("storage provider given up for this upload", "bag", p.bag, "peer", id, "err", err)
}

// kill gives a target up for the rest of the upload.
func (p *pusher) kill(t *target, err error) {
	t.mu.Lock()
	if t.dead != nil {
		t.mu.Unlock()
		return
	}
	t.dead = err
	conn := t.conn
	t.conn = nil
	t.mu.Unlock()
	if conn != nil {
		closeQuietly(conn)
	}
	p.fail(t.cand.peer, err)
}

// alive returns the live targets.
func (p *pusher) alive() []*target {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*target
	for _, t := range p.targets {
		if t.alive() {
			out = append(out, t)
		}
	}
	return out
}

// closeAll closes every target's stream.
func (p *pusher) closeAll() {
	p.mu.Lock()
	ts := p.targets
	p.mu.Unlock()
	for _, t := range ts {
		t.mu.Lock()
		conn := t.conn
		t.conn = nil
		t.mu.Unlock()
		if conn != nil {
			closeQuietly(conn)
		}
	}
}

// noProvider is the error when too few providers are left.
func (p *pusher) noProvider(have int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return &NoProviderError{Bag: p.bag, Need: p.want, Have: have, Tried: append([]PeerError(nil), p.failed...), Op: "upload"}
}

// start starts the workers of a pass: every live target gets a queue and
// workersPerTarget goroutines pushing from it. Call feed for every chunk,
// then finish.
func (p *pusher) start(ctx context.Context) {
	pctx, cancel := context.WithCancel(ctx)
	p.cancelPass = cancel
	p.g, p.gctx = errgroup.WithContext(pctx)
	for _, t := range p.alive() {
		t.queue = make(chan *chunkJob, cap(p.pool.avail)+1)
		for range p.workersPerTarget() {
			p.g.Go(func() error {
				for j := range t.queue {
					p.push(p.gctx, t, j)
					j.done()
				}
				return nil
			})
		}
	}
}

// workersPerTarget is how many chunk exchanges the uploader keeps in flight
// on one store stream: one per buffer of the upload's window (at most the
// protocol's store.MaxChunksInFlight), so every chunk in memory can be on
// its way. Fewer left buffers idle while the exchanges waited for the
// provider's answers and fsyncs: the window, not the wire, set the pace.
func (p *pusher) workersPerTarget() int {
	return min(cap(p.pool.avail), store.MaxChunksInFlight)
}

// need returns the live targets of the current pass that lack chunk i.
// Before the object is registered only targets with a contract's upload
// session take chunks; the others get them in object mode, with proofs,
// once it is.
func (p *pusher) need(i int) []*target {
	var out []*target
	for _, t := range p.alive() {
		if t.queue != nil && !t.has(i) && (p.registered || t.cand.session != nil) {
			out = append(out, t)
		}
	}
	return out
}

// take waits for a buffer for chunk i, then returns it with the live
// targets of the pass that lack the chunk (need). The targets are picked
// after the wait, which may be long: one given up meanwhile is not handed
// the chunk. With no target lacking it, take returns no buffer and does
// not wait.
func (p *pusher) take(ctx context.Context, i int) ([]*target, []byte, error) {
	if len(p.need(i)) == 0 {
		return nil, nil, nil
	}
	buf, err := p.pool.get(ctx)
	if err != nil {
		return nil, nil, err
	}
	to := p.need(i)
	if len(to) == 0 {
		p.pool.put(buf)
		return nil, nil, nil
	}
	return to, buf, nil
}

// feed hands chunk j to every live target of the pass that lacks it. It
// takes over j's buffer.
func (p *pusher) feed(j *chunkJob, to []*target) {
	if len(to) == 0 {
		j.refs.Store(1)
		j.done()
		return
	}
	if p.pipeline {
		if holder := p.holder(j.index); holder != nil && len(to) <= store.MaxForwardHops {
			// A provider holds the chunk: it forwards it to those that
			// lack it, and the uploader sends no bytes.
			j.forward, j.fromHolder = to, true
			j.refs.Store(1)
			p.tr.chunkStarted(j.index)
			holder.queue <- j
			return
		}
		if len(to) > 1 {
			p.feedPipelines(j, to)
			return
		}
	}
	j.refs.Store(int32(len(to)))
	for _, t := range to {
		p.tr.chunkStarted(j.index)
		t.queue <- j // never blocks: a queue holds as many jobs as the pool has buffers
	}
}

// finish closes the pass's queues and waits for its workers.
func (p *pusher) finish() error {
	p.mu.Lock()
	ts := p.targets
	p.mu.Unlock()
	for _, t := range ts {
		if t.queue != nil {
			close(t.queue)
		}
	}
	err := p.g.Wait()
	p.cancelPass()
	for _, t := range ts {
		t.queue = nil
	}
	if f := p.fatalErr(); f != nil {
		return f
	}
	return err
}

// abort stops the upload with err: every worker of the pass stops.
func (p *pusher) abort(err error) {
	p.mu.Lock()
	if p.fatal == nil {
		p.fatal = err
	}
	p.mu.Unlock()
	p.cancelPass()
}

func (p *pusher) fatalErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fatal
}

// conn returns the target's stream, opening a new one after a failure.
func (p *pusher) conn(ctx context.Context, t *target) (storeConn, int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dead != nil {
		return nil, 0, t.dead
	}
	if t.conn == nil {
		open := p.c.openConn
		if !t.down.since.IsZero() {
			open = func(ctx context.Context, _ peer.ID) (storeConn, error) { return p.redial(ctx, t) }
		}
		conn, err := open(ctx, t.cand.peer)
		if err != nil {
			return nil, 0, err
		}
		t.conn = conn
		t.gen++
	}
	return t.conn, t.gen, nil
}

// resetConn drops the target's stream of generation gen, once.
func (t *target) resetConn(gen int) {
	t.mu.Lock()
	var conn storeConn
	if t.gen == gen && t.conn != nil {
		conn = t.conn
		t.conn = nil
	}
	t.mu.Unlock()
	if conn != nil {
		closeQuietly(conn)
	}
}

// push runs the storage links of chunk j to target t until one is signed,
// the target is given up, or ctx ends. When t heads a pipeline (j has a
// forward list) and is given up, or held the chunk already, the rest of the
// pipeline gets the chunk from the uploader, under another head. A head
// that may head no more (canHead: the hops contradicted its reports of
// failed ones) by the time the job's turn comes gets the chunk as the
// last hop of a pipeline of the rest (pushAlong), under another head.
func (p *pusher) push(ctx context.Context, t *target, j *chunkJob) {
	if len(j.forward) > 0 && !t.canHead() {
		ts := lacking(j.forward, j.index)
		if !j.fromHolder && t.alive() && !t.has(j.index) {
			ts = append(ts, t) // last, where it forwards to no one (byHeading)
		}
		p.pushAlong(ctx, ts, j)
		return
	}
	if out := p.pushLinks(ctx, t, j); out.signed || len(j.forward) == 0 || ctx.Err() != nil {
		return
	}
	rest := lacking(j.forward, j.index)
	if len(rest) == 0 {
		return
	}
	p.c.log.Debug("pipeline head lost; sending the chunk along the rest", "chunk", j.index, "head", t.cand.peer)
	p.pushAlong(ctx, rest, j)
}

// linkOutcome is how pushLinks ended.
type linkOutcome struct {
	// signed says a link was signed.
	signed bool
	// first says the first exchange signed, no open or exchange failing
	// before it.
	first bool
	// stored says the provider answered it held the chunk already.
	stored bool
}

// pushLinks runs the storage links of chunk j to t until one is signed,
// or the target is given up, held the chunk, or ctx ends.
//
// A provider whose disk is full (noRoom) is given up at its first such
// answer: the chunk is not sent to it again. A job marked once is tried
// one time (busy refusals and lost streams aside), not linkAttempts.
//
// A busy refusal (store.ErrProviderBusy: the provider's budget for all
// peers is spent) is no failure: the link is tried again after a pause
// (fetch.BusyWait, as reads wait), for up to the client's busy wait; only
// then is the target given up (busyPushError).
func (p *pusher) pushLinks(ctx context.Context, t *target, j *chunkJob) linkOutcome {
	backoff := retryBase
	bw := fetch.BusyWait{Max: p.c.opts.busyWait}
	first := true
	for attempt := 1; ; attempt, first = attempt+1, false {
		if ctx.Err() != nil || !t.alive() {
			return linkOutcome{}
		}
		if t.has(j.index) && !j.fromHolder {
			return linkOutcome{}
		}
		// A hop given up since the chunk was fed (its disk full, say) is
		// not forwarded to. (j is shared by the targets fed it directly:
		// it is read here, never written.)
		fwd := liveOf(j.forward)
		if j.fromHolder && len(fwd) == 0 {
			return linkOutcome{}
		}
		p.tr.link(-1, LinkCreated)
		conn, gen, err := p.conn(ctx, t)
		if err != nil {
			p.tr.link(LinkCreated, LinkFailed)
			if ctx.Err() != nil || !t.alive() {
				return linkOutcome{}
			}
			if !p.waitReconnect(ctx, t, fmt.Sprintf("chunk %d", j.index), openFailed(err)) {
				return linkOutcome{}
			}
			attempt-- // a provider out of reach is waited for, not counted
			continue
		}
		link := &linkSteps{tr: p.tr, state: LinkCreated, onData: func() { p.markSent(j.index) }}
		began := p.c.now()
		pctx, cancel := context.WithTimeout(ctx, p.c.opts.pushTimeout)
		r, res, err := p.pushOne(pctx, conn, fwd, store.ChunkPush{
			Bag:     p.bag.String(),
			Object:  p.object,
			Index:   j.index,
			CID:     j.info.CID,
			Data:    j.data[:j.info.Size],
			Proof:   j.proof,
			Session: t.cand.session,
			Expiry:  p.expiry,
			OnStep:  link.step,
		})
		cancel()
		if err == nil {
			err = p.checkReceipt(t, j, r)
		}
		if err == nil {
			link.move(LinkSigned)
			p.signed(t, j, r, link.alreadyStored)
			if len(fwd) > 0 {
				p.pipelined(ctx, t, j, fwd, res, began)
			}
			return linkOutcome{signed: true, first: first, stored: link.alreadyStored}
		}
		link.move(LinkFailed)
		switch p.linkFailed(ctx, t, j, gen, &bw, attempt, err) {
		case linkStop:
			return linkOutcome{}
		case linkAgain:
			attempt-- // a busy refusal or a lost stream is not an attempt
			continue
		}
		if !ctxsleep.Sleep(ctx, backoff) {
			return linkOutcome{}
		}
		backoff = min(backoff*2, retryMax)
	}
}

// linkVerdict is what follows a failed storage link.
type linkVerdict int

const (
	// linkStop ends the chunk's links to the target.
	linkStop linkVerdict = iota
	// linkAgain tries again at once, not counting an attempt.
	linkAgain
	// linkRetry counts the attempt and tries again after a backoff.
	linkRetry
)

// linkFailed classifies the failure err of attempt's storage link of chunk
// j to t (gen is its stream's generation), and gives the target up when
// it must be. A busy refusal and a lost stream are waited out and tried
// again uncounted; a full disk gives the target up at once; other failures
// count against the target, which is given up after linkAttempts for one
// chunk or targetFailures in a row.
func (p *pusher) linkFailed(ctx context.Context, t *target, j *chunkJob, gen int, bw *fetch.BusyWait, attempt int, err error) linkVerdict {
	if ctx.Err() != nil {
		return linkStop
	}
	what := fmt.Sprintf("chunk %d", j.index)
	if errors.Is(err, store.ErrProviderBusy) {
		if !p.waitBusy(ctx, t, bw, what, err) {
			return linkStop
		}
		return linkAgain
	}
	if connLost(err) {
		// The stream broke: the provider may be restarting. Dial it
		// again for a while; the chunks it signed stay counted.
		t.resetConn(gen)
		if !p.waitReconnect(ctx, t, what, err) {
			return linkStop
		}
		return linkAgain
	}
	if noRoom(err) {
		// The provider's disk is full: its operator must free space,
		// and no retry can succeed before. Give it up now, as a dead
		// one, for a spare to take its place.
		p.kill(t, fmt.Errorf("%s: %w", what, err))
		return linkStop
	}
	var refused *store.RefusedError
	if !errors.As(err, &refused) {
		// The stream broke or timed out: open a new one next attempt.
		t.resetConn(gen)
	} else if refused.Status == storepb.Status_STATUS_FAILED {
		// The provider found bytes that do not match the CID. The
		// chunk was not hashed again when it was read back (the
		// provider checks every byte), so check now whether the file
		// changed under the upload: no provider can then succeed.
		if verr := verifyChunk(j.info, j.data[:j.info.Size]); verr != nil {
			p.abort(verr)
			return linkStop
		}
	}
	t.mu.Lock()
	t.fails++
	fails := t.fails
	t.mu.Unlock()
	p.c.log.Debug("storage link failed", "peer", t.cand.peer, "chunk", j.index, "attempt", attempt, "err", err)
	if attempt >= linkAttempts || fails >= targetFailures {
		p.kill(t, fmt.Errorf("%s: %w", what, err))
		return linkStop
	}
	if j.once {
		return linkStop // the chunk stays lacking: a later pass sends it
	}
	return linkRetry
}

// checkReceipt checks a receipt a storage link returned: that it names t's
// provider and answers chunk j of this object and bag. Its signature is
// verified already: store.Stream's Push and PushPipeline return only
// receipts whose signature verifies against the provider each names
// (store.VerifyReceipt), and verifying an ed25519 signature again cost
// ~50 µs per chunk (~0.05 CPU s per GiB).
func (p *pusher) checkReceipt(t *target, j *chunkJob, r *storepb.Receipt) error {
	if r == nil || !bytes.Equal(r.GetProvider(), []byte(t.cand.peer)) {
		return fmt.Errorf("%w: receipt is not signed by %s", store.ErrBadReceipt, t.cand.peer)
	}
	if !bytes.Equal(r.GetCid(), j.info.CID.Bytes()) || r.GetObjectId() != p.object || r.GetBagId() != p.bag.String() {
		return fmt.Errorf("%w: receipt is for chunk %x of object %d in bag %q", store.ErrBadReceipt, r.GetCid(), r.GetObjectId(), r.GetBagId())
	}
	return nil
}

// signed records a verified receipt; stored says the provider already held
// the chunk.
func (p *pusher) signed(t *target, j *chunkJob, r *storepb.Receipt, stored bool) {
	t.mu.Lock()
	t.fails = 0
	p.reachable(t)
	fresh := t.held.set(j.index)
	if fresh {
		t.nheld++
	}
	t.mu.Unlock()
	if !fresh {
		return
	}
	if !stored {
		p.tr.sent(int64(j.info.Size))
	}
	if p.key != nil {
		if err := p.c.journal.addReceipt(*p.key, j.index, t.cand.peer, r); err != nil {
			p.c.log.Info("cannot persist receipt; a resumed upload will ask for it again", "err", err)
		}
	}
	// Every link that sent the chunk's bytes marked it before its receipt
	// could come, so the receipt that completes the chunk sees them all.
	p.tr.receipt(j.index, !p.sent(j.index))
}

// markSent records that a link sent chunk i's bytes.
func (p *pusher) markSent(i int) {
	p.mu.Lock()
	p.sentData.set(i)
	p.mu.Unlock()
}

// sent reports whether some link sent chunk i's bytes.
func (p *pusher) sent(i int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sentData.has(i)
}

// bind binds the object on every live target that holds all n chunks and
// has not bound yet. A target whose bind fails is given up.
func (p *pusher) bind(ctx context.Context, chunks []chunker.ChunkInfo) {
	var wg sync.WaitGroup
	for _, t := range p.alive() {
		t.mu.Lock()
		skip := t.bound || t.nheld < len(chunks)
		t.mu.Unlock()
		if skip {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := p.bindOne(ctx, t, chunks)
			if err != nil {
				if ctx.Err() == nil && t.alive() {
					p.kill(t, fmt.Errorf("bind object %d: %w", p.object, err))
				}
				return
			}
			t.mu.Lock()
			t.bound = true
			p.reachable(t)
			t.mu.Unlock()
			if p.key != nil {
				if err := p.c.journal.markBound(*p.key, t.cand.peer); err != nil {
					p.c.log.Info("cannot persist bind", "err", err)
				}
			}
		}()
	}
	wg.Wait()
}

// drop asks every live target to drop the upload's session (DROP), so the
// chunks of an upload given up go now instead of at the session's expiry.
// It is best effort: a target that cannot be reached keeps them until then.
func (p *pusher) drop() { p.dropSessions((*target).alive) }

// dropSessions sends DROP for the upload's session to every target with one
// that which selects, in parallel within dropTimeout: over its stream when
// it is live, over a new one when it was given up.
func (p *pusher) dropSessions(which func(*target) bool) {
	ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
	defer cancel()
	p.mu.Lock()
	ts := slices.Clone(p.targets)
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, t := range ts {
		if t.cand.session == nil || !which(t) {
			continue
		}
		wg.Go(func() {
			conn, _, err := p.conn(ctx, t)
			if err != nil && !t.alive() {
				if conn, err = p.c.openConn(ctx, t.cand.peer); err == nil {
					defer closeQuietly(conn)
				}
			}
			if err == nil {
				err = conn.Drop(ctx, t.cand.session, p.bag.String())
			}
			if err != nil {
				p.c.log.Debug("drop upload session", "bag", p.bag, "peer", t.cand.peer, "err", err)
			}
		})
	}
	wg.Wait()
}

// boundCount returns how many live targets bound the object.
func (p *pusher) boundCount() int {
	n := 0
	for _, t := range p.alive() {
		t.mu.Lock()
		if t.bound {
			n++
		}
		t.mu.Unlock()
	}
	return n
}

// verifyChunk checks a chunk read back from the file still has its CID.
func verifyChunk(info chunker.ChunkInfo, data []byte) error {
	if got := chunker.ChunkCID(data); !got.Equals(info.CID) {
		return fmt.Errorf("%w: chunk at offset %d now hashes to %s, not %s", ErrFileChanged, info.Offset, got, info.CID)
	}
	return nil
}
