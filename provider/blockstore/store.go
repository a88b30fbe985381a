package blockstore

// The Store itself: its fields, its options, Open and Close.

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/satchel-net/satchel/internal/fsutil"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/filter"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// Store keeps blocks (chunks and DAG nodes) in append-only pack files, and
// its index in goleveldb: block → size and place, object → manifest, bag →
// objects, references from objects and upload sessions to blocks, and the
// quarantine. It is safe for concurrent use.
//
// A block's record is appended to a pack and the pack fdatasynced before the
// index names it, so a crash never leaves an indexed block that is not whole
// on disk; Open after a crash reconciles the packs with the index (see
// Open).
type Store struct {
	dir string
	db  *leveldb.DB
	log *slog.Logger

	// gc orders additions against removals: everything that adds a block or
	// a reference takes it shared, everything that deletes blocks takes it
	// exclusively, so a block is never deleted between a caller checking it
	// is held and recording a reference to it.
	gc sync.RWMutex
	// stripes serialise the record and index operations on one CID.
	stripes [lockStripes]sync.Mutex
	seed    maphash.Seed
	// sessMu serialises read-modify-write of session records.
	sessMu sync.Mutex
	// commits writes the index batches of session adds, grouped.
	commits *groupCommit
	// refs lends iterators for the look-ups of object references.
	refs *refIters
	// packs holds the pack files blocks are written to and read from.
	packs *packSet
	// files stages and reads blocks with direct I/O where it can.
	files *fileIO

	blocks, bytes, objects, quarantined atomic.Int64
	// badSessions counts the session records the last expiry pass could
	// not decode (and so left alone).
	badSessions atomic.Int64

	// indexHook, if set, wraps every index batch write (tests).
	indexHook indexWriter
	// indexWalks counts Open's walks of the block index (tests).
	indexWalks int

	// indexFull is set once an index write failed for lack of space, and
	// lastKey is the first key of the last one that went through
	// (indexmend.go); mendMu lets one mend at a time, and guards when
	// the next may be tried after one failed (mendNext) and its error.
	indexFull atomic.Bool
	lastKey   atomic.Pointer[[]byte]
	mendMu    sync.Mutex
	mendNext  time.Time
	mendErr   error

	// frees counts the deletions freeing records outside gc (see
	// deleting): Close waits for them before closing the packs.
	frees sync.WaitGroup

	closed    atomic.Bool
	closeOnce sync.Once
	stop      chan struct{}
	done      sync.WaitGroup
}

// Option configures Open.
type Option func(*config)

type config struct {
	log            *slog.Logger
	expireInterval time.Duration
	now            func() time.Time
	directIO       bool
	packLimit      int64
	indexWrite     indexWriter
	packSync       packSyncer
	packRead       packReader
}

// withPackLimit sets the size at which the pack being written is rotated
// (default 1 GiB), for tests.
func withPackLimit(n int64) Option { return func(c *config) { c.packLimit = n } }

// WithLogger sets the logger (records carry component=blockstore). The
// default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithDirectIO sets whether blocks are written and read with direct
// I/O, bypassing the page cache (default true, on Linux). A file system
// that refuses it turns it off by itself.
func WithDirectIO(on bool) Option { return func(c *config) { c.directIO = on } }

// WithSessionExpiry makes the store delete expired upload sessions every
// interval in the background (see ExpireSessions); zero or negative disables
// it. The default is one minute.
func WithSessionExpiry(interval time.Duration) Option {
	return func(c *config) { c.expireInterval = interval }
}

