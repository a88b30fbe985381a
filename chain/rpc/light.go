package rpc

import (
	"context"
	"fmt"

	"github.com/cometbft/cometbft/types"
)

// maxValidatorPages bounds how many pages of 100 validators LightBlock
// reads (10,000 validators), so an endpoint cannot keep it paging.
const maxValidatorPages = 100

// LightBlock returns the signed header (header and the commit of +2/3 of
// the validators) and the validator set of the block at height, what a
// light client verifies proven reads against (package chain/verify). It
// verifies nothing itself.
func (t Conn) LightBlock(ctx context.Context, height int64) (*types.LightBlock, error) {
	c, err := t.C.Commit(ctx, &height)
	if err != nil {
		return nil, fmt.Errorf("signed header %d: %w", height, err)
	}
	var vals []*types.Validator
	perPage := 100
	for page := 1; page <= maxValidatorPages; page++ {
		res, err := t.C.Validators(ctx, &height, &page, &perPage)
		if err != nil {
			return nil, fmt.Errorf("validators of block %d: %w", height, err)
		}
		vals = append(vals, res.Validators...)
		if len(res.Validators) == 0 || len(vals) >= res.Total {
			break
		}
	}
	set, err := types.ValidatorSetFromExistingValidators(vals)
	if err != nil {
		return nil, fmt.Errorf("validators of block %d: %w", height, err)
	}
	return &types.LightBlock{SignedHeader: &c.SignedHeader, ValidatorSet: set}, nil
}
