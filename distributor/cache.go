package distributor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
)

// cacheStateFile holds the cache's statistics across restarts; its Clean
// flag says the node stopped cleanly, so the block files need no check.
const cacheStateFile = "cache-state.json"

// cache keeps verified blocks on disk, one file per block under
// objects/<objectID>/<cid>, bounded by bytes. The index (objects) and the
// files agree under mu: a block file is renamed into place and indexed in
// one step, and an object's directory is renamed aside (to trash/) and
// unindexed in one step, then deleted unlocked; so a removal never deletes
// a file a later caching put in place. When over its bound it evicts
// whole objects, the one with the highest age × size ÷ popularity first
// (the least recently used, largest, least requested). Its statistics
// survive a restart; block files from an unclean stop are verified against
// their CIDs before being served again.
type cache struct {
	dir   string
	limit int64
	log   *slog.Logger
	// alive says whether an object is still served; a block fetched for
	// one that stopped being served meanwhile is not kept.
	alive func(chain.ObjectID) bool

	mu      sync.Mutex
	objects map[chain.ObjectID]*cachedObject
	used    int64
	evicted uint64
	// files are block files kept open between requests (at most
	// maxOpenFiles), so a hit opens no file: each is used by one reader at
	// a time, which positions it and sends from it (sendfile).
	files  map[blockKey][]openFile
	nfiles int
	// gens numbers the objects as they enter the cache (cachedObject.gen).
	gens uint64
}

// openFile is an open block file and its offset (so a reader that
// continues where the last one stopped needs no seek).
type openFile struct {
	f   *os.File
	pos int64
	// gen is the cached object's generation the file was opened under: an
	// object evicted and cached again has new files, and a file of the old
	// one (a deleted inode) is closed, not kept for later readers.
	gen uint64
}

// maxOpenFiles bounds the block files the cache keeps open.
const maxOpenFiles = 256

// blockKey names one block of one object.
type blockKey struct {
	obj chain.ObjectID
	c   cid.Cid
}

// cachedObject is what the cache holds of one object.
type cachedObject struct {
	blocks    map[cid.Cid]int64 // CID → size
	bytes     int64             // all its block bytes
	leafBytes int64             // content bytes (raw leaves)
	hits      uint64
	last      time.Time
	ctype     string
	gen       uint64 // set when the object enters the cache (cache.gens)
}

// cacheState is the JSON of cacheStateFile.
type cacheState struct {
	Clean   bool                          `json:"clean"`
	Objects map[chain.ObjectID]objectStat `json:"objects"`
}

type objectStat struct {
	Hits        uint64    `json:"hits"`
	Last        time.Time `json:"last"`
	ContentType string    `json:"contentType,omitempty"`
	LeafBytes   int64     `json:"leafBytes"`
}

// openCache opens (or creates) the cache in dir, bounded to limit bytes.
func openCache(dir string, limit int64, log *slog.Logger) (*cache, error) {
	if dir == "" {
		return nil, errors.New("distributor: no cache directory; pass WithCacheDir")
	}
	// Writes and removals a stop interrupted left their files here.
	for _, d := range []string{"tmp", "trash"} {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			return nil, fmt.Errorf("distributor: cache: %w", err)
		}
	}
	for _, d := range []string{"objects", "tmp", "trash"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("distributor: cache: %w", err)
		}
	}
	c := &cache{dir: dir, limit: limit, log: log, objects: map[chain.ObjectID]*cachedObject{}, files: map[blockKey][]openFile{}, alive: func(chain.ObjectID) bool { return true }}
	var st cacheState
	if b, err := os.ReadFile(filepath.Join(dir, cacheStateFile)); err == nil {
		if json.Unmarshal(b, &st) != nil {
			st = cacheState{}
		}
	}
	if err := c.scan(st); err != nil {
		return nil, err
	}
	// Until the next clean stop, a crash leaves block files to verify.
	if err := c.save(false); err != nil {
		return nil, err
	}
	c.evict()
	return c, nil
}

