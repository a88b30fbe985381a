package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/provider"
	"github.com/satchel-net/satchel/wire"
)

// Object is a data object stored by Put, PutFile or Upload.Commit.
type Object struct {
	// Bag is the bag the object is in.
	Bag chain.BagID
	// ID is the object's ID on chain.
	ID chain.ObjectID
	// CID is the object's content ID: the root of its UnixFS DAG.
	CID cid.Cid
	// Size is the object's length in bytes.
	Size int64
	// Providers are the storage providers that hold every chunk, each with a
	// verified signed receipt, and bound the object.
	Providers []peer.ID
	// Resumed is the number of chunks an earlier, interrupted run of the
	// same upload had already stored with all their receipts.
	Resumed int
}

// PutFile stores the file at path in bag and returns the object once every
// chunk has its signed receipts and the chain accepted it. The file is hashed
// first, then its chunks are read again by offset and pushed, in memory
// bounded by the upload window whatever the file size. Running it again
// after an interruption resumes: the object is not registered twice and no
// chunk whose receipts were kept is sent again.
func (c *Client) PutFile(ctx context.Context, bag chain.BagID, path string, opts ...PutOption) (Object, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Object{}, fmt.Errorf("file %s does not exist; check the path", path)
	}
	if err != nil {
		return Object{}, fmt.Errorf("cannot read %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Object{}, fmt.Errorf("cannot read %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return c.Put(ctx, bag, f, opts...) // a pipe or device: streamed
	}
	return c.putAt(ctx, bag, f, st.Size(), opts)
}

// Put stores the content of r in bag. When r can be read again by offset
// (an *os.File of a regular file, or any io.ReaderAt that is also an
// io.Seeker, such as *bytes.Reader) it is uploaded like PutFile, from its
// current offset to its end; any other reader is streamed through Upload.
func (c *Client) Put(ctx context.Context, bag chain.BagID, r io.Reader, opts ...PutOption) (Object, error) {
	if ra, ok := r.(interface {
		io.ReaderAt
		io.Seeker
	}); ok {
		regular := true
		if f, ok := r.(*os.File); ok {
			st, err := f.Stat()
			regular = err == nil && st.Mode().IsRegular()
		}
		if regular {
			off, err1 := ra.Seek(0, io.SeekCurrent)
			end, err2 := ra.Seek(0, io.SeekEnd)
			if err1 == nil && err2 == nil {
				if _, err := ra.Seek(off, io.SeekStart); err != nil {
					return Object{}, err
				}
				return c.putAt(ctx, bag, io.NewSectionReader(ra, off, end-off), end-off, opts)
			}
		}
	}
	u, err := c.Upload(ctx, bag, opts...)
	if err != nil {
		return Object{}, err
	}
	if _, err := io.Copy(u, r); err != nil {
		u.Abort()
		return Object{}, err
	}
	return u.Commit()
}

// precheck refuses early what the chain would refuse after the hashing:
// an empty object, uploads blocked, an object over the maximum size.
func (c *Client) precheck(ctx context.Context, bag chain.BagID, size int64) (chain.Params, error) {
	if c.cfg.Key.IsZero() {
		return chain.Params{}, ErrNoKey
	}
	params, err := c.chain.Params(ctx)
	if err != nil {
		return params, fmt.Errorf("upload to bag %s: read chain parameters: %w", bag, err)
	}
	if params.UploadingBlocked {
		return params, chain.Errorf(chain.ErrUploadingBlocked, "upload to bag %s: uploading is blocked network-wide by the storage lead; try again when it is unblocked", bag)
	}
	if size >= 0 && uint64(size) > params.Limits.MaxDataObjectSize {
		return params, chain.Errorf(chain.ErrObjectTooLarge, "upload to bag %s: %d bytes is larger than the max data object size of %d bytes; ask the storage lead to raise it with `satchel storage leader set-max-object-size`", bag, size, params.Limits.MaxDataObjectSize)
	}
	if size == 0 {
		return params, ErrEmpty
	}
	return params, nil
}

// putAt uploads size bytes readable at src.
func (c *Client) putAt(ctx context.Context, bag chain.BagID, src io.ReaderAt, size int64, opts []PutOption) (Object, error) {
	if err := c.begin(); err != nil {
		return Object{}, err
	}
	defer c.end()
	o := c.putOptions(opts)
	tr := newTracker(OpPut, o.progress, c.progressEvery)
	tr.update(true, func(p *Progress) { p.Bag, p.TotalBytes = bag, size })
	obj, err := c.putAtTracked(ctx, bag, src, size, o, tr)
	if err != nil {
		tr.setFile(FileFailed)
	}
	return obj, err
}

