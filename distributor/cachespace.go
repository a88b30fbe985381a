package distributor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/satchel-net/satchel/internal/fsutil"
	"github.com/satchel-net/satchel/internal/units"
)

// shrink lowers the cache's bound after a block write found the disk full
// (try: the how-manieth time for this block, from 0): to the bytes it holds,
// is writing and is deleting (evicted, their files not yet gone) plus what
// the disk has free now, or, when that failed already, to those it holds,
// is writing and is deleting; never above the size of the filesystem (the
// blocks being written are counted whole, though part of them is on disk
// and no longer free). The first time it warns with what to do; it does
// not raise the bound again (a restart does).
func (c *cache) shrink(try int) {
	free, total, ok := diskSpace(c.dir)
	c.mu.Lock()
	bound := c.used + c.reserved + c.freeing
	if ok && try == 0 {
		bound += free
	}
	if ok {
		bound = min(bound, total)
	}
	lowered := bound < c.limit
	if lowered {
		c.limit = bound
	}
	first := !c.full
	c.full = true
	c.mu.Unlock()
	if first {
		c.log.Warn("the disk cache's disk is full before its bound: the bound is lowered to what fits, the objects over it evicted; lower --cache-size or free disk space",
			"dir", c.dir, "cache_size", units.FormatBytes(uint64(c.configured)), "bound", units.FormatBytes(uint64(bound)))
	} else if lowered {
		c.log.Debug("cache bound lowered: the disk is full", "bound", bound)
	}
}

// checkRoom warns when the cache's bound exceeds the room it has on disk:
// the bytes it holds and those free.
func (c *cache) checkRoom() {
	free, _, ok := diskSpace(c.dir)
	if !ok {
		return
	}
	c.mu.Lock()
	room, limit := c.used+free, c.limit
	c.mu.Unlock()
	if limit > room {
		c.log.Warn("the disk cache's bound exceeds the disk space it has (what it holds and what is free): once the disk fills up the bound is lowered to what fits; lower --cache-size or free disk space",
			"dir", c.dir, "cache_size", units.FormatBytes(uint64(limit)), "room", units.FormatBytes(uint64(room)))
	}
}

// CheckCacheSize returns an error when a cache of size bytes in dir (or
// where dir will be made) could never fit: when size exceeds the whole
// filesystem that holds it. A size over what is free there is a warning
// the node logs at start, not an error.
func CheckCacheSize(dir string, size int64) error {
	for d := dir; ; d = filepath.Dir(d) {
		_, total, ok := diskSpace(d)
		if ok {
			if size > total {
				return fmt.Errorf("a cache of %s does not fit in %s, on a filesystem of %s: lower the cache size", units.FormatBytes(uint64(size)), dir, units.FormatBytes(uint64(total)))
			}
			return nil
		}
		if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) || filepath.Dir(d) == d {
			return nil // there, but its size is unknown (or no parent exists)
		}
	}
}

// diskSpace returns the bytes free (to an unprivileged user) and the size
// of the filesystem that holds path (fsutil.Space, as the cache counts
// bytes); ok is false when it cannot tell.
func diskSpace(path string) (free, total int64, ok bool) {
	f, t, err := fsutil.Space(path)
	return int64(min(f, 1<<62)), int64(min(t, 1<<62)), err == nil
}
