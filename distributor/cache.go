package distributor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/fsutil"
)

// cacheStateFile holds the cache's statistics across restarts; its Clean
// flag says the node stopped cleanly with every block file on disk (synced
// before the flag), so the files need not be hashed at start: each read
// still checks its block's CRC-32C (cachecheck.go).
const cacheStateFile = "cache-state.json"

// cacheFormat numbers the layout of the block files: 2 has a CRC-32C
// trailer (blockTrailer). Files of another layout are hashed at start.
const cacheFormat = 2

// cache keeps verified blocks on disk, one file per block under
// objects/<objectID>/<cid>, bounded by bytes. The index (objects) and the
// files agree under mu: a block file is renamed into place and indexed in
// one step, and an object's directory is renamed aside (to trash/) and
// unindexed in one step, then deleted unlocked; so a removal never deletes
// a file a later caching put in place. When over its bound it evicts
// whole objects, the one with the highest age × size ÷ popularity first
// (the least recently used, largest, least requested; cacheevict.go). Its statistics
// survive a restart; block files from an unclean stop are verified against
// their CIDs before being served again, and every read checks the block's
// CRC-32C (cachecheck.go). A full disk lowers the bound to what fits
// (cachespace.go).
type cache struct {
	dir   string
	limit int64
	// configured is the bound asked for; limit falls below it when the
	// disk fills up first.
	configured int64
	log        *slog.Logger
	// alive says whether an object is still served; a block fetched for
	// one that stopped being served meanwhile is not kept.
	alive func(chain.ObjectID) bool

	mu      sync.Mutex
	objects map[chain.ObjectID]*cachedObject
	used    int64
	// reserved counts the bytes of blocks being written (makeRoom made
	// room for them, place accounts them).
	reserved int64
	evicted  uint64
	// full says the disk filled up and the bound was lowered (logged
	// once).
	full bool
	// freeing counts the bytes of evicted objects whose directories in
	// trash/ are being deleted (trashing, by directory): the disk does
	// not show them free yet, but shrink counts them as room, or a write
	// that finds the disk full while another evicts would lower the bound
	// for good by what that eviction frees.
	freeing  int64
	trashing map[string]*deletion
	m        cacheMetrics
	// files are block files kept open between requests (at most
	// maxOpenFiles), so a hit opens no file: each is used by one reader at
	// a time, which positions it and sends from it (sendfile).
	files  map[blockKey][]openFile
	nfiles int
	// gens numbers the objects as they enter the cache and the block
	// files as they are placed (cachedObject.gen, cachedBlock.gen).
	gens uint64
}

// openFile is an open block file and its offset (so a reader that
// continues where the last one stopped needs no seek).
type openFile struct {
	f   *os.File
	pos int64
	// gen is the generation of the block file opened: a block dropped
	// and cached again (or its object evicted and cached again) has a new
	// file, and one of the old (a deleted inode) is closed, not kept for
	// later readers, nor taken for the new one.
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
	blocks    map[cid.Cid]cachedBlock
	bytes     int64 // all its block bytes
	leafBytes int64 // content bytes (raw leaves)
	hits      uint64
	last      time.Time
	ctype     string
	gen       uint64 // set when the object enters the cache (cache.gens)
}

// cachedBlock is one block file of a cached object.
type cachedBlock struct {
	size int64  // the block's bytes (its file holds blockTrailer more)
	gen  uint64 // set when the file is placed (cache.gens)
}

// cacheState is the JSON of cacheStateFile.
type cacheState struct {
	Clean bool `json:"clean"`
	// Format is the block files' layout (cacheFormat); absent before 2.
	Format  int                           `json:"format,omitempty"`
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
	c := &cache{dir: dir, limit: limit, configured: limit, log: log, m: newCacheMetrics(), objects: map[chain.ObjectID]*cachedObject{}, files: map[blockKey][]openFile{}, trashing: map[string]*deletion{}, alive: func(chain.ObjectID) bool { return true }}
	var st cacheState
	if b, err := os.ReadFile(filepath.Join(dir, cacheStateFile)); err == nil {
		if json.Unmarshal(b, &st) != nil {
			st = cacheState{}
		}
	}
	if err := c.scan(st.Clean && st.Format == cacheFormat, st); err != nil {
		return nil, err
	}
	// Until the next clean stop, a crash leaves block files to verify: the
	// flag is down on disk before any block is written.
	if err := c.save(false); err != nil {
		return nil, err
	}
	c.checkRoom()
	c.evict()
	return c, nil
}

// scan loads the block files, verifying each one unless the last stop was
// clean (and left files of this format), and removes leftovers of
// interrupted writes.
func (c *cache) scan(clean bool, st cacheState) error {
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
		o := &cachedObject{blocks: map[cid.Cid]cachedBlock{}, gen: c.gens}
		for _, f := range files {
			path := filepath.Join(root, d.Name(), f.Name())
			bc, err := cid.Decode(f.Name())
			if err != nil {
				_ = os.Remove(path)
				continue
			}
			size, ok := c.valid(path, bc, clean)
			if !ok {
				_ = os.Remove(path)
				continue
			}
			c.gens++
			o.blocks[bc] = cachedBlock{size: size, gen: c.gens}
			c.account(o, bc, size)
		}
		if len(o.blocks) == 0 {
			_ = os.Remove(filepath.Join(root, d.Name()))
			continue
		}
		if s, ok := st.Objects[chain.ObjectID(id)]; ok {
			o.hits, o.last, o.ctype = s.Hits, s.Last, s.ContentType
		}
		c.objects[chain.ObjectID(id)] = o
	}
	return nil
}

