package provider

import lru "github.com/hashicorp/golang-lru/v2"

// boundRecentMax is how many bound objects the node remembers having
// counted: a BIND repeated (retried after a FAILED answer, or resumed by
// its uploader) names one bound lately, so a short memory suffices, and it
// bounds what any number of uploads costs.
const boundRecentMax = 4096

// boundOnce tells which bound objects satchel_provider_bound_objects_total
// has counted already: the store handler reports an object each time a
// BIND records it, a repeated BIND again, and each object counts once.
type boundOnce struct {
	seen *lru.Cache[uint64, struct{}] // safe for concurrent use
}

func newBoundOnce() *boundOnce {
	seen, _ := lru.New[uint64, struct{}](boundRecentMax) // errors only for a size <= 0
	return &boundOnce{seen: seen}
}

// first reports whether obj is reported for the first time, and remembers
// it (forgetting the oldest past boundRecentMax).
func (b *boundOnce) first(obj uint64) bool {
	known, _ := b.seen.ContainsOrAdd(obj, struct{}{})
	return !known
}
