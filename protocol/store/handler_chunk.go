package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/store/pb"
)

// The store handler's side of a chunk exchange: request (authorize), segments,
// data (commit) and sign, each answered on the stream as it completes.

// authorize decides on a chunk request: AGREED, ALREADY_STORED or REFUSED.
func (c *storeConn) authorize(ctx context.Context, ex *storeExchange, r *pb.StoreChunkRequest) {
	hops, err := decodeForward(c.h.self, c.remote, r.Forward)
	if err != nil {
		c.refuse(ex, "%v", err)
		return
	}
	if err := c.h.admit(ctx, ex, r, c.remote); err != nil {
		c.refuseErr(ex, err)
		return
	}
	c.h.setForward(ex, r, hops)
	held, err := c.h.blocks.Has(ex.chunk)
	if err != nil {
		c.refuse(ex, "provider cannot read its store: %v", err)
		return
	}
	if held && c.h.joinsHeld(ex) {
		if err := c.h.blocks.AddToSession(ex.session, ex.chunk); err == nil {
			c.alreadyStored(ex)
			return
		} else if !errors.Is(err, ErrNotFound) {
			c.refuseErr(ex, err)
			return
		}
		// Deleted meanwhile: receive it again.
	}
	c.mu.Lock()
	ex.state, ex.since = exAgreed, c.h.cfg.now()
	c.mu.Unlock()
	c.reply(&pb.StoreReply{Id: ex.id, Status: pb.Status_STATUS_AGREED})
}

// admit checks a chunk request and asks the Authorizer about it, filling in
// ex: the chunk, its object and the session it is stored under. Its error's
// text is the refusal reason. from is the peer that sent the request.
func (h *Handler) admit(ctx context.Context, ex *storeExchange, r *pb.StoreChunkRequest, from peer.ID) error {
	ch, expiry, err := checkChunkRequest(r, h.cfg.now())
	if err != nil {
		return err
	}
	ex.bag, ex.object, ex.chunk, ex.length, ex.expiry = r.BagId, r.ObjectId, ch, r.Length, expiry
	if err := checkNonce(r.Nonce); err != nil {
		return err
	}
	ex.nonce = bytes.Clone(r.Nonce) // kept past the request, whatever decoded it
	if r.ObjectId != 0 {
		return h.admitObjectChunk(ctx, ex, r)
	}
	if len(r.Session) != SessionIDLength {
		return fmt.Errorf("a chunk of an unregistered object (object ID 0) needs a %d-byte session", SessionIDLength)
	}
	if err := h.checkHopToken(ctx, ex, r.Session, from, r.HopToken); err != nil {
		return err
	}
	ex.session = Session{ID: ClientSessionID(r.Session), Bag: r.BagId, Expiry: expiry}
	return h.reserve(ctx, ex)
}

// checkChunkRequest checks what a chunk request says on its own and returns
// its chunk ID and the expiry the provider grants (DefaultSessionTTL when
// none is asked, at most MaxSessionTTL). A streamed session's chunk gets at
// most the end of the contract grant that lets it in (authorizeSession).
func checkChunkRequest(r *pb.StoreChunkRequest, now time.Time) (cid.Cid, time.Time, error) {
	ch, err := cid.Cast(r.Cid)
	if err != nil {
		return cid.Undef, time.Time{}, fmt.Errorf("invalid chunk CID: %v", err)
	}
	if err := checkChunkCID(ch); err != nil {
		return cid.Undef, time.Time{}, err
	}
	if r.Length > MaxChunkLength {
		return cid.Undef, time.Time{}, fmt.Errorf("chunk of %d bytes exceeds the %d-byte limit", r.Length, MaxChunkLength)
	}
	if r.BagId == "" {
		return cid.Undef, time.Time{}, errors.New("no bag named")
	}
	if r.Index > math.MaxInt32 {
		return cid.Undef, time.Time{}, fmt.Errorf("chunk index %d out of range", r.Index)
	}
	if r.ExpiryUnix == 0 {
		return ch, now.Add(DefaultSessionTTL), nil
	}
	expiry := time.Unix(r.ExpiryUnix, 0)
	if !expiry.After(now) {
		return cid.Undef, time.Time{}, fmt.Errorf("expiry %s has passed", expiry.UTC().Format(time.RFC3339))
	}
	return ch, minTime(expiry, now.Add(MaxSessionTTL)), nil
}