func (c *Client) putAtTracked(ctx context.Context, bag chain.BagID, src io.ReaderAt, size int64, o putOptions, tr *tracker) (Object, error) {
	params, err := c.precheck(ctx, bag, size)
	if err != nil {
		return Object{}, err
	}
	if _, err := c.chain.Bag(ctx, bag); err != nil {
		return Object{}, explainChain("upload", bag, err)
	}

	// 1. Chunk and hash, streaming.
	tr.setFile(FileChunking)
	res, err := chunker.Sum(ctx, io.NewSectionReader(src, 0, size), chunker.WithChunkSize(o.chunkSize),
		chunker.WithChunkFunc(func(ch chunker.Chunk) error { tr.hashed(int64(len(ch.Data))); return nil }))
	if err != nil {
		return Object{}, fmt.Errorf("hash content: %w", err)
	}
	if params.Blacklisted(res.Root.String()) {
		return Object{}, chain.Errorf(chain.ErrBlacklisted, "content %s is blacklisted by the storage lead and cannot be uploaded", res.Root)
	}
	key := uploadKey{Bag: bag, Root: res.Root, ChunkSize: o.chunkSize}

	// 2. Register the object on chain, or find the one an earlier run
	// registered.
	tr.setFile(FileRegistering)
	id, err := c.registerOnce(ctx, key, res)
	if err != nil {
		return Object{}, err
	}
	tr.setObject(bag, id, res.Root)

	// 3. Find the bag's providers.
	loc, err := c.locate(ctx, bag, false)
	if err != nil {
		return Object{}, err
	}
	want := o.redundancy
	if want <= 0 || want > loc.buckets {
		want = loc.buckets
	}
	if want == 0 {
		return Object{}, chain.Errorf(chain.ErrNoStorageBuckets, "bag %s is in no storage bucket, so nothing would store the object; ask the storage lead to add it to one with update-bag", bag)
	}
	minR := min(o.minRedundancy, want)

	sizes := make([]int32, len(res.Chunks))
	for i, ch := range res.Chunks {
		sizes[i] = int32(ch.Size)
	}
	tr.startChunks(sizes, size, want)

	// Receipts and binds an earlier run kept.
	held, bound, err := c.resumeState(key, id, res)
	if err != nil {
		return Object{}, err
	}
	for _, b := range held {
		for i := range res.Chunks {
			if b.has(i) {
				tr.receipt(i, true)
			}
		}
	}
	tr.flush()
	// Providers holding most of the object go first.
	cands := slices.Clone(loc.live)
	slices.SortStableFunc(cands, func(a, b candidate) int {
		return cmp.Compare(held[b.peer].count(), held[a.peer].count())
	})

	p := &pusher{
		c: c, bag: bag, object: uint64(id), key: &key, tr: tr,
		pool: newBufPool(c.opts.window, o.chunkSize),
		want: want, min: minR, spares: cands, nchunks: len(res.Chunks),
		expiry: time.Now().Add(o.expiry),
		failed: slices.Clone(loc.failed),
	}
	defer p.closeAll()
	c.log.Debug("upload", "bag", bag, "object", id, "root", res.Root, "size", size, "chunks", len(res.Chunks), "redundancy", want, "providers", len(cands))

	// 4. Push every chunk to N providers, replacing failed ones, then bind.
	converged := false
	for round := 0; round < maxRounds && !converged; round++ {
		if err := ctx.Err(); err != nil {
			return Object{}, err
		}
		p.openWith(ctx, held, bound)
		alive := p.alive()
		tr.setProviders(len(alive))
		if len(alive) < minR {
			return Object{}, p.noProvider(len(alive))
		}
		if len(alive) < want {
			tr.setWant(len(alive)) // no spare left: complete with the live ones
		}
		incomplete := false
		for _, t := range alive {
			if t.count() < len(res.Chunks) {
				incomplete = true
			}
		}
		if incomplete {
			tr.setFile(FileUploading)
			if err := p.filePass(ctx, src, res); err != nil {
				return Object{}, err
			}
			continue
		}
		p.bind(ctx, res.Chunks)
		if err := ctx.Err(); err != nil {
			return Object{}, err
		}
		alive = p.alive()
		converged = len(alive) >= minR && p.boundCount() == len(alive)
	}
	if !converged {
		return Object{}, fmt.Errorf("upload of object %d to bag %s: providers kept failing: %w", id, bag, p.noProvider(p.boundCount()))
	}
	tr.setFile(FileUploaded)

	// 5. Wait for a provider to accept the object on chain.
	if err := c.waitAccepted(ctx, bag, id, o.acceptTimeout); err != nil {
		return Object{}, err
	}
	tr.setFile(FileAccepted)
	if err := c.journal.forget(key); err != nil {
		c.log.Info("cannot clear finished upload state", "err", err)
	}
	obj := Object{Bag: bag, ID: id, CID: res.Root, Size: size, Resumed: tr.snapshot().Resumed}
	for _, t := range p.alive() {
		obj.Providers = append(obj.Providers, t.cand.peer)
	}
	return obj, nil
}

