package blockstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
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
	if _, err := os.Stat(s.blockPath(c)); !os.IsNotExist(err) {
		t.Fatalf("deleted block's file: %v", err)
	}
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
	if err := os.WriteFile(s.blockPath(c), bad, 0o644); err != nil {
		t.Fatal(err)
	}
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

func TestReopenAndStrayTempFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(8, 5000)
	c := chunker.ChunkCID(data)
	if err := s.Put(c, data); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(c, data); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
	stray := filepath.Join(dir, tmpDir, "blk-stray")
	if err := os.WriteFile(stray, []byte("half a block"), 0o644); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Fatalf("stray temp file survived Open: %v", err)
	}
	if got, err := s.Get(c); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get after reopen: %v", err)
	}
	if st := s.Stats(); st.Blocks != 1 || st.Bytes != 5000 {
		t.Fatalf("Stats after reopen = %+v", st)
	}
}

// crashChildEnv names the store directory of the child process of
// TestCrashMidWrite.
const crashChildEnv = "SATCHEL_BLOCKSTORE_CRASH_DIR"

// TestCrashChild is the child of TestCrashMidWrite: it writes blocks into the
// store forever, printing the CID of each one whose Put returned, until it is
// killed. Run alone, it does nothing.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("only runs as TestCrashMidWrite's child")
	}
	s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard))
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	seed := uint64(time.Now().UnixNano())
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 3 { // concurrent writers, as the store handler has
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(0); ; i++ {
				data := randBytes(seed+i*3+uint64(w), 64<<10+int(i%16)*(64<<10))
				c := chunker.ChunkCID(data)
				var err error
				if i%2 == 0 {
					err = s.Put(c, data)
				} else {
					err = s.PutInSession(Session{ID: []byte{byte(w)}, Bag: "b", Expiry: time.Now().Add(time.Hour)}, c, data)
				}
				if err != nil {
					fmt.Println("put:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintln(out, "ok", c)
				_ = out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestCrashMidWrite kills a process that is writing blocks (SIGKILL, at a
// random point of a Put) several times over one store, and checks after each
// crash that Open cleans the temp files, every indexed block is whole and
// verifies, and every block whose Put had returned is still held.
func TestCrashMidWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	acked := map[string]bool{}
	for round := range 4 {
		// Kill at a random moment inside the writes after the first acks.
		killChild(t, "TestCrashChild", crashChildEnv+"="+dir, 10+rand.IntN(30), time.Duration(rand.IntN(3000))*time.Microsecond, func(line string) bool {
			c, ok := strings.CutPrefix(line, "ok ")
			if ok {
				acked[c] = true
			}
			return ok
		})

		s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard))
		if err != nil {
			t.Fatalf("round %d: Open after crash: %v", round, err)
		}
		if tmp, _ := os.ReadDir(filepath.Join(dir, tmpDir)); len(tmp) != 0 {
			t.Fatalf("round %d: %d temp files left after Open", round, len(tmp))
		}
		n := 0
		err = s.AllBlocks(func(c cid.Cid, size uint64) error {
			n++
			data, err := os.ReadFile(s.blockPath(c))
			if err != nil {
				return fmt.Errorf("indexed block %s: %w", c, err)
			}
			if uint64(len(data)) != size {
				return fmt.Errorf("indexed block %s: %d bytes on disk, %d indexed", c, len(data), size)
			}
			return chunker.VerifyChunk(c, data)
		})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for cs := range acked {
			c, _ := cid.Decode(cs)
			if ok, _ := s.Has(c); !ok {
				t.Fatalf("round %d: block %s was acknowledged but is lost", round, cs)
			}
		}
		if st := s.Stats(); st.Blocks != uint64(n) {
			t.Fatalf("round %d: Stats.Blocks = %d, %d indexed", round, st.Blocks, n)
		}
		t.Logf("round %d: %d blocks indexed, %d acknowledged, all whole", round, n, len(acked))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
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

// TestLostIndexEntryRecovered simulates a power loss that dropped the index
// write of a Put whose file was already durable: Open after the unclean
// shutdown indexes the file again, in a recovery session that expires unless
// an object claims the block.
func TestLostIndexEntryRecovered(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	kept, lost := randBytes(20, 4000), randBytes(21, 5000)
	for _, d := range [][]byte{kept, lost} {
		if err := s.Put(chunker.ChunkCID(d), d); err != nil {
			t.Fatal(err)
		}
	}
	// Lose both index entries, and crash (no CLEAN marker).
	for _, d := range [][]byte{kept, lost} {
		if err := s.db.Delete(blockKey(chunker.ChunkCID(d)), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, cleanMarker)); err != nil {
		t.Fatal(err)
	}
	// A stray file that is not a whole block is removed, not indexed.
	junk := chunker.ChunkCID([]byte("junk"))
	if err := os.MkdirAll(filepath.Dir(s.blockPath(junk)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.blockPath(junk), []byte("half of junk"), 0o644); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir)
	for _, d := range [][]byte{kept, lost} {
		if got, err := s.Get(chunker.ChunkCID(d)); err != nil || !bytes.Equal(got, d) {
			t.Fatalf("recovered block: %v", err)
		}
	}
	if ok, _ := s.Has(junk); ok {
		t.Fatal("junk file indexed")
	}
	if _, err := os.Stat(s.blockPath(junk)); !os.IsNotExist(err) {
		t.Fatalf("junk file kept: %v", err)
	}
	if st := s.Stats(); st.Blocks != 2 || st.Bytes != 9000 {
		t.Fatalf("Stats = %+v", st)
	}
	m := Manifest{Bag: "b", Object: 1, Root: chunker.ChunkCID(kept), Chunks: []ChunkRef{{chunker.ChunkCID(kept), 4000}}}
	if err := s.PutManifest(m); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ExpireSessions(time.Now().Add(RecoveredTTL + time.Hour)); err != nil || n != 1 {
		t.Fatalf("ExpireSessions = %d, %v", n, err)
	}
	if ok, _ := s.Has(chunker.ChunkCID(kept)); !ok {
		t.Fatal("recovered block claimed by an object was collected")
	}
	if ok, _ := s.Has(chunker.ChunkCID(lost)); ok {
		t.Fatal("unclaimed recovered block kept past the recovery TTL")
	}
}

// crashLosing closes s as a power loss would leave it: the index entries of
// blocks (and the session references written with them) lost, their files
// durable, no CLEAN marker. It returns the store opened again.
func crashLosing(t *testing.T, s *Store, blocks []cid.Cid) *Store {
	t.Helper()
	for _, c := range blocks {
		var b leveldb.Batch
		b.Delete(blockKey(c))
		it := s.db.NewIterator(util.BytesPrefix(sessRefPrefix(c)), nil)
		for it.Next() {
			b.Delete(bytes.Clone(it.Key()))
			id := bytes.TrimPrefix(it.Key(), sessRefPrefix(c))
			r := &reader{b: id}
			b.Delete(sessBlockKey(r.bytes(), c))
		}
		it.Release()
		if err := s.db.Write(&b, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(s.dir, cleanMarker)); err != nil {
		t.Fatal(err)
	}
	return openTest(t, s.dir)
}

// TestRecoveredBlocksGoWithTheirObject checks that blocks recovered after a
// crash, wherever the crash fell relative to the object's manifest, are
// deleted with the object rather than kept by the recovery session, while a
// live upload session of another object keeps the blocks it shares.
func TestRecoveredBlocksGoWithTheirObject(t *testing.T) {
	const cs = 1 << 10
	for _, tc := range []struct {
		name string
		// manifestFirst records the manifest before the crash (the chunks
		// were stored, e.g. by sync, before the crash lost their index
		// entries), instead of after reopening.
		manifestFirst bool
	}{
		{name: "recovered then manifested"},
		{name: "manifested then recovered", manifestFirst: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t, t.TempDir())
			shared := randBytes(30, cs)
			data := append(bytes.Clone(shared), randBytes(31, 3*cs+100)...)
			m, blocks := object(t, "dynamic:channel:1", 5, data, cs)
			other := Session{ID: []byte("other-upload"), Bag: "dynamic:channel:1", Expiry: time.Now().Add(time.Hour)}
			ownSess := Session{ID: []byte("own-upload"), Bag: "dynamic:channel:1", Expiry: time.Now().Add(time.Hour)}
			for i, blk := range blocks {
				if err := s.PutInSession(ownSess, m.Chunks[i].CID, blk); err != nil {
					t.Fatal(err)
				}
			}
			// Another object, still uploading, shares the first chunk.
			if err := s.AddToSession(other, m.Chunks[0].CID); err != nil {
				t.Fatal(err)
			}
			if tc.manifestFirst {
				if err := s.PutManifest(m); err != nil {
					t.Fatal(err)
				}
				if err := s.EndSession(ownSess.ID); err != nil {
					t.Fatal(err)
				}
			}
			var lost []cid.Cid
			for _, c := range m.Chunks[1:] {
				lost = append(lost, c.CID)
			}
			s = crashLosing(t, s, lost)
			for _, c := range lost {
				if ok, _ := s.Has(c); !ok {
					t.Fatalf("chunk %s not recovered", c)
				}
			}
			if !tc.manifestFirst {
				if err := s.PutManifest(m); err != nil {
					t.Fatal(err)
				}
				if err := s.EndSession(ownSess.ID); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := s.SessionBytes(recoveredSession); err != nil || n != 0 {
				t.Fatalf("recovery session holds %d bytes of a claimed object, %v; want 0", n, err)
			}

			if err := s.DeleteObject(m.Object); err != nil {
				t.Fatal(err)
			}
			for _, c := range manifestBlocks(m)[1:] {
				if ok, _ := s.Has(c); ok {
					t.Errorf("block %s of the deleted object kept", c)
				}
				if _, err := os.Stat(s.blockPath(c)); !os.IsNotExist(err) {
					t.Errorf("file of block %s of the deleted object kept: %v", c, err)
				}
			}
			if ok, _ := s.Has(m.Chunks[0].CID); !ok {
				t.Fatal("chunk shared with another live upload deleted with the object")
			}
			if st := s.Stats(); st.Blocks != 1 || st.Bytes != cs || st.Objects != 0 {
				t.Fatalf("Stats after delete = %+v; want the shared chunk only", st)
			}
			if err := s.EndSession(other.ID); err != nil {
				t.Fatal(err)
			}
			if st := s.Stats(); st.Blocks != 0 || st.Bytes != 0 {
				t.Fatalf("Stats after the other upload ended = %+v", st)
			}
		})
	}
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
	if err := s.PutInSession(other, c, d); !errors.Is(err, ErrSessionBag) {
		t.Fatalf("PutInSession into another bag's session: %v", err)
	}
	if ok, _ := s.Has(c); ok {
		t.Fatal("refused block is held")
	}
	if _, err := os.Stat(s.blockPath(c)); !os.IsNotExist(err) {
		t.Fatalf("refused block left its file: %v", err)
	}
	if st := s.Stats(); st.Blocks != 1 || st.Bytes != 1000 {
		t.Fatalf("stats %+v", st)
	}
}

// killChild runs test function child in a child process (env set), hands
// every line it prints to ack until want lines were acknowledged (a line
// ack refuses fails the test: the child reported an error), waits wait and
// kills it with SIGKILL. Lines printed before it died go to ack too: what
// the child acknowledged counts whenever it said so.
func killChild(t *testing.T, child, env string, want int, wait time.Duration, ack func(line string) bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+child+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	got := 0
	for got < want && sc.Scan() {
		if !ack(sc.Text()) {
			_ = cmd.Process.Kill()
			t.Fatalf("child: %s", sc.Text())
		}
		got++
	}
	if got < want {
		_ = cmd.Process.Kill()
		t.Fatalf("child stopped after %d acknowledgements: %v", got, sc.Err())
	}
	time.Sleep(wait)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stdout)
	for _, line := range strings.Split(string(rest), "\n") {
		ack(line)
	}
	_ = cmd.Wait()
}
