package fetch

import "github.com/libp2p/go-libp2p/core/peer"

// CallsDue returns how many calls f's stream to p awaits replies for: their
// requests are written, or being written (Close's drain waits for that
// write before closing the write side), so the provider will answer them.
func CallsDue(f *Client, p peer.ID) int {
	f.mu.Lock()
	c := f.conns[p]
	f.mu.Unlock()
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}
