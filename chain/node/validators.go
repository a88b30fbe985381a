package node

import (
	"bytes"
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/ed25519"

	"github.com/satchel-net/satchel/chain"
)

// genesisValidators turns CometBFT's genesis validators into the state's.
func genesisValidators(vs []abci.ValidatorUpdate) ([]chain.Validator, error) {
	out := make([]chain.Validator, 0, len(vs))
	for _, v := range vs {
		if v.PubKeyType != ed25519.KeyType {
			return nil, fmt.Errorf("genesis validator key type %q: the data directory takes %s keys", v.PubKeyType, ed25519.KeyType)
		}
		out = append(out, chain.Validator{PubKey: bytes.Clone(v.PubKeyBytes), Power: v.Power})
	}
	return out, nil
}

// validatorUpdates collects the block's ValidatorUpdated events (of
// successful transactions, the only ones with events) into CometBFT
// validator updates, the last one per key winning: CometBFT refuses two
// updates of one key in a block.
func validatorUpdates(results []chain.TxResult) ([]abci.ValidatorUpdate, error) {
	var out []abci.ValidatorUpdate
	at := map[string]int{}
	for _, r := range results {
		for _, e := range r.Events {
			if e.Type != (chain.ValidatorUpdated{}).EventType() {
				continue
			}
			var u chain.ValidatorUpdated
			if err := e.Decode(&u); err != nil {
				return nil, err
			}
			vu := abci.ValidatorUpdate{Power: u.Power, PubKeyType: ed25519.KeyType, PubKeyBytes: bytes.Clone(u.PubKey)}
			if i, ok := at[string(u.PubKey)]; ok {
				out[i] = vu
				continue
			}
			at[string(u.PubKey)] = len(out)
			out = append(out, vu)
		}
	}
	return out, nil
}
