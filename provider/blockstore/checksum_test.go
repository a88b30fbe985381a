package blockstore

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/syndtr/goleveldb/leveldb/opt"

	"github.com/satchel-net/satchel/chunker"
)

// record reads block c's raw index entry.
func record(t *testing.T, s *Store, c cid.Cid) blockRecord {
	t.Helper()
	rec, err := s.blockRecord(c)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// setRecord overwrites block c's index entry with v.
func setRecord(t *testing.T, s *Store, c cid.Cid, v []byte) {
	t.Helper()
	if err := s.db.Put(blockKey(c), v, &opt.WriteOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
}

func quarantined(t *testing.T, s *Store, c cid.Cid) bool {
	t.Helper()
	q, err := s.Quarantined()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range q {
		if x.Equals(c) {
			return true
		}
	}
	return false
}

// TestGetFastChecksCRC: a Put records the block's CRC-32C; GetFast serves
// the block against it, and refuses and quarantines a block whose bytes
// were damaged on disk. The scrub's Get catches a damaged block GetFast
// never read.
func TestGetFastChecksCRC(t *testing.T) {
	s := openTest(t, t.TempDir())
	a, b := randBytes(11, 300_000), randBytes(12, 1<<20)
	ca, cb := chunker.ChunkCID(a), chunker.ChunkCID(b)
	for _, blk := range []struct {
		c    cid.Cid
		data []byte
	}{{ca, a}, {cb, b}} {
		if err := s.Put(blk.c, blk.data); err != nil {
			t.Fatal(err)
		}
		if rec := record(t, s, blk.c); !rec.hasCRC || rec.crc != blockCRC(blk.data) {
			t.Fatalf("index entry of %s: CRC %08x (kept %v), want %08x", blk.c, rec.crc, rec.hasCRC, blockCRC(blk.data))
		}
		if got, err := s.GetFast(blk.c); err != nil || !bytes.Equal(got, blk.data) {
			t.Fatalf("GetFast = %d bytes, %v", len(got), err)
		}
	}

	for i, c := range []cid.Cid{ca, cb} {
		data := [][]byte{a, b}[i]
		bad := bytes.Clone(data)
		bad[len(bad)/3] ^= 0x01 // one flipped bit
		overwrite(t, s, c, bad)
	}
	// Serving: refused and quarantined.
	if _, err := s.GetFast(ca); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("GetFast of a damaged block: %v, want ErrCorrupt", err)
	}
	if ok, _ := s.Has(ca); ok || !quarantined(t, s, ca) {
		t.Fatalf("damaged block served by GetFast: held %v, quarantined %v; want set aside", ok, quarantined(t, s, ca))
	}
	// Scrub (Get, the full hash): the other damaged block, never served.
	if _, err := s.Get(cb); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of a damaged block: %v, want ErrCorrupt", err)
	}
	if ok, _ := s.Has(cb); ok || !quarantined(t, s, cb) {
		t.Fatal("damaged block found by Get is not quarantined")
	}
	if st := s.Stats(); st.Blocks != 0 || st.Quarantined != 2 {
		t.Fatalf("Stats = %+v", st)
	}
	// A good copy repairs it, CRC and all.
	if err := s.Put(ca, a); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetFast(ca); err != nil || !bytes.Equal(got, a) {
		t.Fatalf("GetFast after repair: %v", err)
	}
}

// TestGetFastChecksOnlyTheCRC: what the serving path costs is the CRC, not
// the hash: bytes that match the recorded CRC are served even though they
// do not match the CID (which the receiver checks), while the scrub's Get
// hashes them and quarantines the block.
func TestGetFastChecksOnlyTheCRC(t *testing.T) {
	s := openTest(t, t.TempDir())
	data := randBytes(13, 200_000)
	c := chunker.ChunkCID(data)
	if err := s.Put(c, data); err != nil {
		t.Fatal(err)
	}
	other := randBytes(14, len(data))
	overwrite(t, s, c, other)
	rec := record(t, s, c)
	rec.crc = blockCRC(other)
	setRecord(t, s, c, rec.encode())
	if got, err := s.GetFast(c); err != nil || !bytes.Equal(got, other) {
		t.Fatalf("GetFast = %d bytes, %v; want the bytes the CRC matches", len(got), err)
	}
	if err := chunker.VerifyChunk(c, other); !errors.Is(err, chunker.ErrCIDMismatch) {
		t.Fatalf("the receiver's check: %v, want a CID mismatch", err)
	}
	if _, err := s.Get(c); !errors.Is(err, ErrCorrupt) || !quarantined(t, s, c) {
		t.Fatalf("Get (scrub) = %v, quarantined %v; want ErrCorrupt and quarantined", err, quarantined(t, s, c))
	}
}

