package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/crypto"
	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	cmttypes "github.com/cometbft/cometbft/types"
	cmttime "github.com/cometbft/cometbft/types/time"

	"github.com/satchel-net/satchel/chain"
)

// A genesis ceremony for a network of several validators:
//
//  1. each validator makes its keys in its own home (ValidatorIdentity, or
//     `satchel chain validator-key`) and sends its consensus public key and
//     node ID to the one assembling the network;
//  2. that one writes the genesis naming every validator (NewGenesis, or
//     `satchel chain genesis`) and sends the file to all;
//  3. each validator starts with the genesis file (WithGenesisDoc) and the
//     others' P2P addresses (WithPersistentPeers).
//
// NewNetwork does all three steps for validators on one machine (tests,
// `satchel chain init --validators N`, `satchel devnet --validators N`).

// Identity is what a validator shares for the genesis ceremony.
type Identity struct {
	// NodeID is the peer-to-peer ID (peers name it in ID@HOST:PORT).
	NodeID string `json:"nodeId"`
	// PubKey is the ed25519 consensus key (priv_validator_key.json).
	PubKey chain.ValidatorKey `json:"pubKey"`
}

// ValidatorIdentity makes (or loads) the node key and the validator key in
// home and returns their public parts.
func ValidatorIdentity(home string) (Identity, error) {
	cfg := cmtcfg.DefaultConfig()
	cfg.SetRoot(home)
	for _, d := range []string{"config", "data"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			return Identity{}, fmt.Errorf("chain node home: %w", err)
		}
	}
	nk, err := p2p.LoadOrGenNodeKey(cfg.NodeKeyFile())
	if err != nil {
		return Identity{}, fmt.Errorf("chain node key %s: %w", cfg.NodeKeyFile(), err)
	}
	pv, err := privval.LoadOrGenFilePV(cfg.PrivValidatorKeyFile(), cfg.PrivValidatorStateFile(),
		func() (crypto.PrivKey, error) { return ed25519.GenPrivKey(), nil })
	if err != nil {
		return Identity{}, fmt.Errorf("chain validator key %s: %w", cfg.PrivValidatorKeyFile(), err)
	}
	return Identity{NodeID: string(nk.ID()), PubKey: pv.Key.PubKey.Bytes()}, nil
}

// NewGenesis makes the CometBFT genesis of a new network whose validators
// are vals (each with validatorPower) and whose app state is g.
func NewGenesis(g chain.Genesis, vals []chain.ValidatorKey) (*cmttypes.GenesisDoc, error) {
	if g.ChainID == "" {
		g.ChainID = chain.DefaultChainID
	}
	g.Validators = nil // from the CometBFT validators, not app_state
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if len(vals) == 0 || len(vals) > chain.MaxValidators {
		return nil, fmt.Errorf("chain genesis: %d validators; want 1 to %d", len(vals), chain.MaxValidators)
	}
	appState, err := json.Marshal(g)
	if err != nil {
		return nil, fmt.Errorf("chain genesis: %w", err)
	}
	params := cmttypes.DefaultConsensusParams()
	params.Version.App = AppVersion
	gen := &cmttypes.GenesisDoc{
		GenesisTime:     cmttime.Now(),
		ChainID:         g.ChainID,
		InitialHeight:   1,
		ConsensusParams: params,
		AppState:        appState,
	}
	for i, k := range vals {
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("chain genesis: validator %d: %w", i, err)
		}
		pub := ed25519.PubKey(k)
		gen.Validators = append(gen.Validators, cmttypes.GenesisValidator{
			Address: pub.Address(), PubKey: pub, Power: validatorPower, Name: fmt.Sprintf("validator-%d", i),
		})
	}
	if err := gen.ValidateAndComplete(); err != nil {
		return nil, fmt.Errorf("chain genesis: %w", err)
	}
	return gen, nil
}

// NewNetwork prepares one home per validator of a new network: keys in
// each, and in each the same genesis naming them all, with g as the app
// state. Start each home with New (no genesis option: the file is there)
// and WithPersistentPeers naming the others.
func NewNetwork(homes []string, g chain.Genesis) ([]Identity, error) {
	ids := make([]Identity, len(homes))
	keys := make([]chain.ValidatorKey, len(homes))
	for i, h := range homes {
		if _, err := os.Stat(GenesisPath(h)); err == nil {
			return nil, fmt.Errorf("chain home %s already has a genesis; use empty homes for a new network", h)
		}
		id, err := ValidatorIdentity(h)
		if err != nil {
			return nil, err
		}
		ids[i], keys[i] = id, id.PubKey
	}
	gen, err := NewGenesis(g, keys)
	if err != nil {
		return nil, err
	}
	for _, h := range homes {
		if err := gen.SaveAs(GenesisPath(h)); err != nil {
			return nil, fmt.Errorf("chain genesis: %w", err)
		}
	}
	return ids, nil
}

// ValidatorKey returns the node's consensus public key, what the storage
// lead names in MsgSetValidator to make it a validator.
func (n *Node) ValidatorKey() chain.ValidatorKey { return n.pv.Key.PubKey.Bytes() }
