package blockstore

// Telling a damaged index from a torn one before goleveldb opens it.
// goleveldb, at its default strictness, skips a journal block whose
// checksum fails and opens without a word: the entries in it are gone, and
// Open would then take the packs they named for dead. A torn tail (the
// last write, cut by a crash before it was acknowledged) is normal; damage
// anywhere else means acknowledged entries were lost, and Open then
// re-reads every pack (see reindexMarker).

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// goleveldb's journal format: 32 KiB blocks of chunks, each a masked
// CRC-32C (of its type and payload), a 16-bit length and a type (full,
// first, middle, last).
const (
	journalBlock  = 32 << 10
	journalHeader = 7
)

// journalName matches goleveldb's journal files (not its text LOG).
var journalName = regexp.MustCompile(`^[0-9]{6}\.log$`)

// journalDamage reports where the goleveldb journals in index dir are
// damaged beyond a torn tail, or "" if they are not. After a clean close
// (clean) even a torn tail is damage: Close synced every write.
func journalDamage(dir string, clean bool) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", dir, err)
	}
	var names []string
	for _, e := range entries {
		if journalName.MatchString(e.Name()) && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names) // zero-padded numbers: the newest last
	for i, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Errorf("read %s: %w", name, err)
		}
		bad := firstBadChunk(b)
		if bad < 0 {
			continue
		}
		// Only the newest journal can have been torn by a crash, and a
		// torn write is the last thing in it: a whole chunk after the bad
		// one was written after it.
		if clean || i < len(names)-1 || wholeChunkAfter(b, bad) {
			return fmt.Sprintf("%s: bad chunk at byte %d of %d", name, bad, len(b)), nil
		}
	}
	return "", nil
}

// firstBadChunk returns the offset of the first chunk of journal b that
// does not verify, or -1.
func firstBadChunk(b []byte) int {
	for base := 0; base < len(b); base += journalBlock {
		blk := b[base:min(base+journalBlock, len(b))]
		for i := 0; i+journalHeader <= len(blk); {
			n, ok := chunkAt(blk, i)
			if !ok {
				return base + i
			}
			i += n
		}
	}
	return -1
}

// wholeChunkAfter reports whether a chunk that verifies starts anywhere in
// journal b after offset bad.
func wholeChunkAfter(b []byte, bad int) bool {
	for q := bad + 1; q < len(b); q++ {
		base := q - q%journalBlock
		if _, ok := chunkAt(b[base:min(base+journalBlock, len(b))], q-base); ok {
			return true
		}
	}
	return false
}

// chunkAt returns the length of the chunk at i of journal block blk, and
// whether it is whole and verifies.
func chunkAt(blk []byte, i int) (int, bool) {
	if i+journalHeader > len(blk) {
		return 0, false
	}
	sum := binary.LittleEndian.Uint32(blk[i:])
	n := int(binary.LittleEndian.Uint16(blk[i+4:]))
	typ := blk[i+6]
	if typ < 1 || typ > 4 || i+journalHeader+n > len(blk) {
		return 0, false
	}
	return journalHeader + n, util.NewCRC(blk[i+6:i+journalHeader+n]).Value() == sum
}

// openIndex opens the index in dir/index. Damage that goleveldb would
// skip without a word (a journal chunk that fails its checksum other than
// in a torn tail; a damaged manifest, then rebuilt from the tables) is
// logged and leaves the reindex marker, before goleveldb rewrites the
// evidence: Open then re-reads every pack (see Store.open). exists says
// the index is there (prepareDir found its CURRENT), clean that the store
// was closed cleanly.
func openIndex(dir string, exists, clean bool, log *slog.Logger) (*leveldb.DB, error) {
	path := filepath.Join(dir, indexDir)
	if exists {
		damage, err := journalDamage(path, clean)
		if err != nil {
			return nil, fmt.Errorf("blockstore: open index in %s: %w", dir, err)
		}
		if damage != "" {
			log.Error("the index journal is damaged: entries in it are lost; every pack will be read again", "damage", damage)
			if err := writeMarker(filepath.Join(dir, reindexMarker)); err != nil {
				return nil, fmt.Errorf("blockstore: open index in %s: %w", dir, err)
			}
		}
	}
	db, err := leveldb.OpenFile(path, indexOptions())
	if lerrors.IsCorrupted(err) {
		log.Error("the index manifest is damaged: rebuilding it from the index tables; every pack will be read again", "err", err)
		if err := writeMarker(filepath.Join(dir, reindexMarker)); err != nil {
			return nil, fmt.Errorf("blockstore: open index in %s: %w", dir, err)
		}
		db, err = leveldb.RecoverFile(path, indexOptions())
	}
	if err != nil {
		return nil, fmt.Errorf("blockstore: open index in %s: %w", dir, err)
	}
	return db, nil
}
