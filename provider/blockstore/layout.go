package blockstore

// The store's directory on disk: its layout, where a block's file lives,
// shard directories, temp files, and the fsyncs that make renames and
// new entries durable.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/internal/fsutil"
)

// Layout of a store's directory.
const (
	indexDir      = "index"      // goleveldb: the index, never block bytes
	blocksDir     = "blocks"     // blocks/<shard>/<cid>
	tmpDir        = "tmp"        // temp files being written; emptied on Open
	quarantineDir = "quarantine" // corrupt blocks set aside
	cleanMarker   = "CLEAN"      // present while closed cleanly
	lockStripes   = 64
)

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
	if err := fsutil.SyncDir(filepath.Join(s.dir, blocksDir)); err != nil {
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
	if err := fsutil.SyncDir(blocks); err != nil {
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
	return fsutil.SyncDir(filepath.Dir(path))
}
