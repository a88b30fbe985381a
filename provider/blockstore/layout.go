package blockstore

// The store's directory on disk: its layout, where a block's bytes live,
// and the clean-close marker.

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/internal/fsutil"
)

// Layout of a store's directory.
const (
	indexDir      = "index"      // goleveldb: the index, never block bytes
	packsDir      = "packs"      // packs/<8-digit n>.pack: the blocks
	blocksDir     = "blocks"     // blocks/<shard>/<cid>: blocks stored before packs
	tmpDir        = "tmp"        // temp files of stores before packs; emptied on Open
	quarantineDir = "quarantine" // corrupt blocks set aside
	cleanMarker   = "CLEAN"      // present while closed cleanly
	reindexMarker = "REINDEX"    // present while the index is known damaged or lost: Open re-reads every pack
	// unpunchedMarker, in packs/, is present once a freed record was left
	// in its pack unpunched (a file system without holes, or a punch that
	// failed): a pack the index names nothing in may then hold deleted
	// blocks, so Open unlinks such packs without reading them back in.
	unpunchedMarker = "UNPUNCHED"
	lockStripes     = 64
)

// legacyPath is where block c's file lives if it was stored before packs:
// blocks/<shard>/<cid>, the shard being the next-to-last two characters of
// the CID's base32 text (as IPFS's flatfs does).
func (s *Store) legacyPath(c cid.Cid) string {
	name := c.String()
	return filepath.Join(s.dir, blocksDir, shardOf(name), name)
}

func shardOf(name string) string {
	if len(name) < 3 {
		return "__"
	}
	return strings.ToLower(name[len(name)-3 : len(name)-1])
}

// Locate tells where block c's bytes are on disk: the file, the offset of
// the block's first byte in it and the block's length. A block in a pack
// file (packs/<n>.pack) starts after its record's header; a block stored
// before packs is a whole file of its own (blocks/<shard>/<cid>, offset 0).
// It is for operators and tests that need to look at or damage the bytes;
// the file may be unlinked, or the range punched, by a deletion at any
// time. A block not held gives an error wrapping ErrNotFound.
func (s *Store) Locate(c cid.Cid) (path string, off int64, size int64, err error) {
	rec, err := s.blockRecord(c)
	if err != nil {
		return "", 0, 0, err
	}
	if !rec.packed {
		return s.legacyPath(c), 0, int64(rec.size), nil
	}
	return s.packs.path(rec.pack), rec.off + hdrSize, int64(rec.size), nil
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
