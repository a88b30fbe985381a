package node

import (
	"bytes"
	"crypto/sha256"
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

	"github.com/satchel-net/satchel/chain/state"
	"github.com/satchel-net/satchel/internal/fsutil"
)

// SnapshotsDir is where a node keeps its state snapshots, under its home.
// Each snapshot is a directory named by its height holding its chunks
// (000000.chunk, ...) and manifest.json (height, format, chunk hashes),
// written under a .tmp name and renamed when complete, so a node that
// stops mid-write keeps only whole snapshots. The last keepSnapshots stay;
// older ones are deleted.
const SnapshotsDir = "data/snapshots"

// snapshotManifest describes a snapshot on disk.
type snapshotManifest struct {
	Height      int64    `json:"height"`
	Format      uint32   `json:"format"`
	ChunkHashes [][]byte `json:"chunkHashes"`
}

// hash is sha256 over the chunks' sha256 hashes, in order (as
// state.Snapshot.Hash).
func (m snapshotManifest) hash() []byte {
	h := sha256.New()
	for _, c := range m.ChunkHashes {
		h.Write(c)
	}
	return h.Sum(nil)
}

// snapshotStore keeps snapshots on disk, the newest keep of them.
type snapshotStore struct {
	dir  string
	keep int
	log  *slog.Logger

	mu   sync.Mutex
	kept []snapshotManifest // oldest first
}

// openSnapshotStore opens (or creates) dir, deletes any snapshot left
// half-written or unreadable, and keeps the newest keep.
func openSnapshotStore(dir string, keep int, log *slog.Logger) (*snapshotStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state snapshots: %w", err)
	}
	s := &snapshotStore{dir: dir, keep: keep, log: log}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("state snapshots: %w", err)
	}
	for _, e := range ents {
		path := filepath.Join(dir, e.Name())
		h, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || !e.IsDir() {
			if strings.HasSuffix(e.Name(), ".tmp") {
				os.RemoveAll(path) // a write the node did not finish
			}
			continue
		}
		m, err := readManifest(path)
		if err != nil || m.Height != h || m.Format != state.SnapshotFormat {
			log.Warn("deleting an unreadable state snapshot", "dir", path, "err", err)
			os.RemoveAll(path)
			continue
		}
		s.kept = append(s.kept, m)
	}
	slices.SortFunc(s.kept, func(a, b snapshotManifest) int { return int(a.Height - b.Height) })
	s.mu.Lock()
	s.prune()
	s.mu.Unlock()
	return s, nil
}

func readManifest(dir string) (snapshotManifest, error) {
	var m snapshotManifest
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(b, &m)
}

func (s *snapshotStore) heightDir(h int64) string {
	return filepath.Join(s.dir, strconv.FormatInt(h, 10))
}

func chunkName(i int) string { return fmt.Sprintf("%06d.chunk", i) }

// has reports whether the snapshot of height h is kept.
func (s *snapshotStore) has(h int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.ContainsFunc(s.kept, func(m snapshotManifest) bool { return m.Height == h })
}

// list returns the kept snapshots, oldest first.
func (s *snapshotStore) list() []snapshotManifest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.kept)
}

// write exports m's committed state into a new snapshot, chunk by chunk,
// and keeps it.
func (s *snapshotStore) write(m snapshotter) error {
	tmp, err := os.MkdirTemp(s.dir, "snapshot-*.tmp")
	if err != nil {
		return fmt.Errorf("state snapshot: %w", err)
	}
	defer os.RemoveAll(tmp) // gone once renamed
	man := snapshotManifest{Format: state.SnapshotFormat}
	man.Height, err = m.ExportSnapshot(func(c []byte) error {
		h := sha256.Sum256(c)
		man.ChunkHashes = append(man.ChunkHashes, h[:])
		return writeFileSync(filepath.Join(tmp, chunkName(len(man.ChunkHashes)-1)), c)
	})
	if err != nil {
		return err
	}
	b, err := json.Marshal(man)
	if err == nil {
		err = writeFileSync(filepath.Join(tmp, "manifest.json"), b)
	}
	if err != nil {
		return fmt.Errorf("state snapshot at height %d: %w", man.Height, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	final := s.heightDir(man.Height)
	if err := os.RemoveAll(final); err != nil {
		return fmt.Errorf("state snapshot at height %d: %w", man.Height, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("state snapshot at height %d: %w", man.Height, err)
	}
	_ = fsutil.SyncDir(s.dir) // best effort: the chunks themselves are synced
	s.kept = slices.DeleteFunc(s.kept, func(m snapshotManifest) bool { return m.Height == man.Height })
	s.kept = append(s.kept, man)
	slices.SortFunc(s.kept, func(a, b snapshotManifest) int { return int(a.Height - b.Height) })
	s.prune()
	return nil
}

// prune deletes the oldest snapshots beyond keep; the caller holds s.mu.
func (s *snapshotStore) prune() {
	for len(s.kept) > s.keep {
		if err := os.RemoveAll(s.heightDir(s.kept[0].Height)); err != nil {
			s.log.Warn("deleting an old state snapshot failed", "height", s.kept[0].Height, "err", err)
		}
		s.kept = s.kept[1:]
	}
}

// errNoChunk is returned for a chunk of no kept snapshot.
var errNoChunk = errors.New("no such snapshot chunk")

// chunk reads chunk i of the snapshot of height h, checked against its
// manifest.
func (s *snapshotStore) chunk(h int64, i int) ([]byte, error) {
	s.mu.Lock()
	k := slices.IndexFunc(s.kept, func(m snapshotManifest) bool { return m.Height == h })
	var want []byte
	if k >= 0 && i >= 0 && i < len(s.kept[k].ChunkHashes) {
		want = s.kept[k].ChunkHashes[i]
	}
	s.mu.Unlock()
	if want == nil {
		return nil, errNoChunk
	}
	b, err := os.ReadFile(filepath.Join(s.heightDir(h), chunkName(i)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoChunk // pruned meanwhile
	}
	if err != nil {
		return nil, err
	}
	if got := sha256.Sum256(b); !bytes.Equal(got[:], want) {
		return nil, fmt.Errorf("chunk %d of the snapshot at height %d is corrupt on disk", i, h)
	}
	return b, nil
}

// writeFileSync writes b to path and syncs it.
func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}
