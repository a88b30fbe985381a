package provider

import "sync"

// boundRecentMax is how many bound objects the node remembers having
// counted: a BIND repeated (retried after a FAILED answer, or resumed by
// its uploader) names one bound lately, so a short memory suffices, and it
// bounds what any number of uploads costs.
const boundRecentMax = 4096

// boundOnce tells which bound objects satchel_provider_bound_objects_total
// has counted already: the store handler reports an object each time a
// BIND records it, a repeated BIND again, and each object counts once.
type boundOnce struct {
	mu   sync.Mutex
	seen map[uint64]struct{}
	ring []uint64 // the objects of seen, oldest at next once full
	next int
}

func newBoundOnce() *boundOnce {
	return &boundOnce{seen: make(map[uint64]struct{})}
}

// first reports whether obj is reported for the first time, and remembers
// it (forgetting the oldest object past boundRecentMax).
func (b *boundOnce) first(obj uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[obj]; ok {
		return false
	}
	if len(b.ring) < boundRecentMax {
		b.ring = append(b.ring, obj)
	} else {
		delete(b.seen, b.ring[b.next])
		b.ring[b.next] = obj
		b.next = (b.next + 1) % boundRecentMax
	}
	b.seen[obj] = struct{}{}
	return true
}
