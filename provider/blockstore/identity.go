package blockstore

// The store's identity: a random ID kept both in the index and in
// packs/STORE-ID, so that Open knows packs/ for this store's before it
// trusts what is (not) in it. An empty mount point, a disk mounted late or
// another store's packs must not make Open drop the index entries of
// packs it cannot see (the next Open, with the packs back, would find
// them named by nothing).

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/satchel-net/satchel/internal/fsutil"
	"github.com/syndtr/goleveldb/leveldb"
)

// storeIDFile is the identity file in packs/.
const storeIDFile = "STORE-ID"

// storeIDKey is the identity's index key.
var storeIDKey = []byte{pMeta, 'i', 'd'}

// ErrWrongPacks is returned by Open when packs/ is not this store's (its
// identity file is missing or names another store) and the index names
// packs that are not in it: most likely the disk holding packs/ is not
// mounted. Nothing was changed.
var ErrWrongPacks = errors.New("blockstore: packs/ is not this store's")

// checkIdentity checks, before Open changes anything, that packs/ is this
// store's: the identity in the index and the one in packs/ match. A store
// from before identities gets one, unless its index names packs of which
// none is on disk; an index rebuilt (or lost) takes the one in packs/; an
// identity file lost while every pack named is there is written again.
// missing are the packs entries name that are not on disk.
func (s *Store) checkIdentity(missing map[uint32]int, onDisk int) error {
	path := filepath.Join(s.dir, packsDir, storeIDFile)
	inFile, ferr := os.ReadFile(path)
	if ferr != nil && !errors.Is(ferr, os.ErrNotExist) {
		return fmt.Errorf("blockstore: open: %w", ferr)
	}
	inFile = bytes.TrimSpace(inFile)
	inIndex, ierr := s.db.Get(storeIDKey, nil)
	if ierr != nil && !errors.Is(ierr, leveldb.ErrNotFound) {
		return fmt.Errorf("blockstore: open: %w", ierr)
	}
	haveFile, haveIndex := ferr == nil && len(inFile) > 0, ierr == nil
	switch {
	case haveFile && haveIndex && bytes.Equal(inFile, inIndex):
		return nil
	case haveFile && haveIndex:
		return fmt.Errorf("%w: %s names store %s, the index store %s; %s",
			ErrWrongPacks, path, inFile, inIndex, missingText(missing))
	case haveFile:
		return s.writeStoreID(inFile, false)
	case len(missing) > 0 && (haveIndex || onDisk == 0):
		id := "a new one"
		if haveIndex {
			id = fmt.Sprintf("%q", inIndex)
		}
		return fmt.Errorf("%w: %s is missing and %s; is its disk mounted? (if packs/ is really this store's and the packs are lost, write %s to %s)",
			ErrWrongPacks, path, missingText(missing), id, path)
	case haveIndex:
		s.log.Warn("the store's identity file was missing: written again", "path", path)
		return s.writeStoreID(inIndex, true)
	default:
		id := make([]byte, 16)
		_, _ = rand.Read(id)
		return s.writeStoreID([]byte(hex.EncodeToString(id)), true)
	}
}

// writeStoreID writes id durably to the index and, with toFile, first to
// packs/STORE-ID (a crash between leaves the file, which the next Open
// takes).
func (s *Store) writeStoreID(id []byte, toFile bool) error {
	if toFile {
		path := filepath.Join(s.dir, packsDir, storeIDFile)
		if err := fsutil.WriteFileAtomic(path, append(bytes.Clone(id), '\n'), 0o644); err != nil {
			return fmt.Errorf("blockstore: open: write %s: %w", path, err)
		}
	}
	var b leveldb.Batch
	b.Put(storeIDKey, id)
	if err := s.writeIndex(&b, true); err != nil {
		return fmt.Errorf("blockstore: open: %w", err)
	}
	return nil
}

// missingText names the packs index entries name that are not on disk.
func missingText(missing map[uint32]int) string {
	if len(missing) == 0 {
		return "no index entry names a missing pack"
	}
	nums := make([]uint32, 0, len(missing))
	entries := 0
	for n, k := range missing {
		nums = append(nums, n)
		entries += k
	}
	slices.Sort(nums)
	names := make([]string, 0, min(len(nums), 10))
	for _, n := range nums[:min(len(nums), 10)] {
		names = append(names, packName(n))
	}
	more := ""
	if len(nums) > 10 {
		more = fmt.Sprintf(" and %d more", len(nums)-10)
	}
	return fmt.Sprintf("%d index entries name %d packs not on disk (%v%s)", entries, len(nums), names, more)
}
