package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/rpc"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/contracts"
)

// Upload is a streamed upload: an io.Writer whose content is spooled to a
// temporary file as it is written and uploaded by Commit, once its size
// and root CID are known; Abort gives the upload up.
//
//	u, err := c.Upload(ctx, bag)
//	if err != nil { ... }
//	if _, err := io.Copy(u, r); err != nil { u.Abort(); ... }
//	obj, err := u.Commit()
//
// Providers take chunks of an object that is not registered yet only under
// a storage contract, and a stream of unknown size cannot be proposed for
// one, so Upload spools the stream to a temporary file (in TMPDIR) as it is
// written, in memory bounded by the write buffer; Commit then uploads the
// file as PutFile does (contracts when the put asks for them, else the
// object registered first and its chunks pushed with their proofs) and
// removes the spool. Abort removes it too. A streamed upload does not
// resume after an interruption; upload files with PutFile for that.
//
// An Upload is not safe for concurrent use: write, commit and abort from
// one goroutine; cancelling the context given to Upload stops a Commit
// under way and fails later writes. Until Commit or Abort returns, the upload
// counts as in progress for Client.Close.
type Upload struct {
	c      *Client
	ctx    context.Context
	cancel context.CancelFunc
	bag    chain.BagID
	o      putOptions
	tr     *tracker
	p      *pusher
	w      *chunker.Writer
	params chain.Params
	want   int
	// buckets is the bag's storage bucket count: its redundancy.
	buckets int
	// file is what PutFile uploads: content that can be read again, so
	// providers lost during the stream are replaced after it.
	file *fileSource
	// spool holds a stream of unknown size until Commit (spool.go).
	spool *spool
	// consigned are the contracts the upload pushes under (contracts.go),
	// recorded as bound to the object once it is.
	consigned []contracts.Consigned

	mu   sync.Mutex
	err  error // sticky: the first failure
	done bool
}

// Upload starts a streamed upload to bag: it checks the chain lets the
// member upload to the bag and creates the spool file in os.TempDir.
// Write the content, then call Commit, or Abort. The bag's providers are
// found and connected by Commit.
func (c *Client) Upload(ctx context.Context, bag chain.BagID, opts ...PutOption) (*Upload, error) {
	o, err := c.putOptions(opts)
	if err != nil {
		return nil, err
	}
	return c.newSpooled(ctx, bag, o)
}

