package distributor_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/testnet"
)

// cachedWhole reads obj once and waits until the node answers it as a hit
// (every block written to the cache); it returns the object's cached block
// files by CID.
func cachedWhole(t *testing.T, e *env, obj chain.DataObject) map[cid.Cid]string {
	t.Helper()
	get(t, e.d.AssetURL(obj.ID))
	testnet.Wait(t, "object cached whole", func() bool {
		resp, _ := do(t, http.MethodHead, e.d.AssetURL(obj.ID))
		return resp.Header.Get("X-Cache") == "hit"
	})
	dir := filepath.Join(e.d.Dir, "cache", "objects", obj.ID.String())
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[cid.Cid]string{}
	for _, de := range ents {
		if c, err := cid.Decode(de.Name()); err == nil {
			files[c] = filepath.Join(dir, de.Name())
		}
	}
	return files
}

// A block the cache's index lists but whose file is gone is fetched again
// from the providers: a raw block answer carries its bytes (not an empty
// 200), a CAR carries every block whole, an asset answer the content.
func TestCachedBlockFileGone(t *testing.T) {
	e := newEnv(t, 1)
	data := randomBytes(t, 256<<10)
	obj := e.put(t, data, 64<<10)
	files := cachedWhole(t, e, obj)
	var leaf, root cid.Cid
	for c := range files {
		if c.Type() == cid.Raw {
			leaf = c
		} else {
			root = c
		}
	}
	if !leaf.Defined() || !root.Defined() {
		t.Fatalf("cached files %v: want a root node and leaves", files)
	}
	// A restart closes the block files the cache keeps open: a leaf read
	// from its file (one fetched ahead and cached before the read reached
	// it) would be read from the open file still, deleted or not.
	if err := e.d.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Restart(e.ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []cid.Cid{leaf, root} {
		if err := os.Remove(files[c]); err != nil {
			t.Fatal(err)
		}
	}
	resp, b := get(t, e.d.AssetURL(obj.ID)+"/blocks/"+leaf.String())
	if resp.StatusCode != http.StatusOK || len(b) == 0 || chunker.VerifyChunk(leaf, b) != nil {
		t.Fatalf("raw block whose cached file is gone: status %d, %d bytes that do not verify against %s", resp.StatusCode, len(b), leaf)
	}
	resp, b = get(t, e.d.AssetURL(obj.ID)+"?format=car")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CAR with cached files gone: status %d: %s", resp.StatusCode, b)
	}
	if first, got, _ := carContent(t, b); !first.Equals(root) || !bytes.Equal(got, data) {
		t.Fatalf("CAR with cached files gone: root %s (want %s), %d content bytes equal: %v", first, root, len(got), bytes.Equal(got, data))
	}
	if resp, b = get(t, e.d.AssetURL(obj.ID)); resp.StatusCode != http.StatusOK || !bytes.Equal(b, data) {
		t.Fatalf("asset with a cached file gone: status %d, %d bytes", resp.StatusCode, len(b))
	}
	// The reads that found the files gone dropped the stale entries, so
	// the blocks fetched again went back to the cache.
	for _, c := range []cid.Cid{leaf, root} {
		testnet.Wait(t, "block "+c.String()+" cached again", func() bool {
			b, err := distributor.ReadBlockFile(files[c])
			return err == nil && chunker.VerifyChunk(c, b) == nil
		})
	}
}
