package distributor

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
)

// Media types of the verifiable answers (the IPFS trustless gateway's).
const (
	carType = "application/vnd.ipld.car"
	rawType = "application/vnd.ipld.raw"
)

// wantsCAR reports whether the request asks for a CAR (?format=car or
// Accept: application/vnd.ipld.car).
func wantsCAR(r *http.Request) bool {
	return (r.URL.RawQuery != "" && r.URL.Query().Get("format") == "car") || strings.Contains(r.Header.Get("Accept"), carType)
}

// carHeader encodes a CARv1 header naming root: the dag-cbor map
// {roots: [root], version: 1}, prefixed by its length as a varint.
func carHeader(root cid.Cid) ([]byte, error) {
	n, err := qp.BuildMap(basicnode.Prototype.Any, 2, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "roots", qp.List(1, func(la datamodel.ListAssembler) {
			qp.ListEntry(la, qp.Link(cidlink.Link{Cid: root}))
		}))
		qp.MapEntry(ma, "version", qp.Int(1))
	})
	if err != nil {
		return nil, err
	}
	var body bytes.Buffer
	if err := dagcbor.Encode(n, &body); err != nil {
		return nil, err
	}
	out := binary.AppendUvarint(nil, uint64(body.Len()))
	return append(out, body.Bytes()...), nil
}

// serveCAR answers an object as a CARv1 of its blocks, root first, in
// depth-first order: a client verifies every block against its CID and the
// DAG against the root, the object's content ID on chain. Blocks stream
// out as they are fetched.
func (s *Server) serveCAR(w http.ResponseWriter, r *http.Request, rec *record) {
	obj := rec.obj
	// A CAR holds the leaf it sends and those fetched ahead, as an asset
	// answer does: unless every leaf is cached it takes a miss slot at
	// once, else before the first block it must fetch (its object evicted
	// mid-answer).
	slot := s.newMissSlot(r)
	defer slot.release()
	complete := s.cache.complete(obj.ID, obj.Size)
	if !complete && slot.take() != nil {
		return
	}
	rd, err := newObjectReader(r.Context(), s.fetch, rec, s.keeps(obj), slot)
	if err != nil {
		s.fetchFailed(w, r, obj, err)
		return
	}
	defer rd.Close()
	hdr, err := carHeader(rd.root)
	if err != nil {
		s.fetchFailed(w, r, obj, err)
		return
	}
	// Fetch the root before answering, so a failure is a clear status.
	first, fl, err := rd.blockBytes(rd.root)
	if err != nil {
		s.fetchFailed(w, r, obj, err)
		return
	}
	defer fl.drop()
	h := w.Header()
	h.Set("Content-Type", carType+"; version=1")
	h.Set("ETag", `"`+obj.ContentID+`.car"`)
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", obj.ID.String()+".car"))
	h.Del("Accept-Ranges")
	if r.Method == http.MethodHead {
		return
	}
	s.cache.touch(obj.ID)
	// A CAR's blocks lie under its walk's leases, not the reader's: a
	// stalled CAR parks only while a parked token is free.
	dw := s.newWriter(w, slot, nil, !complete)
	defer dw.close()
	defer s.tooSlow(r, obj, dw)
	if _, err := dw.Write(hdr); err != nil {
		return
	}
	if err := rd.walkBlocks(rd.root, first, 0, carOut{dw}); err != nil {
		s.log.Debug("car cut short", "object", obj.ID, "err", err)
	}
}

// blockOut is where walkBlocks sends blocks: from memory, or from their
// cached block files, so that an answer from the cache holds no leaf in
// memory however slowly its client reads.
type blockOut interface {
	bytes(c cid.Cid, b []byte) error
	// file sends size bytes of f from its offset and returns how many
	// it read.
	file(c cid.Cid, f *os.File, size int64) (int64, error)
}

// carOut writes blocks as CARv1 sections: varint length, CID, block.
type carOut struct{ w *deadlineWriter }

