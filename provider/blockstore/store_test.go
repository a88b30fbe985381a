package blockstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/satchel-net/satchel/chunker"
)

var discard = slog.New(slog.DiscardHandler)

func openTest(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestPutGetHasDelete(t *testing.T) {
	s := openTest(t, t.TempDir())
	data := randBytes(1, 300_000)
	c := chunker.ChunkCID(data)

	if ok, err := s.Has(c); err != nil || ok {
		t.Fatalf("Has before Put = %v, %v", ok, err)
	}
	if _, err := s.Get(c); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before Put: %v, want ErrNotFound", err)
	}
	if err := s.Put(c, data); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(c, data); err != nil { // idempotent
		t.Fatal(err)
	}
	got, err := s.Get(c)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get = %d bytes, %v", len(got), err)
	}
	if st := s.Stats(); st.Blocks != 1 || st.Bytes != uint64(len(data)) {
		t.Fatalf("Stats = %+v", st)
	}
	if n, err := s.Size(c); err != nil || n != uint64(len(data)) {
		t.Fatalf("Size = %d, %v", n, err)
	}
	// Bytes that do not match the CID are refused and nothing is stored.
	other := chunker.ChunkCID([]byte("other"))
	if err := s.Put(other, data); !errors.Is(err, ErrCIDMismatch) {
		t.Fatalf("Put mismatched: %v, want ErrCIDMismatch", err)
	}
	if ok, _ := s.Has(other); ok {
		t.Fatal("mismatched block is held")
	}
	if err := s.Delete(c); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(c); ok {
		t.Fatal("deleted block still held")
	}
	checkNoRecord(t, s, c)
	if st := s.Stats(); st.Blocks != 0 || st.Bytes != 0 {
		t.Fatalf("Stats after delete = %+v", st)
	}
}

func TestCorruptBlockIsQuarantinedAndRepaired(t *testing.T) {
	s := openTest(t, t.TempDir())
	data := randBytes(2, 100_000)
	c := chunker.ChunkCID(data)
	if err := s.Put(c, data); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(data)
	bad[5000] ^= 0xff
	overwrite(t, s, c, bad)
	if _, err := s.Get(c); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get corrupt: %v, want ErrCorrupt", err)
	}
	if ok, _ := s.Has(c); ok {
		t.Fatal("corrupt block still held")
	}
	q, err := s.Quarantined()
	if err != nil || len(q) != 1 || !q[0].Equals(c) {
		t.Fatalf("Quarantined = %v, %v", q, err)
	}
	if st := s.Stats(); st.Blocks != 0 || st.Quarantined != 1 {
		t.Fatalf("Stats = %+v", st)
	}
	if err := s.Put(c, data); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(c); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get repaired: %v", err)
	}
	if q, _ := s.Quarantined(); len(q) != 0 {
		t.Fatalf("Quarantined after repair = %v", q)
	}
}

// object chunks data into chunks of size cs and returns the manifest.
func object(t *testing.T, bag string, id uint64, data []byte, cs int) (Manifest, [][]byte) {
	t.Helper()
	res, err := chunker.Sum(context.Background(), bytes.NewReader(data), chunker.WithChunkSize(cs))
	if err != nil {
		t.Fatal(err)
	}
	m := Manifest{Bag: bag, Object: id, Root: res.Root, Size: uint64(len(data))}
	var blocks [][]byte
	for _, c := range res.Chunks {
		m.Chunks = append(m.Chunks, ChunkRef{CID: c.CID, Size: uint64(c.Size)})
		blocks = append(blocks, data[c.Offset:c.Offset+int64(c.Size)])
	}
	return m, blocks
}

