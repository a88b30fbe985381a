package blockstore

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// withinBag is the bag of the objects and sessions of the
// ExpireSessionsWithin tests.
const withinBag = "dynamic:channel:1"

// withinObject is an object of the ExpireSessionsWithin tests, its chunks
// not yet stored.
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

// wholeSecond is t as the index stores a session's expiry: whole seconds.
func wholeSecond(t time.Time) time.Time { return time.Unix(t.Unix(), 0) }

// withinSession returns an open-for-an-hour session of withinBag named id,
// its expiry whole seconds as the index stores it.
func withinSession(id string) Session {
	return Session{ID: []byte(id), Bag: withinBag, Expiry: wholeSecond(time.Now().Add(time.Hour))}
}

// withinUntil returns the until of an ExpireSessionsWithin call as the
// provider makes it (ten minutes from now), with half a second over the
// whole second so that the truncation the index applies shows: the expiry
// it sets is wholeSecond(until).
func withinUntil() time.Time {
	return wholeSecond(time.Now().Add(10 * time.Minute)).Add(500 * time.Millisecond)
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

// startsWith returns a match for ExpireSessionsWithin accepting the IDs
// that begin with b, and recording every ID it is asked about in asked.
func startsWith(b byte, asked map[string]bool) func(id []byte) bool {
	return func(id []byte) bool {
		asked[string(id)] = true
		return len(id) > 0 && id[0] == b
	}
}

// expireWithin calls ExpireSessionsWithin(obj, match, until) and fails
// unless it changes exactly want sessions without an error.
func expireWithin(t *testing.T, s *Store, obj uint64, match func([]byte) bool, until time.Time, want int) {
	t.Helper()
	n, err := s.ExpireSessionsWithin(obj, match, 0, until)
	if err != nil || n != want {
		t.Fatalf("ExpireSessionsWithin(%d, until %v) = %d, %v; want %d, nil", obj, until, n, err, want)
	}
}

// expireAt calls ExpireSessions(now) and fails unless it ends exactly want
// sessions without an error.
func expireAt(t *testing.T, s *Store, now time.Time, want int) {
	t.Helper()
	n, err := s.ExpireSessions(now)
	if err != nil || n != want {
		t.Fatalf("ExpireSessions(%v) = %d, %v; want %d, nil", now, n, err, want)
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
	checkNoRecord(t, s, c)
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

// TestExpireSessionsWithinExactChunks proves the purpose of
// ExpireSessionsWithin: a session of the object's bag holding exactly the
// object's chunks has its expiry brought forward to until as the index
// stores it (whole seconds; count 1, match asked about it alone), keeps its
// blocks and byte count, and is still open. A second call with the same
// until changes nothing (its expiry is no longer after until). ExpireSessions
// at the truncated until leaves it, one second after until ends it, the
// chunks staying held because the object references them; DeleteObject
// then removes every block of the object, index and files. The session's ID
// used again afterwards starts a fresh session holding only the new block.
func TestExpireSessionsWithinExactChunks(t *testing.T) {
	s := openTest(t, t.TempDir())
	o := newWithinObject(t, 7, 800)
	sess := withinSession("s-exact")
	putChunks(t, s, sess, o, 0, 1, 2, 3)
	m := putManifest(t, s, o)
	root := rootSize(t, s, m)
	checkSession(t, s, sess.ID, withinBag, sess.Expiry, o.chunkSizes(0, 1, 2, 3))

	until := withinUntil()
	asked := map[string]bool{}
	expireWithin(t, s, m.Object, startsWith('s', asked), until, 1)
	if len(asked) != 1 || !asked["s-exact"] {
		t.Fatalf("match was asked about %v, want s-exact only", asked)
	}
	checkSession(t, s, sess.ID, withinBag, wholeSecond(until), o.chunkSizes(0, 1, 2, 3))
	for i, c := range m.Chunks {
		checkHeldBlock(t, s, c.CID, o.blocks[i])
	}
	checkStats(t, s, 5, o.size+root, 1)
	// Already not after until: nothing to change.
	expireWithin(t, s, m.Object, startsWith('s', asked), until, 0)
	checkSession(t, s, sess.ID, withinBag, wholeSecond(until), o.chunkSizes(0, 1, 2, 3))

	expireAt(t, s, wholeSecond(until), 0)
	checkSession(t, s, sess.ID, withinBag, wholeSecond(until), o.chunkSizes(0, 1, 2, 3))
	expireAt(t, s, until.Add(time.Second), 1)
	checkEnded(t, s, sess.ID)
	for i, c := range m.Chunks {
		checkHeldBlock(t, s, c.CID, o.blocks[i])
	}
	checkStats(t, s, 5, o.size+root, 1)

	if err := s.DeleteObject(m.Object); err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Blocks() {
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

// TestExpireSessionsWithinThenDelete proves the order the provider meets
// most: ExpireSessionsWithin, then DeleteObject before until. The session
// keeps the chunks (not the root node, which only the object held) until
// ExpireSessions after until ends it, which removes them, files and index,
// so nothing of the object outlives until.
func TestExpireSessionsWithinThenDelete(t *testing.T) {
	s := openTest(t, t.TempDir())
	o := newWithinObject(t, 7, 805)
	sess := withinSession("s-exact")
	putChunks(t, s, sess, o, 0, 1, 2, 3)
	m := putManifest(t, s, o)
	until := withinUntil()
	expireWithin(t, s, m.Object, func([]byte) bool { return true }, until, 1)

	if err := s.DeleteObject(m.Object); err != nil {
		t.Fatal(err)
	}
	checkSession(t, s, sess.ID, withinBag, wholeSecond(until), o.chunkSizes(0, 1, 2, 3))
	for i, c := range m.Chunks {
		checkHeldBlock(t, s, c.CID, o.blocks[i])
	}
	checkGoneBlock(t, s, m.Root)
	checkStats(t, s, 4, o.size, 0)

	expireAt(t, s, wholeSecond(until), 0)
	expireAt(t, s, until.Add(time.Second), 1)
	checkEnded(t, s, sess.ID)
	for _, c := range m.Blocks() {
		checkGoneBlock(t, s, c)
	}
	checkStats(t, s, 0, 0, 0)
}

// TestExpireSessionsWithinOpenSessionKeepsChunks is the control of
// TestExpireSessionsWithinThenDelete: without ExpireSessionsWithin,
// DeleteObject leaves the chunks an open session holds (and only them), and
// ExpireSessions after until does not end the session, which keeps them
// until its own expiry: the orphaning ExpireSessionsWithin exists to cut
// short.
func TestExpireSessionsWithinOpenSessionKeepsChunks(t *testing.T) {
	s := openTest(t, t.TempDir())
	o := newWithinObject(t, 7, 800)
	sess := withinSession("s-exact")
	putChunks(t, s, sess, o, 0, 1, 2, 3)
	m := putManifest(t, s, o)
	if err := s.DeleteObject(m.Object); err != nil {
		t.Fatal(err)
	}
	expireAt(t, s, withinUntil().Add(time.Second), 0)
	checkSession(t, s, sess.ID, withinBag, sess.Expiry, o.chunkSizes(0, 1, 2, 3))
	for i, c := range m.Chunks {
		checkHeldBlock(t, s, c.CID, o.blocks[i])
	}
	checkGoneBlock(t, s, m.Root)
	checkStats(t, s, 4, o.size, 0)
}

// TestExpireSessionsWithinOtherBag proves a session of another bag is left
// alone even though it holds exactly the object's chunks: with s-same (the
// object's bag) and s-other (another bag) both holding them, match is asked
// about both, only s-same changes (count 1), s-other keeps its expiry, and
// after ExpireSessions past until (which ends s-same only) and DeleteObject
// the chunks survive, held by s-other, while the root node goes. Ending
// s-other then removes them.
func TestExpireSessionsWithinOtherBag(t *testing.T) {
	s := openTest(t, t.TempDir())
	o := newWithinObject(t, 7, 860)
	same := withinSession("s-same")
	other := withinSession("s-other")
	other.Bag = "dynamic:channel:2"
	putChunks(t, s, other, o, 0, 1, 2, 3)
	putChunks(t, s, same, o, 0, 1, 2, 3)
	m := putManifest(t, s, o)
	root := rootSize(t, s, m)

	until := withinUntil()
	asked := map[string]bool{}
	expireWithin(t, s, m.Object, startsWith('s', asked), until, 1)
	if len(asked) != 2 || !asked["s-same"] || !asked["s-other"] {
		t.Fatalf("match was asked about %v, want s-same and s-other", asked)
	}
	checkSession(t, s, same.ID, withinBag, wholeSecond(until), o.chunkSizes(0, 1, 2, 3))
	checkSession(t, s, other.ID, other.Bag, other.Expiry, o.chunkSizes(0, 1, 2, 3))
	checkStats(t, s, 5, o.size+root, 1)

	// Alone in the store, the other bag's session is not changed either.
	expireAt(t, s, until.Add(time.Second), 1)
	checkEnded(t, s, same.ID)
	expireWithin(t, s, m.Object, startsWith('s', asked), until, 0)
	checkSession(t, s, other.ID, other.Bag, other.Expiry, o.chunkSizes(0, 1, 2, 3))

	if err := s.DeleteObject(m.Object); err != nil {
		t.Fatal(err)
	}
	expireAt(t, s, until.Add(time.Second), 0)
	checkSession(t, s, other.ID, other.Bag, other.Expiry, o.chunkSizes(0, 1, 2, 3))
	for i, c := range m.Chunks {
		checkHeldBlock(t, s, c.CID, o.blocks[i])
	}
	checkGoneBlock(t, s, m.Root)
	checkStats(t, s, 4, o.size, 0)

	if err := s.EndSession(other.ID); err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Blocks() {
		checkGoneBlock(t, s, c)
	}
	checkStats(t, s, 0, 0, 0)
}

// TestExpireSessionsWithinExtraBlock proves a session holding an object's
// chunks and one block outside the object is not changed:
// ExpireSessionsWithin returns 0, the session keeps its expiry, every block
// and its byte count, ExpireSessions past until does not end it, and after
// DeleteObject all its blocks, the object's chunks included, stay held
// while the object's root node goes. Ending the session then removes them.
func TestExpireSessionsWithinExtraBlock(t *testing.T) {
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

	until := withinUntil()
	asked := map[string]bool{}
	expireWithin(t, s, m.Object, startsWith('s', asked), until, 0)
	if len(asked) != 1 || !asked["s-extra"] {
		t.Fatalf("match was asked about %v, want s-extra only", asked)
	}
	checkSession(t, s, sess.ID, withinBag, sess.Expiry, want)
	expireAt(t, s, until.Add(time.Second), 0)
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
	for _, c := range append(m.Blocks(), ec) {
		checkGoneBlock(t, s, c)
	}
	checkStats(t, s, 0, 0, 0)
}

// TestExpireSessionsWithinMatchRejects proves a session match rejects is
// left alone even though it holds exactly the object's chunks: with two
// such sessions, s-upload (matched) and o-upload (not), only s-upload
// changes, the count is 1, match is asked about both and nothing else,
// ExpireSessions past until ends s-upload only, and o-upload keeps its
// expiry and the chunks through DeleteObject. A match accepting both
// changes both, and ExpireSessions then ends both, after which
// DeleteObject removes every block.
func TestExpireSessionsWithinMatchRejects(t *testing.T) {
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

	until := withinUntil()
	asked := map[string]bool{}
	expireWithin(t, s, m.Object, startsWith('s', asked), until, 1)
	if len(asked) != 2 || !asked["s-upload"] || !asked["o-upload"] {
		t.Fatalf("match was asked about %v, want s-upload and o-upload", asked)
	}
	checkSession(t, s, matched.ID, withinBag, wholeSecond(until), o.chunkSizes(0, 1, 2, 3))
	checkSession(t, s, rejected.ID, withinBag, rejected.Expiry, o.chunkSizes(0, 1, 2, 3))

	expireAt(t, s, until.Add(time.Second), 1)
	checkEnded(t, s, matched.ID)
	if err := s.DeleteObject(m.Object); err != nil {
		t.Fatal(err)
	}
	checkSession(t, s, rejected.ID, withinBag, rejected.Expiry, o.chunkSizes(0, 1, 2, 3))
	for i, c := range m.Chunks {
		checkHeldBlock(t, s, c.CID, o.blocks[i])
	}
	checkGoneBlock(t, s, m.Root)
	checkStats(t, s, 4, o.size, 0)

	// Both sessions, both matched, both within the object: both change.
	s2 := openTest(t, t.TempDir())
	putChunks(t, s2, matched, o, 0, 1)
	putChunks(t, s2, rejected, o, 2, 3)
	m = putManifest(t, s2, o)
	expireWithin(t, s2, m.Object, func([]byte) bool { return true }, until, 2)
	checkSession(t, s2, matched.ID, withinBag, wholeSecond(until), o.chunkSizes(0, 1))
	checkSession(t, s2, rejected.ID, withinBag, wholeSecond(until), o.chunkSizes(2, 3))
	expireAt(t, s2, until.Add(time.Second), 2)
	checkEnded(t, s2, matched.ID)
	checkEnded(t, s2, rejected.ID)
	if err := s2.DeleteObject(m.Object); err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Blocks() {
		checkGoneBlock(t, s2, c)
	}
	checkStats(t, s2, 0, 0, 0)
}

// TestExpireSessionsWithinNoManifest proves ExpireSessionsWithin of an
// object with no manifest returns (0, nil) and changes nothing, not even a
// session that holds the chunks it would have, and never consults match.
func TestExpireSessionsWithinNoManifest(t *testing.T) {
	s := openTest(t, t.TempDir())
	o := newWithinObject(t, 7, 830)
	sess := withinSession("s-unbound")
	putChunks(t, s, sess, o, 0, 1, 2, 3)

	until := withinUntil()
	asked := map[string]bool{}
	expireWithin(t, s, o.m.Object, startsWith('s', asked), until, 0)
	expireWithin(t, s, 99, startsWith('s', asked), until, 0)
	if len(asked) != 0 {
		t.Fatalf("match was asked about %v without a manifest", asked)
	}
	checkSession(t, s, sess.ID, withinBag, sess.Expiry, o.chunkSizes(0, 1, 2, 3))
	checkStats(t, s, 4, o.size, 0)
}

// TestExpireSessionsWithinSubset proves a session holding a strict subset
// of an object's blocks is changed: the middle two chunks, and separately
// the first chunk with the object's root node (a DAG block the object holds
// too). Another session holding one of those chunks and a block of another
// object is not. ExpireSessions past until ends the two, and DeleteObject
// then leaves only the blocks the surviving session holds.
func TestExpireSessionsWithinSubset(t *testing.T) {
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
	wantRoot := o.chunkSizes(0)
	wantRoot[m.Root] = root
	wantMixed := other.chunkSizes(0)
	wantMixed[o.m.Chunks[3].CID] = o.m.Chunks[3].Size

	until := withinUntil()
	expireWithin(t, s, m.Object, startsWith('s', map[string]bool{}), until, 2)
	checkSession(t, s, middle.ID, withinBag, wholeSecond(until), o.chunkSizes(1, 2))
	checkSession(t, s, withRoot.ID, withinBag, wholeSecond(until), wantRoot)
	checkSession(t, s, mixed.ID, withinBag, mixed.Expiry, wantMixed)

	expireAt(t, s, until.Add(time.Second), 2)
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
	for _, c := range m.Blocks() {
		if c.Equals(o.m.Chunks[3].CID) {
			continue
		}
		checkGoneBlock(t, s, c)
	}
	checkHeldBlock(t, s, o.m.Chunks[3].CID, o.blocks[3])
	checkHeldBlock(t, s, other.m.Chunks[0].CID, other.blocks[0])
	checkStats(t, s, 2, o.m.Chunks[3].Size+other.m.Chunks[0].Size, 0)
}

// TestExpireSessionsWithinNotAfterUntil proves ExpireSessionsWithin never
// puts an expiry off: of four sessions each holding chunks of the object,
// the one expiring a minute before until, the one already expired and the
// one expiring exactly at until (a whole second here) keep their expiries;
// only the one expiring after until changes (count 1). ExpireSessions past
// until then ends all four.
func TestExpireSessionsWithinNotAfterUntil(t *testing.T) {
	s := openTest(t, t.TempDir())
	o := newWithinObject(t, 7, 870)
	until := wholeSecond(time.Now().Add(10 * time.Minute))
	early := Session{ID: []byte("s-early"), Bag: withinBag, Expiry: until.Add(-time.Minute)}
	past := Session{ID: []byte("s-past"), Bag: withinBag, Expiry: wholeSecond(time.Now().Add(-time.Hour))}
	equal := Session{ID: []byte("s-equal"), Bag: withinBag, Expiry: until}
	late := withinSession("s-late")
	putChunks(t, s, early, o, 0)
	putChunks(t, s, past, o, 1)
	putChunks(t, s, equal, o, 2)
	putChunks(t, s, late, o, 3)
	m := putManifest(t, s, o)

	asked := map[string]bool{}
	expireWithin(t, s, m.Object, startsWith('s', asked), until, 1)
	if len(asked) != 4 {
		t.Fatalf("match was asked about %v, want the four sessions", asked)
	}
	checkSession(t, s, early.ID, withinBag, early.Expiry, o.chunkSizes(0))
	checkSession(t, s, past.ID, withinBag, past.Expiry, o.chunkSizes(1))
	checkSession(t, s, equal.ID, withinBag, equal.Expiry, o.chunkSizes(2))
	checkSession(t, s, late.ID, withinBag, until, o.chunkSizes(3))

	expireAt(t, s, until, 2) // s-past and s-early
	checkEnded(t, s, early.ID)
	checkEnded(t, s, past.ID)
	expireAt(t, s, until.Add(time.Second), 2)
	checkEnded(t, s, equal.ID)
	checkEnded(t, s, late.ID)
	checkStats(t, s, 5, o.size+rootSize(t, s, m), 1)
}

// TestExpireSessionsWithinActiveUpload proves an upload still writing to a
// session ExpireSessionsWithin brought forward gets its expiry back: after
// the call (count 1, expiry until) an AddToSession asking for an expiry
// before until leaves until, a PutInSession of the next chunk with the
// upload's expiry restores it, and ExpireSessions past until does not end
// the session. Brought forward again, an AddToSession of a block it holds
// already (no new bytes) restores it the same way, and one asking for a
// later expiry still gets that.
func TestExpireSessionsWithinActiveUpload(t *testing.T) {
	s := openTest(t, t.TempDir())
	o := newWithinObject(t, 7, 880)
	sess := withinSession("s-active")
	putChunks(t, s, sess, o, 0, 1)
	// The node synced the object meanwhile: the other chunks came from its
	// peers, outside the session.
	for _, i := range []int{2, 3} {
		if err := s.Put(o.m.Chunks[i].CID, o.blocks[i]); err != nil {
			t.Fatal(err)
		}
	}
	m := putManifest(t, s, o)

	until := withinUntil()
	expireWithin(t, s, m.Object, startsWith('s', map[string]bool{}), until, 1)
	checkSession(t, s, sess.ID, withinBag, wholeSecond(until), o.chunkSizes(0, 1))

	early := sess
	early.Expiry = wholeSecond(until).Add(-time.Minute)
	if err := s.AddToSession(early, m.Chunks[1].CID); err != nil {
		t.Fatal(err)
	}
	checkSession(t, s, sess.ID, withinBag, wholeSecond(until), o.chunkSizes(0, 1))

	putChunks(t, s, sess, o, 2)
	checkSession(t, s, sess.ID, withinBag, sess.Expiry, o.chunkSizes(0, 1, 2))
	expireAt(t, s, until.Add(time.Second), 0)
	checkSession(t, s, sess.ID, withinBag, sess.Expiry, o.chunkSizes(0, 1, 2))

	expireWithin(t, s, m.Object, startsWith('s', map[string]bool{}), until, 1)
	checkSession(t, s, sess.ID, withinBag, wholeSecond(until), o.chunkSizes(0, 1, 2))
	if err := s.AddToSession(sess, m.Chunks[0].CID); err != nil {
		t.Fatal(err)
	}
	checkSession(t, s, sess.ID, withinBag, sess.Expiry, o.chunkSizes(0, 1, 2))
	later := sess
	later.Expiry = sess.Expiry.Add(time.Hour)
	if err := s.AddToSession(later, m.Chunks[3].CID); err != nil {
		t.Fatal(err)
	}
	checkSession(t, s, sess.ID, withinBag, later.Expiry, o.chunkSizes(0, 1, 2, 3))
	expireAt(t, s, until.Add(time.Second), 0)
	checkSession(t, s, sess.ID, withinBag, later.Expiry, o.chunkSizes(0, 1, 2, 3))
}

// TestExpireSessionsWithinConcurrentAdds proves ExpireSessionsWithin loses
// no add made to a session while it runs: goroutines add an object's
// chunks to one session (PutInSession of the first half, AddToSession of
// the rest, all held already as synced blocks) while another calls
// ExpireSessionsWithin over and over. Afterwards the session lists every
// chunk, once, and counts their bytes exactly; its expiry is until or the
// upload's, whichever wrote last; one more call brings it to until, and one
// more add back to the upload's.
func TestExpireSessionsWithinConcurrentAdds(t *testing.T) {
	s := openTest(t, t.TempDir())
	const n = 128
	m, blocks := object(t, withinBag, 11, randBytes(890, n<<10), 1<<10)
	if len(blocks) != n {
		t.Fatalf("object has %d chunks, want %d", len(blocks), n)
	}
	for i, c := range m.Chunks {
		if err := s.Put(c.CID, blocks[i]); err != nil {
			t.Fatal(err)
		}
	}
	sess := withinSession("s-concurrent")
	if err := s.AddToSession(sess, m.Chunks[0].CID); err != nil {
		t.Fatal(err)
	}
	if err := s.PutManifest(m); err != nil {
		t.Fatal(err)
	}
	want := map[cid.Cid]uint64{}
	for _, c := range m.Chunks {
		want[c.CID] = c.Size
	}

	until := withinUntil()
	var wg, expirer sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, n+1)
	expirer.Add(1)
	go func() {
		defer expirer.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if k, err := s.ExpireSessionsWithin(m.Object, func([]byte) bool { return true }, 0, until); err != nil || k > 1 {
				errs <- fmt.Errorf("ExpireSessionsWithin = %d, %v; want at most 1, nil", k, err)
				return
			}
		}
	}()
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if i < n/2 {
				err = s.PutInSession(sess, m.Chunks[i].CID, blocks[i])
			} else {
				err = s.AddToSession(sess, m.Chunks[i].CID)
			}
			if err != nil {
				errs <- fmt.Errorf("add of chunk %d: %w", i, err)
			}
		}()
	}
	waitAll(t, &wg, time.Minute)
	close(stop)
	waitAll(t, &expirer, time.Minute)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	info, _, ok, err := s.SessionInfo(sess.ID)
	if err != nil || !ok {
		t.Fatalf("SessionInfo = open %v, %v", ok, err)
	}
	if !info.Expiry.Equal(sess.Expiry) && !info.Expiry.Equal(wholeSecond(until)) {
		t.Fatalf("session expires %v, want %v or %v", info.Expiry, sess.Expiry, wholeSecond(until))
	}
	checkSession(t, s, sess.ID, withinBag, info.Expiry, want)
	if info.Expiry.Equal(sess.Expiry) {
		expireWithin(t, s, m.Object, func([]byte) bool { return true }, until, 1)
	} else {
		expireWithin(t, s, m.Object, func([]byte) bool { return true }, until, 0)
	}
	checkSession(t, s, sess.ID, withinBag, wholeSecond(until), want)
	if err := s.AddToSession(sess, m.Chunks[0].CID); err != nil {
		t.Fatal(err)
	}
	checkSession(t, s, sess.ID, withinBag, sess.Expiry, want)
}

// TestExpireSessionsWithinClosed proves ExpireSessionsWithin on a closed
// store fails with ErrClosed (what checkOpen returns) and changes nothing:
// reopened, the session keeps its expiry.
func TestExpireSessionsWithinClosed(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	o := newWithinObject(t, 7, 850)
	sess := withinSession("s-exact")
	putChunks(t, s, sess, o, 0, 1, 2, 3)
	putManifest(t, s, o)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	asked := map[string]bool{}
	if n, err := s.ExpireSessionsWithin(o.m.Object, startsWith('s', asked), 0, withinUntil()); !errors.Is(err, ErrClosed) || n != 0 {
		t.Fatalf("ExpireSessionsWithin on a closed store = %d, %v; want 0, ErrClosed", n, err)
	}
	if len(asked) != 0 {
		t.Fatalf("match was asked about %v on a closed store", asked)
	}
	s = openTest(t, dir)
	checkSession(t, s, sess.ID, withinBag, sess.Expiry, o.chunkSizes(0, 1, 2, 3))
}

// TestExpireSessionsWithinSparesRecentUpload: a session that stored the
// object's chunks less than idle ago is another upload of the same bytes
// that may still bind, whose receipts promised the chunks for a day: its
// expiry is not brought forward, so after the object is deleted and
// the grace has passed, a BIND of the upload's own object (another ID,
// the same chunks) still finds every block.
func TestExpireSessionsWithinSparesRecentUpload(t *testing.T) {
	s := openTest(t, t.TempDir())
	x := newWithinObject(t, 7, 900)
	z := newWithinObject(t, 8, 900) // the same bytes, another object
	sess := Session{ID: []byte("s-upload"), Bag: withinBag, Expiry: wholeSecond(time.Now().Add(24 * time.Hour))}
	putChunks(t, s, sess, x, 0, 1, 2, 3)
	m := putManifest(t, s, x)

	const grace = 10 * time.Minute
	until := time.Now().Add(grace)
	bringForward := func(idle time.Duration, want int) {
		t.Helper()
		n, err := s.ExpireSessionsWithin(m.Object, startsWith('s', map[string]bool{}), idle, until)
		if err != nil || n != want {
			t.Fatalf("ExpireSessionsWithin(idle %v) = %d, %v; want %d, nil", idle, n, err, want)
		}
	}
	bringForward(grace, 0)
	if err := s.DeleteObject(m.Object); err != nil {
		t.Fatal(err)
	}
	expired, err := s.ExpireSessions(until.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutManifest(z.m); err != nil {
		t.Fatalf("the upload's BIND after the synced object's deletion: %v", err)
	}
	if expired != 0 {
		t.Fatalf("ExpireSessions ended %d sessions, want none", expired)
	}
	checkSession(t, s, sess.ID, withinBag, sess.Expiry, x.chunkSizes(0, 1, 2, 3))
	for i, c := range x.m.Chunks {
		checkHeldBlock(t, s, c.CID, x.blocks[i])
	}
	if err := s.EndSession(sess.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Manifest(z.m.Object); err != nil || !ok {
		t.Fatalf("Manifest(%d) = %v, %v", z.m.Object, ok, err)
	}
}

// TestExpireSessionsWithinIdleSession: a session none of whose blocks was
// stored within idle is brought forward as before.
func TestExpireSessionsWithinIdleSession(t *testing.T) {
	s := openTest(t, t.TempDir())
	x := newWithinObject(t, 7, 901)
	sess := withinSession("s-idle")
	putChunks(t, s, sess, x, 0, 1, 2, 3)
	m := putManifest(t, s, x)
	stored, err := s.StoredAt(m.Chunks[3].CID)
	if err != nil {
		t.Fatal(err)
	}
	// Idle for exactly as long as its last chunk has been stored: that
	// chunk is not younger than idle.
	idle := time.Since(stored)
	until := withinUntil()
	n, err := s.ExpireSessionsWithin(m.Object, startsWith('s', map[string]bool{}), idle, until)
	if err != nil || n != 1 {
		t.Fatalf("ExpireSessionsWithin(idle %v) = %d, %v; want 1, nil", idle, n, err)
	}
	checkSession(t, s, sess.ID, withinBag, wholeSecond(until), x.chunkSizes(0, 1, 2, 3))
}