// valid reports whether the block file at path holds block bc, and the
// block's size: after a clean stop every file that holds a trailer is
// taken (each read checks it); else each is hashed, and a file of the
// format before 2 (the block alone) that hashes right gets its trailer.
func (c *cache) valid(path string, bc cid.Cid, clean bool) (int64, bool) {
	if clean {
		st, err := os.Stat(path)
		if err != nil || !st.Mode().IsRegular() || st.Size() < blockTrailer {
			return 0, false
		}
		return st.Size() - blockTrailer, true
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	if n := len(b) - blockTrailer; n >= 0 && chunker.VerifyChunk(bc, b[:n]) == nil {
		if !trailerMatches(b[:n], b[n:]) {
			_ = c.writeTrailer(path, b[:n])
		}
		return int64(n), true
	}
	if chunker.VerifyChunk(bc, b) == nil && c.writeTrailer(path, b) == nil {
		return int64(len(b)), true
	}
	return 0, false
}

// save writes the statistics; clean marks a clean stop, written only once
// every block file is on disk. The state file is synced with its
// directory, so the flag on disk is the last one written.
func (c *cache) save(clean bool) error {
	if clean {
		if err := syncTree(filepath.Join(c.dir, "objects")); err != nil {
			return fmt.Errorf("distributor: cache: sync the block files: %w", err)
		}
	}
	c.mu.Lock()
	st := cacheState{Clean: clean, Format: cacheFormat, Objects: make(map[chain.ObjectID]objectStat, len(c.objects))}
	for id, o := range c.objects {
		st.Objects[id] = objectStat{Hits: o.hits, Last: o.last, ContentType: o.ctype, LeafBytes: o.leafBytes}
	}
	c.mu.Unlock()
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := writeSynced(c.dir, cacheStateFile, b); err != nil {
		return fmt.Errorf("distributor: cache state: %w", err)
	}
	return nil
}

// writeSynced writes b to file name in dir through a temporary file, synced
// before it is renamed into place, and syncs dir after.
func writeSynced(dir, name string, b []byte) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	serr := f.Sync()
	if err := errors.Join(werr, serr, f.Close()); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir syncs directory dir, so that the names made in it are on disk
// (where directories can be synced: not on Windows).
func syncDir(dir string) error {
	if !canSyncDirs {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
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

// put stores a verified block of obj, first making room for it under the
// bound (evicting other objects: a block that would fit only by evicting
// its own object is not cached, nor is one of an object no longer served).
// The block is written to tmp/ unlocked, then renamed into place and
// indexed under mu. A write that finds the disk full lowers the bound to
// what fits (shrink), makes room under it and tries again.
func (c *cache) put(obj chain.ObjectID, bc cid.Cid, data []byte) error {
	if c.holds(obj, bc) {
		return nil
	}
	n := int64(len(data))
	for try := 0; ; try++ {
		if !c.makeRoom(obj, n) {
			return nil
		}
		tmp, err := c.writeTemp(bc, data)
		if err != nil {
			c.unreserve(n)
			c.m.writeFailed(err)
			if fsutil.NoSpace(err) && try < 2 {
				// Evictions under way (another write's) free room
				// the disk does not show yet: try again once they did.
				c.waitFreed()
				c.shrink(try)
				continue
			}
			return err
		}
		placed, err := c.place(obj, bc, tmp, n)
		if !placed {
			_ = os.Remove(tmp)
		}
		if err != nil {
			c.m.writeFailed(err)
		}
		return err
	}
}

// writeTemp writes block bc (data) and its trailer to a new file in tmp/
// and returns its path; a failed write leaves no file.
func (c *cache) writeTemp(bc cid.Cid, data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), bc.String()+"-*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		_, werr = f.Write(trailer(data))
	}
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// place renames the block file tmp into place and indexes it, unless obj
// is no longer served or the block is cached already; it reports whether
// it took tmp. It gives back the n bytes makeRoom reserved.
func (c *cache) place(obj chain.ObjectID, bc cid.Cid, tmp string, n int64) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reserved -= n
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
		o = &cachedObject{blocks: map[cid.Cid]cachedBlock{}, last: time.Now(), hits: 1, gen: c.gens}
		c.objects[obj] = o
	}
	c.gens++
	o.blocks[bc] = cachedBlock{size: n, gen: c.gens}
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

// usage returns the bytes used, the bound, the objects held and the
// evictions so far.
func (c *cache) usage() (used, limit int64, objects int, evicted uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used, c.limit, len(c.objects), c.evicted
}

// diskUsage sums the block bytes of the block files (less their
// trailers), for tests.
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
			n += info.Size() - blockTrailer
		}
		return nil
	})
	return n, err
}
