package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/node"
)

// statusTimeout bounds `satchel chain status`.
const statusTimeout = 10 * time.Second

func init() { registerGroup(newChainCmd) }

func newChainCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chain",
		Short: "Run the data directory chain: init, start, status, validators, upgrade, api",
		Long: `The data directory runs on CometBFT, embedded in this binary.

  satchel chain init     creates a new network: this node is its one validator
  satchel chain start    runs the node until Ctrl-C
  satchel chain status   asks the node at chain.rpc for its height and app hash
  satchel chain init --validators N   a network of N validators on this machine
  satchel chain validator-key / genesis   the genesis ceremony across machines
  satchel chain set-validator   change the validator set (storage lead)
  satchel chain upgrade  move the chain to a newer app version at a height, or --cancel it (storage lead)
  satchel chain api      HTTP/JSON query API, every answer proven

Another machine joins as a full node with the network's genesis file:

  satchel chain start --join ID@HOST:PORT --genesis genesis.json

The chain's home is --home, else chain.home in the config, else HOME/chain.`,
		Args: cobra.NoArgs, // a mistyped subcommand is an error, not this help
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newChainInitCmd(app), newChainStartCmd(app), newChainStatusCmd(app),
		newChainValidatorKeyCmd(app), newChainGenesisCmd(app), newChainSetValidatorCmd(app), newChainValidatorsCmd(app),
		newChainAPICmd(app), newChainUpgradeCmd(app))
	return cmd
}

// chainHome is the CometBFT home: the flag, else chain.home, else
// home/chain.
func chainHome(cfg Config, flag string) string {
	switch {
	case flag != "":
		return flag
	case cfg.Chain.Home != "":
		return cfg.Chain.Home
	}
	return filepath.Join(cfg.Home, "chain")
}

// chainInitResult is what `chain init` reports.
type chainInitResult struct {
	ChainID             string        `json:"chainId"`
	Home                string        `json:"home"`
	Genesis             string        `json:"genesis"`
	NodeID              string        `json:"nodeId"`
	StorageLead         chain.Account `json:"storageLead"`
	StorageLeadKey      string        `json:"storageLeadKey,omitempty"`
	DistributionLead    chain.Account `json:"distributionLead"`
	DistributionLeadKey string        `json:"distributionLeadKey,omitempty"`
	// CreatedKeys are the lead key files this run made (the others were
	// there and are used as they are).
	CreatedKeys []string `json:"createdKeys,omitempty"`
}

