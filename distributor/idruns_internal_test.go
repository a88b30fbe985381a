package distributor

import (
	"slices"
	"testing"
)

func TestIDRuns(t *testing.T) {
	s := newIDRuns(appendRuns(appendRuns(nil, 1, []uint64{10, 11, 12, 20}), 2, []uint64{13, 14, 30}))
	want := []idRun{{10, 3, 1}, {13, 2, 2}, {20, 1, 1}, {30, 1, 2}}
	if !slices.Equal(s.r, want) {
		t.Fatalf("built %v, want %v", s.r, want)
	}
	for _, c := range []struct {
		id  uint64
		bag uint32
		ok  bool
	}{{9, 0, false}, {10, 1, true}, {12, 1, true}, {13, 2, true}, {15, 0, false}, {20, 1, true}, {30, 2, true}, {31, 0, false}} {
		if bag, ok := s.find(c.id); ok != c.ok || bag != c.bag {
			t.Errorf("find(%d) = %d, %v; want %d, %v", c.id, bag, ok, c.bag, c.ok)
		}
	}
	s.add(31, 3, 2) // continues the last run
	s.add(15, 5, 1) // joins 10-12? no: 13-14 lie between; joins 20
	if want := []idRun{{10, 3, 1}, {13, 2, 2}, {15, 6, 1}, {30, 4, 2}}; !slices.Equal(s.r, want) {
		t.Fatalf("after adds %v, want %v", s.r, want)
	}
	s.remove(11, 12) // splits a run
	s.remove(14, 16) // ends one, starts another
	if want := []idRun{{10, 1, 1}, {12, 1, 1}, {13, 1, 2}, {16, 5, 1}, {30, 4, 2}}; !slices.Equal(s.r, want) {
		t.Fatalf("after removes %v, want %v", s.r, want)
	}
	s.add(11, 1, 1) // the hole filled: one run again
	if want := []idRun{{10, 3, 1}, {13, 1, 2}, {16, 5, 1}, {30, 4, 2}}; !slices.Equal(s.r, want) {
		t.Fatalf("after refill %v, want %v", s.r, want)
	}
	s.add(12, 2, 3) // re-recorded in another bag
	if want := []idRun{{10, 2, 1}, {12, 2, 3}, {16, 5, 1}, {30, 4, 2}}; !slices.Equal(s.r, want) {
		t.Fatalf("after move %v, want %v", s.r, want)
	}
	s.removeBag(3)
	if want := []idRun{{10, 2, 1}, {16, 5, 1}, {30, 4, 2}}; !slices.Equal(s.r, want) {
		t.Fatalf("after removeBag %v, want %v", s.r, want)
	}
	if n := s.count(func(b uint32) bool { return b == 1 }); n != 7 {
		t.Fatalf("count of bag 1 = %d, want 7", n)
	}
}
