package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/proto"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/protocol/store/pb"
)

// The store handler's BIND: it ties the chunks an upload pushed to the data
// object registered on chain.

// bind rebuilds the object's root from the chunk list, checks it against
// the chain and that every chunk is held, records the object (its DAG nodes
// and manifest) and answers BOUND.
func (c *storeConn) bind(ctx context.Context, ex *storeExchange, b *pb.BindRequest) {
	h := c.h
	if err := checkBindRequest(b); err != nil {
		c.refuse(ex, "%v", err)
		return
	}
	// The Authorizer's errors are refused through refuseErr: one that says
	// busy (its chain reads all taken) is asked again, not a failure.
	root, err := h.auth.AuthorizeChunk(ctx, b.BagId, b.ObjectId)
	if err != nil {
		c.refuseErr(ex, err)
		return
	}
	// Binding ends the session, so it takes the authority a DROP does.
	if da, ok := h.auth.(DropAuthorizer); ok && len(b.Session) == SessionIDLength {
		if err := da.AuthorizeDrop(ctx, b.BagId, b.Session, c.remote); err != nil {
			c.refuseErr(ex, err)
			return
		}
	}
	m, err := bindManifest(b, root)
	if err != nil {
		c.bindFailed(ex, false, err.Error(), nil)
		return
	}
	if err := checkBindSize(ctx, h.auth, b, m.Size); err != nil {
		if errors.Is(err, errSizeMismatch) {
			// Counted once, as what it is, not also as refused.
			h.metrics.bind("size_mismatch")
			c.end(ex, &pb.StoreReply{Status: pb.Status_STATUS_REFUSED, Reason: err.Error()})
			return
		}
		c.refuseErr(ex, err) // busy, or the object's size could not be read
		return
	}
	// PutManifest checks that every chunk is held under the store's gc
	// lock, so a session expiring or ending concurrently cannot delete a
	// chunk between that check and the manifest's write: BOUND is never
	// answered for chunks that are gone.
	if err := h.blocks.PutObject(m); err != nil {
		if errors.Is(err, ErrMissingBlocks) {
			// Binding again cannot help until the uploader pushes them.
			c.bindFailed(ex, false, fmt.Sprintf("%v; push them, then bind again", err), nil)
			return
		}
		// A write error may pass; a full disk waits for the operator.
		c.bindFailed(ex, !noSpace(err), "provider could not record the object", err)
		return
	}
	c.endSessions(b)
	// The object is recorded: the node holds it and serves it from now on,
	// so it accepts it on chain now, whatever follows. Were the contract's
	// record below to fail and the uploader not bind again, the object
	// would otherwise be held and never accepted.
	if h.cfg.onBound != nil {
		h.cfg.onBound(b.BagId, b.ObjectId)
	}
	if sb, ok := h.auth.(SessionBinder); ok && len(b.Session) == SessionIDLength {
		if err := sb.SessionBound(b.Session, b.ObjectId); err != nil {
			c.log.Warn("recording a bound session's contract failed", "object", b.ObjectId, "err", err)
			c.bindFailed(ex, true, fmt.Sprintf("provider could not record the contract: %v; bind again", err), nil)
			return
		}
	}
	if sr, ok := h.auth.(SessionReleaser); ok && len(b.Session) == SessionIDLength {
		sr.ReleaseSession(b.Session)
	}
	h.metrics.bind("bound")
	c.end(ex, &pb.StoreReply{Status: pb.Status_STATUS_BOUND})
}

// bindFailed ends a BIND with FAILED, the reason what (followed by err
// when set, with no_space when err says the disk is full), and retry set
// to say whether binding again may succeed: only a failure that may pass
// (a write error) asks for it, so an uploader does not repeat a BIND that
// would fail the same way.
func (c *storeConn) bindFailed(ex *storeExchange, retry bool, what string, err error) {
	r := &pb.StoreReply{Status: pb.Status_STATUS_FAILED, Reason: what, Retry: proto.Bool(retry)}
	if err != nil {
		r.Reason += ": " + err.Error()
		r.NoSpace = noSpace(err)
	}
	c.h.metrics.bind("failed")
	c.end(ex, r)
}

// bindMemory is the memory a BIND is charged before it is processed: its
// decoded chunk list, the manifest built from it, and the DAG builder's
// links, BindChunkMemory bytes per chunk, plus the frame it came in.
func bindMemory(b *pb.BindRequest) int {
	return BindFrameMemory + min(len(b.GetChunks()), MaxBindChunks+1)*BindChunkMemory
}

// checkBindRequest checks what a BIND says on its own. Its error's text is
// the refusal reason.
func checkBindRequest(b *pb.BindRequest) error {
	if b.ObjectId == 0 || b.BagId == "" {
		return errors.New("bind needs an object ID and a bag")
	}
	if len(b.Chunks) > MaxBindChunks {
		return fmt.Errorf("%d chunks exceed the %d-chunk limit of one bind", len(b.Chunks), MaxBindChunks)
	}
	if len(b.Session) != 0 && len(b.Session) != SessionIDLength {
		return fmt.Errorf("session must be %d bytes", SessionIDLength)
	}
	return nil
}