// TestGetFastBlocksWithoutCRC: a block indexed before the store kept CRCs
// is hashed on its first serving read and gets its CRC then; one damaged
// before that is caught by the hash.
func TestGetFastBlocksWithoutCRC(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	good, bad := randBytes(15, 500_000), randBytes(16, 500_000)
	cg, cb := chunker.ChunkCID(good), chunker.ChunkCID(bad)
	at := time.Unix(1_700_000_000, 0)
	for _, blk := range []struct {
		c    cid.Cid
		data []byte
	}{{cg, good}, {cb, bad}} {
		// Entries without a CRC are from before packs: legacy files.
		putLegacy(t, s, blk.c, blk.data, at, true)
		if rec := record(t, s, blk.c); rec.hasCRC || rec.size != uint64(len(blk.data)) || !rec.storedAt.Equal(at) {
			t.Fatalf("old-format entry read as %+v", rec)
		}
	}
	if got, err := s.GetFast(cg); err != nil || !bytes.Equal(got, good) {
		t.Fatalf("GetFast of a block without CRC: %v", err)
	}
	if rec := record(t, s, cg); !rec.hasCRC || rec.crc != blockCRC(good) || !rec.storedAt.Equal(at) {
		t.Fatalf("after a verified read the entry is %+v; want the CRC added, the rest kept", rec)
	}
	// Survives a reopen (and the stats count the old and new entries).
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	if st := s.Stats(); st.Blocks != 2 || st.Bytes != uint64(len(good)+len(bad)) {
		t.Fatalf("Stats after reopen = %+v", st)
	}
	if rec := record(t, s, cg); !rec.hasCRC {
		t.Fatal("CRC lost on reopen")
	}

	damaged := bytes.Clone(bad)
	damaged[100] ^= 0x80
	overwrite(t, s, cb, damaged)
	if _, err := s.GetFast(cb); !errors.Is(err, ErrCorrupt) || !quarantined(t, s, cb) {
		t.Fatalf("GetFast of a damaged block without CRC = %v; want ErrCorrupt and quarantined", err)
	}
}

// TestGetFastRewritesDamagedCRC: when the recorded CRC is what is wrong
// (the bytes still match the CID), GetFast serves the block and records
// the right CRC; nothing is quarantined.
func TestGetFastRewritesDamagedCRC(t *testing.T) {
	s := openTest(t, t.TempDir())
	data := randBytes(17, 64<<10)
	c := chunker.ChunkCID(data)
	if err := s.Put(c, data); err != nil {
		t.Fatal(err)
	}
	rec := record(t, s, c)
	rec.crc ^= 0xdeadbeef
	setRecord(t, s, c, rec.encode())
	if got, err := s.GetFast(c); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetFast = %v", err)
	}
	if rec := record(t, s, c); rec.crc != blockCRC(data) {
		t.Fatalf("CRC %08x after the read, want %08x", rec.crc, blockCRC(data))
	}
	if quarantined(t, s, c) {
		t.Fatal("a good block with a damaged CRC was quarantined")
	}
}

// BenchmarkGetFast compares a serving read (CRC-32C) with a verified one
// (sha2-256) of 1 MiB blocks from the same files (MB/s; the files sit in
// the page cache or are read with direct I/O alike in both).
func BenchmarkGetFast(b *testing.B) {
	s, err := Open(b.TempDir(), WithSessionExpiry(0), WithLogger(discard))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	const n = 64
	cids := make([]cid.Cid, n)
	for i := range cids {
		data := randBytes(uint64(100+i), 1<<20)
		cids[i] = chunker.ChunkCID(data)
		if err := s.Put(cids[i], data); err != nil {
			b.Fatal(err)
		}
	}
	for _, m := range []struct {
		name string
		get  func(cid.Cid) ([]byte, error)
	}{{"crc", s.GetFast}, {"sha256", s.Get}} {
		b.Run(m.name, func(b *testing.B) {
			b.SetBytes(1 << 20)
			for i := 0; b.Loop(); i++ {
				if _, err := m.get(cids[i%n]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRecycle: buffers handed back after GetFast are reused by later reads
// without mixing blocks up, and a slice the store did not hand out (not
// aligned) is ignored rather than pooled, so direct I/O keeps working.
func TestRecycle(t *testing.T) {
	s := openTest(t, t.TempDir())
	blocks := make([][]byte, 6)
	cids := make([]cid.Cid, len(blocks))
	for i := range blocks {
		blocks[i] = randBytes(uint64(40+i), 100_000+i*70_000) // sizes across several aligned sizes
		cids[i] = chunker.ChunkCID(blocks[i])
		if err := s.Put(cids[i], blocks[i]); err != nil {
			t.Fatal(err)
		}
	}
	s.Recycle(make([]byte, 1000))        // not from the store: ignored
	s.Recycle(alignedAlloc(8192)[1:100]) // misaligned: ignored
	s.Recycle(nil)
	for round := range 3 {
		for i, c := range cids {
			got, err := s.GetFast(c)
			if err != nil || !bytes.Equal(got, blocks[i]) {
				t.Fatalf("round %d, block %d: %d bytes, %v", round, i, len(got), err)
			}
			s.Recycle(got)
		}
	}
	// Writes still go through the pool's buffers.
	data := randBytes(50, 300_000)
	c := chunker.ChunkCID(data)
	if err := s.Put(c, data); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(c); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get after recycling: %v", err)
	}
}