func TestManifestsShareBlocks(t *testing.T) {
	s := openTest(t, t.TempDir())
	const cs = 1 << 10
	shared := randBytes(3, cs)
	a := append(bytes.Clone(shared), randBytes(4, 500*cs)...) // two levels
	b := append(bytes.Clone(shared), randBytes(5, 3*cs)...)
	ma, blocksA := object(t, "dynamic:channel:1", 1, a, cs)
	mb, blocksB := object(t, "dynamic:channel:1", 2, b, cs)
	for i, blk := range blocksA {
		if err := s.Put(ma.Chunks[i].CID, blk); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutManifest(ma); err != nil {
		t.Fatal(err)
	}
	// Chunks of b not stored yet (3 of 4; the first is shared with a): the
	// manifest is refused and nothing is written.
	before := s.Stats()
	err := s.PutManifest(mb)
	if !errors.Is(err, ErrMissingBlocks) || !strings.Contains(err.Error(), "3 of 4 chunks") {
		t.Fatalf("PutManifest with chunks missing: %v, want ErrMissingBlocks (3 of 4)", err)
	}
	if _, ok, _ := s.Manifest(2); ok {
		t.Fatal("refused manifest was recorded")
	}
	if held, _ := s.Has(mb.Root); held {
		t.Fatal("refused manifest's root node was stored")
	}
	if after := s.Stats(); after != before {
		t.Fatalf("Stats after a refused manifest = %+v, want %+v", after, before)
	}
	for i, blk := range blocksB {
		if err := s.Put(mb.Chunks[i].CID, blk); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutManifest(mb); err != nil {
		t.Fatal(err)
	}
	if missing, _ := s.MissingBlocks(2); len(missing) != 0 {
		t.Fatalf("MissingBlocks after Put = %v", missing)
	}
	// The interior nodes were stored and the root is readable.
	if _, err := s.Get(ma.Root); err != nil {
		t.Fatalf("root of a: %v", err)
	}
	got, ok, err := s.Manifest(1)
	if err != nil || !ok || !got.Root.Equals(ma.Root) || len(got.Chunks) != len(ma.Chunks) || len(got.Nodes) != 4 {
		t.Fatalf("Manifest(1) = %+v, %v, %v", got.Root, ok, err)
	}
	objs, err := s.Objects("dynamic:channel:1")
	if err != nil || len(objs) != 2 || objs[0] != 1 || objs[1] != 2 {
		t.Fatalf("Objects = %v, %v", objs, err)
	}
	if st := s.Stats(); st.Objects != 2 {
		t.Fatalf("Stats = %+v", st)
	}
	// A manifest whose chunks do not build its root is refused.
	bad := mb
	bad.Object = 3
	bad.Chunks = bad.Chunks[1:]
	if err := s.PutManifest(bad); !errors.Is(err, ErrBadManifest) {
		t.Fatalf("PutManifest bad: %v, want ErrBadManifest", err)
	}

	if err := s.DeleteObject(1); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(ma.Chunks[0].CID); !ok {
		t.Fatal("shared chunk deleted with the first object")
	}
	if ok, _ := s.Has(ma.Chunks[1].CID); ok {
		t.Fatal("unshared chunk of the deleted object kept")
	}
	if ok, _ := s.Has(ma.Root); ok {
		t.Fatal("root of the deleted object kept")
	}
	if err := s.DeleteObject(2); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Blocks != 0 || st.Objects != 0 || st.Bytes != 0 {
		t.Fatalf("Stats after deleting everything = %+v", st)
	}
	if objs, _ := s.Objects("dynamic:channel:1"); len(objs) != 0 {
		t.Fatalf("Objects after delete = %v", objs)
	}
}

// A session that ends (or expires) between a caller's check of its chunks
// and PutManifest takes the chunks with it: the manifest must be refused,
// not recorded naming blocks that are gone.
func TestPutManifestAfterSessionEndsIsRefused(t *testing.T) {
	s := openTest(t, t.TempDir())
	m, blocks := object(t, "dynamic:channel:1", 9, randBytes(11, 3<<10), 1<<10)
	sess := Session{ID: []byte("upload"), Bag: m.Bag, Expiry: time.Now().Add(time.Hour)}
	for i, blk := range blocks {
		if err := s.PutInSession(sess, m.Chunks[i].CID, blk); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.EndSession(sess.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.PutManifest(m); !errors.Is(err, ErrMissingBlocks) {
		t.Fatalf("PutManifest after the session ended: %v, want ErrMissingBlocks", err)
	}
	if _, ok, _ := s.Manifest(9); ok {
		t.Fatal("manifest recorded for chunks that are gone")
	}
	if objs, _ := s.Objects(m.Bag); len(objs) != 0 {
		t.Fatalf("Objects = %v, want none", objs)
	}
	if st := s.Stats(); st.Blocks != 0 || st.Objects != 0 {
		t.Fatalf("Stats = %+v, want empty", st)
	}
}

func TestSessions(t *testing.T) {
	s := openTest(t, t.TempDir())
	now := time.Now()
	sess := Session{ID: []byte("0123456789abcdef"), Bag: "dynamic:channel:1", Expiry: now.Add(time.Hour)}
	kept := randBytes(6, 1000)
	dropped := randBytes(7, 2000)
	for _, d := range [][]byte{kept, dropped} {
		if err := s.PutInSession(sess, chunker.ChunkCID(d), d); err != nil {
			t.Fatal(err)
		}
	}
	// Adding again does not count twice.
	if err := s.AddToSession(sess, chunker.ChunkCID(kept)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.SessionBytes(sess.ID); err != nil || n != 3000 {
		t.Fatalf("SessionBytes = %d, %v", n, err)
	}
	other := sess
	other.Bag = "dynamic:channel:2"
	if err := s.AddToSession(other, chunker.ChunkCID(kept)); !errors.Is(err, ErrSessionBag) {
		t.Fatalf("AddToSession of another bag: %v", err)
	}
	// kept is bound to an object; dropped is not.
	m := Manifest{Bag: sess.Bag, Object: 9, Root: chunker.ChunkCID(kept), Chunks: []ChunkRef{{chunker.ChunkCID(kept), 1000}}}
	if err := s.PutManifest(m); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ExpireSessions(now); err != nil || n != 0 {
		t.Fatalf("ExpireSessions before expiry = %d, %v", n, err)
	}
	if n, err := s.ExpireSessions(now.Add(2 * time.Hour)); err != nil || n != 1 {
		t.Fatalf("ExpireSessions = %d, %v", n, err)
	}
	if ok, _ := s.Has(chunker.ChunkCID(kept)); !ok {
		t.Fatal("bound chunk deleted at session expiry")
	}
	if ok, _ := s.Has(chunker.ChunkCID(dropped)); ok {
		t.Fatal("unbound chunk kept after session expiry")
	}
	if _, _, ok, _ := s.SessionInfo(sess.ID); ok {
		t.Fatal("expired session still open")
	}
}

func ExampleStore() {
	dir, _ := os.MkdirTemp("", "blocks")
	defer os.RemoveAll(dir)
	bs, err := Open(dir)
	if err != nil {
		panic(err)
	}
	defer bs.Close()

	data := []byte("a chunk of a data object")
	c := chunker.ChunkCID(data)
	if err := bs.Put(c, data); err != nil { // durable when it returns
		panic(err)
	}
	got, err := bs.Get(c) // verified against c
	fmt.Println(string(got), err)
	// A manifest ties chunks to a data object; its DAG nodes are derived.
	err = bs.PutManifest(Manifest{Bag: "dynamic:channel:1", Object: 7, Root: c, Chunks: []ChunkRef{{c, uint64(len(data))}}})
	objs, _ := bs.Objects("dynamic:channel:1")
	fmt.Println(objs, err, bs.Stats().Blocks)
	// Output:
	// a chunk of a data object <nil>
	// [7] <nil> 1
}

// TestSessionBagRefusalLeavesNoFile: a new block put into a session of
// another bag is refused with ErrSessionBag and leaves no file behind
// (nothing would index it until a crash recovery).
func TestSessionBagRefusalLeavesNoFile(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	sess := Session{ID: []byte("0123456789abcdef"), Bag: "dynamic:channel:1", Expiry: time.Now().Add(time.Hour)}
	first := randBytes(8, 1000)
	if err := s.PutInSession(sess, chunker.ChunkCID(first), first); err != nil {
		t.Fatal(err)
	}
	other := sess
	other.Bag = "dynamic:channel:2"
	d := randBytes(9, 3000)
	c := chunker.ChunkCID(d)
	before := packBytes(t, s)
	if err := s.PutInSession(other, c, d); !errors.Is(err, ErrSessionBag) {
		t.Fatalf("PutInSession into another bag's session: %v", err)
	}
	if ok, _ := s.Has(c); ok {
		t.Fatal("refused block is held")
	}
	checkNoRecord(t, s, c)
	if after := packBytes(t, s); after != before {
		t.Fatalf("packs grew from %d to %d bytes: the refused block's record was written", before, after)
	}
	if st := s.Stats(); st.Blocks != 1 || st.Bytes != 1000 {
		t.Fatalf("stats %+v", st)
	}
}

// An index written without the bloom filter (before indexOptions had one)
// is read with it: tables without a filter block are looked up in full.
func TestIndexWithoutFilterStillRead(t *testing.T) {
	dir := t.TempDir()
	old, err := leveldb.OpenFile(dir, &opt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		if err := old.Put([]byte(fmt.Sprintf("k%05d", i)), []byte{1}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.CompactRange(util.Range{}); err != nil { // into tables
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := leveldb.OpenFile(dir, indexOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, k := range []string{"k00000", "k01999"} {
		if ok, err := db.Has([]byte(k), nil); err != nil || !ok {
			t.Fatalf("%s in the old index: %v, %v", k, ok, err)
		}
	}
	if ok, err := db.Has([]byte("k02000"), nil); err != nil || ok {
		t.Fatalf("a key never written: %v, %v", ok, err)
	}
}