// bindManifest builds the object's manifest from a BIND's chunk list and
// checks that the list builds root, the object's content ID on chain. Its
// error's text is the failure reason.
func bindManifest(b *pb.BindRequest, root cid.Cid) (Object, error) {
	m := Object{Bag: b.BagId, ID: b.ObjectId, Root: root, Chunks: make([]ChunkRef, len(b.Chunks))}
	builder := chunker.NewBuilder()
	for i, ref := range b.Chunks {
		ch, err := cid.Cast(ref.Cid)
		if err == nil {
			err = checkChunkCID(ch)
		}
		if err == nil && ref.Size > MaxChunkLength {
			err = fmt.Errorf("%d bytes exceed the %d-byte limit", ref.Size, MaxChunkLength)
		}
		if err == nil {
			err = builder.Add(ch, int(ref.Size))
		}
		if err != nil {
			return m, fmt.Errorf("chunk %d of the list: %v", i, err)
		}
		m.Chunks[i] = ChunkRef{CID: ch, Size: ref.Size}
		m.Size += ref.Size
	}
	res, err := builder.Finish()
	if err != nil {
		return m, fmt.Errorf("cannot build the object's DAG: %v", err)
	}
	if !res.Root.Equals(root) {
		return m, fmt.Errorf("the chunk list builds %s, but object %d has content ID %s on chain", res.Root, b.ObjectId, root)
	}
	return m, nil
}

// checkBindSize checks that the DAG a BIND rebuilt holds exactly the bytes
// the object was registered (and its voucher charged) with. The root matched
// the chain's content ID already, and a UnixFS root commits to its size, so
// a mismatch means the chain's record and its content ID disagree: refuse
// rather than store bytes nobody paid for.
func checkBindSize(ctx context.Context, auth Authorizer, b *pb.BindRequest, size uint64) error {
	want, err := auth.ObjectSize(ctx, b.BagId, b.ObjectId)
	if err != nil {
		return err
	}
	if size != want {
		return fmt.Errorf("%w: the chunk list holds %d bytes, but object %d is registered on chain with %d; register the object with its true size", errSizeMismatch, size, b.ObjectId, want)
	}
	return nil
}

// errSizeMismatch is checkBindSize's error when the sizes differ (not when
// the registered size could not be read).
var errSizeMismatch = errors.New("size mismatch")

// endSessions drops the provisional groups the object's chunks were pushed
// under, now that the object holds them.
func (c *storeConn) endSessions(b *pb.BindRequest) {
	for _, sid := range [][]byte{ObjectSessionID(b.ObjectId), clientSessionIDOrNil(b.Session)} {
		if sid == nil {
			continue
		}
		if err := c.h.blocks.EndSession(sid); err != nil {
			c.log.Debug("ending an upload session failed", "err", err)
		}
	}
}

// drop ends a streamed upload's session at its uploader's word (DROP): its
// chunks that no object or other session holds are deleted now, not at
// expiry. The session ID, 16 random bytes only the uploader knows, is the
// authority; dropping a session that is not open answers DROPPED too.
func (c *storeConn) drop(ctx context.Context, ex *storeExchange, d *pb.DropRequest) {
	if len(d.Session) != SessionIDLength || d.BagId == "" {
		c.refuse(ex, "drop needs a %d-byte session and a bag", SessionIDLength)
		return
	}
	if da, ok := c.h.auth.(DropAuthorizer); ok {
		if err := da.AuthorizeDrop(ctx, d.BagId, d.Session, c.remote); err != nil {
			c.refuse(ex, "%v", err)
			return
		}
	}
	id := ClientSessionID(d.Session)
	// Chunks of the session whose data came before the DROP may still be
	// on their way to disk: drop after them, or they would open the
	// session again.
	c.awaitCommits(id)
	sess, _, open, err := c.h.blocks.SessionInfo(id)
	switch {
	case err != nil:
		c.failed(ex, "provider cannot read its store: %v", err)
		return
	case open && sess.Bag != d.BagId:
		c.refuse(ex, "session belongs to bag %s, not %s", sess.Bag, d.BagId)
		return
	case open:
		if err := c.h.blocks.EndSession(id); err != nil {
			c.failed(ex, "provider could not drop the session: %v", err)
			return
		}
	}
	// What was reserved for the session (a contract's room) goes with it,
	// now rather than when its grant lapses.
	if sr, ok := c.h.auth.(SessionReleaser); ok {
		sr.ReleaseSession(d.Session)
	}
	c.h.metrics.result(ex, "dropped")
	c.end(ex, &pb.StoreReply{Status: pb.Status_STATUS_DROPPED})
}

// awaitCommits waits until no chunk of block store session id is being
// stored on this stream.
func (c *storeConn) awaitCommits(id []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		busy := false
		for _, ex := range c.exchanges {
			if ex.committing > 0 && bytes.Equal(ex.session.ID, id) {
				busy = true
				break
			}
		}
		if !busy {
			return
		}
		c.drained.Wait() // unbufferLocked broadcasts as each commit ends
	}
}