// newUpload starts a streamed upload; file, when not nil, is the content
// the stream will carry, readable again by offset.
func (c *Client) newUpload(ctx context.Context, bag chain.BagID, o putOptions, file *fileSource) (_ *Upload, err error) {
	if err := c.begin(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.end()
		}
	}()
	size := int64(-1)
	if file != nil {
		size = file.size
	}
	params, err := c.precheck(ctx, bag, size)
	if err != nil {
		return nil, err
	}
	// The bag and whom to send to may be a block old (proven reads then need
	// not wait for the next block): a bag created in the last block is
	// found by the not-found retry, a bucket added to it is merely unused,
	// an operator not named yet is looked for again fresh when the upload
	// is short of providers.
	lctx := rpc.AcceptLag(ctx)
	if file != nil {
		if _, err := c.chain.Bag(lctx, bag); err != nil {
			return nil, explainChain("upload", bag, err)
		}
	}
	loc, err := c.locate(lctx, bag, false)
	if err != nil {
		return nil, err
	}
	want, err := o.copies(bag, loc.buckets)
	if err != nil {
		return nil, err
	}
	if len(loc.unnamed) > 0 && len(loc.live) < want {
		// Short of providers while the chain names no operator for some
		// bucket: one may have published its node in the last block, which
		// the lagged read did not see. Read those buckets again, fresh.
		if err := c.nameAgain(ctx, loc); err != nil {
			return nil, err
		}
	}
	if len(loc.live) < want && (len(loc.unreached) > 0 || len(loc.unnamed) > 0) {
		if err := c.reachMore(ctx, loc, want); err != nil {
			return nil, err
		}
	}
	var consigned []contracts.Consigned
	if o.contracts != nil {
		loc.live, consigned = c.negotiate(ctx, o.contracts, bag, size, o.chunkSize, want, loc.live)
	}
	uctx, cancel := context.WithCancel(ctx)
	c.prepareRegister(uctx)
	u := &Upload{c: c, ctx: uctx, cancel: cancel, bag: bag, o: o, params: params, want: want, buckets: loc.buckets, file: file,
		consigned: consigned, tr: newTracker(OpPut, o.progress, c.progressEvery)}
	u.tr.log = c.log
	u.tr.update(true, func(p *Progress) { p.Bag = bag })
	if file != nil {
		u.tr.update(true, func(p *Progress) { p.TotalBytes = file.size })
		u.tr.startChunks(chunkSizes(file.size, o.chunkSize), file.size, want)
	}
	u.p = &pusher{
		c: c, bag: bag, tr: u.tr,
		pool: newBufPool(c.opts.window, o.chunkSize),
		want: want, min: minReplicas(o.minRedundancy, want), spares: loc.live,
		expiry:   time.Now().Add(o.expiry),
		failed:   loc.failures(),
		pipeline: o.replication.pipelines(size, want),
	}
	u.p.open(uctx)
	alive := u.p.alive()
	if len(alive) < u.p.min {
		u.p.closeAll()
		cancel()
		return nil, u.p.noProvider(len(alive))
	}
	u.tr.setProviders(len(alive))
	u.p.start(uctx)
	u.w, err = chunker.NewWriter(chunker.WithChunkSize(o.chunkSize), chunker.WithChunkFunc(u.chunk))
	if err != nil {
		u.p.finish()
		u.p.closeAll()
		cancel()
		return nil, err
	}
	if file != nil {
		// A file is chunked and its chunks pushed as they are cut; it
		// is uploading proper once registered (seed order: chunking,
		// registering, uploading).
		u.tr.setFile(FileChunking)
	} else {
		u.tr.setFile(FileUploading)
	}
	c.log.Debug("streamed upload", "bag", bag, "redundancy", want, "providers", len(alive), "pipelined", u.p.pipeline)
	return u, nil
}

// reachMore gives an upload short of providers a second look, after the
// next block: the buckets of the providers that could not be dialled are
// read again and those that moved dialled (reachAgain), then, if still
// short, those that named no operator (nameAgain). Every read answers a
// block behind the head (even one not marked rpc.AcceptLag answers from
// the state the last signed header covers), so a provider restarted on a
// new port, or whose node was published, in the last block is seen only
// after the next. A provider that is down costs the upload that one wait,
// and a halted chain at most the locate timeout.
func (c *Client) reachMore(ctx context.Context, loc *located, want int) error {
	if len(loc.unreached) > 0 {
		if _, err := c.reachAgain(ctx, loc); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.log.Debug("providers not reached again", "bag", loc.bag.ID, "err", err)
		}
	} else if err := c.awaitNextBlock(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.log.Debug("next block not awaited", "bag", loc.bag.ID, "err", err)
	}
	if len(loc.live) < want && len(loc.unnamed) > 0 {
		return c.nameAgain(ctx, loc)
	}
	return ctx.Err()
}

// awaitNextBlock waits for the next block, at most the locate timeout.
func (c *Client) awaitNextBlock(ctx context.Context) error {
	bctx, cancel := c.blockBound(ctx)
	defer cancel()
	return c.nextBlock(bctx)
}

