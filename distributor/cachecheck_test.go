package distributor_test

import (
	"bytes"
	"net/http"
	"os"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/testnet"
)

// Cached blocks are checked as they are read: after a clean stop (the
// files taken unhashed) a leaf zero-filled on disk, as a power loss before
// writeback leaves it, and leaves rotten in place while the node runs are
// never sent; each answer — a raw block, an asset, a CAR — carries the
// right bytes, fetched again, and the blocks go back to the cache.
func TestCachedBlocksChecked(t *testing.T) {
	e := newEnv(t, 1)
	data := randomBytes(t, 512<<10)
	obj := e.put(t, data, 64<<10)
	files := cachedWhole(t, e, obj)
	var leaves []cid.Cid
	for c := range files {
		if c.Type() == cid.Raw {
			leaves = append(leaves, c)
		}
	}
	if len(leaves) < 3 {
		t.Fatalf("%d leaves cached, want 8", len(leaves))
	}
	damage := func(c cid.Cid, off int64, b []byte) {
		t.Helper()
		f, err := os.OpenFile(files[c], os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.d.Kill(); err != nil { // a clean stop
		t.Fatal(err)
	}
	damage(leaves[0], 0, make([]byte, 64<<10+4))
	if err := e.d.Restart(e.ctx); err != nil {
		t.Fatal(err)
	}
	bad := func() float64 { return counter(t, e.d.Registry(), "satchel_distributor_cache_bad_blocks_total") }

	resp, b := get(t, e.d.AssetURL(obj.ID)+"/blocks/"+leaves[0].String())
	if resp.StatusCode != http.StatusOK || chunker.VerifyChunk(leaves[0], b) != nil {
		t.Fatalf("raw block zero-filled in the cache: %d, %d bytes that do not verify", resp.StatusCode, len(b))
	}
	damage(leaves[1], 1000, []byte{0x5a})
	if resp, b = get(t, e.d.AssetURL(obj.ID)); resp.StatusCode != http.StatusOK || !bytes.Equal(b, data) {
		t.Fatalf("asset with a rotten cached leaf: %d, equal %v", resp.StatusCode, bytes.Equal(b, data))
	}
	damage(leaves[2], 5, []byte{0xa5})
	resp, b = get(t, e.d.AssetURL(obj.ID)+"?format=car")
	if _, got, _ := carContent(t, b); resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("CAR with a rotten cached leaf: %d, content equal %v", resp.StatusCode, bytes.Equal(got, data))
	}
	if n := bad(); n != 3 {
		t.Fatalf("%v bad blocks counted, want 3", n)
	}
	for _, c := range leaves[:3] {
		testnet.Wait(t, "block "+c.String()+" cached again", func() bool {
			b, err := distributor.ReadBlockFile(files[c])
			return err == nil && chunker.VerifyChunk(c, b) == nil
		})
	}
	if resp, b = get(t, e.d.AssetURL(obj.ID)); resp.Header.Get("X-Cache") != "hit" || !bytes.Equal(b, data) {
		t.Fatalf("after the blocks were fetched again: x-cache %q, equal %v", resp.Header.Get("X-Cache"), bytes.Equal(b, data))
	}
}