func newChainInitCmd(app *App) *cobra.Command {
	var home, storageLead, distributionLead, chainID string
	var validators int
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a new network with this node as its one validator",
		Long: `Create the chain's home: node key, validator key and a genesis naming the
storage lead and the distribution lead. Without --storage-lead or
--distribution-lead, the lead's key is created under HOME/keys, the satchel
home of the config (home:, default .satchel), or the key already there is
used. The keys are not put in the chain home --home: HOME/keys is where the
leader commands look for them. The output lists each key file and whether it
is new: keep them safe, they govern the network.`,
		Example: `  satchel chain init
  satchel chain init --home /srv/chain --chain-id mynet
  satchel chain init --validators 4 --home ./testnet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if validators < 1 {
				return fmt.Errorf("--validators %d: want 1 or more", validators)
			}
			if cmd.Flags().Changed("chain-id") && chainID == "" {
				return fmt.Errorf("--chain-id is empty; name the chain, or leave the flag out for %q", chain.DefaultChainID)
			}
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			start := "satchel chain start"
			if home != "" {
				start += " --home " + home
			}
			home := chainHome(cfg, home)
			if _, err := os.Stat(node.GenesisPath(home)); err == nil {
				return fmt.Errorf("chain home %s is already initialised (%s exists); start it with `%s`, or pass another --home", home, node.GenesisPath(home), start)
			}
			res, err := leadAccounts(cfg, storageLead, distributionLead)
			if err != nil {
				return err
			}
			g := chain.DefaultGenesis(res.StorageLead, res.DistributionLead)
			if chainID != "" {
				g.ChainID = chainID
			}
			if err := g.Validate(); err != nil {
				return err
			}
			if validators > 1 {
				return initNetwork(app, cfg, home, validators, g, res)
			}
			n, err := node.New(home, node.WithGenesis(g), node.WithLogger(app.Log))
			if err != nil {
				return err
			}
			res.ChainID, res.Home, res.Genesis, res.NodeID = n.ChainID(), n.Home(), n.GenesisFile(), n.NodeID()
			return app.Printer().Print(res, func(w io.Writer) error {
				fmt.Fprintf(w, "initialised chain %s in %s\n", res.ChainID, res.Home)
				rows := [][]string{
					{"genesis", res.Genesis},
					{"node ID", res.NodeID},
					{"storage lead", string(res.StorageLead)},
					{"distribution lead", string(res.DistributionLead)},
				}
				for _, r := range rows {
					fmt.Fprintf(w, "  %-18s %s\n", r[0], r[1])
				}
				printLeadKeys(w, app, cfg, res)
				_, err := fmt.Fprintf(w, "start it with `%s`; other nodes join with the genesis file and --join\n", start)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&home, "home", "", "chain home `DIR` (default: chain.home in the config, else HOME/chain)")
	cmd.Flags().StringVar(&storageLead, "storage-lead", "", "storage lead `ACCOUNT` (default: the key under HOME/keys, created if missing)")
	cmd.Flags().StringVar(&distributionLead, "distribution-lead", "", "distribution lead `ACCOUNT` (default: the key under HOME/keys, created if missing)")
	cmd.Flags().StringVar(&chainID, "chain-id", "", "chain `ID` that every transaction signs (default \""+chain.DefaultChainID+"\")")
	cmd.Flags().IntVar(&validators, "validators", 1, "number of validators: above 1, makes `N` validator homes under --home (validator-0 …) sharing one genesis, and prints how to start each")
	return cmd
}

// leadAccounts fills the leads of res from the flags given (see
// leadAccount), noting the key files it created.
func leadAccounts(cfg Config, storageLead, distributionLead string) (chainInitResult, error) {
	var res chainInitResult
	var created bool
	var err error
	if res.StorageLead, res.StorageLeadKey, created, err = leadAccount(cfg, chain.StorageGroup, storageLead); err != nil {
		return res, err
	} else if created {
		res.CreatedKeys = append(res.CreatedKeys, res.StorageLeadKey)
	}
	if res.DistributionLead, res.DistributionLeadKey, created, err = leadAccount(cfg, chain.DistributionGroup, distributionLead); err != nil {
		return res, err
	} else if created {
		res.CreatedKeys = append(res.CreatedKeys, res.DistributionLeadKey)
	}
	return res, nil
}

// leadAccount is the lead of g: the account given, or the key under the
// home (created when missing), with its path and whether it is new.
func leadAccount(cfg Config, g chain.Group, given string) (_ chain.Account, path string, created bool, _ error) {
	if given != "" {
		a, err := chain.ParseAccount(given)
		if err != nil {
			return "", "", false, fmt.Errorf("--%s-lead: %w", g, err)
		}
		return a, "", false, nil
	}
	path, err := filepath.Abs(leadKeyFile(cfg, g))
	if err != nil {
		return "", "", false, err
	}
	_, statErr := os.Stat(path)
	k, err := chain.LoadOrCreateKey(path)
	if err != nil {
		return "", "", false, err
	}
	return k.Account(), path, errors.Is(statErr, fs.ErrNotExist), nil
}

// printLeadKeys lists the lead key files init used, new or found, and says
// they live in the satchel home rather than the chain home, so a user who
// gave --home is not left looking for them there.
func printLeadKeys(w io.Writer, app *App, cfg Config, res chainInitResult) {
	keys := []string{res.StorageLeadKey, res.DistributionLeadKey}
	keys = slices.DeleteFunc(keys, func(k string) bool { return k == "" })
	if len(keys) == 0 {
		return
	}
	home, err := filepath.Abs(cfg.Home)
	if err != nil {
		home = cfg.Home
	}
	fmt.Fprintf(w, "lead keys, under the satchel home %s (home: in %s, default .satchel), not the chain home: leader commands find them there. Keep them safe, they govern the network:\n",
		home, app.ConfigPath)
	for _, k := range keys {
		state := "existing, used as is"
		if slices.Contains(res.CreatedKeys, k) {
			state = "new"
		}
		fmt.Fprintf(w, "  %s (%s)\n", k, state)
	}
}

// chainStartInfo is what `chain start` reports once the node runs.
type chainStartInfo struct {
	ChainID    string `json:"chainId"`
	Home       string `json:"home"`
	NodeID     string `json:"nodeId"`
	RPC        string `json:"rpc"`
	P2P        string `json:"p2p"`
	Validator  bool   `json:"validator"`
	Height     int64  `json:"height"`
	GenesisDoc string `json:"genesis"`
}

func newChainStartCmd(app *App) *cobra.Command {
	var (
		home, rpcAddr, p2pAddr, genesis string
		join                            []string
		blockInterval, emptyBlocks      time.Duration
		snapshotInterval, trustHeight   int64
		syncRPC                         []string
		trustHash                       string
	)
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Run the chain node until Ctrl-C",
		Long: `Run the chain node of the home made by ` + "`satchel chain init`" + ` until interrupted.
RPC and P2P listen on loopback by default; the RPC address defaults to the
host:port of chain.rpc in the config, so other commands find the node.

To join an existing network as a full node, give its genesis file and a
peer (another node's P2P address, ID@HOST:PORT, printed by its start):

  satchel chain start --home ./full --join ID@HOST:PORT --genesis genesis.json`,
		Example: `  satchel chain start
  satchel chain start --home /srv/chain --rpc 0.0.0.0:26657 --p2p 0.0.0.0:26656
  satchel chain start --home ./full --join 5a1f...@10.0.0.5:26656 --genesis genesis.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			home := chainHome(cfg, home)
			if genesis == "" {
				if _, err := os.Stat(node.GenesisPath(home)); errors.Is(err, fs.ErrNotExist) {
					if len(join) > 0 {
						return fmt.Errorf("chain home %s has no genesis: to join a network pass --genesis FILE, the network's genesis.json", home)
					}
					return fmt.Errorf("chain home %s has no genesis: create a network with `satchel chain init`, or join one with --join ID@HOST:PORT --genesis FILE", home)
				}
			}
			if rpcAddr == "" {
				if rpcAddr, err = rpcListenAddr(cfg.Chain.RPC); err != nil {
					return err
				}
			}
			opts := []node.Option{
				node.WithLogger(app.Log),
				node.WithRPCAddr(rpcAddr),
				node.WithP2PAddr(p2pAddr),
				node.WithBlockInterval(blockInterval),
				node.WithEmptyBlockInterval(emptyBlocks),
				node.WithPersistentPeers(join...),
			}
			if genesis != "" {
				opts = append(opts, node.WithGenesisDoc(genesis))
			}
			if snapshotInterval > 0 {
				opts = append(opts, node.WithSnapshotInterval(snapshotInterval))
			}
			if len(syncRPC) > 0 {
				hash, err := hex.DecodeString(trustHash)
				if err != nil || len(hash) != 32 || trustHeight <= 0 {
					return fmt.Errorf("--state-sync needs --trust-height H and --trust-hash (the 64-hex-character hash of block H, from a node you trust)")
				}
				opts = append(opts, node.WithStateSync(node.StateSync{RPCServers: syncRPC, TrustHeight: trustHeight, TrustHash: hash}))
			}
			n, err := node.New(home, opts...)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if err := n.Start(ctx); err != nil {
				return inUse(err, listenSetting{flag: "--rpc", key: "chain.rpc", addr: rpcAddr}, listenSetting{flag: "--p2p", addr: p2pAddr})
			}
			return runChainNode(ctx, app, n)
		},
	}
	f := cmd.Flags()
	f.StringVar(&home, "home", "", "chain home `DIR` (default: chain.home in the config, else HOME/chain)")
	f.StringVar(&rpcAddr, "rpc", "", "RPC listen `HOST:PORT` (default: the host:port of chain.rpc in the config)")
	f.StringVar(&p2pAddr, "p2p", node.DefaultP2PAddr, "P2P listen `HOST:PORT`")
	f.StringSliceVar(&join, "join", nil, "peer `ID@HOST:PORT` to connect to, repeatable (another node's P2P address)")
	f.StringVar(&genesis, "genesis", "", "genesis `FILE` of the network to join (copied into the home)")
	f.DurationVar(&blockInterval, "block-interval", node.DefaultBlockInterval, "pause after each block")
	f.DurationVar(&emptyBlocks, "empty-block-interval", node.DefaultEmptyBlockInterval, "how often an idle chain makes an empty block (0: every block interval)")
	f.Int64Var(&snapshotInterval, "snapshot-interval", 0, "keep a state snapshot every `N` blocks for nodes joining by state sync (0: none)")
	f.StringSliceVar(&syncRPC, "state-sync", nil, "join by state sync from these RPC `URL`s (an empty home only; needs --trust-height and --trust-hash)")
	f.Int64Var(&trustHeight, "trust-height", 0, "state sync: `HEIGHT` of a block you trust")
	f.StringVar(&trustHash, "trust-hash", "", "state sync: `HASH` (hex) of the block at --trust-height")
	return cmd
}

