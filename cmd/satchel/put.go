package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/client"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch"
)

// `satchel put` and `satchel get` move files in and out of the network
// through package client; this file also holds what both share: making a
// client from the config.

func init() {
	registerGroup(newPutCmd)
	registerGroup(newGetCmd)
}

// uploadStateDir is where `satchel put` keeps the state that lets an
// interrupted upload resume.
func uploadStateDir(cfg Config) string { return filepath.Join(cfg.Home, "uploads") }

// openClient makes a client of the network the config names: the chain node
// at chain.rpc, a libp2p host of its own (bootstrapping from p2p.bootstrap),
// upload state under the home. key may be zero (downloads). It returns
// the chain client too, for the command's own reads beside the client's.
// opts are added to the client's (--busy-wait).
func openClient(app *App, cfg Config, key chain.Key, chunkSize int, opts ...client.Option) (*client.Client, *chain.Client, func(), error) {
	cc, closeChain, err := dialChain(app, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	// The host's own logs (pubsub, DHT) are noise on a command line unless
	// asked for with -v; the client's go to the command's logger.
	hostLog := slog.New(slog.DiscardHandler)
	if app.Verbose {
		hostLog = app.Log
	}
	c, err := client.New(client.Config{
		Chain:     cc,
		Key:       key,
		StateDir:  uploadStateDir(cfg),
		ChunkSize: chunkSize,
	}, append([]client.Option{client.WithLogger(app.Log), client.WithHostOptions(p2p.WithBootstrapAddrs(cfg.P2P.Bootstrap...), p2p.WithLogger(hostLog))}, opts...)...)
	if err != nil {
		closeChain()
		return nil, nil, nil, err
	}
	return c, cc, func() { _ = c.Close(); closeChain() }, nil
}

// putOutput is what `satchel put --json` prints.
type putOutput struct {
	Object    chain.ObjectID `json:"object"`
	CID       string         `json:"cid"`
	Bag       chain.BagID    `json:"bag"`
	Size      int64          `json:"size"`
	Providers []string       `json:"providers"`
	Resumed   int            `json:"resumedChunks"`
	// Redundancy is the bag's storage bucket count; Degraded says the
	// object is on fewer providers (accepted with --min-replicas).
	Redundancy int  `json:"redundancy"`
	Degraded   bool `json:"degraded"`
}

func newPutCmd(app *App) *cobra.Command {
	var (
		bagFlag, keyFlag, chunkSize, replication string
		redundancy, minReplicas                  int
		busyWait                                 time.Duration
		cf                                       *contractPutFlags // --contracts (contract.go)
	)
	cmd := &cobra.Command{
		Use:   "put FILE --bag BAG",
		Short: "Store a file in a bag and print its object ID and CID",
		Long: `Store a file in a bag: read it once, pushing every chunk to the bag's storage
providers as it is hashed, then register the data object on chain (signed by
the bag owner's account key), bind it on the providers and wait until the
chain accepted it. Prints the object ID and the content ID (CID).

--redundancy is how many providers must each hold every chunk; the default,
and the most, is the number of storage buckets storing the bag. If a provider
dies and no other can take its place, the upload fails: it never reports
success on fewer copies than asked. --min-replicas N accepts fewer: the
upload then completes with at least N live providers, which the bag's other
providers later sync from, and prints a WARNING (and "degraded": true with
--json).

A provider whose connection breaks or whose dial is refused (it is
restarting) is dialled again for up to 30 seconds: back within it, it is sent
only the chunks it did not acknowledge. One that stays unreachable counts as
dead; one that refuses the upload (its disk full) is not waited for, and the
error names its reason.

An interrupted put (Ctrl-C, a lost connection) resumes when run again with
the same file, bag and chunk size: the object is not registered twice and no
stored chunk is sent again. FILE "-" reads standard input as a stream,
which does not resume.

A progress bar (bytes, rate, ETA) is drawn on stderr when it is a terminal,
never with --json.`,
		Example: `  satchel put video.mp4 --bag dynamic:channel:1
  satchel put backup.tar --bag dynamic:member:3 --redundancy 2 --json
  satchel put video.mp4 --bag dynamic:channel:1 --duration 60d --availability high --speed high
  tar c dir | satchel put - --bag dynamic:channel:1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bag, err := chain.ParseBagID(bagFlag)
			if err != nil {
				return fmt.Errorf("--bag: %w", err)
			}
			size, err := parseChunkSize(chunkSize)
			if err != nil {
				return err
			}
			if minReplicas < 0 {
				return fmt.Errorf("--min-replicas %d: want 1 or more (0: every provider the upload wants)", minReplicas)
			}
			if redundancy < 0 {
				return fmt.Errorf("--redundancy %d: want 1 or more (0: every bucket of the bag)", redundancy)
			}
			mode, err := client.ParseReplication(replication)
			if err != nil {
				return fmt.Errorf("--replication: %w", err)
			}
			if busyWait < 0 {
				return fmt.Errorf("--busy-wait %s: want 0 or more", busyWait)
			}
			if err := cf.check(cmd); err != nil {
				return err
			}
			if args[0] != "-" {
				if err := checkInputFile(args[0], "put"); err != nil {
					return err
				}
			}
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			s, err := loadSigner(app, cfg, keyFlag, accountRole, false)
			if err != nil {
				return err
			}
			tuneGC()
			c, cc, closeFn, err := openClient(app, cfg, s.key, size, client.WithBusyWait(busyWait))
			if err != nil {
				return err
			}
			defer closeFn()

			var opts []client.PutOption
			// Contracts by default (cmd/satchel/contract_hooks.go); a
			// negotiation that cannot start falls back, and says so.
			if o, stop, err := cf.option(cmd.Context(), app, cfg, c, cc, s.key, bag); errors.Is(err, chain.ErrBagNotFound) {
				return explain(app, cfg, err, nil) // no fallback can store it either
			} else if err != nil {
				say(app, fmt.Sprintf("contracts: %s; registering the object first, then pushing its chunks with proofs", strings.TrimPrefix(err.Error(), "contracts: ")))
			} else {
				defer stop()
				opts = append(opts, o)
			}
			bar := newProgressBar(app, "put "+filepath.Base(args[0]))
			opts = append(opts, client.WithProgress(bar.update))
			if redundancy > 0 {
				opts = append(opts, client.WithRedundancy(redundancy))
			}
			if minReplicas > 0 {
				opts = append(opts, client.WithMinRedundancy(minReplicas))
			}
			opts = append(opts, client.WithReplication(mode))
			var obj client.Object
			if args[0] == "-" {
				obj, err = c.Put(cmd.Context(), bag, cmd.InOrStdin(), opts...)
			} else {
				obj, err = c.PutFile(cmd.Context(), bag, args[0], opts...)
			}
			bar.done(err == nil)
			if err != nil {
				return putError(app, cfg, s, args[0] == "-", err)
			}
			out := putOutput{Object: obj.ID, CID: obj.CID.String(), Bag: obj.Bag, Size: obj.Size, Resumed: obj.Resumed, Providers: []string{},
				Redundancy: obj.Redundancy, Degraded: obj.Degraded()}
			if fi, err := os.Stat(args[0]); args[0] != "-" && err == nil && fi.Size() != obj.Size {
				fmt.Fprintf(cmd.ErrOrStderr(), "WARNING: %s changed size while it was stored (%d bytes then, %d now); object %s holds the first %d bytes: put it again once the file stops changing\n",
					args[0], obj.Size, fi.Size(), obj.ID, obj.Size)
			}
			if obj.Degraded() {
				fmt.Fprintf(cmd.ErrOrStderr(), "WARNING: object %s is stored on %d provider(s), fewer than the %d storage buckets of bag %s; the bag's other providers must sync it before it has the copies the bag promises\n",
					obj.ID, len(obj.Providers), obj.Redundancy, obj.Bag)
			}
			for _, p := range obj.Providers {
				out.Providers = append(out.Providers, p.String())
			}
			return app.Printer().Print(out, func(w io.Writer) error {
				rows := [][]string{
					{"cid", out.CID},
					{"bag", bag.String()},
					{"size", fmt.Sprintf("%d (%s)", obj.Size, formatBytes(uint64(obj.Size)))},
					{"providers", strconv.Itoa(len(out.Providers))},
				}
				if obj.Resumed > 0 {
					rows = append(rows, []string{"already stored", chunksOf(obj.Resumed)})
				}
				return Table(w, []string{"object", obj.ID.String()}, rows)
			})
		},
	}
	cmd.Flags().StringVarP(&bagFlag, "bag", "b", "", "the bag to store the file in, e.g. dynamic:channel:1 (required)")
	cmd.Flags().StringVarP(&keyFlag, "key", "k", "", "account key `PATH` of the bag's owner (default: key in the config, else the account key under the home)")
	cmd.Flags().IntVarP(&redundancy, "redundancy", "r", 0, "providers that must each hold every chunk (default: every storage bucket of the bag)")
	cmd.Flags().IntVar(&minReplicas, "min-replicas", 0, "fewest providers the upload may end with when providers fail and none can replace them (default: all of --redundancy; less succeeds with a warning)")
	cmd.Flags().StringVar(&replication, "replication", "auto", "how chunks reach the providers: pipelined (sent once, providers pass them on), direct (sent to each), auto (pipelined from 4 MiB up)")
	cmd.Flags().DurationVar(&busyWait, "busy-wait", fetch.DefaultBusyWait, "how long to keep asking a provider that answers busy (loaded by other uploaders) before giving it up: a spare replaces it, or the put fails saying so (0: give it up at once)")
	cmd.Flags().StringVar(&chunkSize, "chunk-size", "1MiB", "chunk size: bytes (262144), KiB/MiB (256KiB), or IPFS style (size-262144)")
	cf = addContractPutFlags(cmd)
	requiredFlags(cmd, "bag")
	return cmd
}

// chunksOf says "1 chunk" or "n chunks".
func chunksOf(n int) string {
	if n == 1 {
		return "1 chunk"
	}
	return strconv.Itoa(n) + " chunks"
}

// putError explains a failed put: the chain's reasons with their hints, an
// interruption with how to resume (an upload from stdin does not).
func putError(app *App, cfg Config, s signer, stdin bool, err error) error {
	switch {
	case errors.Is(err, context.Canceled) && stdin:
		return errors.New("interrupted; an upload from standard input does not resume: run the command again to upload the stream from its start")
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("interrupted; run the same command again to resume the upload (its state is in %s)", uploadStateDir(cfg))
	case errors.Is(err, client.ErrNotAccepted), errors.Is(err, client.ErrNoProviderReachable):
		return err
	case errors.Is(err, chain.ErrUnauthorized):
		return fmt.Errorf("%w; this was signed by %s: only the bag's owner may store objects in it, pass --key with the owner's key", err, s)
	}
	return explain(app, cfg, err, nil)
}
