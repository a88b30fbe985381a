package provider

import "testing"

// An object counts the first time it is reported, not when a BIND repeats
// it; the memory of counted objects is bounded, forgetting the oldest.
func TestBoundOnceCountsEachObjectOnce(t *testing.T) {
	b := newBoundOnce()
	if !b.first(7) || b.first(7) {
		t.Fatal("object 7: want counted once, then not again")
	}
	for obj := uint64(100); obj < 100+boundRecentMax; obj++ {
		if !b.first(obj) {
			t.Fatalf("object %d: a new object was taken for a repeat", obj)
		}
	}
	if n := b.seen.Len(); n != boundRecentMax {
		t.Fatalf("remembers %d objects; want at most %d", n, boundRecentMax)
	}
	if !b.first(7) {
		t.Fatal("object 7, forgotten past the bound, was not counted again")
	}
	if b.first(100 + boundRecentMax - 1) {
		t.Fatal("the latest object was forgotten")
	}
}
