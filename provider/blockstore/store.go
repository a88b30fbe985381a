package blockstore

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/chunker"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// RecoveredTTL is how long blocks found on disk without an index entry after
// a crash (a Put whose index write the crash lost) are kept unless an object
// references them.
const RecoveredTTL = 24 * time.Hour

// The session that holds blocks recovered after a crash.
var recoveredSession = []byte("\x00recovered")

const recoveredBag = "\x00recovered"

// Layout of a store's directory.
const (
	indexDir      = "index"      // goleveldb: the index, never block bytes
	blocksDir     = "blocks"     // blocks/<shard>/<cid>
	tmpDir        = "tmp"        // temp files being written; emptied on Open
	quarantineDir = "quarantine" // corrupt blocks set aside
	cleanMarker   = "CLEAN"      // present while closed cleanly
	lockStripes   = 64
)

// Store keeps blocks (chunks and DAG nodes) in files, one file per block, and
// its index in goleveldb: block → size, object → manifest, bag → objects,
// references from objects and upload sessions to blocks, and the quarantine.
// It is safe for concurrent use.
//
// A block is written to a temp file, fsynced, renamed into place and its
// directory fsynced before the index names it, so a crash never leaves an
// indexed block that is not whole on disk; Open after a crash reconciles the
// files with the index (see Open).
type Store struct {
	dir string
	db  *leveldb.DB
	log *slog.Logger

	// gc orders additions against removals: everything that adds a block or
	// a reference takes it shared, everything that deletes blocks takes it
	// exclusively, so a block is never deleted between a caller checking it
	// is held and recording a reference to it.
	gc sync.RWMutex
	// stripes serialise the file and index operations on one CID.
	stripes [lockStripes]sync.Mutex
	seed    maphash.Seed
	// sessMu serialises read-modify-write of session records.
	sessMu sync.Mutex
	// commits writes the index batches of session adds, grouped.
	commits *groupCommit
	// shards holds the names of the blocks/ shard directories known durable.
	shards sync.Map
	// files writes and reads block files, with direct I/O where it can.
	files *fileIO

	blocks, bytes, objects, quarantined atomic.Int64

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
}

// WithLogger sets the logger (records carry component=blockstore). The
// default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithDirectIO sets whether block files are written and read with direct
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
// Stray temp files are removed. If the store was not closed cleanly, Open
// reconciles the block files with the index: a block file the index does not
// name is indexed if it verifies against its CID (its Put had made it durable
// but the process died before the index write) and deleted otherwise, and an
// index entry whose file is missing is dropped, so Has never claims a block
// that is not whole on disk.
func Open(dir string, opts ...Option) (*Store, error) {
	cfg := config{log: slog.Default(), expireInterval: time.Minute, now: time.Now, directIO: true}
	for _, o := range opts {
		o(&cfg)
	}
	for _, d := range []string{blocksDir, tmpDir, quarantineDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("blockstore: open %s: %w", dir, err)
		}
	}
	_, statErr := os.Stat(filepath.Join(dir, indexDir))
	fresh := errors.Is(statErr, fs.ErrNotExist)
	db, err := leveldb.OpenFile(filepath.Join(dir, indexDir), &opt.Options{})
	if err != nil {
		return nil, fmt.Errorf("blockstore: open index in %s: %w", dir, err)
	}
	s := &Store{
		dir:   dir,
		db:    db,
		log:   cfg.log.With("component", "blockstore"),
		seed:  maphash.MakeSeed(),
		stop:  make(chan struct{}),
		files: newFileIO(cfg.directIO),
	}
	s.commits = newGroupCommit(db)
	if err := s.loadShards(); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := s.recover(fresh); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := s.loadStats(); err != nil {
		_ = db.Close()
		return nil, err
	}
	if cfg.expireInterval > 0 {
		s.done.Add(1)
		go s.expireLoop(cfg.expireInterval, cfg.now)
	}
	return s, nil
}

