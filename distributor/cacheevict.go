package distributor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// remove evicts the objects.
func (c *cache) remove(ids ...chain.ObjectID) {
	for _, id := range ids {
		c.mu.Lock()
		var idle []*os.File
		var trash string
		if o := c.objects[id]; o != nil {
			idle, trash = c.dropLocked(id, o)
		}
		c.mu.Unlock()
		closeAll(idle)
		c.removeTrash(trash)
	}
}

// dropLocked takes object id out of the index (under mu) and renames its
// directory aside, so that a block cached again from now on goes to a new
// one. It returns the object's idle open files and the renamed directory,
// for the caller to close and delete unlocked.
func (c *cache) dropLocked(id chain.ObjectID, o *cachedObject) (idle []*os.File, trash string) {
	delete(c.objects, id)
	c.used -= o.bytes
	c.evicted++
	idle = c.idleFiles(id, o)
	dir := filepath.Join(c.dir, "objects", id.String())
	trash = filepath.Join(c.dir, "trash", fmt.Sprintf("%s-%d", id, o.gen))
	if err := os.Rename(dir, trash); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			// Delete the files here rather than race a put to them.
			c.log.Warn("cache: move an evicted object aside; deleting its files in place", "object", id, "err", err)
			for bc := range o.blocks {
				_ = os.Remove(filepath.Join(dir, bc.String()))
			}
		}
		return idle, ""
	}
	c.trashing[trash] = &deletion{bytes: o.bytes, done: make(chan struct{})}
	c.freeing += o.bytes
	return idle, trash
}

// removeTrash deletes a directory dropLocked moved aside; its bytes stop
// counting as being freed once the files are gone.
func (c *cache) removeTrash(dir string) {
	if dir == "" {
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		c.log.Warn("cache: delete an evicted object's files", "dir", dir, "err", err)
	}
	c.mu.Lock()
	if d := c.trashing[dir]; d != nil {
		c.freeing -= d.bytes
		delete(c.trashing, dir)
		close(d.done)
	}
	c.mu.Unlock()
}

// deletion is an evicted object's directory in trash/ being deleted: its
// bytes, and done, closed once its files are gone.
type deletion struct {
	bytes int64
	done  chan struct{}
}

// waitFreed waits until the evicted files being deleted when it is called
// are gone: not for deletions begun later, which writers evicting at the
// same time could keep starting for ever. Their deleters wait for
// nothing, so the wait ends.
func (c *cache) waitFreed() {
	c.mu.Lock()
	pending := make([]chan struct{}, 0, len(c.trashing))
	for _, d := range c.trashing {
		pending = append(pending, d.done)
	}
	c.mu.Unlock()
	for _, done := range pending {
		<-done
	}
}

// retain evicts every object keep says no to and returns how many.
func (c *cache) retain(keep func(chain.ObjectID) bool) int {
	c.mu.Lock()
	var drop []chain.ObjectID
	for id := range c.objects {
		if !keep(id) {
			drop = append(drop, id)
		}
	}
	c.mu.Unlock()
	c.remove(drop...)
	return len(drop)
}

// evict removes objects, the highest age × size ÷ popularity first, until
// the cache is within its bound.
func (c *cache) evict() {
	c.mu.Lock()
	idle, trash := c.evictLocked(0, nil)
	c.mu.Unlock()
	c.dispose(idle, trash)
}

// makeRoom reserves n bytes for a block of obj to be written, evicting
// other objects (as evict does) until the cache with it is within its
// bound. It reserves nothing and reports false when only evicting obj
// itself would make room. place or unreserve gives the bytes back.
func (c *cache) makeRoom(obj chain.ObjectID, n int64) bool {
	c.mu.Lock()
	var own int64
	if o := c.objects[obj]; o != nil {
		own = o.bytes
	}
	if own+c.reserved+n > c.limit {
		c.mu.Unlock()
		return false
	}
	idle, trash := c.evictLocked(n, &obj)
	c.reserved += n
	c.mu.Unlock()
	c.dispose(idle, trash)
	return true
}

// unreserve gives back n bytes makeRoom reserved for a write that failed.
func (c *cache) unreserve(n int64) {
	c.mu.Lock()
	c.reserved -= n
	c.mu.Unlock()
}

// evictLocked drops objects (under mu), the highest age × size ÷
// popularity first and never spare (nil: none), until need more bytes fit
// within the bound. It returns the idle files and the directories moved
// aside, for dispose.
func (c *cache) evictLocked(need int64, spare *chain.ObjectID) (idle []*os.File, trash []string) {
	if c.used+c.reserved+need <= c.limit {
		return nil, nil
	}
	now := time.Now()
	type cand struct {
		id    chain.ObjectID
		score float64
	}
	cands := make([]cand, 0, len(c.objects))
	for id, o := range c.objects {
		if spare != nil && id == *spare {
			continue
		}
		age := now.Sub(o.last).Seconds() + 1
		cands = append(cands, cand{id, age * float64(o.bytes) / float64(o.hits+1)})
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if a.score > b.score {
			return -1
		}
		if a.score < b.score {
			return 1
		}
		return 0
	})
	for _, cd := range cands {
		if c.used+c.reserved+need <= c.limit {
			break
		}
		files, dir := c.dropLocked(cd.id, c.objects[cd.id])
		idle = append(idle, files...)
		trash = append(trash, dir)
	}
	return idle, trash
}

// dispose closes the files and deletes the directories evictLocked
// returned, unlocked.
func (c *cache) dispose(idle []*os.File, trash []string) {
	closeAll(idle)
	for _, dir := range trash {
		c.removeTrash(dir)
	}
	if len(trash) > 0 {
		c.log.Debug("cache evicted", "objects", len(trash))
	}
}