// admitObjectChunk checks that the chunk of a registered object belongs to
// it: the Authorizer gives the object's content ID, and the request's proof
// must tie the chunk to it at its index.
func (h *Handler) admitObjectChunk(ctx context.Context, ex *storeExchange, r *pb.StoreChunkRequest) error {
	if len(r.Proof) > MaxProofBlocks || proofSize(r.Proof) > MaxProofBytes {
		return fmt.Errorf("proof exceeds %d blocks or %d bytes", MaxProofBlocks, MaxProofBytes)
	}
	root, err := h.auth.AuthorizeChunk(ctx, r.BagId, r.ObjectId)
	if err != nil {
		return err
	}
	if err := h.proofs.Verify(root, ex.chunk, int(r.Index), chunker.Proof{Blocks: r.Proof}); err != nil {
		return fmt.Errorf("chunk %s is not chunk %d of object %d (content ID %s): %v", ex.chunk, r.Index, r.ObjectId, root, err)
	}
	ex.session = Session{ID: ObjectSessionID(r.ObjectId), Bag: r.BagId, Expiry: ex.expiry}
	return nil
}

// alreadyStored answers ALREADY_STORED; the exchange goes on to SIGN.
func (c *storeConn) alreadyStored(ex *storeExchange) {
	c.h.release(ex)
	c.h.metrics.chunk("already_stored")
	c.mu.Lock()
	c.unbufferLocked(ex) // no bytes to come: the chunk's reservation goes too
	ex.buf = nil
	prev := ex.state
	ex.state, ex.since = exStored, c.h.cfg.now()
	if prev == exReceiving || prev == exAgreed {
		ex.state = exSkipping
	}
	c.mu.Unlock()
	c.reply(&pb.StoreReply{Id: ex.id, Status: pb.Status_STATUS_ALREADY_STORED})
}

// onSegments checks an agreed chunk's segment map and answers SEGMENTS_OK,
// or ALREADY_STORED when the chunk arrived meanwhile by another upload.
func (c *storeConn) onSegments(id uint64, m *pb.StoreChunkSegments) error {
	ex := c.lookup(id)
	if ex == nil {
		return nil // an exchange that ended: ignored
	}
	if st := c.state(ex); st != exAgreed {
		return fmt.Errorf("%w: segments for exchange %d in state %d", ErrProtocol, id, st)
	}
	segSize := uint64(m.SegmentSize)
	switch {
	case segSize == 0 || segSize > MaxSegmentSize:
		c.failed(ex, "segment size %d outside 1..%d", segSize, MaxSegmentSize)
		return nil
	case segSize < MinSegmentSize && segSize < ex.length:
		c.failed(ex, "segment size %d below the minimum %d", segSize, MinSegmentSize)
		return nil
	}
	nseg := max((ex.length+segSize-1)/segSize, 1)
	if uint64(len(m.Hashes)) != nseg {
		c.failed(ex, "%d segment hashes for a %d-byte chunk in %d-byte segments; want %d", len(m.Hashes), ex.length, segSize, nseg)
		return nil
	}
	for i, hsh := range m.Hashes {
		if len(hsh) != sha256.Size {
			c.failed(ex, "segment hash %d is %d bytes, not %d", i, len(hsh), sha256.Size)
			return nil
		}
	}
	if nseg == 1 {
		dec, err := multihash.Decode(ex.chunk.Hash())
		if err != nil || !bytes.Equal(dec.Digest, m.Hashes[0]) {
			c.failed(ex, "the segment map of a one-segment chunk does not match its CID %s", ex.chunk)
			return nil
		}
		ex.oneShot = true
	}
	// Stored meanwhile by another upload? Then skip the data.
	if held, _ := c.h.blocks.Has(ex.chunk); held && c.h.joinsHeld(ex) {
		if err := c.h.blocks.AddToSession(ex.session, ex.chunk); err == nil {
			c.alreadyStored(ex)
			return nil
		}
	}
	c.mu.Lock()
	ex.segSize, ex.hashes, ex.state, ex.since = int(segSize), m.Hashes, exReceiving, c.h.cfg.now()
	c.mu.Unlock()
	c.reply(&pb.StoreReply{Id: id, Status: pb.Status_STATUS_SEGMENTS_OK})
	return nil
}