// scan loads the block files, verifying each one unless the last stop was
// clean, and removes leftovers of interrupted writes.
func (c *cache) scan(st cacheState) error {
	root := filepath.Join(c.dir, "objects")
	dirs, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("distributor: cache: %w", err)
	}
	for _, d := range dirs {
		id, err := strconv.ParseUint(d.Name(), 10, 64)
		if err != nil || !d.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(root, d.Name()))
		if err != nil {
			return fmt.Errorf("distributor: cache: %w", err)
		}
		c.gens++
		o := &cachedObject{blocks: map[cid.Cid]int64{}, gen: c.gens}
		for _, f := range files {
			path := filepath.Join(root, d.Name(), f.Name())
			bc, err := cid.Decode(f.Name())
			if err != nil || !c.valid(path, bc, st.Clean) {
				_ = os.Remove(path)
				continue
			}
			info, err := f.Info()
			if err != nil {
				continue
			}
			o.blocks[bc] = info.Size()
			o.bytes += info.Size()
			if bc.Type() == cid.Raw {
				o.leafBytes += info.Size()
			}
		}
		if len(o.blocks) == 0 {
			_ = os.Remove(filepath.Join(root, d.Name()))
			continue
		}
		if s, ok := st.Objects[chain.ObjectID(id)]; ok {
			o.hits, o.last, o.ctype = s.Hits, s.Last, s.ContentType
		}
		c.objects[chain.ObjectID(id)] = o
		c.used += o.bytes
	}
	return nil
}

// valid reports whether the block file at path holds block c: after a
// clean stop every file is whole; after a crash each is hashed.
func (c *cache) valid(path string, bc cid.Cid, clean bool) bool {
	if clean {
		return true
	}
	b, err := os.ReadFile(path)
	return err == nil && chunker.VerifyChunk(bc, b) == nil
}

// save writes the statistics; clean marks a clean stop.
func (c *cache) save(clean bool) error {
	c.mu.Lock()
	st := cacheState{Clean: clean, Objects: make(map[chain.ObjectID]objectStat, len(c.objects))}
	for id, o := range c.objects {
		st.Objects[id] = objectStat{Hits: o.hits, Last: o.last, ContentType: o.ctype, LeafBytes: o.leafBytes}
	}
	c.mu.Unlock()
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(c.dir, cacheStateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("distributor: cache state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, cacheStateFile)); err != nil {
		return fmt.Errorf("distributor: cache state: %w", err)
	}
	return nil
}

func (c *cache) path(obj chain.ObjectID, bc cid.Cid) string {
	return filepath.Join(c.dir, "objects", obj.String(), bc.String())
}

// holds reports whether block bc of obj is cached.
func (c *cache) holds(obj chain.ObjectID, bc cid.Cid) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.objects[obj]
	if o == nil {
		return false
	}
	_, ok := o.blocks[bc]
	return ok
}

// account adds n bytes of block bc to o's sizes and the cache's use.
func (c *cache) account(o *cachedObject, bc cid.Cid, n int64) {
	o.bytes += n
	if bc.Type() == cid.Raw {
		o.leafBytes += n
	}
	c.used += n
}

// put stores a verified block of obj, then evicts while over the bound.
// The block is written to tmp/ unlocked, then renamed into place and
// indexed under mu.
func (c *cache) put(obj chain.ObjectID, bc cid.Cid, data []byte) error {
	if c.holds(obj, bc) {
		return nil
	}
	f, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), bc.String()+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	placed, err := c.place(obj, bc, tmp, int64(len(data)))
	if !placed {
		_ = os.Remove(tmp)
	}
	if err != nil {
		return err
	}
	c.evict()
	return nil
}

