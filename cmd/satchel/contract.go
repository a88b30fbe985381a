package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/topics"
)

func init() { registerGroup(newContractCmd) }

// contractStoreDir is where the CLI keeps the contracts it consigned as a
// renter.
func contractStoreDir(cfg Config) string { return filepath.Join(cfg.Home, "contracts") }

func newContractCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "contract",
		Short: "Publish storage contract proposals and list the contracts kept here",
		Long: `A storage contract binds a member (the renter) and the operator of a storage
bucket (the provider) to store an object for a time. A renter publishes a signed
proposal on the gossipsub topic of its requirements (see "satchel topic"); the
providers subscribed to it whose bucket stores the bag offer; the renter
consigns with the best. Both sides keep the contracts: the renter under
HOME/contracts, a provider under its data directory's contracts/.`,
		Args: cobra.NoArgs, // a mistyped subcommand is an error, not this help
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newContractPublishCmd(app), newContractListCmd(app), newContractShowCmd(app))
	return cmd
}

// offerJSON is one offer as `contract publish --json` prints it.
type offerJSON struct {
	Provider string `json:"provider"`
	Bucket   uint64 `json:"bucket,omitempty"`
	Worker   uint64 `json:"worker,omitempty"`
	End      string `json:"end,omitempty"`
	RTTms    int64  `json:"rttMs"`
	Chosen   bool   `json:"chosen"`
	Error    string `json:"error,omitempty"`
}

type publishJSON struct {
	Topic     string      `json:"topic"`
	Proposal  string      `json:"proposal"`
	Offers    []offerJSON `json:"offers"`
	Contracts []string    `json:"contracts"`
}

