package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/node"
)

// networkValidator is one validator home made by `chain init --validators`.
type networkValidator struct {
	Home   string `json:"home"`
	NodeID string `json:"nodeId"`
	PubKey string `json:"pubKey"`
	P2P    string `json:"p2p"`
	RPC    string `json:"rpc"`
	Start  string `json:"start"`
}

// initNetwork makes n validator homes under home (validator-0 …) sharing
// one genesis, and the command line that starts each on loopback.
func initNetwork(app *App, cfg Config, home string, n int, g chain.Genesis, res chainInitResult) error {
	if n > chain.MaxValidators {
		return fmt.Errorf("--validators %d: at most %d", n, chain.MaxValidators)
	}
	homes := make([]string, n)
	for i := range homes {
		homes[i] = filepath.Join(home, fmt.Sprintf("validator-%d", i))
	}
	ids, err := node.NewNetwork(homes, g)
	if err != nil {
		return err
	}
	vals := make([]networkValidator, n)
	for i, id := range ids {
		vals[i] = networkValidator{Home: homes[i], NodeID: id.NodeID, PubKey: id.PubKey.String(),
			P2P: "127.0.0.1:" + strconv.Itoa(26656+10*i), RPC: "127.0.0.1:" + strconv.Itoa(26657+10*i)}
	}
	for i := range vals {
		var peers []string
		for j, v := range vals {
			if j != i {
				peers = append(peers, "--join "+v.NodeID+"@"+v.P2P)
			}
		}
		vals[i].Start = fmt.Sprintf("satchel chain start --home %s --p2p %s --rpc %s %s", vals[i].Home, vals[i].P2P, vals[i].RPC, strings.Join(peers, " "))
	}
	out := struct {
		chainInitResult
		Validators []networkValidator `json:"validators"`
	}{res, vals}
	out.ChainID, out.Home, out.Genesis = g.ChainID, home, node.GenesisPath(homes[0])
	return app.Printer().Print(out, func(w io.Writer) error {
		fmt.Fprintf(w, "initialised chain %s with %d validators in %s\n", g.ChainID, n, home)
		fmt.Fprintf(w, "  %-18s %s\n", "storage lead", res.StorageLead)
		fmt.Fprintf(w, "  %-18s %s\n", "distribution lead", res.DistributionLead)
		printLeadKeys(w, app, cfg, res)
		fmt.Fprintln(w, "start each validator (one process each):")
		for _, v := range vals {
			fmt.Fprintf(w, "  %s\n", v.Start)
		}
		_, err := fmt.Fprintf(w, "blocks come once more than 2/3 of them (%d of %d) run\n", n*2/3+1, n)
		return err
	})
}

func newChainValidatorKeyCmd(app *App) *cobra.Command {
	var home string
	cmd := &cobra.Command{
		Use:   "validator-key",
		Short: "Make (or show) this node's keys for a genesis ceremony or a validator change",
		Long: `Make the node key and the validator (consensus) key in the chain home, or
read them if they exist, and print the node ID and the consensus public key.
Send both to whoever assembles the genesis of a new network, or, for a
running network, to the storage lead, who adds the key with
` + "`satchel chain set-validator --pubkey KEY --power 10`" + `.`,
		Example: `  satchel chain validator-key
  satchel chain validator-key --home /srv/chain --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			id, err := node.ValidatorIdentity(chainHome(cfg, home))
			if err != nil {
				return err
			}
			return app.Printer().Print(id, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "node ID  %s\npub key  %s\n", id.NodeID, id.PubKey)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&home, "home", "", "chain home `DIR` (default: chain.home in the config, else HOME/chain)")
	return cmd
}

func parseValidatorKey(s string) (chain.ValidatorKey, error) {
	var k chain.ValidatorKey
	if err := k.UnmarshalText([]byte(s)); err != nil {
		// The decoder's own words (an invalid byte) do not say what a key
		// looks like or where to get one.
		return nil, fmt.Errorf("validator key %q is not hex: want the 64 hex characters of the pub key `satchel chain validator-key` prints", s)
	}
	return k, k.Validate()
}

func newChainSetValidatorCmd(app *App) *cobra.Command {
	pub := newFlag("", chain.ValidatorKey(nil), parseValidatorKey, "hex")
	var power int64
	return txCommand{
		use:   "set-validator --pubkey KEY --power N",
		short: "Add a validator, change its voting power, or remove it (--power 0). Requires the storage lead",
		long: `Set a validator's voting power: a new consensus key joins the validator set,
a known one changes power, --power 0 removes it. The change takes effect two
blocks after the one that makes it. The set keeps at least one validator;
keep enough running: blocks need more than 2/3 of the voting power.
The key is the node's consensus public key (` + "`satchel chain validator-key`" + ` on it).`,
		example: `  satchel chain set-validator --pubkey 9f1c...a0 --power 10 -y
  satchel chain set-validator --pubkey 9f1c...a0 --power 0 -y`,
		flags: func(cmd *cobra.Command) {
			cmd.Flags().Var(pub, "pubkey", "the validator's consensus public key, 64 hex characters (required)")
			cmd.Flags().Int64Var(&power, "power", 10, "voting power (0 removes the validator)")
			requiredFlags(cmd, "pubkey")
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgSetValidator{PubKey: pub.value, Power: power}
			action := fmt.Sprintf("Set validator %s to voting power %d", m.PubKey, m.Power)
			if power == 0 {
				action = fmt.Sprintf("Remove validator %s", m.PubKey)
			}
			return tx{role: leadRole(chain.StorageGroup), msg: m, action: action}, nil
		},
	}.command(app)
}

func newChainValidatorsCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "validators",
		Short: "List the validator set as the data directory records it",
		Example: `  satchel chain validators
  satchel chain validators --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			vals, err := chainRead(cmd, app, func(ctx context.Context, c *chain.Client) ([]chain.Validator, error) {
				return c.Validators(ctx)
			})
			if err != nil {
				return err
			}
			return app.Printer().Print(vals, func(w io.Writer) error {
				for _, v := range vals {
					if _, err := fmt.Fprintf(w, "%s  power %d\n", v.PubKey, v.Power); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
}

func newChainGenesisCmd(app *App) *cobra.Command {
	var storageLead, distributionLead, chainID, out string
	var keys []string
	cmd := &cobra.Command{
		Use:   "genesis --validator KEY... --out FILE",
		Short: "Assemble the genesis of a new multi-validator network (genesis ceremony)",
		Long: `Write the genesis of a new network naming every validator: each validator
runs ` + "`satchel chain validator-key`" + ` on its machine and sends its public key; this
command names them all (one --validator each) with the storage and
distribution leads. Send the file to every validator; each starts with
` + "`satchel chain start --genesis FILE --join ...`" + ` naming the others' P2P addresses.`,
		Example: `  satchel chain genesis --validator 9f1c...a0 --validator 3b7e...12 --validator 52d0...c9 --out genesis.json
  satchel chain genesis --validator 9f1c...a0 --chain-id mynet --storage-lead 03a1...b8 --distribution-lead 03a1...b8`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			vals := make([]chain.ValidatorKey, len(keys))
			for i, k := range keys {
				if vals[i], err = parseValidatorKey(k); err != nil {
					return fmt.Errorf("--validator %q: %w", k, err)
				}
			}
			leads, err := leadAccounts(cfg, storageLead, distributionLead)
			if err != nil {
				return err
			}
			g := chain.DefaultGenesis(leads.StorageLead, leads.DistributionLead)
			if chainID != "" {
				g.ChainID = chainID
			}
			gen, err := node.NewGenesis(g, vals)
			if err != nil {
				return err
			}
			if err := gen.SaveAs(out); err != nil {
				return fmt.Errorf("write genesis: %w", err)
			}
			res := map[string]any{"genesis": out, "chainId": gen.ChainID, "validators": len(vals),
				"storageLead": leads.StorageLead, "distributionLead": leads.DistributionLead}
			for k, v := range map[string]string{"storageLeadKey": leads.StorageLeadKey, "distributionLeadKey": leads.DistributionLeadKey} {
				if v != "" {
					res[k] = v
				}
			}
			if len(leads.CreatedKeys) > 0 {
				res["createdKeys"] = leads.CreatedKeys
			}
			return app.Printer().Print(res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "wrote the genesis of chain %s with %d validators to %s\n", gen.ChainID, len(vals), out)
				printLeadKeys(w, app, cfg, leads)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&keys, "validator", nil, "a validator's consensus public `KEY` (hex), repeatable (required)")
	f.StringVar(&out, "out", "genesis.json", "`FILE` to write")
	f.StringVar(&storageLead, "storage-lead", "", "storage lead `ACCOUNT` (default: the key under HOME/keys, created if missing)")
	f.StringVar(&distributionLead, "distribution-lead", "", "distribution lead `ACCOUNT` (default: the key under HOME/keys, created if missing)")
	f.StringVar(&chainID, "chain-id", "", "chain `ID` (default \""+chain.DefaultChainID+"\")")
	requiredFlags(cmd, "validator")
	return cmd
}
