package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/rpc"
	"github.com/satchel-net/satchel/client"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/provider"
	"github.com/satchel-net/satchel/topics"
)

// The contract hooks of other commands: `storage server --contract-topic`
// and `put --contracts`.

// startContractResponder makes a storage server answer contract proposals on
// ts, keeping contracts in DATA/contracts, and makes srv take streamed
// upload sessions under the grants of its consigned contracts. It returns a
// no-op when ts is empty. room sets the Ledger that reserves room for open
// uploads.
func startContractResponder(h *p2p.Host, c *chain.Client, srv *provider.Server, id provider.Identity, roleKey chain.Key, data string, ts []topics.Topic, reg prometheus.Registerer, log *slog.Logger, room ...contracts.LedgerOption) (func(), error) {
	if len(ts) == 0 {
		return func() {}, nil
	}
	m, err := contracts.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	st, err := contracts.OpenStore(filepath.Join(data, "contracts"))
	if err != nil {
		return nil, err
	}
	resp, err := contracts.NewResponder(h, contracts.NewGossip(h, c, log, contracts.WithGossipMetrics(m)),
		contracts.Identity{Key: roleKey, Worker: id.Worker, Bucket: id.Bucket},
		contracts.NewChainAuthority(c, id.Bucket), contracts.NewLedger(c, id.Bucket, srv.FreeDisk(), room...), st,
		contracts.WithTopics(ts...), contracts.WithLogger(log), contracts.WithMetrics(m), contracts.WithMirrorer(srv))
	if err != nil {
		st.Close()
		return nil, err
	}
	// Streamed upload sessions are taken under the grants of consigned
	// contracts only.
	srv.SetUploadGrants(resp)
	return func() { srv.SetUploadGrants(nil); _ = resp.Close(); _ = st.Close() }, nil
}

// parseTopics reads contract topic strings.
func parseTopics(ss []string) ([]topics.Topic, error) {
	var ts []topics.Topic
	for _, s := range ss {
		t, err := topics.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("--contract-topic: %w", err)
		}
		if t.Prefix != topics.PrefixContract {
			return nil, fmt.Errorf("--contract-topic %s: not a contract topic (prefix 0f)", s)
		}
		ts = append(ts, t)
	}
	return ts, nil
}

func topicStrings(ts []topics.Topic) []string {
	out := []string{}
	for _, t := range ts {
		out = append(out, t.String())
	}
	return out
}

// contractPutFlags are the flags `satchel put` takes for its negotiation.
type contractPutFlags struct {
	use, skip    bool
	duration     *valueFlag[time.Duration]
	availability *valueFlag[topics.Descriptor]
	speed        *valueFlag[topics.Descriptor]
}

func addContractPutFlags(cmd *cobra.Command) *contractPutFlags {
	f := &contractPutFlags{
		duration:     newFlag("30d", 30*24*time.Hour, parseDays, "duration"),
		availability: newFlag("high", topics.High, topics.ParseDescriptor, "level"),
		speed:        newFlag("high", topics.High, topics.ParseDescriptor, "level"),
	}
	cmd.Flags().BoolVar(&f.use, "contracts", true, "negotiate storage contracts first (proposal on the contract topic, offers, consign), falling back to the chain's providers when none offers")
	cmd.Flags().BoolVar(&f.skip, "no-contracts", false, "skip the contract negotiation: register the object first, then push its chunks with proofs to the providers the chain names")
	cmd.Flags().Var(f.duration, "duration", "contracts: how long to store, e.g. 60d (1s to 3650d)")
	cmd.Flags().Var(f.availability, "availability", "contracts: availability class low, medium or high")
	cmd.Flags().Var(f.speed, "speed", "contracts: speed class low, medium or high")
	return f
}

// check refuses contract flags that contradict each other or that no
// contract may carry, before anything is contacted.
func (f *contractPutFlags) check(cmd *cobra.Command) error {
	if f.skip && f.use && cmd.Flags().Changed("contracts") {
		return errors.New("--contracts and --no-contracts contradict each other; pass one")
	}
	return checkContractDuration(f.duration)
}

