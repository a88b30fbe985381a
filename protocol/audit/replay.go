package audit

import (
	"sync"
	"time"
)

// replayTable remembers keys (a challenge's challenger and nonce, a
// result's hash) until they expire, up to a fixed number: when it is full
// the oldest is forgotten, so no one is ever refused because others filled
// it. Keys are kept in a ring in the order they came, so expiring and
// evicting take O(1) and nothing is scanned under the lock. (Where keys
// live for different times, one that expired behind a live one is kept
// until it reaches the head; a look-up checks the time.)
type replayTable struct {
	mu   sync.Mutex
	keys map[string]replayEntry
	ring []replaySlot // oldest at head
	head int
	n    int
	seq  uint64
}

type replayEntry struct {
	until time.Time // when it may be forgotten
	seq   uint64    // its slot in the ring
}

type replaySlot struct {
	key string
	seq uint64
}

func newReplayTable(size int) *replayTable {
	return &replayTable{keys: map[string]replayEntry{}, ring: make([]replaySlot, max(size, 1))}
}

// add records key, live until until, unless it is already live at now: then
// it reports false and changes nothing.
func (t *replayTable) add(key string, now, until time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire(now)
	if e, ok := t.keys[key]; ok && now.Before(e.until) {
		return false
	}
	if t.n == len(t.ring) {
		t.pop() // full of live keys: the oldest goes
	}
	t.seq++
	t.keys[key] = replayEntry{until: until, seq: t.seq}
	t.ring[(t.head+t.n)%len(t.ring)] = replaySlot{key: key, seq: t.seq}
	t.n++
	return true
}

// seen reports whether key is live at now.
func (t *replayTable) seen(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.keys[key]
	return ok && now.Before(e.until)
}

// expire forgets the keys at the head that are no longer live at now.
func (t *replayTable) expire(now time.Time) {
	for t.n > 0 {
		s := t.ring[t.head]
		if e, ok := t.keys[s.key]; ok && e.seq == s.seq && now.Before(e.until) {
			return
		}
		t.pop()
	}
}

// pop forgets the slot at the head, and its key unless the key was added
// again since (a later slot holds it).
func (t *replayTable) pop() {
	s := t.ring[t.head]
	t.ring[t.head] = replaySlot{}
	t.head = (t.head + 1) % len(t.ring)
	t.n--
	if e, ok := t.keys[s.key]; ok && e.seq == s.seq {
		delete(t.keys, s.key)
	}
}

// len reports how many keys are kept.
func (t *replayTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.keys)
}
