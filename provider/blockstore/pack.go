package blockstore

// Pack files: where blocks live. A pack is an append-only file of records
// (packrecord.go); writers reserve their record's place under a short lock
// and write it outside it, one fdatasync of the pack covering every write
// finished before it started. Deleted records are punched out of their
// pack; a pack with no live record left, once no longer written to, is
// unlinked.

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/internal/fsutil"
)

// defaultPackLimit is the size at which the pack being written is rotated.
const defaultPackLimit = 1 << 30

// maxOpenPacks bounds the packs kept open for reading (two descriptors
// each): a store of many terabytes has thousands of packs.
const maxOpenPacks = 128

// packSet owns a store's pack files: the one being appended to, the open
// files of the others, and how many live (indexed) records each holds.
type packSet struct {
	dir   string
	limit int64
	io    *fileIO
	// sealed is told, outside mu, of each pack rotated out once its last
	// write has finished: every record in it is then indexed or punched.
	sealed func(n uint32)
	// noPunch is set once the file system refuses to punch holes: space
	// then comes back only with whole packs.
	noPunch atomic.Bool
	// unpunched is set once unpunchedMarker was written in this run.
	unpunched atomic.Bool
	// noAlloc is set once the file system refuses to allocate ahead
	// (packalloc.go): writes then extend the pack.
	noAlloc atomic.Bool
	// space reads the free and total bytes of the packs' file system,
	// which bound allocating ahead (packalloc.go).
	space func() (free, total uint64, err error)
	// room refuses records that would leave the index too little space
	// (headroom.go).
	room *headroom
	log  *slog.Logger
	// syncHook, if set, wraps every fdatasync of a pack, and readHook
	// every read of one (tests).
	syncHook packSyncer
	readHook packReader

	mu      sync.Mutex
	open    map[uint32]*pack
	maxOpen int
	live    map[uint32]int64
	// inDoubt holds the packs that took a record whose index write
	// failed (see commitInDoubt): never sealed, so the next Open scans
	// them.
	inDoubt map[uint32]bool
	// kept holds the packs with a record of a block quarantined without
	// a copy set aside (see forget): never unlinked while the store is
	// open; Open reads them before it unlinks them.
	kept   map[uint32]bool
	active *pack
	next   uint32
	closed bool
}

// pack is one open pack file.
type pack struct {
	n    uint32
	path string
	f    *os.File // buffered: ranged reads, punching, fdatasync, fallback
	df   *os.File // opened with O_DIRECT, or nil
	// Guarded by packSet.mu: the end of the reserved space; the writes
	// between their reservation and their finish; the readers and freers
	// holding it (acquire); gone once out of the open map, its files
	// closed by the last holder.
	end     int64
	pending int
	refs    int
	gone    bool
	sync    groupSync
	// Guarded by packSet.mu: how far the file is allocated ahead
	// (alloc), a writer allocating more (packalloc.go).
	alloc      int64
	allocating bool
	// allocNext is the reserved end below which no allocation is tried
	// (one was refused or failed).
	allocNext int64
}

// packName is the file name of pack n.
func packName(n uint32) string { return fmt.Sprintf("%08d.pack", n) }

// parsePackName returns the number of a pack file's name.
func parsePackName(name string) (uint32, bool) {
	num, ok := strings.CutSuffix(name, ".pack")
	if !ok || len(num) != 8 {
		return 0, false
	}
	n, err := strconv.ParseUint(num, 10, 32)
	return uint32(n), err == nil
}

func newPackSet(dir string, limit int64, io *fileIO, sealed func(uint32), log *slog.Logger) *packSet {
	ps := &packSet{dir: dir, limit: limit, io: io, sealed: sealed, log: log,
		space: func() (uint64, uint64, error) { return fsutil.Space(dir) },
		open:  map[uint32]*pack{}, maxOpen: maxOpenPacks, live: map[uint32]int64{}, inDoubt: map[uint32]bool{},
		kept: map[uint32]bool{},
		next: 1}
	ps.room = newHeadroom(ps.roomSpace)
	return ps
}

// list returns the numbers and sizes of the pack files on disk, in order.
func (ps *packSet) list() ([]uint32, map[uint32]int64, error) {
	entries, err := os.ReadDir(ps.dir)
	if err != nil {
		return nil, nil, err
	}
	var nums []uint32
	sizes := map[uint32]int64{}
	for _, e := range entries {
		n, ok := parsePackName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, nil, err
		}
		nums = append(nums, n)
		sizes[n] = info.Size()
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	return nums, sizes, nil
}