// chunk hands one hashed chunk to the targets. It runs inside Write.
func (u *Upload) chunk(ch chunker.Chunk) error {
	if max := u.params.Limits.MaxDataObjectSize; uint64(ch.Offset)+uint64(len(ch.Data)) > max {
		return chain.Errorf(chain.ErrObjectTooLarge, "upload to bag %s: the stream is larger than the max data object size of %d bytes; ask the storage lead to raise it with `satchel storage leader set-max-object-size`", u.bag, max)
	}
	if err := u.p.fatalErr(); err != nil {
		return err
	}
	if err := u.ctx.Err(); err != nil {
		return err
	}
	to, buf, err := u.p.take(u.p.gctx, ch.Index)
	if err != nil {
		return err
	}
	if len(to) == 0 {
		if u.file != nil {
			// Every target is lost: hash on; once the root is known,
			// other providers get the chunks read again from the file.
			return nil
		}
		if len(u.p.alive()) < u.p.min {
			return u.p.noProvider(len(u.p.alive()))
		}
		return nil
	}
	n := copy(buf, ch.Data)
	u.p.feed(&chunkJob{index: ch.Index, info: ch.Info(), data: buf[:n], pool: u.p.pool}, to)
	return nil
}

func (u *Upload) fail(err error) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.err == nil {
		u.err = err
	}
	return u.err
}

func (u *Upload) check() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return ErrCommitted
	}
	return u.err
}

// Write appends p to the upload's spool file; nothing reaches a provider
// before Commit. It fails once the stream passes the chain's maximum
// object size (chain.ErrObjectTooLarge), the context given to Upload is
// done, or the spool cannot be written (a full TMPDIR). WithProgress
// reports the bytes spooled so far.
func (u *Upload) Write(p []byte) (int, error) {
	if err := u.check(); err != nil {
		return 0, err
	}
	if u.spool != nil {
		return u.spool.write(u, p)
	}
	n, err := u.w.Write(p)
	if err != nil {
		return n, u.fail(err)
	}
	return n, nil
}

// ReadFrom spools everything r yields until io.EOF, as Write does. It
// implements io.ReaderFrom, so io.Copy(u, r) copies through one buffer of
// its own.
func (u *Upload) ReadFrom(r io.Reader) (int64, error) {
	if err := u.check(); err != nil {
		return 0, err
	}
	if u.spool != nil {
		return u.spool.readFrom(u, r)
	}
	n, err := u.w.ReadFrom(r)
	if err != nil {
		return n, u.fail(err)
	}
	return n, nil
}

// Commit ends the upload. A stream, spooled to a temporary file as it was
// written (spool.go), is then uploaded as PutFile uploads a file: under
// consigned contracts when the put asks for them, else registered on chain
// first and pushed with proofs. Commit returns once the providers bound the
// object and the chain accepted it. The Upload cannot be used afterwards.
func (u *Upload) Commit() (Object, error) {
	if err := u.check(); err != nil {
		u.abort(u.dropOnFailure(err))
		return Object{}, err
	}
	u.mu.Lock()
	u.done = true
	u.mu.Unlock()
	if u.spool != nil {
		return u.spool.commit(u)
	}
	defer u.release()
	obj, err := u.commit()
	if err != nil {
		if u.dropOnFailure(err) {
			u.p.drop()
		}
		u.tr.setFile(FileFailed)
		return obj, err
	}
	u.c.recordBound(u.o.contracts, u.consigned, obj)
	return obj, nil
}

// dropOnFailure says whether an upload that failed with err has its
// chunks dropped by the providers now: only when running it again cannot
// make use of them. (A stream is spooled to a file, so every upload here
// is a file's.)
func (u *Upload) dropOnFailure(err error) bool {
	return errors.Is(err, chain.ErrBlacklisted) || errors.Is(err, ErrFileChanged) || errors.Is(err, ErrEmpty)
}

func (u *Upload) commit() (Object, error) {
	res, err := u.w.Finish()
	werr := u.p.finish()
	if err != nil {
		return Object{}, err
	}
	if werr != nil {
		return Object{}, werr
	}
	if err := u.ctx.Err(); err != nil {
		return Object{}, err
	}
	if res.Size == 0 {
		return Object{}, ErrEmpty
	}
	if u.params.Blacklisted(res.Root.String()) {
		return Object{}, chain.Errorf(chain.ErrBlacklisted, "content %s is blacklisted by the storage lead and cannot be uploaded", res.Root)
	}
	u.p.nchunks = len(res.Chunks)
	return u.commitFile(res)
}