func newContractPublishCmd(app *App) *cobra.Command {
	var (
		bagFlag, keyFlag string
		redundancy       int
		member           uint64
		window           time.Duration
	)
	duration := newFlag("30d", 30*24*time.Hour, parseDays, "duration")
	avail := newFlag("high", topics.High, topics.ParseDescriptor, "level")
	speed := newFlag("high", topics.High, topics.ParseDescriptor, "level")
	cmd := &cobra.Command{
		Use:   "publish FILE --bag BAG",
		Short: "Publish a proposal for storing FILE and consign with the best offers",
		Long: `Publish a signed storage contract proposal for FILE's size and the given needs
on the matching contract topic, collect the offers of the bag's providers for
--window, check each against the chain and consign with the best --redundancy.
It prints the topic, every offer (provider, terms, time to arrive) and which were
chosen. The contracts are kept under HOME/contracts. The file itself is not
uploaded: "satchel put" does that.`,
		Example: `  satchel contract publish video.mp4 --bag dynamic:channel:1 --duration 60d --availability high --speed high`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bag, err := chain.ParseBagID(bagFlag)
			if err != nil {
				return fmt.Errorf("--bag: %w", err)
			}
			fi, err := os.Stat(args[0])
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return fmt.Errorf("file %s does not exist; check the path", args[0])
			case err != nil:
				return err
			case fi.IsDir():
				return fmt.Errorf("%s is a directory; publish a proposal for one file", args[0])
			}
			if !fi.Mode().IsRegular() || fi.Size() == 0 {
				return fmt.Errorf("%s: want a non-empty regular file", args[0])
			}
			if err := checkContractDuration(duration); err != nil {
				return err
			}
			if redundancy < 0 || redundancy > contracts.MaxRedundancy {
				return fmt.Errorf("--redundancy %d: want 1 to %d (0: every storage bucket of the bag)", redundancy, contracts.MaxRedundancy)
			}
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			s, err := loadSigner(app, cfg, keyFlag, accountRole, false)
			if err != nil {
				return err
			}
			// --member 0 is member 0, not "unset": the devnet's member.
			var who *chain.MemberID
			if cmd.Flags().Changed("member") {
				who = new(chain.MemberID(member))
			}
			return runContractPublish(cmd.Context(), app, cfg, s.key, bag, who, contracts.Request{
				Terms: contracts.Terms{Bag: bag, Size: uint64(fi.Size()),
					Chunks:       uint64((fi.Size() + int64(chunker.DefaultChunkSize) - 1) / int64(chunker.DefaultChunkSize)),
					Availability: avail.value, Speed: speed.value, Redundancy: uint32(redundancy)},
				Duration: duration.value, Window: window,
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&bagFlag, "bag", "b", "", "the bag the file is for, e.g. dynamic:channel:1 (required)")
	f.StringVarP(&keyFlag, "key", "k", "", "member controller key `PATH` (default: key in the config, else the account key under the home)")
	f.Var(duration, "duration", "how long to store, e.g. 60d (1s to 3650d)")
	f.Var(avail, "availability", "availability class: low, medium or high")
	f.Var(speed, "speed", "speed class: low, medium or high")
	f.IntVarP(&redundancy, "redundancy", "r", 0, "providers to consign with (default: every storage bucket of the bag)")
	f.Uint64Var(&member, "member", 0, "member `ID` the key controls (default: the bag's member)")
	f.DurationVar(&window, "window", contracts.DefaultOfferWindow, "how long to collect offers")
	requiredFlags(cmd, "bag")
	return cmd
}

// runContractPublish publishes req and consigns with the best offers,
// signing for who (nil: the bag's member).
func runContractPublish(ctx context.Context, app *App, cfg Config, key chain.Key, bag chain.BagID, who *chain.MemberID, req contracts.Request) error {
	cc, closeChain, err := dialChain(app, cfg)
	if err != nil {
		return err
	}
	defer closeChain()
	var member chain.MemberID
	if who != nil {
		member = *who
	} else if member, err = bagMember(ctx, cc, bag); err != nil {
		if errors.Is(err, errNoBagMember) {
			return fmt.Errorf("%w; pass --member with the member ID your key controls", err)
		}
		return explain(app, cfg, err, nil)
	}
	b, err := cc.Bag(ctx, bag)
	if err != nil {
		return explain(app, cfg, err, nil)
	}
	if len(b.StorageBuckets) == 0 {
		return fmt.Errorf("bag %s is in no storage bucket, so no provider may offer; ask the storage lead to add the bag to a bucket (update-bag)", bag)
	}
	if req.Redundancy == 0 {
		req.Redundancy = uint32(min(len(b.StorageBuckets), contracts.MaxRedundancy))
	}
	// Only the operators of the bag's buckets may offer: more
	// contracts than buckets cannot be consigned.
	if int(req.Redundancy) > len(b.StorageBuckets) {
		return fmt.Errorf("--redundancy %d: bag %s is stored by %d storage bucket(s), whose operators alone may offer; ask for at most %d, or ask the storage lead to add the bag to more buckets",
			req.Redundancy, bag, len(b.StorageBuckets), len(b.StorageBuckets))
	}
	// No more authorised offers can come than the bag has buckets.
	req.Enough = min(2*int(req.Redundancy), len(b.StorageBuckets))
	hostLog := slog.New(slog.DiscardHandler)
	if app.Verbose {
		hostLog = app.Log
	}
	h, err := p2p.New(ctx, p2p.WithBootstrapAddrs(cfg.P2P.Bootstrap...), p2p.WithDHTMode(dht.ModeClient),
		p2p.WithLogger(hostLog), p2p.WithPubSubOptions(contracts.ScoreOptions()...))
	if err != nil {
		return fmt.Errorf("start libp2p host: %w", err)
	}
	defer h.Close()
	st, err := contracts.OpenStore(contractStoreDir(cfg))
	if err != nil {
		return err
	}
	defer st.Close()
	g := contracts.NewGossip(h, cc, app.Log)
	defer g.Close()
	r := contracts.NewRenter(h, g, key, member, cc, st, app.Log)
	defer r.Close()

	if p, err := r.Propose(req); err == nil {
		// Give gossipsub a moment to learn who is subscribed: up to the
		// offer window, ending as soon as one subscriber is known (none
		// known: publish all the same).
		wctx, cancel := context.WithTimeout(ctx, req.Window)
		_ = h.WaitTopicPeers(wctx, p.Topic.String(), 1)
		cancel()
	}
	n, err := r.Negotiate(ctx, req)
	if n == nil {
		return err
	}
	out := publishJSON{Topic: n.Proposal.Topic.String(), Proposal: n.Proposal.ID.String(), Offers: []offerJSON{}, Contracts: []string{}}
	chosen := map[string]bool{}
	for _, cs := range n.Contracts {
		chosen[cs.Contract.ProviderPeer.String()] = true
		out.Contracts = append(out.Contracts, cs.Contract.ID.String()+"/"+cs.Contract.Provider.String())
	}
	for _, o := range n.Offers {
		oj := offerJSON{Provider: o.From.String(), RTTms: o.After.Milliseconds(), Chosen: chosen[o.From.String()]}
		if o.Contract != nil {
			oj.Bucket, oj.Worker, oj.End = uint64(o.Contract.Bucket), uint64(o.Contract.Worker), o.Contract.End.UTC().Format(time.RFC3339)
		}
		if o.Err != nil {
			oj.Error = o.Err.Error()
		}
		out.Offers = append(out.Offers, oj)
	}
	perr := app.Printer().Print(out, func(w io.Writer) error {
		fmt.Fprintf(w, "proposal %s on topic %s\n", out.Proposal, out.Topic)
		rows := [][]string{}
		for _, o := range out.Offers {
			status := "offered"
			switch {
			case o.Chosen:
				status = "chosen"
			case o.Error != "":
				status = o.Error
			}
			rows = append(rows, []string{o.Provider, strconv.FormatUint(o.Bucket, 10), o.End, strconv.FormatInt(o.RTTms, 10) + " ms", status})
		}
		if err := Table(w, []string{"PROVIDER", "BUCKET", "END", "ARRIVED AFTER", "STATUS"}, rows); err != nil {
			return err
		}
		// What a proposal's contracts are for is not obvious from its
		// output: `contract show` later says no object was recorded.
		_, err := fmt.Fprintf(w, "the file itself is not uploaded: `satchel put FILE --bag %s` uploads it, under contracts it negotiates itself\n", bag)
		return err
	})
	return errors.Join(perr, err)
}

// bagMember is the member behind a dynamic bag: the member of a member bag,
// the owner member of a channel bag.
func bagMember(ctx context.Context, cc *chain.Client, bag chain.BagID) (chain.MemberID, error) {
	t, id, ok := bag.Dynamic()
	switch {
	case ok && t == chain.MemberBagType:
		return chain.MemberID(id), nil
	case ok && t == chain.ChannelBagType:
		ch, err := cc.Channel(ctx, chain.ChannelID(id))
		if errors.Is(err, chain.ErrChannelNotFound) {
			// The channel's bag is gone with it (or never was): say so,
			// as every command does of a bag that does not exist.
			if _, berr := cc.Bag(ctx, bag); errors.Is(berr, chain.ErrBagNotFound) {
				return 0, berr
			}
		}
		if err != nil {
			return 0, fmt.Errorf("bag %s: read channel %d: %w", bag, id, err)
		}
		return ch.Member, nil
	}
	return 0, fmt.Errorf("bag %s %w", bag, errNoBagMember)
}

// errNoBagMember is bagMember's answer for a static bag; each command says
// what to do about it.
var errNoBagMember = errors.New("belongs to no member")

// checkContractDuration refuses a --duration no contract may have, before
// anything is contacted: the contracts package would refuse the proposal.
func checkContractDuration(d *valueFlag[time.Duration]) error {
	if d.value < time.Second || d.value > contracts.MaxDuration || d.value%time.Second != 0 {
		return fmt.Errorf("--duration %s: want whole seconds from 1s to %.0f days (e.g. 30d, 36h)", d.raw, contracts.MaxDuration.Hours()/24)
	}
	return nil
}

// contractJSON is a contract as `contract list|show --json` prints it.
type contractJSON struct {
	ID    string `json:"id"`
	Topic string `json:"topic"`
	Bag   string `json:"bag"`
	// Object is the data object the contract covers: the one it names, or
	// the one its upload was bound to (recorded in the renter's store); 0
	// when neither, Bound false.
	Object       uint64 `json:"object"`
	Bound        bool   `json:"bound"`
	ContentID    string `json:"contentId,omitempty"`
	Size         uint64 `json:"size"`
	Chunks       uint64 `json:"chunks"`
	Start        string `json:"start"`
	End          string `json:"end"`
	Live         bool   `json:"live"`
	Availability string `json:"availability"`
	Speed        string `json:"speed"`
	Redundancy   uint32 `json:"redundancy"`
	Renter       string `json:"renter"`
	Member       uint64 `json:"member"`
	Provider     string `json:"provider"`
	Worker       uint64 `json:"worker"`
	Bucket       uint64 `json:"bucket"`
	ProviderPeer string `json:"providerPeer"`
}

func newContractJSON(st *contracts.Store, c *contracts.Contract, now time.Time) (contractJSON, error) {
	obj := c.Object
	if obj == 0 {
		bound, ok, err := st.Bound(c.ID, c.Provider)
		if err != nil {
			return contractJSON{}, err
		}
		if ok {
			obj = bound
		}
	}
	return contractJSON{
		ID: c.ID.String(), Topic: c.Topic.String(), Bag: c.Bag.String(), Object: uint64(obj), Bound: obj != 0, ContentID: c.ContentID,
		Size: c.Size, Chunks: c.Chunks, Start: c.Start.UTC().Format(time.RFC3339), End: c.End.UTC().Format(time.RFC3339),
		Live: c.Live(now), Availability: c.Availability.String(), Speed: c.Speed.String(), Redundancy: c.Redundancy,
		Renter: c.Renter.String(), Member: uint64(c.Member), Provider: c.Provider.String(), Worker: uint64(c.Worker),
		Bucket: uint64(c.Bucket), ProviderPeer: c.ProviderPeer.String(),
	}, nil
}

// objectCell is a contract's object as a table shows it: its ID, or why
// there is none.
func (c contractJSON) objectCell(long bool) string {
	switch {
	case c.Bound:
		return strconv.FormatUint(c.Object, 10)
	case long:
		return "none recorded: its upload never completed, or this is not the renter's store"
	}
	return "-"
}

// openContractStore opens --store, or the renter store under the home.
func openContractStore(app *App, dir string) (*contracts.Store, error) {
	if dir == "" {
		cfg, err := app.Config()
		if err != nil {
			return nil, err
		}
		dir = contractStoreDir(cfg)
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("no contract store at %s (%w); pass --store with a provider's DATA/contracts or publish first", dir, err)
	}
	st, err := contracts.OpenStore(dir)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		// The store is one process's at a time: a storage server keeps its
		// own open while it runs.
		return nil, fmt.Errorf("contract store %s is open in another process: a running storage server (or `satchel put`) holds its store while it runs; read it once that has stopped", dir)
	}
	return st, err
}

