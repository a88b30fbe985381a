package fetch

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Close closes every stream and waits for their readers. Calls in flight
// fail at once with ErrStreamClosed, as do later calls; only a call whose
// reply was read before Close began returns it. A stream with replies
// still coming is closed gracefully: its write side is closed and the
// replies are read and dropped for up to CloseDrain before the stream is
// closed, for a provider charges a reader for the replies a reset
// leaves unsent (a defence against readers cycling streams); only a stream
// not drained by then is reset.
func (f *Client) Close() error {
	f.mu.Lock()
	f.closed = true
	conns := f.conns
	f.conns = make(map[peer.ID]*fetchConn)
	f.mu.Unlock()
	for _, c := range conns {
		c.drain(fmt.Errorf("%w: client closed", ErrStreamClosed), f.drain)
	}
	f.wg.Wait()
	return nil
}

// drain fails the calls in flight with err and closes the write side,
// leaving the reader to read and drop the replies still due (for up to
// wait) and then close the stream; a stream with none due is closed now,
// and one with replies due reset when wait is 0 or less.
func (c *fetchConn) drain(err error, wait time.Duration) {
	by := time.Now().Add(wait)
	c.mu.Lock()
	// At once with the failure: a reply the reader takes from now on is
	// dropped, not handed to a call that Close has failed.
	c.failLocked(err)
	c.draining = true
	if testHookCallsFailed != nil {
		testHookCallsFailed()
	}
	due := len(c.queue)
	c.mu.Unlock()
	switch {
	case due == 0:
		_ = c.s.Close() // the reader sees the stream closed and ends
		return
	case wait <= 0:
		_ = c.s.Reset()
		return
	}
	_ = c.s.SetReadDeadline(by)
	// A write blocked by a provider that reads nothing must not hold
	// Close up (calls check c.err, set above, before they write).
	_ = c.s.SetWriteDeadline(by)
	c.wmu.Lock()
	_ = c.s.CloseWrite()
	c.wmu.Unlock()
}

// testHookCallsFailed, when set, is called by drain once it has failed the
// calls in flight.
var testHookCallsFailed func()

// drained reports whether Close is closing the stream with no reply due.
func (c *fetchConn) drained() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.draining && len(c.queue) == 0
}