// path is the path of pack n.
func (ps *packSet) path(n uint32) string { return filepath.Join(ps.dir, packName(n)) }

// acquire returns open pack n, opening its files if needed, and holds it
// open until release; a pack that does not exist gives an error wrapping
// fs.ErrNotExist.
func (ps *packSet) acquire(n uint32) (*pack, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		return nil, ErrClosed
	}
	p := ps.open[n]
	if p == nil {
		var err error
		if p, err = ps.openLocked(n, 0); err != nil {
			return nil, err
		}
		p.refs++ // before evicting, which closes what no one holds
		ps.evictLocked()
		return p, nil
	}
	p.refs++
	return p, nil
}

// release lets go of a pack acquire returned.
func (ps *packSet) release(p *pack) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p.refs--; p.refs == 0 && p.gone {
		p.close()
	}
}

// evictLocked closes packs no one holds, is writing or may write, until at
// most three quarters of maxOpen are open. Call with mu held.
func (ps *packSet) evictLocked() {
	if len(ps.open) <= ps.maxOpen {
		return
	}
	for n, p := range ps.open {
		if len(ps.open) <= ps.maxOpen*3/4 {
			return
		}
		if p != ps.active && p.pending == 0 && p.refs == 0 {
			delete(ps.open, n)
			p.close()
		}
	}
}

// openLocked opens pack n's files (with flag, O_CREATE|O_EXCL for a new
// pack) and keeps them in the open map. Call with mu held.
func (ps *packSet) openLocked(n uint32, flag int) (*pack, error) {
	p := &pack{n: n, path: ps.path(n)}
	p.sync.init()
	f, err := os.OpenFile(p.path, os.O_RDWR|flag, 0o644)
	if err != nil {
		return nil, err
	}
	p.f = f
	if ps.io.direct.Load() {
		df, err := os.OpenFile(p.path, os.O_RDWR|oDirect, 0)
		switch {
		case errors.Is(err, syscall.EINVAL):
			ps.io.direct.Store(false) // the file system refuses direct I/O
		case err != nil:
			_ = f.Close()
			return nil, err
		default:
			p.df = df
		}
	}
	ps.open[n] = p
	return p, nil
}

func (p *pack) close() {
	_ = p.f.Close()
	if p.df != nil {
		_ = p.df.Close()
	}
}

// packWrite is a record written and synced but not yet indexed: the caller
// indexes it and calls commit, or gives up and calls discard, then finish.
type packWrite struct {
	p    *pack
	off  int64
	n    int64
	live bool // committed: finish counts it live
}

// write appends the record of block c to the active pack and returns once
// it is durable (fdatasync, grouped with concurrent writers). On error
// nothing of it remains (its space is punched).
func (ps *packSet) write(c cid.Cid, data []byte, crc uint32) (*packWrite, error) {
	n := recordLen(uint64(len(data)))
	if err := ps.roomFor(n); err != nil {
		return nil, err
	}
	buf, release := ps.io.stagingBuf(int(n))
	buf = buf[:n]
	encodeHeader(buf[:hdrSize], c, uint64(len(data)), crc)
	clear(buf[hdrSize+copy(buf[hdrSize:], data):])
	p, off, grow, err := ps.reserve(n)
	if err != nil {
		release()
		return nil, err
	}
	w := &packWrite{p: p, off: off, n: n}
	ps.allocate(p, grow)
	err = ps.pwrite(p, buf, off) // its error names the pack
	release()
	if err == nil {
		if err = p.sync.do(func() error { return ps.syncPack(p.f) }); err != nil {
			err = fmt.Errorf("fdatasync %s: %w", p.path, err)
		}
	}
	if err != nil {
		ps.discard(w)
		ps.finish(w)
		return nil, err
	}
	return w, nil
}