// enabled reports whether the put negotiates contracts.
func (f *contractPutFlags) enabled() bool { return f.use && !f.skip }

// say prints a progress line of the negotiation on stderr (a debug log
// line with --json).
func say(app *App, line string) {
	if app.JSON {
		app.Log.Debug(line)
		return
	}
	fmt.Fprintln(app.Err, line)
}

// contractPutOption returns the put option of a `satchel put --contracts`,
// printing one progress line for the negotiation, and a function that
// releases what it opened.
func (f *contractPutFlags) option(ctx context.Context, app *App, cfg Config, c *client.Client, cc *chain.Client, key chain.Key, bag chain.BagID) (client.PutOption, func(), error) {
	if !f.enabled() {
		say(app, "contracts: skipped (--no-contracts); registering the object first, then pushing its chunks with proofs")
		return nil, func() {}, nil
	}
	// A block of lag is fine for who owns the bag (a proven read need not
	// wait for the next block): a proposal signed for a member that just
	// changed is refused and the put falls back to the chain's providers.
	member, err := bagMember(rpc.AcceptLag(ctx), cc, bag)
	if errors.Is(err, errNoBagMember) {
		return nil, nil, fmt.Errorf("%w, so no contract is proposed for it", err)
	}
	if err != nil {
		return nil, nil, err
	}
	st, err := contracts.OpenStore(contractStoreDir(cfg))
	if err != nil {
		return nil, nil, err
	}
	h := c.Host()
	dir := laggedDirectory{cc}
	g := contracts.NewGossip(h, dir, app.Log)
	r := contracts.NewRenter(h, g, key, member, dir, st, app.Log)
	needs := client.ContractNeeds{
		Duration: f.duration.value, Availability: f.availability.value, Speed: f.speed.value,
		Negotiated: func(n *contracts.Negotiation, err error) { say(app, negotiationNote(n, err)) },
	}
	stop := func() { _ = r.Close(); _ = g.Close(); _ = st.Close() }
	return client.WithContracts(r, needs), stop, nil
}

// laggedDirectory reads the data directory as of the last signed header,
// without first waiting for the next block (rpc.AcceptLag), for a put's
// offer checks: who operates a bucket and who owns a bag seldom change,
// and an offer checked a block behind at worst fails to consign, when the
// put falls back to the chain's providers — while waiting would add up to
// a block interval to every put.
type laggedDirectory struct{ c *chain.Client }

func (d laggedDirectory) Member(ctx context.Context, id chain.MemberID) (chain.Member, error) {
	return d.c.Member(rpc.AcceptLag(ctx), id)
}

func (d laggedDirectory) Bag(ctx context.Context, id chain.BagID) (chain.Bag, error) {
	return d.c.Bag(rpc.AcceptLag(ctx), id)
}

func (d laggedDirectory) StorageBucket(ctx context.Context, id chain.StorageBucketID) (chain.StorageBucket, error) {
	return d.c.StorageBucket(rpc.AcceptLag(ctx), id)
}

func (d laggedDirectory) Worker(ctx context.Context, g chain.Group, id chain.WorkerID) (chain.Worker, error) {
	return d.c.Worker(rpc.AcceptLag(ctx), g, id)
}

// negotiationNote is the line a put says of its contract negotiation: the
// contracts chosen, or why none was and what the put does instead.
func negotiationNote(n *contracts.Negotiation, err error) string {
	const fallback = "registering the object first, then pushing its chunks with proofs to the providers the chain names"
	switch {
	case n == nil:
		return fmt.Sprintf("contracts: %s; %s", strings.TrimPrefix(err.Error(), "contracts: "), fallback)
	case err != nil:
		return fmt.Sprintf("contracts: topic %s, %d offers, none consigned (%s); %s", n.Proposal.Topic, len(n.Offers), strings.TrimPrefix(err.Error(), "contracts: "), fallback)
	}
	var chosen []string
	for _, cs := range n.Contracts {
		chosen = append(chosen, cs.Contract.ProviderPeer.String())
	}
	return fmt.Sprintf("contracts: topic %s, %d offers, chosen %s", n.Proposal.Topic, len(n.Offers), strings.Join(chosen, ", "))
}