// onData takes a data frame of a chunk being received and, once the chunk
// is whole, commits it on a worker. frame is the pooled body d.Data lies
// in: the exchange keeps it when the frame carries the whole chunk, and it
// is recycled here otherwise.
func (c *storeConn) onData(id uint64, d *pb.StoreChunkData, frame []byte) error {
	kept := false
	defer func() {
		if !kept {
			p2p.RecycleFrame(frame)
		}
	}()
	ex := c.lookup(id)
	if ex == nil {
		return nil
	}
	switch st := c.state(ex); st {
	case exSkipping:
		return nil
	case exReceiving:
	default:
		return fmt.Errorf("%w: data for exchange %d in state %d", ErrProtocol, id, st)
	}
	c.h.metrics.bytesIn.Add(float64(len(d.Data)))
	kept, err := ex.take(d, frame)
	if err != nil {
		c.failed(ex, "%v", err)
		return nil
	}
	c.advance(len(d.Data)) // chunk bytes taken: the stream moves
	if ex.received < ex.length {
		if d.Last {
			c.failed(ex, "last data frame at %d of %d bytes", ex.received, ex.length)
			return nil
		}
		// Charge the buffer's capacity, not the bytes received: take
		// allocates the whole chunk on the first partial frame, and that is
		// what the stream pins until the chunk completes or fails.
		if c.bufferPartial(ex, cap(ex.buf)) {
			c.failed(ex, "more than %d bytes of partly sent chunks on one stream; send each chunk's data frames together", MaxStreamBuffered)
		}
		return nil
	}
	c.startCommit(ex)
	return nil
}

// take checks a data frame against what the exchange received so far and
// the segment map, and keeps its bytes: a frame that holds the whole chunk
// is kept as it is (kept reports it; frame is the pooled body its data lies
// in, recycled once the chunk is stored), any other is copied. Its error's
// text is the failure reason.
func (ex *storeExchange) take(d *pb.StoreChunkData, frame []byte) (kept bool, err error) {
	n := uint64(len(d.Data))
	if d.Offset != ex.received || ex.received+n > ex.length {
		return false, fmt.Errorf("data at offset %d+%d does not follow the %d bytes received of %d", d.Offset, n, ex.received, ex.length)
	}
	end := ex.received + n
	seg := uint64(ex.segSize)
	if end != ex.length && end%seg != 0 {
		return false, fmt.Errorf("data frame ends inside a segment (offset %d)", end)
	}
	if !ex.oneShot {
		for off := uint64(0); off < n; off += seg {
			idx := (ex.received + off) / seg
			sum := sha256.Sum256(d.Data[off:min(off+seg, n)])
			if !bytes.Equal(sum[:], ex.hashes[idx]) {
				return false, fmt.Errorf("segment %d does not match its hash", idx)
			}
		}
	}
	switch {
	case ex.received == 0 && end == ex.length:
		ex.buf, ex.frame = d.Data, frame // the whole chunk in one frame: no copy
		kept = true
	default:
		if ex.buf == nil {
			ex.buf = make([]byte, 0, ex.length)
		}
		ex.buf = append(ex.buf, d.Data...)
	}
	ex.received = end
	return kept, nil
}

// bufferPartial raises ex's share of the stream's partial bytes to held,
// the memory its buffer pins, and reports whether the stream now holds more
// than MaxStreamBuffered such bytes.
func (c *storeConn) bufferPartial(ex *storeExchange, held int) (over bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := held - ex.partial; n > 0 {
		c.partial += n
		ex.partial += n
	}
	return c.partial > MaxStreamBuffered
}

// startCommit moves a whole received chunk from the partial bytes to the
// committing ones and stores it on a worker.
func (c *storeConn) startCommit(ex *storeExchange) {
	c.mu.Lock()
	c.partial -= ex.partial
	ex.partial = 0
	c.committing += int(ex.length)
	ex.committing = int(ex.length)
	ex.state = exCommitting
	c.mu.Unlock()
	c.workers.Add(1)
	go func() {
		defer c.workers.Done()
		if err := c.proto.Go(p2p.StoreProtocol, c.remote, func() { c.commit(ex) }); err != nil {
			c.workerPanicked(ex)
		}
	}()
}

