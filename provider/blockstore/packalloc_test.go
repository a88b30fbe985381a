package blockstore

import (
	"os"
	"testing"

	"github.com/ipfs/go-cid"
)

// TestPackAllocatedAhead: with direct I/O, the pack being written is
// allocated ahead of its records (so concurrent writes do not extend the
// file one at a time); Close cuts the allocated tail off, and after a
// crash the scan of the unsealed pack cuts it off as a torn tail, every
// acknowledged block whole either way.
func TestPackAllocatedAhead(t *testing.T) {
	for _, stop := range []string{"close", "crash"} {
		t.Run(stop, func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir)
			if !s.packs.io.direct.Load() {
				t.Skip("no direct I/O here: packs are not allocated ahead")
			}
			var cs []cid.Cid
			var blocks [][]byte
			for i := range 3 {
				b := randBytes(uint64(900+i), 100_000+i)
				blocks = append(blocks, b)
				cs = append(cs, putBlock(t, s, b))
			}
			if s.packs.noAlloc.Load() {
				t.Skip("the file system cannot allocate ahead")
			}
			last := record(t, s, cs[2])
			end := last.off + recordLen(last.size)
			path := s.packs.path(last.pack)
			if st, err := os.Stat(path); err != nil || st.Size() < end+packAllocStep/2 {
				t.Fatalf("pack being written: %v, %v; want it allocated at least %d bytes past its records' end %d", st, err, packAllocStep/2, end)
			}

			if stop == "close" {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				crash(t, s)
			}
			if stop == "close" { // the scan would cut it too: look before it runs
				if st, err := os.Stat(path); err != nil || st.Size() != end {
					t.Fatalf("pack after Close: %v, %v; want it cut to its records' end, %d bytes", st, err, end)
				}
			}
			s = openTest(t, dir)
			for i, c := range cs {
				checkGet(t, s, c, blocks[i])
			}
			if st, err := os.Stat(path); err != nil || st.Size() != end {
				t.Fatalf("pack after reopening: %v, %v; want it cut to its records' end, %d bytes", st, err, end)
			}
			after := randBytes(910, 50_000)
			c := putBlock(t, s, after)
			if packOf(t, s, c) == last.pack {
				t.Fatalf("a write after reopening went to the old pack %d", last.pack)
			}
			crash(t, s)
			s = openTest(t, dir)
			checkGet(t, s, c, after)
			for i, c := range cs {
				checkGet(t, s, c, blocks[i])
			}
		})
	}
}
