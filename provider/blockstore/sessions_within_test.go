package blockstore

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// withinBag is the bag of the objects and sessions of the EndSessionsWithin
// tests.
const withinBag = "dynamic:channel:1"

// withinObject is an object of the EndSessionsWithin tests, its chunks not
// yet stored.
type withinObject struct {
	m      Manifest
	blocks [][]byte // the chunks' bytes, in order
	size   uint64   // the chunks' bytes added up
}

// newWithinObject chunks 3 KiB and 100 bytes of data from seed into four
// 1 KiB chunks (one DAG level: the chunks and a root node) as object id.
func newWithinObject(t *testing.T, id, seed uint64) withinObject {
	t.Helper()
	const cs = 1 << 10
	m, blocks := object(t, withinBag, id, randBytes(seed, 3*cs+100), cs)
	if len(blocks) != 4 {
		t.Fatalf("object %d has %d chunks, want 4", id, len(blocks))
	}
	return withinObject{m: m, blocks: blocks, size: 3*cs + 100}
}

// chunkSizes maps the chunks of o with index in idx to their sizes, as
// checkSession takes them.
func (o withinObject) chunkSizes(idx ...int) map[cid.Cid]uint64 {
	out := map[cid.Cid]uint64{}
	for _, i := range idx {
		out[o.m.Chunks[i].CID] = o.m.Chunks[i].Size
	}
	return out
}

// withinSession returns an open-for-an-hour session of withinBag named id,
// its expiry whole seconds as the index stores it.
func withinSession(id string) Session {
	return Session{ID: []byte(id), Bag: withinBag, Expiry: time.Unix(time.Now().Add(time.Hour).Unix(), 0)}
}

// putChunks stores the chunks of o with index in idx in session sess.
func putChunks(t *testing.T, s *Store, sess Session, o withinObject, idx ...int) {
	t.Helper()
	for _, i := range idx {
		if err := s.PutInSession(sess, o.m.Chunks[i].CID, o.blocks[i]); err != nil {
			t.Fatalf("PutInSession(%q, chunk %d): %v", sess.ID, i, err)
		}
	}
}

// putManifest records o's manifest and returns it as stored (with its DAG
// nodes), failing unless the root is its only interior node.
func putManifest(t *testing.T, s *Store, o withinObject) Manifest {
	t.Helper()
	if err := s.PutManifest(o.m); err != nil {
		t.Fatalf("PutManifest(%d): %v", o.m.Object, err)
	}
	m, ok, err := s.Manifest(o.m.Object)
	if err != nil || !ok {
		t.Fatalf("Manifest(%d) = %v, %v", o.m.Object, ok, err)
	}
	if len(m.Nodes) != 1 || !m.Nodes[0].Equals(m.Root) {
		t.Fatalf("object %d has nodes %v, want its root %s only", m.Object, m.Nodes, m.Root)
	}
	return m
}

// startsWith returns a match for EndSessionsWithin accepting the IDs that
// begin with b, and recording every ID it is asked about in asked.
func startsWith(b byte, asked map[string]bool) func(id []byte) bool {
	return func(id []byte) bool {
		asked[string(id)] = true
		return len(id) > 0 && id[0] == b
	}
}

// endWithin calls EndSessionsWithin(obj, match) and fails unless it ends
// exactly want sessions without an error.
func endWithin(t *testing.T, s *Store, obj uint64, match func([]byte) bool, want int) {
	t.Helper()
	n, err := s.EndSessionsWithin(obj, match)
	if err != nil || n != want {
		t.Fatalf("EndSessionsWithin(%d) = %d, %v; want %d, nil", obj, n, err, want)
	}
}

// checkEnded fails unless session id is not open and leaves no trace in the
// index: no record, no block listed, no block referenced by it.
func checkEnded(t *testing.T, s *Store, id []byte) {
	t.Helper()
	if _, n, ok, err := s.SessionInfo(id); err != nil || ok || n != 0 {
		t.Fatalf("SessionInfo(%q) = open %v, %d bytes, %v; want not open", id, ok, n, err)
	}
	if blocks, err := s.SessionBlocks(id); err != nil || len(blocks) != 0 {
		t.Fatalf("SessionBlocks(%q) = %v, %v; want none", id, blocks, err)
	}
	it := s.db.NewIterator(util.BytesPrefix([]byte{pSessRef}), nil)
	defer it.Release()
	for it.Next() {
		if bytes.HasSuffix(it.Key(), id) {
			t.Fatalf("ended session %q still references a block (key %x)", id, it.Key())
		}
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
}

// checkHeldBlock fails unless the store holds block c with exactly data.
func checkHeldBlock(t *testing.T, s *Store, c cid.Cid, data []byte) {
	t.Helper()
	if ok, err := s.Has(c); err != nil || !ok {
		t.Fatalf("Has(%s) = %v, %v; want true", c, ok, err)
	}
	got, err := s.Get(c)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get(%s) = %d bytes, %v; want the %d stored", c, len(got), err, len(data))
	}
}

