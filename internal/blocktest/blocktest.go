package blocktest

import (
	"fmt"
	"os"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// Change reads block c's bytes where bs keeps them (Store.Locate), lets
// change alter them in place, and writes them back over the original, in
// place. The index is not told: the store finds the damage on its next
// verifying read.
func Change(bs *blockstore.Store, c cid.Cid, change func(b []byte)) error {
	path, off, size, err := bs.Locate(c)
	if err != nil {
		return fmt.Errorf("blocktest: locate %s: %w", c, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("blocktest: %w", err)
	}
	defer f.Close()
	b := make([]byte, size)
	if _, err := f.ReadAt(b, off); err != nil {
		return fmt.Errorf("blocktest: read %s in %s: %w", c, path, err)
	}
	change(b)
	if _, err := f.WriteAt(b, off); err != nil {
		return fmt.Errorf("blocktest: damage %s in %s: %w", c, path, err)
	}
	return nil
}

// Overwrite is Change that fails t on error.
func Overwrite(t testing.TB, bs *blockstore.Store, c cid.Cid, change func(b []byte)) {
	t.Helper()
	if err := Change(bs, c, change); err != nil {
		t.Fatal(err)
	}
}