// reserve returns the pack and offset where a record of n bytes goes,
// rotating to a new pack when the active one would grow past the limit,
// and the space of the pack the caller allocates before it writes, if any
// (allocAheadLocked).
func (ps *packSet) reserve(n int64) (*pack, int64, allocExtent, error) {
	ps.mu.Lock()
	var seal []uint32
	var rotated *pack
	defer func() {
		ps.mu.Unlock()
		if rotated != nil {
			ps.trimTail(rotated) // before it is sealed: a sealed pack is never cut
		}
		for _, s := range seal {
			ps.sealed(s)
		}
	}()
	if ps.closed {
		return nil, 0, allocExtent{}, ErrClosed
	}
	a := ps.active
	if a == nil || a.sync.failed() != nil || (a.end > 0 && a.end+n > ps.limit) {
		if a != nil {
			ps.active = nil
			rotated = a
			switch {
			case a.pending == 0 && ps.live[a.n] == 0 && ps.open[a.n] == a:
				ps.unlinkLocked(a) // everything in it was deleted meanwhile
			case a.pending == 0 && !ps.inDoubt[a.n]:
				seal = append(seal, a.n)
			}
		}
		var err error
		if a, err = ps.createLocked(); err != nil {
			return nil, 0, allocExtent{}, err
		}
	}
	off := a.end
	a.end += n
	a.pending++
	return a, off, ps.allocAheadLocked(a), nil
}

// createLocked creates the next pack and makes its name durable (packs/
// fsynced) before any record in it can be acknowledged. Call with mu held.
func (ps *packSet) createLocked() (*pack, error) {
	n := ps.next
	ps.next++
	p, err := ps.openLocked(n, os.O_CREATE|os.O_EXCL)
	if err != nil {
		return nil, fmt.Errorf("create pack: %w", err)
	}
	if err := fsutil.SyncDir(ps.dir); err != nil {
		delete(ps.open, n)
		p.close()
		_ = os.Remove(p.path)
		return nil, fmt.Errorf("create pack: %w", err)
	}
	ps.active = p
	return p, nil
}

// pwrite writes buf at off, directly when it can; a refusal of direct I/O
// (EINVAL) turns it off for the store and writes through the page cache.
func (ps *packSet) pwrite(p *pack, buf []byte, off int64) error {
	if p.df != nil && ps.io.direct.Load() {
		_, err := p.df.WriteAt(buf, off)
		if !errors.Is(err, syscall.EINVAL) {
			return err
		}
		ps.io.direct.Store(false)
	}
	_, err := p.f.WriteAt(buf, off)
	return err
}

// commit marks w's record live (its index entry is written), to be counted
// so by finish, under the same lock: a Put takes the set's lock twice,
// to reserve and to finish. Counting it late is safe: the record cannot be
// freed before finish (freeing takes the gc lock exclusively, the Put holds
// it shared), and the pack is not unlinked while the write is pending.
func (ps *packSet) commit(w *packWrite) { w.live = true }

// commitInDoubt is commit for a record whose index write failed: its entry
// may have reached the index (goleveldb journals a batch before syncing
// it) or not. Counted live, it keeps its pack; the pack is never sealed
// (in this Open), so the next Open scans it and indexes the record if its
// entry was lost. Close leaves the clean marker out for that scan to run.
func (ps *packSet) commitInDoubt(w *packWrite) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	w.live = true
	ps.inDoubt[w.p.n] = true
}

// doubted returns the packs that took a record whose index write failed.
func (ps *packSet) doubted() map[uint32]bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return maps.Clone(ps.inDoubt)
}

// discard punches out w's record, which nothing indexes.
func (ps *packSet) discard(w *packWrite) { ps.punch(w.p, w.off, w.n) }

// finish ends w, counting its record live if committed: once the last
// write of a pack rotated out has finished, the pack is sealed (unless a
// record in it is in doubt: see commitInDoubt), and unlinked if no record
// in it is live.
func (ps *packSet) finish(w *packWrite) {
	ps.mu.Lock()
	p := w.p
	if w.live {
		ps.live[p.n]++
	}
	p.pending--
	last := p.pending == 0 && ps.active != p
	dead := last && ps.live[p.n] == 0 && ps.open[p.n] == p && !ps.kept[p.n]
	if dead {
		ps.unlinkLocked(p)
	}
	seal := last && !dead && !ps.inDoubt[p.n]
	ps.mu.Unlock()
	if seal {
		ps.sealed(p.n)
	}
}