// place renames the block file tmp into place and indexes it, unless obj
// is no longer served or the block is cached already; it reports whether
// it took tmp.
func (c *cache) place(obj chain.ObjectID, bc cid.Cid, tmp string, n int64) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.alive(obj) {
		return false, nil
	}
	o := c.objects[obj]
	if o != nil {
		if _, ok := o.blocks[bc]; ok {
			return false, nil
		}
	}
	if o == nil { // an indexed object's directory exists (dropLocked moves it only when unindexing)
		if err := os.MkdirAll(filepath.Join(c.dir, "objects", obj.String()), 0o700); err != nil {
			return false, err
		}
	}
	if err := os.Rename(tmp, c.path(obj, bc)); err != nil {
		return false, err
	}
	if o == nil {
		// The request that fetched the block counts as the first hit.
		c.gens++
		o = &cachedObject{blocks: map[cid.Cid]int64{}, last: time.Now(), hits: 1, gen: c.gens}
		c.objects[obj] = o
	}
	o.blocks[bc] = n
	c.account(o, bc, n)
	return true, nil
}

// touch counts a request for obj.
func (c *cache) touch(obj chain.ObjectID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if o := c.objects[obj]; o != nil {
		o.hits++
		o.last = time.Now()
	}
}

// request counts a request for obj (size bytes) and returns whether every
// content byte is cached, whether any is, and its content type if known:
// one lock for what a hit needs.
func (c *cache) request(obj chain.ObjectID, size uint64, now time.Time) (complete, any bool, ctype string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.objects[obj]
	if o == nil {
		return false, false, ""
	}
	o.hits++
	o.last = now
	return o.leafBytes >= int64(size), o.leafBytes > 0, o.ctype
}

// complete reports whether every content byte of obj (size bytes) is
// cached.
func (c *cache) complete(obj chain.ObjectID, size uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.objects[obj]
	return o != nil && o.leafBytes >= int64(size)
}

// has reports whether any content (a leaf) of obj is cached.
func (c *cache) has(obj chain.ObjectID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.objects[obj]
	return o != nil && o.leafBytes > 0
}

// contentType returns the sniffed content type of obj, if known.
func (c *cache) contentType(obj chain.ObjectID) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if o := c.objects[obj]; o != nil {
		return o.ctype
	}
	return ""
}

func (c *cache) setContentType(obj chain.ObjectID, t string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if o := c.objects[obj]; o != nil {
		o.ctype = t
	}
}

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
	return idle, trash
}

// removeTrash deletes a directory dropLocked moved aside.
func (c *cache) removeTrash(dir string) {
	if dir == "" {
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		c.log.Warn("cache: delete an evicted object's files", "dir", dir, "err", err)
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
	if c.used <= c.limit {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	type cand struct {
		id    chain.ObjectID
		score float64
	}
	cands := make([]cand, 0, len(c.objects))
	for id, o := range c.objects {
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
	var trash []string
	var idle []*os.File
	for _, cd := range cands {
		if c.used <= c.limit {
			break
		}
		files, dir := c.dropLocked(cd.id, c.objects[cd.id])
		idle = append(idle, files...)
		trash = append(trash, dir)
	}
	c.mu.Unlock()
	closeAll(idle)
	for _, dir := range trash {
		c.removeTrash(dir)
	}
	if len(trash) > 0 {
		c.log.Debug("cache evicted", "objects", len(trash))
	}
}

// usage returns the bytes used, the bound, the objects held and the
// evictions so far.
func (c *cache) usage() (used, limit int64, objects int, evicted uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used, c.limit, len(c.objects), c.evicted
}

// diskUsage sums the sizes of the block files, for tests.
func (c *cache) diskUsage() (int64, error) {
	var n int64
	err := filepath.WalkDir(filepath.Join(c.dir, "objects"), func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // evicted while the walk ran: it uses nothing now
		}
		if err != nil || d.IsDir() || strings.Contains(d.Name(), ".tmp-") {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return nil
	})
	return n, err
}