// checkGoneBlock fails unless block c is neither held nor on disk.
func checkGoneBlock(t *testing.T, s *Store, c cid.Cid) {
	t.Helper()
	if ok, err := s.Has(c); err != nil || ok {
		t.Fatalf("Has(%s) = %v, %v; want false", c, ok, err)
	}
	if _, err := os.Stat(s.blockPath(c)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file of block %s: %v; want it removed", c, err)
	}
}

// checkStats fails unless the store counts exactly blocks blocks of bytes
// bytes and objects objects.
func checkStats(t *testing.T, s *Store, blocks, bytes, objects uint64) {
	t.Helper()
	if st := s.Stats(); st.Blocks != blocks || st.Bytes != bytes || st.Objects != objects {
		t.Fatalf("Stats = %+v; want %d blocks of %d bytes, %d objects", st, blocks, bytes, objects)
	}
}

// rootSize is the size of the root node of a withinObject.
func rootSize(t *testing.T, s *Store, m Manifest) uint64 {
	t.Helper()
	n, err := s.Size(m.Root)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEndSessionsWithinExactChunks proves the purpose of EndSessionsWithin:
// a session holding exactly an object's chunks is ended (count 1, not open,
// no reference left), the chunks stay held because the object references
// them, and DeleteObject then removes every block of the object, index and
// files, where the open session would have kept the chunks until its
// expiry. The session's ID used again afterwards starts a fresh session
// holding only the new block.
func TestEndSessionsWithinExactChunks(t *testing.T) {
	s := openTest(t, t.TempDir())
	o := newWithinObject(t, 7, 800)
	sess := withinSession("s-exact")
	putChunks(t, s, sess, o, 0, 1, 2, 3)
	m := putManifest(t, s, o)
	root := rootSize(t, s, m)
	checkSession(t, s, sess.ID, withinBag, sess.Expiry, o.chunkSizes(0, 1, 2, 3))

	asked := map[string]bool{}
	endWithin(t, s, m.Object, startsWith('s', asked), 1)
	if len(asked) != 1 || !asked["s-exact"] {
		t.Fatalf("match was asked about %v, want s-exact only", asked)
	}
	checkEnded(t, s, sess.ID)
	for i, c := range m.Chunks {
		checkHeldBlock(t, s, c.CID, o.blocks[i])
	}
	checkStats(t, s, 5, o.size+root, 1)
	// Nothing left to end.
	endWithin(t, s, m.Object, startsWith('s', asked), 0)

	if err := s.DeleteObject(m.Object); err != nil {
		t.Fatal(err)
	}
	for _, c := range manifestBlocks(m) {
		checkGoneBlock(t, s, c)
	}
	checkStats(t, s, 0, 0, 0)

	// A late block of the same session starts it afresh.
	extra := randBytes(801, 700)
	if err := s.PutInSession(sess, chunker.ChunkCID(extra), extra); err != nil {
		t.Fatal(err)
	}
	checkSession(t, s, sess.ID, withinBag, sess.Expiry, map[cid.Cid]uint64{chunker.ChunkCID(extra): 700})
}

// TestEndSessionsWithinOpenSessionKeepsChunks is the control of
// TestEndSessionsWithinExactChunks: without EndSessionsWithin, DeleteObject
// leaves the chunks an open session holds (and only them), which is the
// orphaning EndSessionsWithin exists to prevent.
func TestEndSessionsWithinOpenSessionKeepsChunks(t *testing.T) {
	s := openTest(t, t.TempDir())
	o := newWithinObject(t, 7, 800)
	sess := withinSession("s-exact")
	putChunks(t, s, sess, o, 0, 1, 2, 3)
	m := putManifest(t, s, o)
	if err := s.DeleteObject(m.Object); err != nil {
		t.Fatal(err)
	}
	for i, c := range m.Chunks {
		checkHeldBlock(t, s, c.CID, o.blocks[i])
	}
	checkGoneBlock(t, s, m.Root)
	checkStats(t, s, 4, o.size, 0)
}

// TestEndSessionsWithinExtraBlock proves a session holding an object's
// chunks and one block outside the object is not ended: EndSessionsWithin
// returns 0, the session is open with every block and its byte count, and
// after DeleteObject all its blocks, the object's chunks included, stay
// held while the object's root node goes. Ending the session then removes
// them.
func TestEndSessionsWithinExtraBlock(t *testing.T) {
	s := openTest(t, t.TempDir())
	o := newWithinObject(t, 7, 810)
	sess := withinSession("s-extra")
	putChunks(t, s, sess, o, 0, 1, 2, 3)
	extra := randBytes(811, 900)
	ec := chunker.ChunkCID(extra)
	if err := s.PutInSession(sess, ec, extra); err != nil {
		t.Fatal(err)
	}
	m := putManifest(t, s, o)
	root := rootSize(t, s, m)
	want := o.chunkSizes(0, 1, 2, 3)
	want[ec] = 900

	asked := map[string]bool{}
	endWithin(t, s, m.Object, startsWith('s', asked), 0)
	if len(asked) != 1 || !asked["s-extra"] {
		t.Fatalf("match was asked about %v, want s-extra only", asked)
	}
	checkSession(t, s, sess.ID, withinBag, sess.Expiry, want)
	checkStats(t, s, 6, o.size+900+root, 1)

	if err := s.DeleteObject(m.Object); err != nil {
		t.Fatal(err)
	}
	checkSession(t, s, sess.ID, withinBag, sess.Expiry, want)
	for i, c := range m.Chunks {
		checkHeldBlock(t, s, c.CID, o.blocks[i])
	}
	checkHeldBlock(t, s, ec, extra)
	checkGoneBlock(t, s, m.Root)
	checkStats(t, s, 5, o.size+900, 0)

	if err := s.EndSession(sess.ID); err != nil {
		t.Fatal(err)
	}
	for _, c := range append(manifestBlocks(m), ec) {
		checkGoneBlock(t, s, c)
	}
	checkStats(t, s, 0, 0, 0)
}

// TestEndSessionsWithinMatchRejects proves a session match rejects is left
// alone even though it holds exactly the object's chunks: with two such
// sessions, s-upload (matched) and o-upload (not), only s-upload ends, the
// count is 1, match is asked about both and nothing else, and o-upload
// keeps the chunks through DeleteObject. A match accepting both ends both.
func TestEndSessionsWithinMatchRejects(t *testing.T) {
	s := openTest(t, t.TempDir())
	o := newWithinObject(t, 7, 820)
	matched, rejected := withinSession("s-upload"), withinSession("o-upload")
	putChunks(t, s, matched, o, 0, 1, 2, 3)
	for _, c := range o.m.Chunks {
		if err := s.AddToSession(rejected, c.CID); err != nil {
			t.Fatal(err)
		}
	}
	m := putManifest(t, s, o)

	asked := map[string]bool{}
	endWithin(t, s, m.Object, startsWith('s', asked), 1)
	if len(asked) != 2 || !asked["s-upload"] || !asked["o-upload"] {
		t.Fatalf("match was asked about %v, want s-upload and o-upload", asked)
	}
	checkEnded(t, s, matched.ID)
	checkSession(t, s, rejected.ID, withinBag, rejected.Expiry, o.chunkSizes(0, 1, 2, 3))

	if err := s.DeleteObject(m.Object); err != nil {
		t.Fatal(err)
	}
	checkSession(t, s, rejected.ID, withinBag, rejected.Expiry, o.chunkSizes(0, 1, 2, 3))
	for i, c := range m.Chunks {
		checkHeldBlock(t, s, c.CID, o.blocks[i])
	}
	checkGoneBlock(t, s, m.Root)
	checkStats(t, s, 4, o.size, 0)

	// Both sessions, both matched, both within the object: both end.
	s2 := openTest(t, t.TempDir())
	putChunks(t, s2, matched, o, 0, 1)
	putChunks(t, s2, rejected, o, 2, 3)
	m = putManifest(t, s2, o)
	endWithin(t, s2, m.Object, func([]byte) bool { return true }, 2)
	checkEnded(t, s2, matched.ID)
	checkEnded(t, s2, rejected.ID)
	if err := s2.DeleteObject(m.Object); err != nil {
		t.Fatal(err)
	}
	for _, c := range manifestBlocks(m) {
		checkGoneBlock(t, s2, c)
	}
	checkStats(t, s2, 0, 0, 0)
}

// TestEndSessionsWithinNoManifest proves EndSessionsWithin of an object
// with no manifest returns (0, nil) and ends nothing, not even a session
// that holds the chunks it would have, and never consults match.
func TestEndSessionsWithinNoManifest(t *testing.T) {
	s := openTest(t, t.TempDir())
	o := newWithinObject(t, 7, 830)
	sess := withinSession("s-unbound")
	putChunks(t, s, sess, o, 0, 1, 2, 3)

	asked := map[string]bool{}
	endWithin(t, s, o.m.Object, startsWith('s', asked), 0)
	endWithin(t, s, 99, startsWith('s', asked), 0)
	if len(asked) != 0 {
		t.Fatalf("match was asked about %v without a manifest", asked)
	}
	checkSession(t, s, sess.ID, withinBag, sess.Expiry, o.chunkSizes(0, 1, 2, 3))
	checkStats(t, s, 4, o.size, 0)
}

// TestEndSessionsWithinSubset proves a session holding a strict subset of
// an object's blocks is ended: the middle two chunks, and separately the
// first chunk with the object's root node (a DAG block the object holds
// too). Another session holding one of those chunks and a block of another
// object is not. DeleteObject then leaves only the blocks the surviving
// session holds.
func TestEndSessionsWithinSubset(t *testing.T) {
	s := openTest(t, t.TempDir())
	o := newWithinObject(t, 7, 840)
	other := newWithinObject(t, 8, 841)
	middle, withRoot, mixed := withinSession("s-middle"), withinSession("s-root"), withinSession("s-mixed")
	putChunks(t, s, middle, o, 1, 2)
	putChunks(t, s, withRoot, o, 0)
	putChunks(t, s, mixed, o, 3)
	putChunks(t, s, mixed, other, 0)
	m := putManifest(t, s, o)
	if err := s.AddToSession(withRoot, m.Root); err != nil {
		t.Fatal(err)
	}
	root := rootSize(t, s, m)
	wantMixed := other.chunkSizes(0)
	wantMixed[o.m.Chunks[3].CID] = o.m.Chunks[3].Size

	endWithin(t, s, m.Object, startsWith('s', map[string]bool{}), 2)
	checkEnded(t, s, middle.ID)
	checkEnded(t, s, withRoot.ID)
	checkSession(t, s, mixed.ID, withinBag, mixed.Expiry, wantMixed)
	for i, c := range m.Chunks {
		checkHeldBlock(t, s, c.CID, o.blocks[i])
	}
	checkHeldBlock(t, s, other.m.Chunks[0].CID, other.blocks[0])
	checkStats(t, s, 6, o.size+root+other.m.Chunks[0].Size, 1)

	if err := s.DeleteObject(m.Object); err != nil {
		t.Fatal(err)
	}
	for _, c := range manifestBlocks(m) {
		if c.Equals(o.m.Chunks[3].CID) {
			continue
		}
		checkGoneBlock(t, s, c)
	}
	checkHeldBlock(t, s, o.m.Chunks[3].CID, o.blocks[3])
	checkHeldBlock(t, s, other.m.Chunks[0].CID, other.blocks[0])
	checkStats(t, s, 2, o.m.Chunks[3].Size+other.m.Chunks[0].Size, 0)
}

// TestEndSessionsWithinClosed proves EndSessionsWithin on a closed store
// fails with ErrClosed and ends nothing.
func TestEndSessionsWithinClosed(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	o := newWithinObject(t, 7, 850)
	sess := withinSession("s-exact")
	putChunks(t, s, sess, o, 0, 1, 2, 3)
	putManifest(t, s, o)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.EndSessionsWithin(o.m.Object, func([]byte) bool { return true }); !errors.Is(err, ErrClosed) || n != 0 {
		t.Fatalf("EndSessionsWithin on a closed store = %d, %v; want 0, ErrClosed", n, err)
	}
	s = openTest(t, dir)
	checkSession(t, s, sess.ID, withinBag, sess.Expiry, o.chunkSizes(0, 1, 2, 3))
}
