package blockstore

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chunker"
)

// The lookups answer for bound objects only: a block an upload session
// alone holds belongs to no object until its manifest is recorded, and to
// none again once the object is deleted. Shared blocks name every object,
// bags are listed once each in order, with prefixes of each other's names.
func TestLookups(t *testing.T) {
	s := openTest(t, t.TempDir())
	const cs = 1 << 10
	shared := randBytes(21, cs)
	bagA, bagB, bagAB := "dynamic:channel:1", "dynamic:channel:2", "dynamic:channel:10"
	ma, blocksA := object(t, bagA, 1, append(bytes.Clone(shared), randBytes(22, 3*cs)...), cs)
	mb, blocksB := object(t, bagB, 2, append(bytes.Clone(shared), randBytes(23, 2*cs)...), cs)
	mc, blocksC := object(t, bagAB, 3, randBytes(24, cs), cs)
	mustLookup := func(objs []uint64, err error) []uint64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return objs
	}
	has := func(c cid.Cid) bool {
		t.Helper()
		ok, err := s.HasObjectWithBlock(c)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	// Object 1's chunks arrive in an upload session: held, but no
	// object's yet.
	sess := Session{ID: []byte("up"), Bag: bagA, Expiry: time.Now().Add(time.Hour)}
	for i, blk := range blocksA {
		if err := s.PutInSession(sess, ma.Chunks[i].CID, blk); err != nil {
			t.Fatal(err)
		}
	}
	if has(ma.Chunks[0].CID) || len(mustLookup(s.ObjectsOf(ma.Chunks[0].CID))) != 0 {
		t.Fatal("a block only a session holds belongs to an object")
	}
	if bags, err := s.Bags(); err != nil || len(bags) != 0 {
		t.Fatalf("Bags before any manifest = %v, %v", bags, err)
	}
	for _, o := range []struct {
		m      Manifest
		blocks [][]byte
	}{{ma, blocksA}, {mb, blocksB}, {mc, blocksC}} {
		for i, blk := range o.blocks {
			if err := s.Put(o.m.Chunks[i].CID, blk); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutManifest(o.m); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustLookup(s.ObjectsOf(shared0(ma))); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("ObjectsOf(shared chunk) = %v, want [1 2]", got)
	}
	for _, c := range []cid.Cid{ma.Root, ma.Chunks[1].CID} {
		if got := mustLookup(s.ObjectsOf(c)); !slices.Equal(got, []uint64{1}) || !has(c) {
			t.Fatalf("ObjectsOf(%s of object 1) = %v", c, got)
		}
	}
	if bags, err := s.Bags(); err != nil || !slices.Equal(bags, []string{bagA, bagAB, bagB}) {
		t.Fatalf("Bags = %v, %v; want %v", bags, err, []string{bagA, bagAB, bagB})
	}
	for _, tc := range []struct {
		bag  string
		want int
	}{{bagA, 1}, {bagAB, 1}, {"dynamic:channel:9", 0}} {
		n, err := s.CountObjects(tc.bag)
		ok, herr := s.HasObjects(tc.bag)
		if err != nil || herr != nil || n != tc.want || ok != (tc.want > 0) {
			t.Fatalf("bag %s: CountObjects = %d, %v; HasObjects = %v, %v; want %d", tc.bag, n, err, ok, herr, tc.want)
		}
	}
	if bag, ok, err := s.ObjectBag(2); err != nil || !ok || bag != bagB {
		t.Fatalf("ObjectBag(2) = %q, %v, %v", bag, ok, err)
	}
	if ok, err := s.HasObject(3); err != nil || !ok {
		t.Fatalf("HasObject(3) = %v, %v", ok, err)
	}

	if err := s.DeleteObject(1); err != nil {
		t.Fatal(err)
	}
	if got := mustLookup(s.ObjectsOf(shared0(ma))); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("ObjectsOf(shared chunk) after deleting 1 = %v, want [2]", got)
	}
	// The session still holds object 1's own chunks; they are no object's.
	if held, _ := s.Has(ma.Chunks[1].CID); !held || has(ma.Chunks[1].CID) {
		t.Fatalf("after deleting object 1: chunk held %v (want the session's), claimed by an object %v", held, has(ma.Chunks[1].CID))
	}
	if bags, err := s.Bags(); err != nil || !slices.Equal(bags, []string{bagAB, bagB}) {
		t.Fatalf("Bags after deleting 1 = %v, %v", bags, err)
	}
	if _, ok, err := s.ObjectBag(1); err != nil || ok {
		t.Fatalf("ObjectBag of a deleted object = %v, %v", ok, err)
	}
	if ok, err := s.HasObject(1); err != nil || ok {
		t.Fatalf("HasObject of a deleted object = %v, %v", ok, err)
	}
}

func shared0(m Manifest) cid.Cid { return m.Chunks[0].CID }

// Closed stores answer ErrClosed, like every other read.
func TestLookupsClosed(t *testing.T) {
	s := openTest(t, t.TempDir())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c := chunker.ChunkCID([]byte("x"))
	for name, err := range map[string]error{
		"ObjectsOf":          second(s.ObjectsOf(c)),
		"HasObjectWithBlock": second(s.HasObjectWithBlock(c)),
		"HasObject":          second(s.HasObject(1)),
		"ObjectBag":          third(s.ObjectBag(1)),
		"Bags":               second(s.Bags()),
		"HasObjects":         second(s.HasObjects("b")),
		"CountObjects":       second(s.CountObjects("b")),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s on a closed store: %v, want ErrClosed", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func third[T, U any](_ T, _ U, err error) error { return err }

// TestDamagedManifestRefused: a manifest entry of an unknown version, or
// cut short in its bag, is an error for ObjectBag as for Manifest (both
// start decoding it the same way), not a bag made of its bytes.
func TestDamagedManifestRefused(t *testing.T) {
	s := openTest(t, t.TempDir())
	good := encodeManifest(Manifest{Bag: "a-bag", Object: 1})
	for name, v := range map[string][]byte{
		"empty":           nil,
		"unknown version": append([]byte{manifestVersion + 1}, good[1:]...),
		"bag cut short":   good[:4],
	} {
		if err := s.db.Put(manifestKey(7), v, nil); err != nil {
			t.Fatal(err)
		}
		if bag, ok, err := s.ObjectBag(7); err == nil || ok {
			t.Errorf("%s: ObjectBag = %q, %v, %v; want an error", name, bag, ok, err)
		}
		if _, ok, err := s.Manifest(7); err == nil || ok {
			t.Errorf("%s: Manifest = %v, %v; want an error", name, ok, err)
		}
	}
	if err := s.db.Put(manifestKey(7), good, nil); err != nil {
		t.Fatal(err)
	}
	if bag, ok, err := s.ObjectBag(7); err != nil || !ok || bag != "a-bag" {
		t.Fatalf("ObjectBag of a whole manifest = %q, %v, %v; want a-bag", bag, ok, err)
	}
}
