package distributor

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/internal/units"
)

// After a clean stop the block files are taken unread, yet no read serves
// a bad one: a block rotten in place (same size) or zero-filled (a power
// loss before writeback) fails its CRC-32C and SHA-256 and is dropped,
// a zero-length file is dropped at start; a block whose trailer alone went
// bad is served and its trailer written again.
func TestCacheChecksEveryRead(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	c, err := openCache(dir, 1<<20, log)
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string][]byte{"rot": block(3000, 1), "zero": block(3000, 2), "empty": block(3000, 3), "trailer": block(3000, 4), "good": block(3000, 5)}
	cids := map[string]cid.Cid{}
	for name, b := range blocks {
		cids[name] = rawBlock(t, b)
		if err := c.put(1, cids[name], b); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.save(true); err != nil {
		t.Fatal(err)
	}
	damage := func(name string, off int64, b []byte) {
		f, err := os.OpenFile(c.path(1, cids[name]), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	damage("rot", 1234, []byte{0xff})
	damage("zero", 0, make([]byte, 3000+blockTrailer))
	damage("trailer", 3000, []byte{0, 0, 0, 0})
	if err := os.Truncate(c.path(1, cids["empty"]), 0); err != nil {
		t.Fatal(err)
	}

	c2, err := openCache(dir, 1<<20, log)
	if err != nil {
		t.Fatal(err)
	}
	if c2.holds(1, cids["empty"]) {
		t.Fatal("a zero-length block file was taken after a clean stop")
	}
	if !c2.holds(1, cids["rot"]) || !c2.holds(1, cids["zero"]) {
		t.Fatal("after a clean stop the files should be taken unread (the reads check them)")
	}
	if _, ok := c2.read(1, cids["rot"]); ok {
		t.Fatal("a block rotten in place was read")
	}
	if f, _, ok := c2.open(1, cids["zero"]); ok {
		f.f.Close()
		t.Fatal("a zero-filled block file was opened to send")
	}
	for _, name := range []string{"rot", "zero"} {
		if c2.holds(1, cids[name]) {
			t.Fatalf("bad block %q still listed", name)
		}
		if _, err := os.Stat(c2.path(1, cids[name])); !os.IsNotExist(err) {
			t.Fatalf("bad block %q's file kept: %v", name, err)
		}
	}
	if n := cacheCounter(t, c2.m.dropped); n != 2 {
		t.Fatalf("%v bad blocks counted, want 2", n)
	}
	f, size, ok := c2.open(1, cids["trailer"])
	if !ok || size != 3000 {
		t.Fatalf("a block whose trailer alone went bad: open %v, size %d", ok, size)
	}
	c2.release(1, cids["trailer"], f)
	if b, err := os.ReadFile(c2.path(1, cids["trailer"])); err != nil || !bytes.Equal(b, append(blocks["trailer"], trailer(blocks["trailer"])...)) {
		t.Fatalf("trailer not written again: %v", err)
	}
	if b, ok := c2.read(1, cids["good"]); !ok || !bytes.Equal(b, blocks["good"]) {
		t.Fatal("a good block did not read")
	}
	// A bad block fetched again is cached and read again.
	if err := c2.put(1, cids["rot"], blocks["rot"]); err != nil {
		t.Fatal(err)
	}
	if b, ok := c2.read(1, cids["rot"]); !ok || !bytes.Equal(b, blocks["rot"]) {
		t.Fatal("a dropped block cached again did not read")
	}
}

// A file kept open for a block that was dropped (bad) and cached again is
// the old file: given back it is closed, and never taken as the new one's
// (which a check through it would then drop).
func TestCacheOldFileOfABlockCachedAgain(t *testing.T) {
	c, err := openCache(t.TempDir(), 1<<20, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	b := block(5000, 6)
	bc := rawBlock(t, b)
	if err := c.put(1, bc, b); err != nil {
		t.Fatal(err)
	}
	old, _, ok := c.open(1, bc)
	if !ok {
		t.Fatal("cached block did not open")
	}
	if _, err := old.f.WriteAt([]byte{0}, 0); err == nil {
		t.Fatal("block file opened writable")
	}
	f, err := os.OpenFile(c.path(1, bc), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xff}, 10)
	f.Close()
	if _, ok := c.read(1, bc); ok {
		t.Fatal("rotten block read")
	}
	if err := c.put(1, bc, b); err != nil {
		t.Fatal(err)
	}
	c.release(1, bc, old)
	if _, err := old.f.Stat(); err == nil {
		t.Fatal("the dropped file was kept open")
	}
	if got, ok := c.read(1, bc); !ok || !bytes.Equal(got, b) {
		t.Fatal("the block cached again did not read")
	}
}

// Block files of the format before the trailer are hashed at start, kept
// when they match and given their trailer.
func TestCacheUpgradesOldBlockFiles(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	b, bad := block(2000, 7), block(2000, 8)
	bc, badc := rawBlock(t, b), rawBlock(t, bad)
	if err := os.MkdirAll(dir+"/objects/9", 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(dir+"/objects/9/"+bc.String(), b, 0o600)
	os.WriteFile(dir+"/objects/9/"+badc.String(), block(2000, 0), 0o600)
	// The state of a clean stop of the format before: no format number.
	os.WriteFile(dir+"/"+cacheStateFile, []byte(`{"clean":true,"objects":{}}`), 0o600)
	c, err := openCache(dir, 1<<20, log)
	if err != nil {
		t.Fatal(err)
	}
	if c.holds(chain.ObjectID(9), badc) {
		t.Fatal("an old-format file that does not hash to its CID was kept")
	}
	if got, ok := c.read(9, bc); !ok || !bytes.Equal(got, b) {
		t.Fatal("an old-format file that hashes right did not read")
	}
	if used, _, _, _ := c.usage(); used != 2000 {
		t.Fatalf("used %d, want 2000", used)
	}
}

// cacheCounter returns the value of one of the cache's counters.
func cacheCounter(t *testing.T, cs ...prometheus.Collector) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(cs...)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			v += m.GetCounter().GetValue()
		}
	}
	return v
}

// checkFile takes a block file whole, whatever the block's size against
// its read buffer (the trailer split between two reads included), and
// refuses one a byte short, a byte long, or with a byte changed.
func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, checkBufSize - blockTrailer - 1, checkBufSize - blockTrailer, checkBufSize - 2, checkBufSize, 3*checkBufSize + 7} {
		b := block(size, byte(size))
		for i := range b {
			b[i] ^= byte(i)
		}
		whole := append(b, trailer(b)...)
		for name, content := range map[string][]byte{
			"whole": whole, "short": whole[:len(whole)-1], "long": append(slices.Clone(whole), 0),
			"changed": func() []byte { c := slices.Clone(whole); c[len(c)/2] ^= 1; return c }(),
		} {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := checkFile(f, int64(size)); got != (name == "whole") {
				t.Errorf("block of %d bytes, file %s: check %v", size, name, got)
			}
			f.Close()
		}
	}
}

// BenchmarkCheckFile measures the check every cached read makes, on a
// block file in the page cache.
func BenchmarkCheckFile(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20} {
		b.Run(units.FormatBytes(uint64(size)), func(b *testing.B) {
			data := block(size, 9)
			path := filepath.Join(b.TempDir(), "block")
			if err := os.WriteFile(path, append(data, trailer(data)...), 0o600); err != nil {
				b.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.SetBytes(int64(size))
			for b.Loop() {
				if !checkFile(f, int64(size)) {
					b.Fatal("check failed")
				}
			}
		})
	}
}