// Open opens the store in dir, creating it if needed.
//
// If the store was not closed cleanly, Open reconciles the packs not yet
// sealed (and the block files of a store written before packs) with the
// index: a record the index does not name is indexed if it verifies against
// its CID (its Put had made it durable but the process died before the index
// write), torn and garbage records are punched out or cut off, and an index
// entry whose pack or file is missing or too short is dropped, so Has never
// claims a block that is not whole on disk. A pack with no live record is
// read before it is unlinked, and a record in it that verifies is indexed
// again. An index that lost entries (see openIndex) or went missing is
// rebuilt from every pack. Open refuses with ErrWrongPacks, changing
// nothing, when packs/ is not the store's (see checkIdentity).
func Open(dir string, opts ...Option) (*Store, error) {
	cfg := config{log: slog.Default(), expireInterval: time.Minute, now: time.Now, directIO: true,
		packLimit: defaultPackLimit}
	for _, o := range opts {
		o(&cfg)
	}
	noIndex, fresh, err := prepareDir(dir)
	if err != nil {
		return nil, err
	}
	_, err = os.Stat(filepath.Join(dir, cleanMarker))
	clean := err == nil
	log := cfg.log.With("component", "blockstore")
	db, err := openIndex(dir, !noIndex, clean, log)
	if err != nil {
		return nil, err
	}
	if noIndex {
		// index/ is new: its entry must survive a power loss with the
		// entries written to it.
		if err := fsutil.SyncDir(dir); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("blockstore: open %s: %w", dir, err)
		}
	}
	s := &Store{
		dir:       dir,
		db:        db,
		log:       log,
		seed:      maphash.MakeSeed(),
		stop:      make(chan struct{}),
		files:     newFileIO(cfg.directIO),
		indexHook: cfg.indexWrite,
		refs:      newRefIters(db),
	}
	s.commits = newGroupCommit(s.writeIndex)
	s.packs = newPackSet(filepath.Join(dir, packsDir), cfg.packLimit, s.files, s.seal, s.log)
	s.packs.syncHook = cfg.packSync
	s.packs.readHook = cfg.packRead
	if err := s.open(fresh, clean); err != nil {
		s.packs.close()
		_ = db.Close()
		return nil, err
	}
	s.seedIndex()
	if cfg.expireInterval > 0 {
		s.done.Add(1)
		go s.expireLoop(cfg.expireInterval, cfg.now)
	}
	return s, nil
}

// prepareDir creates the store's directories, durably, and tells whether
// the index is missing and, if so, whether the store is new (fresh): a
// missing index means a new store only when no pack and no legacy block
// file is there either (otherwise Open would unlink every pack as holding
// nothing live). An index missing from a store with blocks on disk is
// rebuilt from them: prepareDir leaves the reindex marker for Open.
func prepareDir(dir string) (noIndex, fresh bool, err error) {
	_, statErr := os.Stat(dir)
	created := errors.Is(statErr, fs.ErrNotExist)
	for _, d := range []string{packsDir, quarantineDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return false, false, fmt.Errorf("blockstore: open %s: %w", dir, err)
		}
	}
	if created {
		if err := fsutil.SyncDir(filepath.Dir(dir)); err != nil {
			return false, false, fmt.Errorf("blockstore: open %s: %w", dir, err)
		}
	}
	// packs/ may be new (a new store, or one from before packs): its
	// entry must survive a power loss before any pack in it is trusted.
	if err := fsutil.SyncDir(dir); err != nil {
		return false, false, fmt.Errorf("blockstore: open %s: %w", dir, err)
	}
	// CURRENT names the index's manifest: an index/ without it (its files
	// lost or wiped) is no index, and goleveldb would open it empty.
	_, statErr = os.Stat(filepath.Join(dir, indexDir, "CURRENT"))
	if statErr == nil {
		return false, false, nil
	}
	if !errors.Is(statErr, fs.ErrNotExist) {
		return false, false, fmt.Errorf("blockstore: open %s: %w", dir, statErr)
	}
	for _, d := range []string{packsDir, blocksDir} {
		entries, err := os.ReadDir(filepath.Join(dir, d))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, false, fmt.Errorf("blockstore: open %s: %w", dir, err)
		}
		if slices.ContainsFunc(entries, func(e fs.DirEntry) bool { return e.Name() != storeIDFile }) {
			// Marked before the index is created: a crash while
			// rebuilding must rebuild again, not take the packs not yet
			// read for a crash's leftovers.
			if err := writeMarker(filepath.Join(dir, reindexMarker)); err != nil {
				return false, false, fmt.Errorf("blockstore: open %s: %w", dir, err)
			}
			return true, false, nil
		}
	}
	return true, true, nil
}

