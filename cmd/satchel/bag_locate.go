package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/p2p"
)

func init() { registerBagCommand(newBagLocateCmd) }

// defaultLocateTimeout bounds `bag locate`'s DHT lookup.
const defaultLocateTimeout = 15 * time.Second

// bagLocation is what `bag locate` reports: the chain's view of who stores
// a bag beside the live providers the DHT knows.
type bagLocation struct {
	Bag chain.BagID `json:"bag"`
	// Key is the bag's DHT key, p2p.BagKey.
	Key string `json:"key"`
	// Buckets are the bag's storage buckets with their operators' published
	// metadata, and whether the DHT lookup found that peer.
	Buckets []bucketLocation `json:"buckets"`
	// Providers are the peers the DHT returned for the key.
	Providers []dhtProvider `json:"providers"`
	// Bootstrap names the peers the lookup joined the DHT through.
	Bootstrap []string `json:"bootstrap"`
}

type bucketLocation struct {
	Bucket   chain.StorageBucketID `json:"bucket"`
	Status   chain.OperatorStatus  `json:"operatorStatus"`
	Operator *chain.WorkerID       `json:"operator,omitempty"`
	PeerID   string                `json:"peerId,omitempty"`
	Addrs    []string              `json:"addrs"`
	// Live is set when the DHT lookup returned the operator's peer ID.
	Live bool `json:"live"`
}

type dhtProvider struct {
	PeerID string   `json:"peerId"`
	Addrs  []string `json:"addrs"`
	// Bucket is the bag's storage bucket whose operator published this peer
	// ID, if any: a provider the chain does not name may be a node the bag
	// moved away from that still holds its data.
	Bucket *chain.StorageBucketID `json:"bucket,omitempty"`
}