func (o carOut) bytes(c cid.Cid, b []byte) error {
	if err := o.section(c, int64(len(b))); err != nil {
		return err
	}
	_, err := o.w.Write(b)
	return err
}

func (o carOut) file(c cid.Cid, f *os.File, size int64) (int64, error) {
	if err := o.section(c, size); err != nil {
		return 0, err
	}
	return o.w.sendFile(f, size)
}

// section writes a section's length and CID.
func (o carOut) section(c cid.Cid, size int64) error {
	cb := c.Bytes()
	sec := binary.AppendUvarint(nil, uint64(int64(len(cb))+size))
	_, err := o.w.Write(append(sec, cb...))
	return err
}

// blockBytes returns the bytes of block c of the reader's object and the
// lease they lie under (nil for bytes of their own), to drop once done with
// them.
func (r *objectReader) blockBytes(c cid.Cid) ([]byte, *lease, error) {
	cl, err := r.block(c)
	if err != nil {
		return nil, nil, err
	}
	return r.leaseBytes(c, cl)
}

// leaseBytes is blockBytes for the fetch cl of block c, done without an
// error (fetcher.wait), which it takes over: its bytes in memory, else its
// cached file's.
func (r *objectReader) leaseBytes(c cid.Cid, cl *lease) ([]byte, *lease, error) {
	if cl.network {
		return cl.blk.Data, cl, nil
	}
	cl.drop()
	if b, ok := r.f.cache.read(r.obj.ID, c); ok {
		return b, nil, nil
	}
	// The cached copy is gone or failed its check (and was dropped): fetch
	// the block again, past the cache, whose index may still list it.
	again, err := r.refetch(c)
	if err != nil {
		return nil, nil, err
	}
	return again.blk.Data, again, nil
}

// walkBlocks sends block c (whose bytes are b) and every block under it to
// out, depth first.
func (r *objectReader) walkBlocks(c cid.Cid, b []byte, depth int, out blockOut) error {
	if depth > maxDAGDepth {
		return fmt.Errorf("%w: object %d is deeper than %d levels", ErrBadDAG, r.obj.ID, maxDAGDepth)
	}
	if err := out.bytes(c, b); err != nil {
		return err
	}
	if c.Type() != cid.DagProtobuf {
		return nil
	}
	n, err := decodeNode(c, b)
	if err != nil {
		return err
	}
	calls := make([]*lease, len(n.links))
	defer func() { // the fetches ahead not reached (an error)
		for _, cl := range calls {
			cl.drop()
		}
	}()
	for i, l := range n.links {
		// Fetch the next blocks while this one is written.
		for j := i; j < min(i+1+maxAhead, len(n.links)); j++ {
			if calls[j] == nil {
				if calls[j], err = r.start(n.links[j]); err != nil {
					return err
				}
			}
		}
		cl, err := r.f.wait(r.ctx, calls[i])
		calls[i] = nil
		if err != nil {
			return err
		}
		if sent, err := r.sendCached(l, cl, out); sent || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		lb, ll, err := r.leaseBytes(l, cl)
		if err != nil {
			return err
		}
		err = r.walkBlocks(l, lb, depth+1, out)
		ll.drop()
		if err != nil {
			return err
		}
	}
	return nil
}

// sendCached sends leaf c to out from its cached block file when cl, the
// fetch of c (done without an error), found it in the cache, and then drops
// cl. It reports false, keeping cl, for a leaf to read into memory
// (fetched, or whose file is gone: leaseBytes fetches it again).
func (r *objectReader) sendCached(c cid.Cid, cl *lease, out blockOut) (bool, error) {
	if c.Type() != cid.Raw || cl.network {
		return false, nil
	}
	return r.sendFile(c, cl, out)
}

// sendFile sends block c to out from its cached block file if the cache
// holds it, dropping cl (nil: none) first: a block sent from its file
// holds no lease, however slowly its client reads. The file is checked
// (cache.open) before a byte of it goes out. It reports false, keeping cl,
// when the cache does not hold c or its file failed the check.
func (r *objectReader) sendFile(c cid.Cid, cl *lease, out blockOut) (bool, error) {
	f, size, ok := r.f.cache.open(r.obj.ID, c)
	if !ok {
		return false, nil
	}
	cl.drop()
	return true, r.f.cache.send(r.obj.ID, c, f, size, out.file)
}