// runChainNode reports the running node, logs heights at Debug and stops
// the node when ctx ends.
func runChainNode(ctx context.Context, app *App, n *node.Node) error {
	tr := n.Transport()
	h, err := tr.LatestHeight(ctx)
	if err != nil {
		n.Stop()
		return err
	}
	info := chainStartInfo{
		ChainID: n.ChainID(), Home: n.Home(), NodeID: n.NodeID(), RPC: n.RPCAddress(),
		P2P: n.P2PAddress(), Validator: n.IsValidator(), Height: h, GenesisDoc: n.GenesisFile(),
	}
	if err := app.Printer().Print(info, func(w io.Writer) error {
		role := "full node"
		if info.Validator {
			role = "validator"
		}
		fmt.Fprintf(w, "chain %s running as %s at height %d (Ctrl-C to stop)\n", info.ChainID, role, info.Height)
		fmt.Fprintf(w, "  RPC      %s\n", info.RPC)
		fmt.Fprintf(w, "  P2P      %s\n", info.P2P)
		_, err := fmt.Fprintf(w, "  genesis  %s\n", info.GenesisDoc)
		return err
	}); err != nil {
		n.Stop()
		return err
	}

	done := make(chan struct{})
	go func() { // the height log; ends when ctx ends or the node stops
		defer close(done)
		for next := h + 1; ; next++ {
			if err := tr.WaitForHeight(ctx, next); err != nil {
				return
			}
			app.Log.Debug("block committed", "component", "chain", "height", next)
		}
	}()
	<-ctx.Done()
	err = n.Stop()
	<-done
	return err
}