// newBagLocateCmd is `satchel bag locate BAG`.
func newBagLocateCmd(app *App) *cobra.Command {
	var (
		bootstrap []string
		timeout   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "locate BAG",
		Short: "Find a bag's live providers on the DHT, beside the chain's view",
		Long: `Look the bag's key up on the Satchel DHT and print the live peers that provide
it, with their addresses, beside what the chain says: the bag's storage buckets
and the peer IDs and addresses their operators published.

The lookup joins the DHT through --bootstrap (default p2p.bootstrap in the
config), else through the addresses the bag's operators published on chain.`,
		Example: `  satchel bag locate dynamic:channel:1
  satchel bag locate dynamic:channel:1 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := chain.ParseBagID(args[0])
			if err != nil {
				return err
			}
			if timeout <= 0 {
				return fmt.Errorf("--timeout %s: want a duration above 0, e.g. 15s", timeout)
			}
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			if len(bootstrap) == 0 {
				bootstrap = cfg.P2P.Bootstrap
			}
			c, closeFn, err := dialChain(app, cfg)
			if err != nil {
				return err
			}
			defer closeFn()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			loc, err := locateBag(ctx, app, c, id, bootstrap)
			var de dhtError
			if errors.As(err, &de) {
				if errors.Is(err, context.DeadlineExceeded) {
					return fmt.Errorf("%w (--timeout %s)", err, timeout)
				}
				return err
			}
			if err != nil {
				return explain(app, cfg, err, nil)
			}
			return app.Printer().Print(loc, func(w io.Writer) error { return printLocation(w, loc) })
		},
	}
	cmd.Flags().StringSliceVar(&bootstrap, "bootstrap", nil, "peer `MULTIADDR` with /p2p/ID to join the DHT through, repeatable (default: p2p.bootstrap in the config, else the bag's operators)")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultLocateTimeout, "how long the lookup may take")
	return cmd
}

// dhtError marks an error of the DHT side of locateBag, which explain must
// not read as the chain node's: a refused dial there is a bootstrap peer's,
// not chain.rpc's.
type dhtError struct{ error }

func (e dhtError) Unwrap() error { return e.error }

// locateBag reads the bag's buckets from the chain and looks its key up on
// the DHT through a short-lived client host.
func locateBag(ctx context.Context, app *App, c *chain.Client, id chain.BagID, bootstrap []string) (bagLocation, error) {
	loc := bagLocation{Bag: id, Key: p2p.BagKey(string(id)).String(), Buckets: []bucketLocation{}, Providers: []dhtProvider{}, Bootstrap: []string{}}
	bag, err := c.Bag(ctx, id)
	if err != nil {
		return loc, err
	}
	byPeer := map[peer.ID]chain.StorageBucketID{}
	var operators []peer.AddrInfo
	for _, bid := range bag.StorageBuckets {
		b, err := c.StorageBucket(ctx, bid)
		if err != nil {
			return loc, err
		}
		bl := bucketLocation{Bucket: bid, Status: b.OperatorStatus, Operator: b.Operator, Addrs: []string{}}
		if b.Metadata != nil {
			bl.PeerID = b.Metadata.PeerID
			bl.Addrs = append(bl.Addrs, b.Metadata.Multiaddrs...)
			if ai, err := p2p.ParseAddrInfo(b.Metadata.PeerID, b.Metadata.Multiaddrs); err == nil {
				byPeer[ai.ID] = bid
				if len(ai.Addrs) > 0 {
					operators = append(operators, ai)
				}
			}
		}
		loc.Buckets = append(loc.Buckets, bl)
	}

	var boot []peer.AddrInfo
	if len(bootstrap) > 0 {
		for _, s := range bootstrap {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				return loc, dhtError{fmt.Errorf("bootstrap address %q: %w", s, err)}
			}
			ai, err := peer.AddrInfoFromP2pAddr(a)
			if err != nil {
				return loc, dhtError{fmt.Errorf("bootstrap address %q must end in /p2p/<peer ID>: %w", s, err)}
			}
			boot = append(boot, *ai)
		}
	} else {
		boot = operators
	}
	if len(boot) == 0 {
		return loc, dhtError{fmt.Errorf("no peer to join the DHT through: bag %s's operators published no addresses; pass --bootstrap MULTIADDR or set p2p.bootstrap in %s", id, app.ConfigPath)}
	}

	h, err := p2p.New(ctx,
		p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"),
		p2p.WithDHTMode(dht.ModeClient),
		p2p.WithLogger(app.Log),
	)
	if err != nil {
		return loc, dhtError{fmt.Errorf("start libp2p host: %w", err)}
	}
	defer h.Close()
	var joined int
	var errs []error
	for _, ai := range boot {
		if err := h.Connect(ctx, ai); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ai.ID, err))
			continue
		}
		joined++
		loc.Bootstrap = append(loc.Bootstrap, ai.ID.String())
	}
	if joined == 0 {
		return loc, dhtError{fmt.Errorf("could not reach any peer to join the DHT through: %w", errors.Join(errs...))}
	}
	// The DHT adds a connected peer once identify shows it speaks the DHT
	// protocol; look up only then.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for h.DHT().RoutingTable().Size() == 0 {
		select {
		case <-ctx.Done():
			return loc, dhtError{fmt.Errorf("joining the DHT: %w", ctx.Err())}
		case <-tick.C:
		}
	}
	found, err := h.FindProviders(ctx, p2p.BagKey(string(id)), 0)
	if err != nil {
		return loc, dhtError{fmt.Errorf("DHT lookup of bag %s: %w", id, err)}
	}
	live := map[string]bool{}
	for _, ai := range found {
		p := dhtProvider{PeerID: ai.ID.String(), Addrs: []string{}}
		for _, a := range ai.Addrs {
			p.Addrs = append(p.Addrs, a.String())
		}
		slices.Sort(p.Addrs)
		if b, ok := byPeer[ai.ID]; ok {
			p.Bucket = &b
		}
		live[p.PeerID] = true
		loc.Providers = append(loc.Providers, p)
	}
	slices.SortFunc(loc.Providers, func(a, b dhtProvider) int { return strings.Compare(a.PeerID, b.PeerID) })
	for i := range loc.Buckets {
		loc.Buckets[i].Live = loc.Buckets[i].PeerID != "" && live[loc.Buckets[i].PeerID]
	}
	return loc, nil
}

func printLocation(w io.Writer, loc bagLocation) error {
	fmt.Fprintf(w, "bag %s (DHT key %s)\n\n", loc.Bag, loc.Key)
	if len(loc.Buckets) == 0 {
		// Empty tables would say nothing: say why nothing can be found.
		_, err := fmt.Fprintf(w, "chain: bag %s is in no storage bucket, so no provider stores it; the storage lead adds it with `satchel storage leader update-bag -b %s -a BUCKET`\n", loc.Bag, loc.Bag)
		if err != nil || len(loc.Providers) == 0 {
			return err
		}
	} else {
		fmt.Fprintln(w, "chain: storage buckets of the bag")
	}
	rows := make([][]string, 0, len(loc.Buckets))
	for _, b := range loc.Buckets {
		op := string(b.Status)
		if b.Operator != nil {
			op = fmt.Sprintf("worker %d (%s)", *b.Operator, b.Status)
		}
		peerID, addrs := b.PeerID, strings.Join(b.Addrs, " ")
		if peerID == "" {
			peerID = "-"
		}
		if addrs == "" {
			addrs = "-"
		}
		rows = append(rows, []string{b.Bucket.String(), op, peerID, yesNo(b.Live), addrs})
	}
	if len(rows) > 0 {
		if err := Table(w, []string{"BUCKET", "OPERATOR", "PEER ID", "LIVE", "ADDRESSES"}, rows); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nDHT: %d live provider(s), found through %d bootstrap peer(s)\n", len(loc.Providers), len(loc.Bootstrap))
	rows = rows[:0]
	for _, p := range loc.Providers {
		bucket := "not named by the chain"
		if p.Bucket != nil {
			bucket = p.Bucket.String()
		}
		addrs := strings.Join(p.Addrs, " ")
		if addrs == "" {
			addrs = "-"
		}
		rows = append(rows, []string{p.PeerID, bucket, addrs})
	}
	if len(rows) == 0 {
		return nil
	}
	return Table(w, []string{"PEER ID", "BUCKET", "ADDRESSES"}, rows)
}
