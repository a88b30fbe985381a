package distributor

import (
	"slices"
	"sort"
)

// idRuns maps object IDs to the bag that holds them, as sorted runs of
// consecutive IDs. The chain hands out object IDs in order and registers
// a bag's objects together, so a registration is one run whatever its
// size: the map grows with registrations (16 bytes each), not with
// objects. A deletion cuts its IDs out (at most one more run each).
type idRuns struct {
	r []idRun
}

// idRun is the IDs lo … lo+n-1, all in bag number bag.
type idRun struct {
	lo  uint64
	n   uint32
	bag uint32
}

func (x idRun) end() uint64 { return x.lo + uint64(x.n) }

// find returns the bag number of object id.
func (s *idRuns) find(id uint64) (bag uint32, ok bool) {
	i := sort.Search(len(s.r), func(i int) bool { return s.r[i].end() > id })
	if i < len(s.r) && s.r[i].lo <= id {
		return s.r[i].bag, true
	}
	return 0, false
}

// add records IDs lo … lo+n-1 as in bag, replacing what was recorded for
// any of them.
func (s *idRuns) add(lo, n uint64, bag uint32) {
	for n > 0 {
		m := min(n, uint64(^uint32(0)))
		s.remove(lo, lo+m)
		i := sort.Search(len(s.r), func(i int) bool { return s.r[i].lo >= lo })
		s.r = slices.Insert(s.r, i, idRun{lo: lo, n: uint32(m), bag: bag})
		s.merge(i)
		lo, n = lo+m, n-m
	}
}

// merge joins run i with its neighbours when they continue it in the same
// bag.
func (s *idRuns) merge(i int) {
	if i+1 < len(s.r) && s.joinable(s.r[i], s.r[i+1]) {
		s.r[i].n += s.r[i+1].n
		s.r = slices.Delete(s.r, i+1, i+2)
	}
	if i > 0 && s.joinable(s.r[i-1], s.r[i]) {
		s.r[i-1].n += s.r[i].n
		s.r = slices.Delete(s.r, i, i+1)
	}
}

func (s *idRuns) joinable(a, b idRun) bool {
	return a.bag == b.bag && a.end() == b.lo && uint64(a.n)+uint64(b.n) <= uint64(^uint32(0))
}

// remove forgets IDs lo … hi-1.
func (s *idRuns) remove(lo, hi uint64) {
	i := sort.Search(len(s.r), func(i int) bool { return s.r[i].end() > lo })
	j := i
	var keep []idRun
	for ; j < len(s.r) && s.r[j].lo < hi; j++ {
		x := s.r[j]
		if x.lo < lo {
			keep = append(keep, idRun{lo: x.lo, n: uint32(lo - x.lo), bag: x.bag})
		}
		if x.end() > hi {
			keep = append(keep, idRun{lo: hi, n: uint32(x.end() - hi), bag: x.bag})
		}
	}
	if i < j {
		s.r = slices.Replace(s.r, i, j, keep...)
	}
}

// removeBag forgets every ID of bag.
func (s *idRuns) removeBag(bag uint32) {
	s.r = slices.DeleteFunc(s.r, func(x idRun) bool { return x.bag == bag })
	for i := len(s.r) - 2; i >= 0; i-- {
		if i+1 < len(s.r) && s.joinable(s.r[i], s.r[i+1]) {
			s.r[i].n += s.r[i+1].n
			s.r = slices.Delete(s.r, i+1, i+2)
		}
	}
}

// count returns how many IDs lie in bags in says yes to.
func (s *idRuns) count(in func(bag uint32) bool) int {
	n := 0
	for _, x := range s.r {
		if in(x.bag) {
			n += int(x.n)
		}
	}
	return n
}

// appendRuns appends the runs of ids (ascending) of bag to runs.
func appendRuns(runs []idRun, bag uint32, ids []uint64) []idRun {
	for _, id := range ids {
		if k := len(runs) - 1; k >= 0 && runs[k].bag == bag && runs[k].end() == id && runs[k].n < ^uint32(0) {
			runs[k].n++
			continue
		}
		runs = append(runs, idRun{lo: id, n: 1, bag: bag})
	}
	return runs
}

// newIDRuns returns the runs of runs (each one bag's, in any order).
func newIDRuns(runs []idRun) *idRuns {
	slices.SortFunc(runs, func(a, b idRun) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	s := &idRuns{}
	for _, x := range runs {
		if k := len(s.r) - 1; k >= 0 && s.r[k].end() > x.lo {
			continue // an ID listed in two bags: keep the first
		}
		s.r = append(s.r, x)
		if k := len(s.r) - 1; k > 0 && s.joinable(s.r[k-1], s.r[k]) {
			s.r[k-1].n += s.r[k].n
			s.r = s.r[:k]
		}
	}
	s.r = slices.Clip(s.r)
	return s
}