// serveBlock answers GET /api/v1/assets/{id}/blocks/{cid}: one raw block
// of the object's DAG, for clients that verify it against its CID.
func (s *Server) serveBlock(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.object(w, r)
	if !ok {
		return
	}
	obj := rec.obj
	c, err := cid.Decode(r.PathValue("cid"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_cid", fmt.Errorf("block CID %.128q: %v", r.PathValue("cid"), err))
		return
	}
	// Blocks fetched for the answer, the interior nodes that show c is
	// part of the object included, are fetched under a miss slot.
	slot := s.newMissSlot(r)
	defer slot.release()
	rd, err := newObjectReader(r.Context(), s.fetch, rec, s.keeps(obj), slot)
	if err != nil {
		s.fetchFailed(w, r, obj, err)
		return
	}
	defer rd.Close()
	in, err := rd.contains(c)
	if err != nil {
		s.fetchFailed(w, r, obj, err)
		return
	}
	if !in {
		writeError(w, http.StatusNotFound, "not_found", fmt.Errorf("block %s is not part of object %d", c, obj.ID))
		return
	}
	out := rawOut{s: s, w: s.newWriter(w, slot, nil, false), head: r.Method == http.MethodHead}
	defer out.w.close()
	if sent, _ := rd.sendFile(c, nil, out); sent {
		return
	}
	out.w = s.newWriter(w, slot, nil, true) // from the network: paced
	defer out.w.close()
	defer s.tooSlow(r, obj, out.w)
	// A block fetched for the answer is held while a slow client reads
	// it: the answer takes a miss slot.
	if slot.take() != nil {
		return
	}
	b, bl, err := rd.blockBytes(c)
	if err != nil {
		s.fetchFailed(w, r, obj, err)
		return
	}
	defer bl.drop()
	_ = out.bytes(c, b)
}

// rawOut sends one block as a raw block answer (headers, then the block;
// only the headers for a HEAD).
type rawOut struct {
	s    *Server
	w    *deadlineWriter
	head bool
}

func (o rawOut) bytes(c cid.Cid, b []byte) error {
	o.headers(c, int64(len(b)))
	if o.head {
		return nil
	}
	_, err := o.w.Write(b)
	return err
}

func (o rawOut) file(c cid.Cid, f *os.File, size int64) (int64, error) {
	o.headers(c, size)
	if o.head {
		return 0, nil
	}
	return o.w.sendFile(f, size)
}

// headers sets the headers of a raw block answer.
func (o rawOut) headers(c cid.Cid, size int64) {
	h := o.w.Header()
	h.Set("Content-Type", rawType)
	h.Set("ETag", `"`+c.String()+`.raw"`)
	h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d, immutable", int64(o.s.cfg.maxAge.Seconds())))
	h.Set("Content-Length", fmt.Sprint(size))
}

// contains reports whether c is a block of the object's DAG: its root or a
// link of one of its interior nodes (only interior nodes are fetched).
// With cid.Undef it fetches every interior node and reports false.
func (r *objectReader) contains(c cid.Cid) (bool, error) {
	var walk func(n cid.Cid, depth int) (bool, error)
	walk = func(n cid.Cid, depth int) (bool, error) {
		if n.Equals(c) {
			return true, nil
		}
		if n.Type() != cid.DagProtobuf || depth > maxDAGDepth {
			return false, nil
		}
		node, err := r.node(n)
		if err != nil {
			return false, err
		}
		for _, l := range node.links {
			if l.Equals(c) {
				return true, nil
			}
		}
		for _, l := range node.links {
			if l.Type() == cid.DagProtobuf {
				if ok, err := walk(l, depth+1); ok || err != nil {
					return ok, err
				}
			}
		}
		return false, nil
	}
	return walk(r.root, 0)
}
