package client

import (
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
	"github.com/satchel-net/satchel/chain/rpc"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/protocol/store"
	storepb "github.com/satchel-net/satchel/protocol/store/pb"
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
	// Resumed is the number of chunks no byte of which had to be sent: an
	// earlier, interrupted run of the same upload (or another upload of the
	// same content) had already stored them on every provider.
	Resumed int
	// Redundancy is the bag's redundancy when the object was stored: the
	// number of storage buckets the chain assigns the bag to. An object
	// with fewer Providers is Degraded.
	Redundancy int
}

// Degraded reports whether fewer providers acknowledged the object than
// the bag's redundancy promises: the caller accepted less (WithRedundancy
// or WithMinRedundancy below the bag's bucket count). The bag's other
// providers sync the object from those that hold it, but until they do, a
// single failure costs more than the bag was meant to tolerate.
func (o Object) Degraded() bool { return len(o.Providers) < o.Redundancy }

// PutFile stores the file at path in bag and returns the object once every
// chunk has its signed receipts and the chain accepted it. The file is read
// once to hash it (and pushed at the same time to providers under a
// storage contract, WithContracts), then the object is registered and the
// chunks each provider lacks are read again by offset and pushed with
// their proofs, in memory bounded by the upload window whatever the file
// size; a provider lost on the way is replaced the same way. Running it
// again after an interruption resumes: the object is not registered twice,
// and no chunk a provider already holds is sent again.
func (c *Client) PutFile(ctx context.Context, bag chain.BagID, path string, opts ...PutOption) (Object, error) {
	o, err := c.putOptions(opts)
	if err != nil {
		return Object{}, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Object{}, fmt.Errorf("file %s does not exist; check the path (%w)", path, err)
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
	return c.putAt(ctx, bag, f, st.Size(), o)
}

// Put stores the content of r in bag. When r can be read again by offset
// (an *os.File of a regular file, or any io.ReaderAt that is also an
// io.Seeker, such as *bytes.Reader) it is uploaded like PutFile, from its
// current offset to its end; any other reader is streamed through Upload.
func (c *Client) Put(ctx context.Context, bag chain.BagID, r io.Reader, opts ...PutOption) (Object, error) {
	if r == nil {
		return Object{}, errors.New("client: nil io.Reader given to Put")
	}
	o, err := c.putOptions(opts)
	if err != nil {
		return Object{}, err
	}
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
				return c.putAt(ctx, bag, io.NewSectionReader(ra, off, end-off), end-off, o)
			}
		}
	}
	u, err := c.newSpooled(ctx, bag, o)
	if err != nil {
		return Object{}, err
	}
	// On any failure, and on a panic of r (which goes on to the caller,
	// as a panic of its own reader), the spool is removed and the upload
	// ends; after Commit, Abort does nothing.
	defer u.Abort()
	if _, err := io.Copy(u, r); err != nil {
		return Object{}, err
	}
	return u.Commit()
}

