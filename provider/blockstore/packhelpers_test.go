package blockstore

// Helpers for tests that look at or damage the bytes of blocks on disk.

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

// stored returns the bytes block c has on disk where Locate places them.
func stored(t testing.TB, s *Store, c cid.Cid) []byte {
	t.Helper()
	path, off, size, err := s.Locate(c)
	if err != nil {
		t.Fatalf("Locate %s: %v", c, err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, size)
	n, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return buf[:n]
}

// overwrite writes data over block c's bytes on disk, in place.
func overwrite(t testing.TB, s *Store, c cid.Cid, data []byte) {
	t.Helper()
	path, off, _, err := s.Locate(c)
	if err != nil {
		t.Fatalf("Locate %s: %v", c, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

// recordsOf counts the records naming c whose header is still on disk in
// the packs (punched ones read as zeros and do not count), plus 1 for a
// legacy file of c.
func recordsOf(t testing.TB, s *Store, c cid.Cid) int {
	t.Helper()
	n := 0
	if _, err := os.Stat(s.legacyPath(c)); err == nil {
		n++
	}
	nums, _, err := s.packs.list()
	if err != nil {
		t.Fatal(err)
	}
	for _, pn := range nums {
		raw, err := os.ReadFile(s.packs.path(pn))
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+hdrSize <= len(raw); {
			h, err := decodeHeader(raw[off : off+hdrSize])
			if err != nil {
				off += hdrSize
				continue
			}
			if h.c.Equals(c) {
				n++
			}
			off += int(recordLen(h.size))
		}
	}
	return n
}

// checkNoRecord fails unless nothing of block c is left on disk. Where
// the file system cannot punch holes (the store, which tried, found out:
// packSet.noPunch) a freed record stays until its pack dies: the test is
// skipped there.
func checkNoRecord(t testing.TB, s *Store, c cid.Cid) {
	t.Helper()
	if n := recordsOf(t, s, c); n != 0 {
		if s.packs.noPunch.Load() {
			t.Skip("the file system cannot punch holes: freed records stay until their pack dies")
		}
		t.Fatalf("%d records or files of block %s left on disk; want none", n, c)
	}
}

// putLegacy stores block c as a store written before packs did: a file
// blocks/<shard>/<cid> and an index entry without a pack location (without
// a CRC too, if noCRC).
func putLegacy(t testing.TB, s *Store, c cid.Cid, data []byte, at time.Time, noCRC bool) {
	t.Helper()
	path := s.legacyPath(c)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	v := blockRecord{size: uint64(len(data)), storedAt: at, crc: blockCRC(data), hasCRC: true}.encode()
	if noCRC {
		v = v[:blockRecordNoCRC]
	}
	if err := s.db.Put(blockKey(c), v, nil); err != nil {
		t.Fatal(err)
	}
	// Counted as Open would.
	s.blocks.Add(1)
	s.bytes.Add(int64(len(data)))
}

// equalBytes fails unless got is want.
func equalBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes that differ from the %d expected", what, len(got), len(want))
	}
}

// crash closes s as a crash would leave it: no pack sealed by Close, no
// final synced write, no CLEAN marker (what was written before is on disk:
// every write of the store reached the kernel). Close afterwards does
// nothing.
func crash(t testing.TB, s *Store) {
	t.Helper()
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		s.done.Wait()
		s.gc.Lock()
		defer s.gc.Unlock()
		s.frees.Wait()
		s.packs.close()
		s.refs.close()
		if err := s.db.Close(); err != nil {
			t.Fatal(err)
		}
	})
}
