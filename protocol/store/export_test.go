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