// recover empties tmp/ and, after an unclean shutdown of an existing store,
// reconciles block files with the index.
func (s *Store) recover(fresh bool) error {
	tmp := filepath.Join(s.dir, tmpDir)
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return fmt.Errorf("blockstore: open: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(tmp, e.Name())); err != nil {
			return fmt.Errorf("blockstore: open: remove stray temp file: %w", err)
		}
	}
	marker := filepath.Join(s.dir, cleanMarker)
	if fresh {
		return nil
	}
	if _, err := os.Stat(marker); err == nil {
		// Closed cleanly: every Put had finished, nothing to reconcile.
		if err := os.Remove(marker); err != nil {
			return fmt.Errorf("blockstore: open: %w", err)
		}
		return syncDir(s.dir)
	}
	start := time.Now()
	indexed, recovered, dropped, removed := 0, 0, 0, 0
	var recoveredBytes uint64
	// Files the index does not name.
	err = filepath.WalkDir(filepath.Join(s.dir, blocksDir), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		c, perr := cid.Decode(d.Name())
		if perr != nil {
			removed++
			return os.Remove(path)
		}
		ok, err := s.db.Has(blockKey(c), nil)
		if err != nil || ok {
			return err
		}
		data, err := s.files.read(path)
		if err != nil && !errors.Is(err, errBlockFileTooLarge) {
			return err
		}
		if err != nil || chunker.VerifyChunk(c, data) != nil {
			removed++
			return os.Remove(path)
		}
		indexed++
		var b leveldb.Batch
		b.Put(blockKey(c), encodeBlockRecord(uint64(len(data)), time.Now()))
		// An object that references the block (its manifest is written
		// synchronously, so that reference survived) keeps it and deletes
		// it with itself. Otherwise the session references written with
		// the lost index entry are lost too: keep the block in the
		// recovery session, so it is collected unless an object claims it
		// before the session expires.
		claimed, err := s.hasPrefix(objectRefPrefix(c))
		if err != nil {
			return err
		}
		if !claimed {
			b.Put(sessBlockKey(recoveredSession, c), encodeU64(uint64(len(data))))
			b.Put(sessRefKey(c, recoveredSession), nil)
			recovered++
			recoveredBytes += uint64(len(data))
		}
		return s.db.Write(&b, &opt.WriteOptions{Sync: true})
	})
	if err != nil {
		return fmt.Errorf("blockstore: open: reconcile block files: %w", err)
	}
	if recovered > 0 {
		_, _, prev, err := s.sessionRecord(recoveredSession)
		if err != nil && !errors.Is(err, leveldb.ErrNotFound) {
			return fmt.Errorf("blockstore: open: %w", err)
		}
		rec := encodeSession(recoveredBag, time.Now().Add(RecoveredTTL), prev+recoveredBytes)
		if err := s.db.Put(sessionKey(recoveredSession), rec, &opt.WriteOptions{Sync: true}); err != nil {
			return fmt.Errorf("blockstore: open: %w", err)
		}
	}
	// Index entries whose file is missing.
	it := s.db.NewIterator(util.BytesPrefix([]byte{pBlock}), nil)
	var missing [][]byte
	for it.Next() {
		c, err := cid.Cast(it.Key()[1:])
		if err != nil {
			missing = append(missing, bytes.Clone(it.Key()))
			continue
		}
		if _, err := os.Stat(s.blockPath(c)); err != nil {
			missing = append(missing, bytes.Clone(it.Key()))
		}
	}
	it.Release()
	if err := it.Error(); err != nil {
		return fmt.Errorf("blockstore: open: reconcile index: %w", err)
	}
	if len(missing) > 0 {
		var b leveldb.Batch
		for _, k := range missing {
			b.Delete(k)
		}
		if err := s.db.Write(&b, &opt.WriteOptions{Sync: true}); err != nil {
			return fmt.Errorf("blockstore: open: reconcile index: %w", err)
		}
		dropped = len(missing)
	}
	s.log.Info("recovered after an unclean shutdown", "indexed_files", indexed, "unclaimed_files", recovered,
		"removed_files", removed, "dropped_entries", dropped, "took", time.Since(start))
	return nil
}

