package distributor

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/satchel-net/satchel/chain"
)

// smallDisk mounts a tmpfs of size bytes for the test (root only; skipped
// elsewhere) and returns its path.
func smallDisk(t testing.TB, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small filesystem needs root")
	}
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// logBuffer is a slog handler's output, safe for concurrent writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A cache bounded far above its disk warns at start; a write that finds
// the disk full lowers the bound to what fits (warning once what to do),
// counts the failure and evicts another object to take the block; a block
// that would fit only by evicting its own object is not cached, and is
// not tried on disk again.
func TestCacheFullDisk(t *testing.T) {
	dir := smallDisk(t, "1m")
	var logs logBuffer
	c, err := openCache(dir, 100<<20, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "lower --cache-size or free disk space") {
		t.Fatalf("no warning of a bound over the disk at start: %s", logs.String())
	}
	put := func(obj chain.ObjectID, fill byte) {
		b := block(256<<10-blockTrailer, fill)
		if err := c.put(obj, rawBlock(t, b), b); err != nil {
			t.Fatalf("put a block of object %d: %v", obj, err)
		}
	}
	for i := range 3 {
		put(1, byte(i))
	}
	if !c.has(1) || cacheCounter(t, c.m.writeFailures) != 0 {
		t.Fatal("object 1 not cached on a disk with room for it")
	}
	put(2, 10) // the disk holds 3 such blocks and the state file: full
	if !c.has(2) || c.has(1) {
		t.Fatalf("after the disk filled: object 1 kept %v, object 2 cached %v; want 1 evicted for 2", c.has(1), c.has(2))
	}
	if n := cacheCounter(t, c.m.noSpace); n < 1 {
		t.Fatalf("%v writes counted failed for no space, want at least 1", n)
	}
	used, limit, _, _ := c.usage()
	if limit >= 100<<20 || limit > 1<<20 {
		t.Fatalf("bound %d after the disk of 1 MiB filled, want at most what fits", limit)
	}
	if strings.Count(logs.String(), "disk is full") != 1 {
		t.Fatalf("want one warning of the full disk: %s", logs.String())
	}
	// Object 2 fills the cache: its next blocks are not cached, and it
	// keeps those it has.
	put(2, 11)
	put(2, 12)
	failed := cacheCounter(t, c.m.writeFailures)
	for i := range 3 {
		put(2, byte(20+i))
	}
	if got := cacheCounter(t, c.m.writeFailures); got != failed {
		t.Fatalf("blocks that cannot fit were written anyway: %v failed writes, were %v", got, failed)
	}
	after, _, _, _ := c.usage()
	if !c.has(2) || after < used {
		t.Fatalf("object 2 lost blocks to make room for its own: %d bytes held, were %d", after, used)
	}
	du, err := c.diskUsage()
	if err != nil || du != after {
		t.Fatalf("block files hold %d bytes, the cache counts %d (%v)", du, after, err)
	}
	if err := c.save(true); err != nil {
		t.Fatalf("clean stop on the full disk: %v", err)
	}
}

// CheckCacheSize refuses a cache larger than its whole filesystem, and
// takes one that fits it, in a directory not made yet.
func TestCheckCacheSize(t *testing.T) {
	dir := smallDisk(t, "3m")
	if err := CheckCacheSize(filepath.Join(dir, "data", "cache"), 200<<30); err == nil || !strings.Contains(err.Error(), "lower the cache size") {
		t.Fatalf("200 GiB on a 3 MiB filesystem: %v", err)
	}
	if err := CheckCacheSize(filepath.Join(dir, "data", "cache"), 2<<20); err != nil {
		t.Fatalf("2 MiB on a 3 MiB filesystem: %v", err)
	}
}
