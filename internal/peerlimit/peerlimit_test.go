package peerlimit

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Each peer has its own bucket, refilled at the rate; the least recently
// seen peer's bucket is forgotten when more peers come than are kept.
func TestLimits(t *testing.T) {
	now := time.Now()
	l := New(1, 2, 2)
	a, b, c := peer.ID("a"), peer.ID("b"), peer.ID("c")
	if !l.Allow(a, now) || !l.Allow(a, now) || l.Allow(a, now) {
		t.Fatal("a: want two allowed at once, the third refused")
	}
	if !l.Allow(b, now) {
		t.Fatal("b limited by a's bucket")
	}
	if !l.Allow(a, now.Add(time.Second)) || l.Allow(a, now.Add(time.Second)) {
		t.Fatal("a: want one more after a second, then refused")
	}
	// b was seen before a's last use: c evicts b, not a.
	l.Allow(c, now)
	if l.Allow(a, now.Add(time.Second)) {
		t.Fatal("a's spent bucket was forgotten")
	}
}
