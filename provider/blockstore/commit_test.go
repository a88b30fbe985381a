package blockstore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
)

// waitAll waits for wg, failing with every goroutine's stack if it has not
// finished within d: a deadlock in the group commit shows as a failure, not a
// hung test.
func waitAll(t *testing.T, wg *sync.WaitGroup, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines still running after %v:\n%s", d, buf[:runtime.Stack(buf, true)])
	}
}

// checkSession fails unless session id is open for bag with expiry and
// holds exactly the blocks of want (CID → size), its byte count being their
// sum, each block held by the store and referenced by the session.
func checkSession(t *testing.T, s *Store, id []byte, bag string, expiry time.Time, want map[cid.Cid]uint64) {
	t.Helper()
	var sum uint64
	for _, n := range want {
		sum += n
	}
	sess, n, ok, err := s.SessionInfo(id)
	if err != nil || !ok {
		t.Fatalf("SessionInfo(%q) = open %v, %v", id, ok, err)
	}
	if sess.Bag != bag || !sess.Expiry.Equal(expiry) || n != sum {
		t.Fatalf("session %q is bag %q, expiry %v, %d bytes; want %q, %v, %d bytes", id, sess.Bag, sess.Expiry, n, bag, expiry, sum)
	}
	if n, err := s.SessionBytes(id); err != nil || n != sum {
		t.Fatalf("SessionBytes(%q) = %d, %v; want %d", id, n, err, sum)
	}
	blocks, err := s.SessionBlocks(id)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[cid.Cid]bool{}
	for _, c := range blocks {
		if _, ok := want[c]; !ok || seen[c] {
			t.Fatalf("session %q lists block %s (listed before: %v), not one added to it", id, c, seen[c])
		}
		seen[c] = true
	}
	if len(blocks) != len(want) {
		t.Fatalf("session %q lists %d blocks, want %d", id, len(blocks), len(want))
	}
	for c, size := range want {
		if got, err := s.Size(c); err != nil || got != size {
			t.Fatalf("Size(%s) = %d, %v; want %d", c, got, err, size)
		}
		if ok, err := s.db.Has(sessRefKey(c, id), nil); err != nil || !ok {
			t.Fatalf("block %s has no reference from session %q: %v", c, id, err)
		}
	}
}

// TestConcurrentSessionAddsAreDurable proves that adds to one session from
// many goroutines at once (PutInSession of new blocks and AddToSession of
// held ones), interleaved with adds to a second session, lose no update:
// each session's byte count is the sum of its distinct blocks, it lists
// every block and no other, its expiry is the latest asked for, and all of
// it is in the index after Close and Open.
func TestConcurrentSessionAddsAreDurable(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard))
	if err != nil {
		t.Fatal(err)
	}
	const workers, perWorker = 16, 12
	base := time.Now().Add(time.Hour).Truncate(time.Second)
	a := Session{ID: []byte("upload-a"), Bag: "dynamic:channel:1"}
	b := Session{ID: []byte("upload-b"), Bag: "dynamic:channel:2"}
	type job struct {
		sess Session
		c    cid.Cid
		data []byte
		held bool // stored by Put beforehand: AddToSession
	}
	wantA, wantB := map[cid.Cid]uint64{}, map[cid.Cid]uint64{}
	jobs := make([][]job, workers)
	var blocks int
	var total uint64
	for w := range workers {
		for i := range perWorker {
			k := w*perWorker + i
			data := randBytes(uint64(1000+k), 1+k*397%20_000)
			j := job{sess: a, c: chunker.ChunkCID(data), data: data, held: i%3 == 0}
			j.sess.Expiry = base.Add(time.Duration(w) * time.Second)
			want := wantA
			if i%4 == 3 {
				j.sess.ID, j.sess.Bag, want = b.ID, b.Bag, wantB
			}
			want[j.c] = uint64(len(data))
			if j.held {
				if err := s.Put(j.c, data); err != nil {
					t.Fatal(err)
				}
			}
			jobs[w] = append(jobs[w], j)
			blocks++
			total += uint64(len(data))
		}
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for _, j := range jobs[w] {
				var err error
				if j.held {
					err = s.AddToSession(j.sess, j.c)
				} else {
					err = s.PutInSession(j.sess, j.c, j.data)
				}
				if err != nil {
					t.Errorf("add %s to session %q: %v", j.c, j.sess.ID, err)
				}
			}
		}()
	}
	close(start)
	waitAll(t, &wg, 30*time.Second)
	if t.Failed() {
		t.FailNow()
	}
	last := base.Add((workers - 1) * time.Second)
	check := func(s *Store) {
		t.Helper()
		checkSession(t, s, a.ID, a.Bag, last, wantA)
		checkSession(t, s, b.ID, b.Bag, last, wantB)
		if st := s.Stats(); st.Blocks != uint64(blocks) || st.Bytes != total {
			t.Fatalf("Stats = %+v, want %d blocks of %d bytes", st, blocks, total)
		}
	}
	check(s)
	s.commits.mu.Lock()
	queued, records := len(s.commits.queue), len(s.commits.records)
	s.commits.mu.Unlock()
	if queued != 0 || records != 0 {
		t.Fatalf("group commit holds %d batches and %d records after every add returned", queued, records)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(openTest(t, dir))
}

