package blockstore

import (
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/fsutil"
	"github.com/syndtr/goleveldb/leveldb"
)

// TestIndexNoSpaceSessionAddsGoOn: a grouped session add whose index
// write fails for lack of space stops the grouped writes and fails with
// ENOSPC; once the index takes writes again, the next add mends it and
// goes through, without a restart. (The ext4 test,
// TestIndexOutOfSpaceMended, fills a real disk; this one runs anywhere.)
func TestIndexNoSpaceSessionAddsGoOn(t *testing.T) {
	var full atomic.Bool
	s, err := Open(t.TempDir(), WithSessionExpiry(0), WithLogger(discard),
		withIndexWrite(func(write func() error, _ *leveldb.Batch) error {
			if full.Load() {
				return &os.PathError{Op: "write", Path: "index", Err: syscall.ENOSPC}
			}
			return write()
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sess := Session{ID: []byte("s"), Bag: "b", Expiry: time.Now().Add(time.Hour)}
	put := func(seed uint64) error {
		data := randBytes(seed, 64<<10)
		return s.PutInSession(sess, chunker.ChunkCID(data), data)
	}
	if err := put(1); err != nil {
		t.Fatal(err)
	}
	full.Store(true)
	if err := put(2); !fsutil.NoSpace(err) {
		t.Fatalf("session add with the index out of space: %v; want ENOSPC", err)
	}
	if err := s.commits.err(); !fsutil.NoSpace(err) {
		t.Fatalf("grouped writes after the failure: %v; want stopped on ENOSPC", err)
	}
	full.Store(false)
	if err := put(3); err != nil {
		t.Fatalf("session add once the index has room: %v", err)
	}
	if n, err := s.SessionBytes(sess.ID); err != nil || n != 2*64<<10 {
		t.Errorf("session bytes: %d, %v; want the two adds that went through, %d", n, err, 2*64<<10)
	}
}
