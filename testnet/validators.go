package testnet

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/node"
)

// validatorRoundTimeout is the consensus round timeout of a network of
// several validators in one process: a stopped proposer costs this long.
const validatorRoundTimeout = time.Second

// startValidators starts a chain of cfg.Validators validators in chainHome
// (validator-0 …, made on first start with one genesis naming them all) on
// free loopback ports, each naming the others as peers. Validator 0 serves
// the RPC at cfg.ChainRPCAddr.
func startValidators(ctx context.Context, chainHome string, cfg Config, g chain.Genesis) ([]*node.Node, error) {
	homes := make([]string, cfg.Validators)
	for i := range homes {
		homes[i] = filepath.Join(chainHome, fmt.Sprintf("validator-%d", i))
	}
	if _, err := os.Stat(node.GenesisPath(chainHome)); err == nil {
		return nil, fmt.Errorf("testnet: %s holds a chain of one validator; start it without validators or use another directory", chainHome)
	}
	if _, err := os.Stat(filepath.Join(chainHome, fmt.Sprintf("validator-%d", cfg.Validators))); err == nil {
		return nil, fmt.Errorf("testnet: %s holds a chain of more than %d validators; start it with as many or use another directory", chainHome, cfg.Validators)
	}
	if _, err := os.Stat(node.GenesisPath(homes[0])); err != nil {
		if _, err := node.NewNetwork(homes, g); err != nil {
			return nil, err
		}
	}
	ids := make([]node.Identity, len(homes))
	p2p := make([]string, len(homes))
	for i, h := range homes {
		id, err := node.ValidatorIdentity(h)
		if err != nil {
			return nil, err
		}
		ids[i] = id
		if p2p[i], err = freeLoopbackAddr(); err != nil {
			return nil, err
		}
	}
	nodes := make([]*node.Node, 0, len(homes))
	stopAll := func() {
		for _, n := range nodes {
			n.Stop()
		}
	}
	for i, h := range homes {
		var peers []string
		for j := range homes {
			if j != i {
				peers = append(peers, ids[j].NodeID+"@"+p2p[j])
			}
		}
		rpc := ""
		if i == 0 {
			rpc = cfg.ChainRPCAddr
		}
		opts := []node.Option{
			node.WithRPCAddr(rpc), node.WithP2PAddr(p2p[i]), node.WithPersistentPeers(peers...),
			node.WithLogger(cfg.Logger.With("component", "chain", "validator", i)),
			node.WithRoundTimeout(validatorRoundTimeout), node.WithLocalPeers(),
		}
		if cfg.BlockInterval > 0 {
			opts = append(opts, node.WithBlockInterval(cfg.BlockInterval))
		}
		n, err := node.New(h, opts...)
		if err == nil {
			err = n.Start(ctx)
		}
		if err != nil {
			stopAll()
			return nil, fmt.Errorf("testnet: validator %d: %w", i, err)
		}
		nodes = append(nodes, n)
	}
	// Each node starts in block sync, refusing transactions, until it has
	// found its peers and moved to consensus.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := nodes[0].Status(ctx)
		if err == nil && !st.CatchingUp && st.Height >= 1 {
			return nodes, nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			stopAll()
			return nil, fmt.Errorf("testnet: the validators did not start making blocks: %w (last error: %v)", ctx.Err(), err)
		}
	}
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Validators returns the chain's validators (validator 0 is Chain); nil
// entries were stopped with StopValidator.
func (n *Network) Validators() []*node.Node { return n.validators }

// StopValidator stops validator i (i > 0; validator 0 serves the network's
// own transport). With more than 2/3 of the voting power still running,
// blocks go on.
func (n *Network) StopValidator(i int) error {
	if i <= 0 || i >= len(n.validators) || n.validators[i] == nil {
		return fmt.Errorf("testnet: no running validator %d to stop (1 to %d)", i, len(n.validators)-1)
	}
	err := n.validators[i].Stop()
	n.validators[i] = nil
	return err
}