// TestConcurrentDuplicateSessionAdds proves that a block added to a session
// many times at once, by PutInSession and AddToSession from different
// goroutines, is counted and listed once, in each of two sessions that
// receive the same blocks concurrently.
func TestConcurrentDuplicateSessionAdds(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	const workers, nblocks = 16, 24
	expiry := time.Now().Add(time.Hour).Truncate(time.Second)
	sessions := []Session{
		{ID: []byte("dup-a"), Bag: "dynamic:channel:1", Expiry: expiry},
		{ID: []byte("dup-b"), Bag: "dynamic:channel:1", Expiry: expiry},
	}
	want := map[cid.Cid]uint64{}
	var cids []cid.Cid
	datas := map[cid.Cid][]byte{}
	var total uint64
	for i := range nblocks {
		data := randBytes(uint64(2000+i), 100+i*1237)
		c := chunker.ChunkCID(data)
		want[c] = uint64(len(data))
		cids = append(cids, c)
		datas[c] = data
		total += uint64(len(data))
		if i < nblocks/2 { // held before: may be added either way
			if err := s.Put(c, data); err != nil {
				t.Fatal(err)
			}
		}
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			order := r.Perm(nblocks)
			sess := sessions[w%2]
			<-start
			for _, i := range order {
				c := cids[i]
				var err error
				if i < nblocks/2 && w%4 < 2 {
					err = s.AddToSession(sess, c)
				} else {
					err = s.PutInSession(sess, c, datas[c])
				}
				if err != nil {
					t.Errorf("add %s to session %q: %v", c, sess.ID, err)
				}
			}
		}()
	}
	close(start)
	waitAll(t, &wg, 30*time.Second)
	if t.Failed() {
		t.FailNow()
	}
	check := func(s *Store) {
		t.Helper()
		for _, sess := range sessions {
			checkSession(t, s, sess.ID, sess.Bag, expiry, want)
		}
		if st := s.Stats(); st.Blocks != nblocks || st.Bytes != total {
			t.Fatalf("Stats = %+v, want %d blocks of %d bytes", st, nblocks, total)
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(openTest(t, dir))
}

// TestPutManifestDuringSessionAdds proves that PutManifest, which flushes the
// queued session adds, works while adds to the same and to another session
// keep arriving: it records an object as soon as every chunk's add has
// returned, an earlier attempt either records it or reports
// ErrMissingBlocks, no add is lost, and the objects keep their chunks when
// the upload session ends.
func TestPutManifestDuringSessionAdds(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	const objects, adders, cs = 6, 8, 1 << 10
	expiry := time.Now().Add(time.Hour).Truncate(time.Second)
	upload := Session{ID: []byte("upload"), Bag: "dynamic:channel:1", Expiry: expiry}
	other := Session{ID: []byte("other"), Bag: "dynamic:channel:2", Expiry: expiry}

	type chunk struct {
		obj  int
		c    cid.Cid
		data []byte
	}
	var manifests []Manifest
	var chunks []chunk
	wantUpload := map[cid.Cid]uint64{}
	for o := range objects {
		m, blocks := object(t, upload.Bag, uint64(o+1), randBytes(uint64(3000+o), 12*cs+100*o), cs)
		manifests = append(manifests, m)
		for i, blk := range blocks {
			chunks = append(chunks, chunk{o, m.Chunks[i].CID, blk})
			wantUpload[m.Chunks[i].CID] = uint64(len(blk))
		}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(chunks), func(i, j int) { chunks[i], chunks[j] = chunks[j], chunks[i] })

	left := make([]atomic.Int32, objects) // chunks of each object not yet added
	ready := make([]chan struct{}, objects)
	for o := range objects {
		left[o].Store(int32(len(manifests[o].Chunks)))
		ready[o] = make(chan struct{})
	}
	work := make(chan chunk)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range adders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ch := range work {
				if err := s.PutInSession(upload, ch.c, ch.data); err != nil {
					t.Errorf("PutInSession: %v", err)
					continue
				}
				if left[ch.obj].Add(-1) == 0 {
					close(ready[ch.obj])
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(work)
		<-start
		for _, ch := range chunks {
			work <- ch
		}
	}()
	// Adds to another session run until every manifest is recorded.
	stop := make(chan struct{})
	var otherMu sync.Mutex
	wantOther := map[cid.Cid]uint64{}
	var noise sync.WaitGroup
	for w := range 2 {
		noise.Add(1)
		go func() {
			defer noise.Done()
			<-start
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				data := randBytes(uint64(1_000_000*(w+1)+i), 1+i%3000)
				c := chunker.ChunkCID(data)
				if err := s.PutInSession(other, c, data); err != nil {
					t.Errorf("PutInSession into the other session: %v", err)
					return
				}
				otherMu.Lock()
				wantOther[c] = uint64(len(data))
				otherMu.Unlock()
			}
		}()
	}
	var early, recorded atomic.Int32
	var manifesters sync.WaitGroup
	for o := range objects {
		manifesters.Add(1)
		go func() {
			defer manifesters.Done()
			<-start
			// Before the chunks are all in: recorded only if they are.
			switch err := s.PutManifest(manifests[o]); {
			case err == nil:
				early.Add(1)
			case !errors.Is(err, ErrMissingBlocks):
				t.Errorf("early PutManifest of object %d: %v", o+1, err)
			}
			<-ready[o]
			if err := s.PutManifest(manifests[o]); err != nil {
				t.Errorf("PutManifest of object %d after its chunks were added: %v", o+1, err)
				return
			}
			recorded.Add(1)
		}()
	}
	close(start)
	waitAll(t, &manifesters, 30*time.Second)
	close(stop)
	waitAll(t, &wg, 30*time.Second)
	waitAll(t, &noise, 30*time.Second)
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d manifests recorded early, %d blocks added to the other session meanwhile", early.Load(), len(wantOther))
	if recorded.Load() != objects {
		t.Fatalf("%d of %d manifests recorded", recorded.Load(), objects)
	}

	check := func(s *Store) {
		t.Helper()
		for _, m := range manifests {
			got, ok, err := s.Manifest(m.Object)
			if err != nil || !ok || !got.Root.Equals(m.Root) || len(got.Chunks) != len(m.Chunks) {
				t.Fatalf("Manifest(%d) = root %s, %d chunks, %v, %v; want root %s, %d chunks", m.Object, got.Root, len(got.Chunks), ok, err, m.Root, len(m.Chunks))
			}
			if missing, err := s.MissingBlocks(m.Object); err != nil || len(missing) != 0 {
				t.Fatalf("MissingBlocks(%d) = %v, %v", m.Object, missing, err)
			}
		}
		objs, err := s.Objects(upload.Bag)
		if err != nil || len(objs) != objects {
			t.Fatalf("Objects = %v, %v; want %d", objs, err, objects)
		}
		for i, o := range objs {
			if o != uint64(i+1) {
				t.Fatalf("Objects = %v, want 1..%d", objs, objects)
			}
		}
		if st := s.Stats(); st.Objects != objects {
			t.Fatalf("Stats = %+v, want %d objects", st, objects)
		}
		checkSession(t, s, other.ID, other.Bag, expiry, wantOther)
	}
	checkSession(t, s, upload.ID, upload.Bag, expiry, wantUpload)
	check(s)
	// The objects claimed their chunks: ending the upload keeps them.
	if err := s.EndSession(upload.ID); err != nil {
		t.Fatal(err)
	}
	for _, ch := range chunks {
		if got, err := s.Get(ch.c); err != nil || !bytes.Equal(got, ch.data) {
			t.Fatalf("chunk %s of object %d after the upload ended: %v", ch.c, ch.obj+1, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(openTest(t, dir))
}

// sessionCrashChildEnv names the store directory of the child process of
// TestSessionAddsSurviveKill.
const sessionCrashChildEnv = "SATCHEL_BLOCKSTORE_SESSION_CRASH_DIR"

// crashSession is the session the child of TestSessionAddsSurviveKill adds
// to.
var crashSession = Session{ID: []byte("killed-upload"), Bag: "dynamic:channel:1"}

// TestSessionCrashChild is the child of TestSessionAddsSurviveKill: eight
// goroutines add new blocks to one session until the process is killed,
// printing each block whose add returned. Run alone, it does nothing.
func TestSessionCrashChild(t *testing.T) {
	dir := os.Getenv(sessionCrashChildEnv)
	if dir == "" {
		t.Skip("only runs as TestSessionAddsSurviveKill's child")
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
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sess := crashSession
			sess.Expiry = time.Now().Add(time.Hour)
			for i := uint64(0); ; i++ {
				data := randBytes(seed+i*8+uint64(w), 1+int(i*131+uint64(w)*977)%8000)
				c := chunker.ChunkCID(data)
				if err := s.PutInSession(sess, c, data); err != nil {
					fmt.Println("add:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintln(out, "ok", c, len(data))
				_ = out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestSessionAddsSurviveKill kills (SIGKILL) a process that is adding blocks
// to one session from eight goroutines, twice over one store, and proves
// that every add it acknowledged is in the index after Open and that the
// session's byte count is exactly the sum of the blocks it lists: a grouped
// write lands whole or not at all, and an add is acknowledged only once its
// write has.
func TestSessionAddsSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	acked := map[cid.Cid]uint64{}
	ack := func(line string) bool {
		rest, ok := strings.CutPrefix(line, "ok ")
		if !ok {
			return false
		}
		cs, ns, _ := strings.Cut(rest, " ")
		c, err := cid.Decode(cs)
		if err != nil {
			t.Fatalf("child printed %q: %v", line, err)
		}
		n, err := strconv.ParseUint(ns, 10, 64)
		if err != nil {
			t.Fatalf("child printed %q: %v", line, err)
		}
		acked[c] = n
		return true
	}
	for round := range 2 {
		// Killed while adds are queued and being written.
		killChild(t, "TestSessionCrashChild", sessionCrashChildEnv+"="+dir, 300, 0, ack)

		s, err := Open(dir, WithSessionExpiry(0), WithLogger(discard))
		if err != nil {
			t.Fatalf("round %d: Open after kill: %v", round, err)
		}
		blocks, err := s.SessionBlocks(crashSession.ID)
		if err != nil {
			t.Fatal(err)
		}
		listed := map[cid.Cid]bool{}
		var sum uint64
		for _, c := range blocks {
			n, err := s.Size(c)
			if err != nil {
				t.Fatalf("round %d: block %s listed by the session: %v", round, c, err)
			}
			listed[c] = true
			sum += n
		}
		for c, n := range acked {
			if !listed[c] {
				t.Fatalf("round %d: add of %s (%d bytes) was acknowledged but the session does not list it", round, c, n)
			}
			if size, err := s.Size(c); err != nil || size != n {
				t.Fatalf("round %d: Size(%s) = %d, %v; want %d", round, c, size, err, n)
			}
		}
		if n, err := s.SessionBytes(crashSession.ID); err != nil || n != sum {
			t.Fatalf("round %d: SessionBytes = %d, %v; the %d blocks it lists add up to %d", round, n, err, len(blocks), sum)
		}
		t.Logf("round %d: %d adds acknowledged, %d in the session", round, len(acked), len(blocks))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// PutVerifiedInSession stores a chunk its caller verified as PutInSession
// does: readable back whole, counted in the session's bytes.
func TestPutVerifiedInSession(t *testing.T) {
	s := openTest(t, t.TempDir())
	sess := Session{ID: []byte("upload-v"), Bag: "dynamic:channel:1", Expiry: time.Now().Add(time.Hour)}
	data := randBytes(77, 50_000)
	c := chunker.ChunkCID(data)
	if err := s.PutVerifiedInSession(sess, c, data); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(c)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	if n, err := s.SessionBytes(sess.ID); err != nil || n != uint64(len(data)) {
		t.Fatalf("session bytes %d (%v), want %d", n, err, len(data))
	}
}