// commit stores a received chunk durably and answers DATA_RECEIVED; a
// chunk with a forward list is passed on to the next hop meanwhile, and the
// exchange is ready to sign once both are done. Its bytes stay counted
// against the stream until then.
func (c *storeConn) commit(ex *storeExchange) {
	data, frame := ex.buf, ex.frame
	ex.buf, ex.frame = nil, nil
	var fwd sync.WaitGroup
	// Once the store and the next hop are done with the bytes (neither
	// keeps them), the frame goes back to the pool. Only on a normal return:
	// a panic unwinding here may leave the forward still reading it, and the
	// collector takes the frame then.
	done := func() {
		fwd.Wait()
		p2p.RecycleFrame(frame)
	}
	put := c.h.blocks.PutInSession
	forwarding := c.startForward(ex)
	if forwarding {
		// Only bytes that match their CID go down the pipeline; verified
		// here, they need not be hashed again as they are written.
		if err := chunker.VerifyChunk(ex.chunk, data); err != nil {
			done()
			c.failed(ex, "chunk bytes do not match CID %s; not forwarded", ex.chunk)
			return
		}
		if vp, ok := c.h.blocks.(VerifiedPutter); ok {
			put = vp.PutVerifiedInSession
		}
		fwd.Add(1)
		go func() {
			defer fwd.Done()
			// A panic while forwarding is contained and logged like a
			// handler's; the hop then relays no receipt, which the
			// uploader counts as a failed hop.
			_ = c.proto.Go(p2p.StoreProtocol, c.remote, func() { c.forward(ex, data) })
		}()
	}
	if err := c.h.land(ex, func() error { return put(ex.session, ex.chunk, data) }); err != nil {
		done()
		if errors.Is(err, ErrCIDMismatch) {
			c.failed(ex, "chunk bytes do not match CID %s", ex.chunk)
		} else {
			c.failedErr(ex, "provider could not store the chunk", err)
		}
		return
	}
	c.h.metrics.chunk("stored")
	// The uploader sends SIGN with the data: when it is in and no forward
	// is to be waited for, the receipt follows DATA_RECEIVED at once, and
	// both leave in one write.
	c.mu.Lock()
	hold := ex.signWanted && !forwarding
	c.mu.Unlock()
	if hold {
		defer c.holdReplies()()
	}
	c.reply(&pb.StoreReply{Id: ex.id, Status: pb.Status_STATUS_DATA_RECEIVED})
	done()
	c.mu.Lock()
	c.unbufferLocked(ex)
	ex.state, ex.since = exStored, c.h.cfg.now()
	sign := ex.signWanted
	c.mu.Unlock()
	if sign {
		c.sign(ex)
	}
}

// onSign answers SIGN: at once for a chunk held, after the commit for one
// being stored, with FAILED for one not yet whole.
func (c *storeConn) onSign(id uint64) error {
	ex := c.lookup(id)
	if ex == nil {
		return nil
	}
	c.mu.Lock()
	st := ex.state
	switch st {
	case exCommitting:
		ex.signWanted = true
		c.mu.Unlock()
		return nil
	case exBinding:
		c.mu.Unlock()
		return fmt.Errorf("%w: SIGN for bind exchange %d", ErrProtocol, id)
	}
	c.mu.Unlock()
	switch st {
	case exStored, exSkipping:
		if c.startForward(ex) {
			c.forwardHeld(ex)
			return nil
		}
		c.sign(ex)
	case exAuthorizing:
		return fmt.Errorf("%w: SIGN for exchange %d before its request was answered", ErrProtocol, id)
	default:
		// Agreed or receiving: the uploader gives up on the chunk.
		c.failed(ex, "SIGN before the whole chunk was received")
	}
	return nil
}

// sign answers SIGNED with a receipt for a chunk the provider holds.
func (c *storeConn) sign(ex *storeExchange) {
	at, err := c.h.blocks.StoredAt(ex.chunk)
	if err != nil {
		c.failed(ex, "chunk %s is no longer held: %v", ex.chunk, err)
		return
	}
	rc := &pb.Receipt{
		Cid:          ex.chunk.Bytes(),
		ObjectId:     ex.object,
		BagId:        ex.bag,
		StoredAtUnix: at.Unix(),
		ExpiryUnix:   ex.expiry.Unix(),
		Session:      ex.receiptSession(),
		Nonce:        ex.nonce,
	}
	if err := SignReceipt(c.h.key, rc); err != nil {
		c.failed(ex, "provider cannot sign: %v", err)
		return
	}
	c.mu.Lock()
	relayed, failures := ex.relayed, ex.hopFailures
	c.mu.Unlock()
	c.end(ex, &pb.StoreReply{Status: pb.Status_STATUS_SIGNED, Receipt: rc, Relayed: relayed, HopFailures: failures})
}
