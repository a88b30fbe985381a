package node

import (
	"context"

	"github.com/cometbft/cometbft/types"
)

// LightBlock returns the signed header and validator set of the block at
// height (see rpc.Conn.LightBlock).
func (t *localTransport) LightBlock(ctx context.Context, height int64) (*types.LightBlock, error) {
	if err := t.f.stopped(); err != nil {
		return nil, err
	}
	return t.Conn.LightBlock(ctx, height)
}