// open reconciles the store's disk with its index and counts what it
// holds: nothing to reconcile in a new store (fresh) or one closed cleanly
// (clean); every pack and block file when the index is missing or damaged
// (the reindex marker). It lists the packs once and walks the block index
// once (walkBlocks), whatever it finds.
func (s *Store) open(fresh, clean bool) error {
	_, err := os.Stat(filepath.Join(s.dir, reindexMarker))
	reindex := err == nil
	reconcile, err := s.cleanStart(fresh, clean, reindex)
	if err != nil {
		return err
	}
	nums, sizes, err := s.packs.list()
	if err != nil {
		return fmt.Errorf("blockstore: open: %w", err)
	}
	sealed, err := s.sealedPacks()
	if err != nil {
		return fmt.Errorf("blockstore: open: %w", err)
	}
	w := &openWalk{reconcile: reconcile, all: reindex, sizes: sizes, sealed: sealed}
	if err := s.walkBlocks(w); err != nil {
		return err
	}
	// Nothing changed on disk yet: refuse here if packs/ is not ours.
	if err := s.checkIdentity(w.missing, len(nums)); err != nil {
		return err
	}
	if err := s.clearClean(); err != nil {
		return err
	}
	if err := s.damagedExtents(w); err != nil {
		return err
	}
	if err := s.dropEntries(w); err != nil {
		return err
	}
	if reconcile {
		if err := s.recover(w, nums, reindex); err != nil {
			return err
		}
	}
	if err := s.scanDeadPacks(w, nums, !reconcile || reindex, reindex); err != nil {
		return err
	}
	if err := s.countObjects(); err != nil {
		return err
	}
	if err := s.settlePacks(nums, sealed, w.maxNamed); err != nil {
		return err
	}
	if reindex {
		if err := os.Remove(filepath.Join(s.dir, reindexMarker)); err != nil {
			return fmt.Errorf("blockstore: open: %w", err)
		}
		return fsutil.SyncDir(s.dir)
	}
	return nil
}

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Close stops the background session expiry, waits for it, and closes the
// index, marking the store as closed cleanly unless an index write failed
// (the next Open then reconciles). Calls after Close fail with
// ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		s.done.Wait()
		// Wait for writers in progress.
		s.gc.Lock()
		defer s.gc.Unlock()
		s.frees.Wait() // no deletion starts one while gc is held
		// One synced write before the marker: it makes the journal, with
		// any index write before it, durable, so a power loss after a
		// clean close cannot drop an entry that the marker then keeps Open
		// from reconciling.
		// Every write has finished (gc): the packs not sealed yet are,
		// but for those with a record whose index write failed.
		var b leveldb.Batch
		inDoubt := s.sealRest(&b)
		s.packs.trimActive()
		s.packs.close()
		s.refs.close()
		b.Delete(syncKey)
		err = s.writeIndex(&b, true)
		if cerr := s.db.Close(); err == nil {
			err = cerr
		}
		if err == nil && s.commits.err() == nil && !inDoubt {
			// After a failed index write, records may lie in the packs
			// unindexed: leave the marker out so the next Open reconciles
			// (it scans the packs left unsealed).
			err = writeMarker(filepath.Join(s.dir, cleanMarker))
		}
	})
	return err
}

// indexOptions are the block index's goleveldb options: a bloom filter of 10
// bits per key in every table, so that looking up a key the index does not
// hold (every new chunk's Has, a session reference not made yet) reads no
// table block once the tables outgrow the block cache; ~1 % false
// positives. Tables written without it (older indexes) are still read.
//
// The manifest is read strictly: goleveldb would otherwise skip a damaged
// manifest record and lose the tables it named without a word (see
// openIndex).
func indexOptions() *opt.Options {
	return &opt.Options{Filter: filter.NewBloomFilter(10), Strict: opt.DefaultStrict | opt.StrictManifest}
}