// count returns the number of chunks in the set.
func (b bitset) count() int {
	n := 0
	for _, w := range b {
		for ; w != 0; w &= w - 1 {
			n++
		}
	}
	return n
}

// openWith opens targets like open, giving each the receipts and bind an
// earlier run kept for its provider.
func (p *pusher) openWith(ctx context.Context, held map[peer.ID]bitset, bound map[peer.ID]bool) {
	p.mu.Lock()
	before := len(p.targets)
	p.mu.Unlock()
	p.open(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.targets[before:] {
		if b, ok := held[t.cand.peer]; ok {
			t.held = slices.Clone(b)
			t.nheld = b.count()
		}
		t.bound = bound[t.cand.peer] && t.nheld >= p.nchunks
	}
}

// filePass pushes every chunk some live target lacks, reading it again
// from src by offset.
func (p *pusher) filePass(ctx context.Context, src io.ReaderAt, res *chunker.Result) error {
	p.start(ctx)
	var ferr error
	for i, info := range res.Chunks {
		to := p.need(i)
		if len(to) == 0 {
			continue
		}
		buf, err := p.pool.get(p.gctx)
		if err != nil {
			ferr = err
			break
		}
		// The chunk is not hashed again here: every provider checks every
		// byte against its CID, and a mismatch it reports makes push check
		// whether the file changed (ErrFileChanged).
		n, err := src.ReadAt(buf[:info.Size], info.Offset)
		if n == info.Size {
			err = nil
		} else if err == nil || err == io.EOF {
			err = fmt.Errorf("%w: the file is shorter than when it was hashed", ErrFileChanged)
		}
		var proof chunker.Proof
		if err == nil {
			proof, err = res.Proof(i)
		}
		if err != nil {
			p.pool.put(buf)
			ferr = fmt.Errorf("read chunk %d: %w", i, err)
			break
		}
		p.feed(&chunkJob{index: i, info: info, data: buf, proof: proof, pool: p.pool}, to)
	}
	werr := p.finish()
	if f := p.fatalErr(); f != nil {
		return f
	}
	if ferr != nil {
		return ferr
	}
	if werr != nil {
		return werr
	}
	return ctx.Err()
}

// registerOnce registers the object for key, unless an earlier run did:
// then the object it registered is used, as long as the chain still holds
// it with the same content.
func (c *Client) registerOnce(ctx context.Context, key uploadKey, res *chunker.Result) (chain.ObjectID, error) {
	rec, ok, err := c.journal.record(key)
	if err != nil {
		return 0, err
	}
	if ok && !rec.Registered {
		// An earlier run was registering when it stopped: its transaction
		// may have committed. Adopt the pending object it made.
		if id, found, err := c.findPending(ctx, key.Bag, res); err != nil {
			return 0, err
		} else if found {
			rec.Object, rec.Registered = id, true
			if err := c.journal.putRecord(key, rec); err != nil {
				return 0, err
			}
		}
	}
	if ok && rec.Registered {
		obj, err := c.chain.DataObject(ctx, key.Bag, rec.Object)
		switch {
		case err == nil && obj.ContentID == res.Root.String() && int64(obj.Size) == res.Size:
			c.log.Debug("resuming upload", "bag", key.Bag, "object", rec.Object)
			return rec.Object, nil
		case err == nil || errors.Is(err, chain.ErrObjectNotFound):
			// Deleted (or replaced): the receipts name an object that is
			// gone; start over.
			c.log.Info("object of an interrupted upload is gone from the chain; registering again", "bag", key.Bag, "object", rec.Object)
			if err := c.journal.forgetProgress(key); err != nil {
				return 0, err
			}
		default:
			return 0, fmt.Errorf("upload to bag %s: look up object %d: %w", key.Bag, rec.Object, err)
		}
	}
	if err := c.journal.putRecord(key, uploadRecord{Size: res.Size, Chunks: len(res.Chunks), Created: time.Now().UTC()}); err != nil {
		return 0, err
	}
	committed, err := c.chain.Submit(ctx, c.cfg.Key, chain.MsgRegisterDataObjects{
		Bag:     key.Bag,
		Objects: []chain.ObjectSpec{{Size: uint64(res.Size), ContentID: res.Root.String()}},
	})
	if err != nil {
		return 0, explainChain("register object in bag "+key.Bag.String(), key.Bag, err)
	}
	ev, ok := chain.FindEvent[chain.ObjectsRegistered](committed.Result.Events)
	if !ok || len(ev.Objects) != 1 {
		return 0, fmt.Errorf("register object in bag %s: the chain reported no ObjectsRegistered event", key.Bag)
	}
	id := ev.Objects[0].ID
	if err := c.journal.putRecord(key, uploadRecord{Object: id, Registered: true, Size: res.Size, Chunks: len(res.Chunks), Created: time.Now().UTC()}); err != nil {
		return 0, err
	}
	return id, nil
}

// findPending returns the newest pending object of bag with res's content.
func (c *Client) findPending(ctx context.Context, bag chain.BagID, res *chunker.Result) (chain.ObjectID, bool, error) {
	objs, err := c.chain.Objects(ctx, bag)
	if err != nil {
		return 0, false, fmt.Errorf("upload to bag %s: list objects: %w", bag, err)
	}
	for i := len(objs) - 1; i >= 0; i-- {
		o := objs[i]
		if !o.Accepted && o.ContentID == res.Root.String() && int64(o.Size) == res.Size {
			return o.ID, true, nil
		}
	}
	return 0, false, nil
}

// resumeState loads the receipts and binds an earlier run kept for the
// object, keeping only receipts that verify, name this object and chunk,
// and have not expired.
func (c *Client) resumeState(key uploadKey, id chain.ObjectID, res *chunker.Result) (map[peer.ID]bitset, map[peer.ID]bool, error) {
	held := map[peer.ID]bitset{}
	now := time.Now().Unix()
	err := c.journal.receipts(key, func(i int, p peer.ID, r *wire.Receipt) error {
		if i >= len(res.Chunks) || r.GetObjectId() != uint64(id) || r.GetBagId() != key.Bag.String() {
			return nil
		}
		if !slices.Equal(r.GetCid(), res.Chunks[i].CID.Bytes()) || (r.GetExpiryUnix() != 0 && r.GetExpiryUnix() < now) {
			return nil
		}
		if provider.VerifyReceipt(r, p) != nil {
			return nil
		}
		b := held[p]
		b.set(i)
		held[p] = b
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("client: read upload state: %w", err)
	}
	bound, err := c.journal.bound(key)
	if err != nil {
		return nil, nil, fmt.Errorf("client: read upload state: %w", err)
	}
	return held, bound, nil
}

// waitAccepted waits, block by block, until the object is accepted on chain
// or timeout passes.
func (c *Client) waitAccepted(ctx context.Context, bag chain.BagID, id chain.ObjectID, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := c.chain.Transport()
	for {
		obj, err := c.chain.DataObject(wctx, bag, id)
		switch {
		case err == nil && obj.Accepted:
			return nil
		case errors.Is(err, chain.ErrObjectNotFound):
			return fmt.Errorf("object %d was deleted from bag %s during the upload: %w", id, bag, err)
		}
		if err == nil {
			var h int64
			if h, err = t.LatestHeight(wctx); err == nil {
				err = t.WaitForHeight(wctx, h+1)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if wctx.Err() != nil {
				return fmt.Errorf("%w: object %d in bag %s is stored and bound, but no provider accepted it within %s; run the upload again to keep waiting", ErrNotAccepted, id, bag, timeout)
			}
			return fmt.Errorf("wait for object %d to be accepted: %w", id, err)
		}
	}
}