// free punches out the record of block c at rec's place, whose index
// entry was dropped, and unlinks the pack when it was its last live record.
// It punches only a record whose header names c and rec's size: an entry
// gone stale must not punch another block's live record. Deletions call it
// without the store's gc lock (see Store.deleting): its header read must
// not hold up Puts.
func (ps *packSet) free(c cid.Cid, rec blockRecord) error {
	n := rec.pack
	p, err := ps.acquire(n)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer ps.release(p)
	ps.mu.Lock()
	ps.live[n]--
	dead := ps.live[n] <= 0 && p != ps.active && p.pending == 0 && ps.open[n] == p && !ps.kept[n]
	if dead {
		ps.unlinkLocked(p)
	}
	ps.mu.Unlock()
	if dead {
		return nil
	}
	if err := ps.holds(p, rec.off, c, rec.size); err != nil {
		ps.log.Warn("not punching a record whose header does not name the block freed", "cid", c,
			"pack", packName(n), "off", rec.off, "err", err)
		ps.leftUnpunched()
		return nil
	}
	ps.punch(p, rec.off, recordLen(rec.size))
	return nil
}

// forget counts a record of pack n dead without punching it (its bytes
// are the only copy of a block quarantined without one set aside), and
// keeps the pack from being unlinked until Open has read it again.
func (ps *packSet) forget(n uint32) {
	ps.mu.Lock()
	ps.live[n]--
	ps.kept[n] = true
	ps.mu.Unlock()
}

// holds returns nil if the record at off in pack p is block c's, of size
// bytes, as its header says.
func (ps *packSet) holds(p *pack, off int64, c cid.Cid, size uint64) error {
	h, err := ps.readHeader(p, off)
	switch {
	case err != nil:
		return err
	case !h.c.Equals(c) || h.size != size:
		return fmt.Errorf("the header names %s of %d bytes", h.c, h.size)
	}
	return nil
}

// punch frees a record's space in its pack (a hole that reads as zeros),
// where the file system can.
func (ps *packSet) punch(p *pack, off, length int64) {
	if ps.noPunch.Load() {
		ps.leftUnpunched()
		return
	}
	err := punchHole(p.f, off, length)
	if err != nil {
		ps.leftUnpunched()
	}
	switch {
	case errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, errors.ErrUnsupported):
		// The space comes back with the whole pack.
		if !ps.noPunch.Swap(true) {
			ps.log.Info("the file system cannot punch holes: a deleted block's space comes back only with its whole pack", "err", err)
		}
	case err != nil:
		ps.log.Warn("cannot punch a record out of its pack: its space comes back with the whole pack",
			"pack", packName(p.n), "off", off, "err", err)
	}
}

// leftUnpunched records, once per run and durably, that a freed record
// stays readable in its pack (unpunchedMarker), so that no later Open
// reads a deleted block back in from a pack the index names nothing in.
func (ps *packSet) leftUnpunched() {
	if ps.unpunched.Swap(true) {
		return
	}
	if err := writeMarker(filepath.Join(ps.dir, unpunchedMarker)); err != nil {
		ps.log.Warn("cannot record that a deleted block's bytes stay in its pack; delete the packs the index names nothing in by hand if deleted blocks come back after a restart",
			"err", err)
	}
}

// unlinkLocked removes pack p, none of whose records is live. Call with mu
// held. Its files close once its last holder releases it.
func (ps *packSet) unlinkLocked(p *pack) {
	delete(ps.open, p.n)
	delete(ps.live, p.n)
	delete(ps.inDoubt, p.n)
	p.gone = true
	if p.refs == 0 {
		p.close()
	}
	if err := os.Remove(p.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Open unlinks it (no live record) next time.
		ps.log.Warn("cannot remove a dead pack", "pack", packName(p.n), "err", err)
	}
}

// close closes every pack's files; the set refuses work afterwards.
func (ps *packSet) close() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.closed = true
	for _, p := range ps.open {
		p.close()
	}
	clear(ps.open)
	ps.active = nil
}

// remove unlinks pack n, closing its files if open.
func (ps *packSet) remove(n uint32) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p := ps.open[n]; p != nil {
		ps.unlinkLocked(p)
		return nil
	}
	delete(ps.live, n)
	return os.Remove(ps.path(n))
}

// numbers lists the packs on disk.
func (ps *packSet) numbers() []uint32 {
	nums, _, _ := ps.list()
	return nums
}
