//go:build linux

package provider

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/loopfs"
)

// diskUsage moves the bytes allocated ahead from used to free, never more
// than the file system has in use.
func TestDiskUsageAllocatedAhead(t *testing.T) {
	st := syscall.Statfs_t{Bsize: 4096, Blocks: 1000, Bfree: 600, Bavail: 550}
	if got := diskUsage(st, 0); got != (DiskStatus{Free: 550 * 4096, Used: 400 * 4096}) {
		t.Errorf("nothing allocated ahead: %+v", got)
	}
	if got := diskUsage(st, 100*4096); got != (DiskStatus{Free: 650 * 4096, Used: 300 * 4096}) {
		t.Errorf("100 blocks allocated ahead: %+v", got)
	}
	if got := diskUsage(st, 1<<40); got != (DiskStatus{Free: 950 * 4096, Used: 0}) {
		t.Errorf("more allocated ahead than used: %+v", got)
	}
}

// smallExt4 mounts an ext4 of size bytes for the test (loopfs.Ext4).
func smallExt4(t *testing.T, size int64) string {
	t.Helper()
	return loopfs.Ext4(t, size, "a disk no other process writes")
}

// The disk status, the free disk a contract ledger counts against and
// the gauges do not count the space the block store allocated ahead of
// its records as used: a 1 MiB block costs about 1 MiB of free disk, not
// the 64 MiB the store allocated for its next blocks.
func TestDiskFreeCountsAllocatedAhead(t *testing.T) {
	s, _ := diskFullServer(t, filepath.Join(smallExt4(t, 256<<20), "store"))
	before := s.diskStatus()
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i * 7)
	}
	if err := s.bs.Put(chunker.ChunkCID(b), b); err != nil {
		t.Fatal(err)
	}
	ahead := s.bs.AllocatedAhead()
	if ahead == 0 {
		t.Skip("the block store allocated nothing ahead here (no direct I/O or fallocate)")
	}
	after := s.diskStatus()
	if before == nil || after == nil {
		t.Fatalf("disk status %+v, %+v", before, after)
	}
	if took := int64(before.Free) - int64(after.Free); took < 1<<20 || took > 2<<20 {
		t.Errorf("a 1 MiB block took %d bytes of free disk (%d allocated ahead); want its record's, about 1 MiB", took, ahead)
	}
	if grew := int64(after.Used) - int64(before.Used); grew < 1<<20 || grew > 2<<20 {
		t.Errorf("a 1 MiB block made %d bytes used (%d allocated ahead); want about 1 MiB", grew, ahead)
	}
	free, err := s.FreeDisk()()
	if err != nil || free < after.Free-(1<<20) || free > after.Free+(1<<20) {
		t.Errorf("FreeDisk: %d, %v; the status says %d", free, err, after.Free)
	}
}