// precheck refuses early what the chain would refuse after the hashing:
// an empty object, uploads blocked, an object over the maximum size. The
// parameters of a sized upload are read accepting a block of lag (no wait
// for the next block); a refusal is decided on a fresh read, so a lead's
// change in the last block is seen. A stream's are read fresh: its limit is
// checked as it grows.
func (c *Client) precheck(ctx context.Context, bag chain.BagID, size int64) (chain.Params, error) {
	if c.cfg.Key.IsZero() {
		return chain.Params{}, ErrNoKey
	}
	refused := func(p chain.Params) bool {
		return p.UploadingBlocked || (size >= 0 && uint64(size) > p.Limits.MaxDataObjectSize)
	}
	var params chain.Params
	var err error
	if size >= 0 {
		params, err = c.chain.Params(rpc.AcceptLag(ctx))
	}
	if size < 0 || (err == nil && refused(params)) {
		params, err = c.chain.Params(ctx)
	}
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

// fileSource is content PutFile uploads: size bytes readable at src.
type fileSource struct {
	src  io.ReaderAt
	size int64
}

// putAt uploads size bytes readable at src: read once to hash it (the
// chunks pushed at once only to providers under a contract), then, with
// the root known, registered (once, across runs) and completed on N
// providers, any lost replaced, reading the chunks they lack again by
// offset.
func (c *Client) putAt(ctx context.Context, bag chain.BagID, src io.ReaderAt, size int64, o putOptions) (Object, error) {
	u, err := c.newUpload(ctx, bag, o, &fileSource{src: src, size: size})
	if err != nil {
		return Object{}, err
	}
	// A panic of src (the caller's reader) goes on to the caller, but
	// the upload ends first: an interrupted file keeps its chunks, as on
	// any failure. After Commit (or abort) it does nothing.
	defer u.abort(false)
	if _, err := u.ReadFrom(io.NewSectionReader(src, 0, size)); err != nil {
		u.abort(u.dropOnFailure(err)) // interrupted: the providers keep the chunks for the next run
		if cerr := ctx.Err(); cerr != nil {
			return Object{}, cerr
		}
		return Object{}, err
	}
	return u.Commit()
}

// chunkSizes returns the sizes of the chunks of size bytes cut every
// chunkSize bytes.
func chunkSizes(size int64, chunkSize int) []int32 {
	n := int((size + int64(chunkSize) - 1) / int64(chunkSize))
	sizes := make([]int32, n)
	for i := range sizes {
		sizes[i] = int32(min(int64(chunkSize), size-int64(i)*int64(chunkSize)))
	}
	return sizes
}

// commitFile ends a file's upload once its stream is through: it registers
// the object (or finds the one an interrupted run registered), completes
// the upload on N providers and waits for the chain to accept it.
func (u *Upload) commitFile(res *chunker.Result) (Object, error) {
	c, p, tr, ctx := u.c, u.p, u.tr, u.ctx
	if res.Size != u.file.size {
		return Object{}, fmt.Errorf("%w: it held %d bytes, then %d", ErrFileChanged, u.file.size, res.Size)
	}
	key := uploadKey{Bag: u.bag, Root: res.Root, ChunkSize: u.o.chunkSize}
	tr.setFile(FileRegistering)
	id, err := c.registerOnce(ctx, key, res)
	if err != nil {
		return Object{}, err
	}
	tr.setObject(u.bag, id, res.Root)
	tr.setFile(FileUploading)
	p.object, p.registered, p.key = uint64(id), true, &key
	// Receipts and binds an earlier run kept, for providers this run may
	// turn to; this run's own targets hold what the stream gave them.
	held, bound, err := c.resumeState(key, id, res)
	if err != nil {
		return Object{}, err
	}
	c.log.Debug("upload", "bag", u.bag, "object", id, "root", res.Root, "size", res.Size, "chunks", len(res.Chunks), "redundancy", u.want)
	if err := p.complete(ctx, u.file.src, res, held, bound); err != nil {
		return Object{}, err
	}
	tr.setFile(FileUploaded)
	dropped := make(chan struct{})
	go func() { p.dropGivenUpBusy(); close(dropped) }() // while the chain accepts
	err = c.waitAccepted(ctx, u.bag, id, u.o.acceptTimeout)
	<-dropped
	if err != nil {
		return Object{}, err
	}
	tr.setFile(FileAccepted)
	if err := c.journal.forget(key); err != nil {
		c.log.Info("cannot clear finished upload state", "err", err)
	}
	obj := Object{Bag: u.bag, ID: id, CID: res.Root, Size: res.Size, Resumed: tr.snapshot().Resumed, Redundancy: u.buckets}
	for _, t := range p.alive() {
		obj.Providers = append(obj.Providers, t.cand.peer)
	}
	u.warnDegraded(obj)
	return obj, nil
}

// complete brings the registered object to N providers that hold every
// chunk and bound it: chunks a target lacks are read again from src and
// pushed (in rounds, a failed target replaced by a spare), then every
// complete target binds.
func (p *pusher) complete(ctx context.Context, src io.ReaderAt, res *chunker.Result, held map[peer.ID]bitset, bound map[peer.ID]bool) error {
	for round := 0; round < maxRounds; round++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		p.openWith(ctx, held, bound)
		alive := p.alive()
		p.tr.setProviders(len(alive))
		if len(alive) < p.min {
			return p.noProvider(len(alive))
		}
		if len(alive) < p.want {
			p.tr.setWant(len(alive)) // no spare left: complete with the live ones
		}
		incomplete := false
		for _, t := range alive {
			if t.count() < len(res.Chunks) {
				incomplete = true
			}
		}
		if incomplete {
			// The targets that hold every chunk bind now, not after the
			// others' pass: a spare's pass may take long, and an unbound
			// contract session lapses with its grant.
			p.bind(ctx, res.Chunks)
			p.tr.setFile(FileUploading)
			if err := p.filePass(ctx, src, res); err != nil {
				return err
			}
			continue
		}
		p.bind(ctx, res.Chunks)
		if err := ctx.Err(); err != nil {
			return err
		}
		alive = p.alive()
		if len(alive) >= p.min && p.boundCount() == len(alive) {
			return nil
		}
	}
	return fmt.Errorf("upload of object %d to bag %s: providers kept failing: %w", p.object, p.bag, p.noProvider(p.boundCount()))
}

// openWith opens targets like open, and gives every target the receipts
// and bind an earlier run kept for its provider: the targets opened now,
// and those the stream opened, which without a contract's session got no
// chunk before the object was registered.
func (p *pusher) openWith(ctx context.Context, held map[peer.ID]bitset, bound map[peer.ID]bool) {
	p.open(ctx)
	var kept []int // chunks of the receipts newly taken from the earlier run
	for _, t := range p.alive() {
		t.mu.Lock()
		for i := range p.nchunks {
			if held[t.cand.peer].has(i) && t.held.set(i) {
				t.nheld++
				kept = append(kept, i)
			}
		}
		t.bound = t.bound || (bound[t.cand.peer] && t.nheld >= p.nchunks)
		t.mu.Unlock()
	}
	// The receipts an earlier run kept count as resumed (outside the
	// locks: the tracker may call the progress callback).
	for _, i := range kept {
		p.tr.receipt(i, true)
	}
}

// filePass pushes every chunk some live target lacks, reading it again
// from src by offset.
func (p *pusher) filePass(ctx context.Context, src io.ReaderAt, res *chunker.Result) error {
	p.start(ctx)
	finished := false
	defer func() {
		if !finished { // src panicked: the pass's workers stop before the panic goes on
			p.cancelPass()
			_ = p.finish()
		}
	}()
	var ferr error
	for i, info := range res.Chunks {
		to, buf, err := p.take(p.gctx, i)
		if err != nil {
			ferr = err
			break
		}
		if len(to) == 0 {
			continue
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
	finished = true
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
	err := c.journal.receipts(key, func(i int, p peer.ID, r *storepb.Receipt) error {
		if i >= len(res.Chunks) || r.GetObjectId() != uint64(id) || r.GetBagId() != key.Bag.String() {
			return nil
		}
		if !slices.Equal(r.GetCid(), res.Chunks[i].CID.Bytes()) || (r.GetExpiryUnix() != 0 && r.GetExpiryUnix() < now) {
			return nil
		}
		if store.VerifyReceipt(r, p) != nil {
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