// Abort gives the upload up: it removes the spool file and releases the
// upload (nothing was sent to a provider: a stream is sent only by
// Commit). Abort after Commit does nothing.
func (u *Upload) Abort() { u.abort(true) }

// abort stops the upload; drop says whether the providers drop the chunks
// sent so far (an interrupted file keeps them, for the next run).
func (u *Upload) abort(drop bool) {
	u.mu.Lock()
	if u.done {
		u.mu.Unlock()
		return
	}
	u.done = true
	if u.err == nil {
		u.err = errors.New("client: upload aborted")
	}
	u.mu.Unlock()
	if u.spool != nil {
		u.tr.setFile(FileFailed)
		u.spool.discard(u)
		return
	}
	u.cancel()
	_ = u.w.Close()
	_ = u.p.finish()
	if drop {
		u.p.drop()
	}
	u.tr.setFile(FileFailed)
	u.release()
}

func (u *Upload) release() {
	u.cancel()
	_ = u.w.Close()
	u.p.closeAll()
	u.p.waitFollowers()
	u.c.end()
}

// submitPreparer is a Chain that can read ahead what a Submit needs
// (*chain.Client does).
type submitPreparer interface {
	Prepare(ctx context.Context, key chain.Key) error
}

// prepareRegister reads, in the background, the account nonce that
// registering the object signs with once the content is hashed (a block
// old will do), so the registration does not wait for that read after.
func (c *Client) prepareRegister(ctx context.Context) {
	p, ok := c.chain.(submitPreparer)
	if !ok {
		return
	}
	go func() {
		if err := p.Prepare(rpc.AcceptLag(ctx), c.cfg.Key); err != nil && ctx.Err() == nil {
			c.log.Debug("reading the account's nonce ahead of registering failed; registering reads it again", "err", err)
		}
	}()
}

// minReplicas is the fewest providers an upload may end with: the
// caller's WithMinRedundancy when set, else every provider it wants.
func minReplicas(asked, want int) int {
	if asked <= 0 || asked > want { // (more than want is refused before)
		return want
	}
	return asked
}

// warnDegraded logs, loudly, an upload that ended on fewer providers than
// the bag's redundancy.
func (u *Upload) warnDegraded(obj Object) {
	if obj.Degraded() {
		u.c.log.Warn("object stored on fewer providers than the bag's redundancy; the bag's other providers must sync it before it has the copies the bag promises",
			"bag", obj.Bag, "object", obj.ID, "providers", len(obj.Providers), "redundancy", obj.Redundancy)
	}
}

// copies returns how many providers an upload to bag, stored by buckets
// storage buckets, makes copies on: WithRedundancy's, or one per bucket.
func (o *putOptions) copies(bag chain.BagID, buckets int) (int, error) {
	want := o.redundancy
	if want > buckets {
		return 0, fmt.Errorf("%w: bag %s is stored by %d storage bucket(s) and %d copies were asked; each bucket keeps one copy, so ask for at most %d, or ask the storage lead to add the bag to more buckets (update-bag)",
			ErrRedundancy, bag, buckets, want, buckets)
	}
	if want <= 0 {
		want = buckets
	}
	if want == 0 {
		return 0, chain.Errorf(chain.ErrNoStorageBuckets, "bag %s is in no storage bucket, so nothing would store the object; ask the storage lead to add it to one with update-bag", bag)
	}
	if o.minRedundancy > want {
		return 0, fmt.Errorf("%w: at least %d copies asked of an upload of %d; ask for at most %d", ErrRedundancy, o.minRedundancy, want, want)
	}
	return want, nil
}
