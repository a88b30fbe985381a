package store

import (
	"context"

	"github.com/satchel-net/satchel/protocol/store/pb"
)

// PushAsHop pushes c as a provider forwarding it down a pipeline would,
// with token as the request's hop token.
func PushAsHop(ctx context.Context, s *Stream, c ChunkPush, token []byte) (*pb.Receipt, error) {
	c.relayed, c.hopToken = true, token
	return s.Push(ctx, c)
}

// WithBackpressureHook sets fn, called each time a stream stops reading
// because MaxStreamBuffered bytes wait for the disk (fn must not block).
func WithBackpressureHook(fn func()) HandlerOption {
	return func(c *handlerConfig) { c.backpressured = fn }
}

// WithCountWaitHook sets fn, called each time a streamed session chunk's
// reservation is about to wait for its session's byte-count lock.
func WithCountWaitHook(fn func()) HandlerOption {
	return func(c *handlerConfig) { c.countWait = fn }
}

// SessionEntries returns how many sessions the handler keeps byte counts
// for: those with a reservation or a lock holder.
func SessionEntries(h *Handler) int {
	h.rmu.Lock()
	defer h.rmu.Unlock()
	return len(h.sessions)
}