// loadStats counts blocks, bytes, objects and quarantined blocks.
func (s *Store) loadStats() error {
	it := s.db.NewIterator(util.BytesPrefix([]byte{pBlock}), nil)
	for it.Next() {
		size, _, err := decodeBlockRecord(it.Value())
		if err != nil {
			continue
		}
		s.blocks.Add(1)
		s.bytes.Add(int64(size))
	}
	it.Release()
	if err := it.Error(); err != nil {
		return fmt.Errorf("blockstore: open: count blocks: %w", err)
	}
	n, err := s.countPrefix([]byte{pManifest})
	if err != nil {
		return err
	}
	s.objects.Store(int64(n))
	n, err = s.countPrefix([]byte{pQuarantine})
	if err != nil {
		return err
	}
	s.quarantined.Store(int64(n))
	return nil
}

func (s *Store) countPrefix(p []byte) (int, error) {
	it := s.db.NewIterator(util.BytesPrefix(p), nil)
	defer it.Release()
	n := 0
	for it.Next() {
		n++
	}
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("blockstore: %w", err)
	}
	return n, nil
}

func (s *Store) expireLoop(interval time.Duration, now func() time.Time) {
	defer s.done.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if n, err := s.ExpireSessions(now()); err != nil {
				s.log.Warn("expiring upload sessions failed", "err", err)
			} else if n > 0 {
				s.log.Info("expired upload sessions", "sessions", n)
			}
		}
	}
}

// blockPath is where block c's file lives: blocks/<shard>/<cid>, the shard
// being the next-to-last two characters of the CID's base32 text (as IPFS's
// flatfs does), which spreads blocks over 32×32 directories.
func (s *Store) blockPath(c cid.Cid) string {
	name := c.String()
	return filepath.Join(s.dir, blocksDir, shardOf(name), name)
}

func shardOf(name string) string {
	if len(name) < 3 {
		return "__"
	}
	return strings.ToLower(name[len(name)-3 : len(name)-1])
}

func (s *Store) stripe(c cid.Cid) *sync.Mutex {
	return &s.stripes[maphash.Bytes(s.seed, c.Bytes())%lockStripes]
}

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Has reports whether the store holds block c (indexed, not quarantined).
func (s *Store) Has(c cid.Cid) (bool, error) {
	if err := s.checkOpen(); err != nil {
		return false, err
	}
	ok, err := s.db.Has(blockKey(c), nil)
	if err != nil {
		return false, fmt.Errorf("blockstore: has %s: %w", c, err)
	}
	return ok, nil
}

// Size returns the size of block c, or an error wrapping ErrNotFound.
func (s *Store) Size(c cid.Cid) (uint64, error) {
	rec, err := s.blockRecord(c)
	if err != nil {
		return 0, err
	}
	return rec.size, nil
}

// StoredAt returns when block c was first stored, or an error wrapping
// ErrNotFound.
func (s *Store) StoredAt(c cid.Cid) (time.Time, error) {
	rec, err := s.blockRecord(c)
	if err != nil {
		return time.Time{}, err
	}
	return rec.storedAt, nil
}

type blockRecord struct {
	size     uint64
	storedAt time.Time
}

