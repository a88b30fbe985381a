package blockstore

// Crash recovery: reopening, killed writers, lost index entries and the
// recovery session, and the crash-child harness (killChild) the session
// crash test shares.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	// A store from before packs may hold stray temp files.
	if err := os.MkdirAll(filepath.Join(dir, tmpDir), 0o755); err != nil {
		t.Fatal(err)
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

// crashPackLimitEnv, when set, is the pack size limit of the child of
// TestCrashMidWrite: small, so it is killed while rotating and sealing.
const crashPackLimitEnv = "SATCHEL_BLOCKSTORE_CRASH_PACK_LIMIT"

// TestCrashChild is the child of TestCrashMidWrite: it writes blocks into the
// store forever, printing the CID of each one whose Put returned, until it is
// killed. Run alone, it does nothing.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("only runs as TestCrashMidWrite's child")
	}
	limit := int64(defaultPackLimit)
	if v, err := strconv.ParseInt(os.Getenv(crashPackLimitEnv), 10, 64); err == nil {
		limit = v
	}
	s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard), withPackLimit(limit))
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
// random point of a Put) several times over one store, every other time
// with packs small enough to rotate as it writes, and checks after each
// crash that every indexed block is whole and verifies, and every block
// whose Put had returned is still held.
func TestCrashMidWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	acked := map[string]bool{}
	for round := range 4 {
		// Every other round in small packs, rotated and sealed as the
		// child writes.
		if round%2 == 1 {
			t.Setenv(crashPackLimitEnv, strconv.Itoa(2<<20))
		} else {
			t.Setenv(crashPackLimitEnv, "")
		}
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
			data := stored(t, s, c)
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
	crash(t, s)
	// A stray file that is not a whole block is removed, not indexed.
	junk := chunker.ChunkCID([]byte("junk"))
	if err := os.MkdirAll(filepath.Dir(s.legacyPath(junk)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.legacyPath(junk), []byte("half of junk"), 0o644); err != nil {
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
	if _, err := os.Stat(s.legacyPath(junk)); !os.IsNotExist(err) {
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
	crash(t, s)
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
			for _, c := range blocksExcept(m.Blocks(), m.Chunks[0].CID) {
				if ok, _ := s.Has(c); ok {
					t.Errorf("block %s of the deleted object kept", c)
				}
				if n := recordsOf(t, s, c); n != 0 {
					t.Errorf("%d records of block %s of the deleted object kept", n, c)
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

// blocksExcept returns blocks without c.
func blocksExcept(blocks []cid.Cid, c cid.Cid) []cid.Cid {
	out := blocks[:0:0]
	for _, b := range blocks {
		if !b.Equals(c) {
			out = append(out, b)
		}
	}
	return out
}