func newContractListCmd(app *App) *cobra.Command {
	var dir string
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the live contracts kept here (--all: ended ones too)",
		Example: `  satchel contract list
  satchel contract list --store /var/lib/satchel/provider/contracts --all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openContractStore(app, dir)
			if err != nil {
				return err
			}
			defer st.Close()
			cs, err := st.List()
			if err != nil {
				return err
			}
			now := time.Now()
			out := []contractJSON{}
			for _, c := range cs {
				if all || c.Live(now) {
					cj, err := newContractJSON(st, c, now)
					if err != nil {
						return err
					}
					out = append(out, cj)
				}
			}
			slices.SortStableFunc(out, func(a, b contractJSON) int { return cmpString(a.End, b.End) })
			return app.Printer().Print(out, func(w io.Writer) error {
				rows := [][]string{}
				for _, c := range out {
					rows = append(rows, []string{c.ID, c.Topic, c.Bag, c.objectCell(false), formatBytes(c.Size), strconv.FormatUint(c.Bucket, 10), c.End})
				}
				return Table(w, []string{"CONTRACT", "TOPIC", "BAG", "OBJECT", "SIZE", "BUCKET", "END"}, rows)
			})
		},
	}
	cmd.Flags().StringVar(&dir, "store", "", "contract store `DIR` (default HOME/contracts; a provider's is DATA/contracts, readable while the provider is stopped)")
	cmd.Flags().BoolVar(&all, "all", false, "include contracts that ended")
	return cmd
}

func newContractShowCmd(app *App) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:     "show CONTRACT_ID",
		Short:   "Show every contract with an ID (one per provider) in full",
		Example: `  satchel contract show 5f0c2a…`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := contracts.ParseID(args[0])
			if err != nil {
				return err
			}
			st, err := openContractStore(app, dir)
			if err != nil {
				return err
			}
			defer st.Close()
			cs, err := st.ByID(id)
			if err != nil {
				return err
			}
			if len(cs) == 0 {
				return fmt.Errorf("no contract %s in this store; see \"satchel contract list --all\"", id)
			}
			now := time.Now()
			out := []contractJSON{}
			for _, c := range cs {
				cj, err := newContractJSON(st, c, now)
				if err != nil {
					return err
				}
				out = append(out, cj)
			}
			return app.Printer().Print(out, func(w io.Writer) error {
				for _, c := range out {
					if err := Table(w, []string{"contract", c.ID}, [][]string{
						{"topic", c.Topic}, {"bag", c.Bag}, {"object", c.objectCell(true)},
						{"content id", c.ContentID}, {"size", formatBytes(c.Size)}, {"chunks", strconv.FormatUint(c.Chunks, 10)},
						{"start", c.Start}, {"end", c.End}, {"live", strconv.FormatBool(c.Live)},
						{"availability", c.Availability}, {"speed", c.Speed}, {"redundancy", strconv.FormatUint(uint64(c.Redundancy), 10)},
						{"renter", fmt.Sprintf("%s (member %d)", c.Renter, c.Member)},
						{"provider", fmt.Sprintf("%s (worker %d, bucket %d)", c.Provider, c.Worker, c.Bucket)},
						{"provider peer", c.ProviderPeer},
					}); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&dir, "store", "", "contract store `DIR` (default HOME/contracts; a provider's is DATA/contracts, readable while the provider is stopped)")
	return cmd
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