func (s *Store) blockRecord(c cid.Cid) (blockRecord, error) {
	if err := s.checkOpen(); err != nil {
		return blockRecord{}, err
	}
	v, err := s.db.Get(blockKey(c), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return blockRecord{}, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	if err != nil {
		return blockRecord{}, fmt.Errorf("blockstore: %s: %w", c, err)
	}
	size, at, err := decodeBlockRecord(v)
	if err != nil {
		return blockRecord{}, fmt.Errorf("blockstore: %s: %w", c, err)
	}
	return blockRecord{size, at}, nil
}

// Get returns block c. It verifies the bytes against c on every read: a block
// that no longer matches is quarantined (moved aside, no longer held) and Get
// returns an error wrapping ErrCorrupt. A block not held gives an error
// wrapping ErrNotFound.
func (s *Store) Get(c cid.Cid) ([]byte, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	ok, err := s.db.Has(blockKey(c), nil)
	if err != nil {
		return nil, fmt.Errorf("blockstore: get %s: %w", c, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	data, err := s.files.read(s.blockPath(c))
	if errors.Is(err, errBlockFileTooLarge) {
		return nil, s.quarantine(c, err.Error())
	}
	if errors.Is(err, fs.ErrNotExist) {
		// Deleted between the index lookup and the read, or lost: either
		// way not held.
		if ok, _ := s.db.Has(blockKey(c), nil); !ok {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, c)
		}
		return nil, s.quarantine(c, "file missing")
	}
	if err != nil {
		return nil, fmt.Errorf("blockstore: get %s: %w", c, err)
	}
	if verr := chunker.VerifyChunk(c, data); verr != nil {
		return nil, s.quarantine(c, verr.Error())
	}
	return data, nil
}

// quarantine sets a corrupt block aside: its file moves to quarantine/, its
// index entry is dropped and it is listed by Quarantined until a good copy is
// Put. It returns the error Get reports.
func (s *Store) quarantine(c cid.Cid, why string) error {
	s.gc.Lock()
	defer s.gc.Unlock()
	mu := s.stripe(c)
	mu.Lock()
	defer mu.Unlock()

	path := s.blockPath(c)
	// A good copy may have been Put since the failed read.
	if data, err := s.files.read(path); err == nil && chunker.VerifyChunk(c, data) == nil {
		return fmt.Errorf("%w: %s: read a corrupt copy that was since replaced; read again", ErrCorrupt, c)
	}
	rec, recErr := s.blockRecord(c)
	if err := os.Rename(path, filepath.Join(s.dir, quarantineDir, c.String())); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("cannot move a corrupt block aside", "cid", c, "err", err)
	}
	var b leveldb.Batch
	b.Delete(blockKey(c))
	b.Put(quarantineKey(c), encodeU64(uint64(time.Now().Unix())))
	wasQuarantined, _ := s.db.Has(quarantineKey(c), nil)
	if err := s.db.Write(&b, &opt.WriteOptions{Sync: true}); err != nil {
		return fmt.Errorf("%w: %s: %s (and quarantining it failed: %v)", ErrCorrupt, c, why, err)
	}
	if recErr == nil {
		s.blocks.Add(-1)
		s.bytes.Add(-int64(rec.size))
	}
	if !wasQuarantined {
		s.quarantined.Add(1)
	}
	s.log.Warn("corrupt block quarantined", "cid", c, "why", why)
	return fmt.Errorf("%w: %s: %s; quarantined, fetch it again from a peer", ErrCorrupt, c, why)
}

// Put stores block c durably. It first checks that data hashes to c (an error
// wrapping ErrCIDMismatch if not, and nothing is stored). When Put returns nil
// the bytes are fsynced in their final place and indexed by a synced write.
// Putting a block already
// held does nothing; putting a quarantined block's good bytes repairs it.
func (s *Store) Put(c cid.Cid, data []byte) error {
	return s.put(c, data, nil)
}

// put stores a block and, in the same index batch, whatever extra adds (a
// session reference), under the shared gc lock.
func (s *Store) put(c cid.Cid, data []byte, extra func(b *leveldb.Batch) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := chunker.VerifyChunk(c, data); err != nil {
		return fmt.Errorf("blockstore: put: %w", err)
	}
	if extra != nil {
		// A session put ends in a grouped index write: after one failed,
		// none is attempted, so do not leave a file for it either.
		if err := s.commits.err(); err != nil {
			return fmt.Errorf("blockstore: put %s: the index failed a write earlier (%v); restart the node", c, err)
		}
	}
	s.gc.RLock()
	defer s.gc.RUnlock()
	return s.putLocked(c, data, extra)
}

// putLocked is put for a block already verified against c, with gc held
// shared.
func (s *Store) putLocked(c cid.Cid, data []byte, extra func(b *leveldb.Batch) error) error {
	held, err := s.db.Has(blockKey(c), nil)
	if err != nil {
		return fmt.Errorf("blockstore: put %s: %w", c, err)
	}
	var tmp string
	if !held {
		// The expensive part, outside the CID's lock.
		if tmp, err = s.writeTemp(data); err != nil {
			return fmt.Errorf("blockstore: put %s: %w", c, err)
		}
		defer os.Remove(tmp) // no-op once renamed
	}

	mu := s.stripe(c)
	mu.Lock()
	defer mu.Unlock()
	var b leveldb.Batch
	added := false
	if held, err = s.db.Has(blockKey(c), nil); err != nil {
		return fmt.Errorf("blockstore: put %s: %w", c, err)
	}
	if !held {
		if tmp == "" { // deleted since the first look
			if tmp, err = s.writeTemp(data); err != nil {
				return fmt.Errorf("blockstore: put %s: %w", c, err)
			}
			defer os.Remove(tmp)
		}
		path := s.blockPath(c)
		if err := s.ensureShard(filepath.Dir(path)); err != nil {
			return fmt.Errorf("blockstore: put %s: %w", c, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("blockstore: put %s: %w", c, err)
		}
		if err := syncDir(filepath.Dir(path)); err != nil {
			return fmt.Errorf("blockstore: put %s: %w", c, err)
		}
		b.Put(blockKey(c), encodeBlockRecord(uint64(len(data)), time.Now()))
		b.Delete(quarantineKey(c))
		added = true
	}
	wasQuarantined := false
	if added {
		wasQuarantined, _ = s.db.Has(quarantineKey(c), nil)
	}
	if extra != nil {
		// extra writes the batch, with its own additions, itself.
		if err := extra(&b); err != nil {
			if added {
				// Nothing indexes the file just renamed in (the stripe
				// keeps others out): take it back rather than leave it
				// for a crash recovery that a clean restart never runs.
				_ = os.Remove(s.blockPath(c))
			}
			return err
		}
	} else if b.Len() > 0 {
		// Synced, so the block is held when Put returns: Open after a crash
		// would index a block file whose entry was lost, but only into the
		// recovery session, which expires.
		if err := s.db.Write(&b, &opt.WriteOptions{Sync: true}); err != nil {
			return fmt.Errorf("blockstore: put %s: index: %w", c, err)
		}
	}
	if added {
		s.blocks.Add(1)
		s.bytes.Add(int64(len(data)))
		if wasQuarantined {
			s.quarantined.Add(-1)
			_ = os.Remove(filepath.Join(s.dir, quarantineDir, c.String()))
		}
	}
	return nil
}

// ensureShard creates shard directory dir if the store has not seen it yet,
// and fsyncs blocks/ so the new directory, and the blocks renamed into it,
// survive a power loss. Concurrent first Puts into one shard each sync
// blocks/ before it is marked known, so none returns before it is durable.
func (s *Store) ensureShard(dir string) error {
	name := filepath.Base(dir)
	if _, ok := s.shards.Load(name); ok {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := syncDir(filepath.Join(s.dir, blocksDir)); err != nil {
		return err
	}
	s.shards.Store(name, struct{}{})
	return nil
}

// loadShards marks the shard directories present as known, after fsyncing
// blocks/ once so those that exist now are durable.
func (s *Store) loadShards() error {
	blocks := filepath.Join(s.dir, blocksDir)
	entries, err := os.ReadDir(blocks)
	if err != nil {
		return fmt.Errorf("blockstore: open: %w", err)
	}
	if err := syncDir(blocks); err != nil {
		return fmt.Errorf("blockstore: open: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			s.shards.Store(e.Name(), struct{}{})
		}
	}
	return nil
}

// writeTemp writes data to a new fsynced temp file and returns its path.
func (s *Store) writeTemp(data []byte) (string, error) {
	return s.files.writeNew(filepath.Join(s.dir, tmpDir), data)
}

// syncDir fsyncs a directory so the entries renamed into it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Delete removes block c, whatever references it. Deleting a block not held
// does nothing.
func (s *Store) Delete(c cid.Cid) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	s.gc.Lock()
	defer s.gc.Unlock()
	return s.deleteBlocks([]cid.Cid{c})
}

// deleteBlocks drops the index entries of those of cs the store holds in one
// durable write, then their files. Call with gc held exclusively, which
// keeps out everything else that writes a block's file or index entry (they
// take gc before a CID's stripe), so no stripe is needed.
//
// One fsync for the lot, not one per block: deleting an object of a few
// hundred chunks is one index write. A crash before it leaves every block
// indexed and whole; a crash between it and the unlinks leaves files the
// index does not name, which Open recovers into the recovery session and
// so deletes after RecoveredTTL.
func (s *Store) deleteBlocks(cs []cid.Cid) error {
	var errs []error
	var batch leveldb.Batch
	dead := make([]cid.Cid, 0, len(cs))
	var freed uint64
	for _, c := range cs {
		rec, err := s.blockRecord(c)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		batch.Delete(blockKey(c))
		dead = append(dead, c)
		freed += rec.size
	}
	if len(dead) == 0 {
		return errors.Join(errs...)
	}
	if err := s.db.Write(&batch, &opt.WriteOptions{Sync: true}); err != nil {
		return errors.Join(append(errs, fmt.Errorf("blockstore: delete %d blocks: %w", len(dead), err))...)
	}
	s.blocks.Add(-int64(len(dead)))
	s.bytes.Add(-int64(freed))
	for _, c := range dead {
		if err := os.Remove(s.blockPath(c)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("blockstore: delete %s: %w", c, err))
		}
	}
	return errors.Join(errs...)
}

// Quarantined lists the blocks set aside as corrupt and not repaired since.
func (s *Store) Quarantined() ([]cid.Cid, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	it := s.db.NewIterator(util.BytesPrefix([]byte{pQuarantine}), nil)
	defer it.Release()
	var out []cid.Cid
	for it.Next() {
		c, err := cid.Cast(bytes.Clone(it.Key()[1:]))
		if err != nil {
			continue
		}
		out = append(out, c)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("blockstore: quarantined: %w", err)
	}
	return out, nil
}

// Stats counts what the store holds.
func (s *Store) Stats() Stats {
	return Stats{
		Blocks:      uint64(max(s.blocks.Load(), 0)),
		Bytes:       uint64(max(s.bytes.Load(), 0)),
		Objects:     uint64(max(s.objects.Load(), 0)),
		Quarantined: uint64(max(s.quarantined.Load(), 0)),
	}
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Close stops the background session expiry, waits for it, and closes the
// index, marking the store as closed cleanly. Calls after Close fail with
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
		// One synced write before the marker: it makes the journal, with
		// any index write before it, durable, so a power loss after a
		// clean close cannot drop an entry that the marker then keeps Open
		// from reconciling.
		var b leveldb.Batch
		b.Delete(syncKey)
		err = s.db.Write(&b, &opt.WriteOptions{Sync: true})
		if cerr := s.db.Close(); err == nil {
			err = cerr
		}
		if err == nil && s.commits.err() == nil {
			// After a failed index write, block files may lie in blocks/
			// unindexed: leave the marker out so the next Open reconciles.
			err = writeMarker(filepath.Join(s.dir, cleanMarker))
		}
	})
	return err
}

func writeMarker(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// AllBlocks calls fn with every block the store holds and its size, in index
// order, until fn returns an error, which AllBlocks then returns.
func (s *Store) AllBlocks(fn func(c cid.Cid, size uint64) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	it := s.db.NewIterator(util.BytesPrefix([]byte{pBlock}), nil)
	defer it.Release()
	for it.Next() {
		c, err := cid.Cast(bytes.Clone(it.Key()[1:]))
		if err != nil {
			continue
		}
		size, _, err := decodeBlockRecord(it.Value())
		if err != nil {
			continue
		}
		if err := fn(c, size); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("blockstore: list blocks: %w", err)
	}
	return nil
}
