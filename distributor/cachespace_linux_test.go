package distributor

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/internal/logbuf"
	p2ptestnet "github.com/satchel-net/satchel/p2p/testnet"
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

// A cache bounded far above its disk warns at start; a write that finds
// the disk full lowers the bound to what fits (warning once what to do),
// counts the failure and evicts another object to take the block; a block
// that would fit only by evicting its own object is not cached, and is
// not tried on disk again.
func TestCacheFullDisk(t *testing.T) {
	dir := smallDisk(t, "1m")
	var logs logbuf.Buffer
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

// fullDiskCache is a cache bounded at 100 MiB on a disk of 1 MiB holding
// object 1, three blocks of 256 KiB (with their trailers): the disk has
// room for the state file and about one block more.
func fullDiskCache(t *testing.T) *cache {
	t.Helper()
	c, err := openCache(smallDisk(t, "1m"), 100<<20, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		b := block(256<<10-blockTrailer, byte(i))
		if err := c.put(1, rawBlock(t, b), b); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// A write that finds the disk full while another write's eviction is still
// deleting its files (one write evicted object 1 to make room and is in
// dispose; another's write failed meanwhile) counts the bytes being freed
// as room: the bound stays what the disk holds, and the object written
// next is cached whole. Counting only what the disk showed free then
// lowered the bound for good to under one block, so the object was never
// cached whole (the hang of TestCacheFullDiskMakesRoom under load).
func TestCacheFullDiskDuringEviction(t *testing.T) {
	c := fullDiskCache(t)
	c.mu.Lock()
	idle, trash := c.dropLocked(1, c.objects[1])
	c.mu.Unlock()
	c.shrink(0) // the other write's failure, before the files are gone
	c.dispose(idle, []string{trash})
	want := int64(0)
	for i := range 3 {
		b := block(256<<10-blockTrailer, byte(10+i))
		if err := c.put(2, rawBlock(t, b), b); err != nil {
			t.Fatal(err)
		}
		want += int64(len(b))
	}
	if used, limit, _, _ := c.usage(); used != want {
		t.Fatalf("object 2 holds %d bytes in the cache, want all %d: the bound is %d", used, want, limit)
	}
}

// A write that finds the disk full while an eviction is still deleting its
// files waits for them to go and then writes, rather than spend its tries
// on a disk that is about to have room and leave its object short of a
// block for good.
func TestCacheFullDiskWriteWaitsForEviction(t *testing.T) {
	c := fullDiskCache(t)
	c.mu.Lock()
	idle, trash := c.dropLocked(1, c.objects[1])
	c.mu.Unlock()
	b := block(256<<10-blockTrailer, 10)
	bc := rawBlock(t, b)
	done := make(chan error, 1)
	go func() { done <- c.put(2, bc, b) }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	failed := func() bool { return cacheCounter(t, c.m.writeFailures) >= 1 }
	if err := p2ptestnet.Poll(ctx, failed); err != nil {
		t.Fatal("the write never found the disk full: object 1's files take it")
	}
	c.dispose(idle, []string{trash}) // the eviction's deletion ends
	if err := <-done; err != nil || !c.holds(2, bc) {
		t.Fatalf("the write after the eviction's files went: %v, cached %v", err, c.holds(2, bc))
	}
}

// A write that finds the disk full while another block is being written
// (reserved whole, part of it on disk already, so not free) never bounds
// the cache above its filesystem.
func TestCacheFullDiskBoundAtMostFilesystem(t *testing.T) {
	c := fullDiskCache(t)
	n := int64(256 << 10)
	if !c.makeRoom(2, n) {
		t.Fatal("no room reserved for object 2's block under a bound of 100 MiB")
	}
	tmp := filepath.Join(c.dir, "tmp", "partial")
	if err := os.WriteFile(tmp, make([]byte, 200<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	c.shrink(0)
	_, total, ok := diskSpace(c.dir)
	if _, limit, _, _ := c.usage(); !ok || limit > total {
		t.Fatalf("bound %d after the disk filled, on a filesystem of %d bytes (%v)", limit, total, ok)
	}
	c.unreserve(n)
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