// rpcListenAddr turns chain.rpc (a URL such as http://127.0.0.1:26657) into
// the host:port the node listens on.
func rpcListenAddr(rpc string) (string, error) {
	if rpc == "" {
		return node.DefaultRPCAddr, nil
	}
	u, err := url.Parse(rpc)
	if err != nil || u.Host == "" {
		if !strings.Contains(rpc, "://") {
			return rpc, nil // already host:port
		}
		return "", fmt.Errorf("chain.rpc %q: want a URL such as http://127.0.0.1:26657", rpc)
	}
	return u.Host, nil
}

func newChainStatusCmd(app *App) *cobra.Command {
	var rpc string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the chain node's height, app hash and node ID",
		Example: `  satchel chain status
  satchel chain status --rpc http://10.0.0.5:26657 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			if rpc != "" {
				cfg.Chain.RPC = rpc
				if err := checkRPC("--rpc", rpc); err != nil {
					return err
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), statusTimeout)
			defer cancel()
			st, err := node.FetchStatus(ctx, cfg.Chain.RPC)
			if err != nil {
				return chainStatusError(app, cfg, rpc != "", err)
			}
			return app.Printer().Print(st, func(w io.Writer) error {
				for _, r := range [][2]string{
					{"chain", st.ChainID},
					{"height", fmt.Sprint(st.Height)},
					{"app hash", st.AppHash},
					{"block time", st.BlockTime.UTC().Format(time.RFC3339Nano)},
					{"latest block", fmt.Sprintf("%d %s", st.LatestBlockHeight, st.LatestBlockHash)},
					{"node ID", st.NodeID},
					{"p2p", st.P2PAddress},
					{"validator", yesNo(st.Validator)},
					{"catching up", yesNo(st.CatchingUp)},
					{"app version", appVersionLine(st)},
				} {
					if _, err := fmt.Fprintf(w, "%-12s %s\n", r[0], r[1]); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&rpc, "rpc", "", "RPC `URL` of the node (default: chain.rpc in the config)")
	return cmd
}

// chainStatusError explains why `chain status` got no answer: it is the
// command other hints send the user to, so it names what to fix instead
// (--rpc when given, else chain.rpc in the config).
func chainStatusError(app *App, cfg Config, rpcFlag bool, err error) error {
	fix := fmt.Sprintf("set chain.rpc in %s", app.ConfigPath)
	if rpcFlag {
		fix = "fix --rpc"
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("the chain node at %s did not answer within %s: %w; is it starting or overloaded? wait and try again, or %s to another node", cfg.Chain.RPC, statusTimeout, err, fix)
	case unreachable(err, cfg):
		return fmt.Errorf("cannot reach the chain node at %s: %w; start it with `satchel chain start`, or %s to a running node", cfg.Chain.RPC, err, fix)
	}
	return fmt.Errorf("%s did not answer as a chain node's RPC: %w; %s to a chain node's RPC address, e.g. http://127.0.0.1:26657", cfg.Chain.RPC, err, fix)
}
