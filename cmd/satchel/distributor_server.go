package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/internal/units"
	"github.com/satchel-net/satchel/protocol/fetch"
)

func init() { registerDistributorCommand(newDistributorServerCmd) }

// distServerInfo is what `distributor server` prints once the node runs.
type distServerInfo struct {
	PeerID   string         `json:"peerId"`
	Worker   chain.WorkerID `json:"worker"`
	Buckets  []string       `json:"buckets"`
	URL      string         `json:"url"`
	Endpoint string         `json:"endpoint"`
	Status   string         `json:"status"`
	Cache    string         `json:"cache"`
	Chain    string         `json:"chain"`
}

func newDistributorServerCmd(app *App) *cobra.Command {
	var (
		keyPath, dataDir, httpAddr, endpoint, cacheSize, maxCached string
		minSendRate                                                string
		buckets, listen, bootstrap                                 []string
		noPublish                                                  bool
		maxMisses, maxFetches, objectRecords, maxConns             int
		maxConnsPerClient                                          int
	)
	worker := newFlag("", chain.WorkerID(0), chain.ParseWorkerID, "workerId")
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a distributor node for one or more distribution buckets until Ctrl-C",
		Long: `Run the distributor node of distribution buckets: it serves the data objects of
every bag of its buckets over HTTP (GET/HEAD /api/v1/assets/{objectId}, with
Range requests), from a disk cache bounded by --cache-size that it fills from
the bags' storage providers over libp2p, verifying every block. It follows the
chain: objects deleted, or bags moved away from its buckets, stop being served
and leave the cache within a block.

The worker must be an active operator of every bucket named with -B. On start
the node publishes --endpoint (default: the HTTP address, refused when it is
a wildcard such as 0.0.0.0) in the operator metadata of each bucket, signed
with --key, the worker's role account.

Connections are bounded per client (--max-conns-per-client, an IPv4 address
or an IPv6 /64; 4 times that per IPv6 /48, 16 times per /32; more get 429)
and in all (--max-conns; one silent 2 s since it
connected, else the longest idle one, is closed for a newcomer, else it gets
503). Behind a reverse proxy, every
connection comes from the proxy: pass --max-conns-per-client 0.

Status: GET / (page), /api/v1/status (JSON), Prometheus /metrics on the
HTTP address. The API is documented in docs/DISTRIBUTOR.md.`,
		Example: `  satchel distributor server -w 0 -B 0:0
  satchel distributor server -w 0 -B 0:0 -B 1:3 --http 0.0.0.0:3334 \
      --endpoint https://cdn.example.com/ --cache-size 200GiB`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if worker.raw == "" || len(buckets) == 0 {
				return errors.New(`-w/--worker and -B/--bucketId are required: the distribution worker and the buckets it operates (see them with "satchel family list")`)
			}
			id := distributor.Identity{Worker: worker.value}
			for _, b := range buckets {
				bid, err := chain.ParseDistributionBucketID(b)
				if err != nil {
					return fmt.Errorf("-B: %w", err)
				}
				id.Buckets = append(id.Buckets, bid)
			}
			size, err := units.ParseBytes(cacheSize)
			if err != nil {
				return fmt.Errorf("--cache-size: %w", err)
			}
			maxObj, err := units.ParseBytes(maxCached)
			if err != nil {
				return fmt.Errorf("--max-cached-object: %w", err)
			}
			// The default (2GiB) yields to a smaller --cache-size; a value
			// passed must fit.
			if maxObj > size && cmd.Flags().Changed("max-cached-object") {
				return fmt.Errorf("--max-cached-object %s exceeds --cache-size %s: the cache could never hold such an object; lower it or raise --cache-size", maxCached, cacheSize)
			}
			maxObj = min(maxObj, size)
			minRate, err := units.ParseBytes(minSendRate)
			if err != nil {
				return fmt.Errorf("--min-send-rate: %w (a size a second, e.g. 64KiB; 0 turns it off)", err)
			}
			if maxFetches < 1 {
				return fmt.Errorf("--max-fetches %d: want a count of block fetches, at least 1 (default %d)", maxFetches, distributor.DefaultMaxFetches)
			}
			if err := checkPublishedEndpoint(httpAddr, endpoint, !noPublish); err != nil {
				return err
			}
			if maxConns < 0 {
				return fmt.Errorf("--max-conns %d: want a count of connections (0: the default, %d or half the open-file limit)", maxConns, distributor.DefaultMaxConns)
			}
			if maxConnsPerClient < 0 {
				return fmt.Errorf("--max-conns-per-client %d: want a count of connections (0: no bound per client)", maxConnsPerClient)
			}
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			if dataDir == "" {
				dataDir = filepath.Join(cfg.Home, "distributor")
			}
			if err := distributor.CheckCacheSize(filepath.Join(dataDir, "cache"), int64(min(size, math.MaxInt64))); err != nil {
				return fmt.Errorf("--cache-size: %w", err)
			}
			s, err := loadSigner(app, cfg, keyPath, accountRole, false)
			if err != nil {
				return err
			}
			if len(listen) == 0 {
				listen = cfg.P2P.Listen
			}
			if len(bootstrap) == 0 {
				bootstrap = cfg.P2P.Bootstrap
			}
			idFile := cfg.P2P.IdentityFile
			if idFile == "" {
				idFile = filepath.Join(cfg.Home, "identity.key")
			}
			return runDistributorServer(cmd.Context(), app, cfg, distServerSetup{
				id: id, key: s.key, identity: idFile, data: dataDir, listen: listen, bootstrap: bootstrap,
				endpoint: endpoint, publish: !noPublish, http: httpAddr,
				opts: []distributor.Option{
					distributor.WithHTTPAddr(httpAddr),
					distributor.WithCacheDir(filepath.Join(dataDir, "cache")),
					distributor.WithCacheSize(int64(size)),
					distributor.WithMaxCachedObject(int64(maxObj)),
					distributor.WithMaxMisses(maxMisses),
					distributor.WithMaxFetches(maxFetches),
					distributor.WithMinSendRate(int64(minRate), 0),
					distributor.WithObjectRecords(objectRecords),
					distributor.WithMaxConns(maxConns),
					distributor.WithMaxConnsPerClient(maxConnsPerClient),
				},
			})
		},
	}
	f := cmd.Flags()
	f.VarP(worker, "worker", "w", "distribution worker `ID` that operates the buckets (required)")
	f.Var(worker, "workerId", "same as --worker")
	_ = f.MarkHidden("workerId")
	f.StringSliceVarP(&buckets, "bucketId", "B", nil, "distribution bucket `ID` {familyId}:{bucketIndex} to serve, repeatable (required)")
	f.StringVarP(&keyPath, "key", "k", "", "worker role account key `FILE` that publishes the endpoint (default: key in the config, else the account key under the home)")
	f.StringVar(&dataDir, "data", "", "data `DIR` for the cache (default HOME/distributor)")
	f.StringVar(&httpAddr, "http", distributor.DefaultHTTPAddr, "HTTP API listen `HOST:PORT`")
	f.StringVar(&endpoint, "endpoint", "", "public root `URL` published on chain (default http://HOST:PORT/ of --http; required when --http listens on every interface, e.g. 0.0.0.0)")
	f.BoolVar(&noPublish, "no-publish", false, "do not publish the endpoint in the operator metadata")
	f.StringVar(&cacheSize, "cache-size", "10GiB", "disk cache bound (`SIZE`, e.g. 500MiB, 200GiB; no more than the disk holding --data)")
	f.StringVar(&maxCached, "max-cached-object", "2GiB", "largest object kept in the cache (`SIZE`, at most --cache-size); larger ones are streamed")
	f.IntVar(&maxMisses, "max-misses", distributor.DefaultMaxMisses, "answers fetching from storage providers at once (each holds up to 3 chunks in memory); more wait")
	f.IntVar(&maxFetches, "max-fetches", distributor.DefaultMaxFetches, "block fetches from storage providers running at once (`N`, each holding one chunk in memory); more wait")
	f.StringVar(&minSendRate, "min-send-rate", "64KiB", "cut off a client reading an answer that needs the storage providers slower than this `SIZE` a second, averaged over 30 s of writing to it (0: never)")
	f.IntVar(&objectRecords, "object-records", distributor.DefaultObjectRecords, "objects' chain records (size, content ID, accepted) kept in memory (`N`); a request for another reads it from the chain first")
	f.IntVar(&maxConns, "max-conns", 0, fmt.Sprintf("HTTP connections open at most (`N`); at the bound a silent or idle one is closed for a new one, else it is answered 503 (default 0: %d, or half the open-file limit if that is lower)", distributor.DefaultMaxConns))
	f.IntVar(&maxConnsPerClient, "max-conns-per-client", distributor.DefaultMaxConnsPerClient, "HTTP connections open at most from one client, an IPv4 address or an IPv6 /64 (`N`), 4N from one IPv6 /48 and 16N from one /32; more are answered 429 (0: no bound, for a node behind a reverse proxy)")
	f.StringSliceVar(&listen, "listen", nil, "libp2p listen `MULTIADDR`, repeatable (default: p2p.listen in the config)")
	f.StringSliceVar(&bootstrap, "bootstrap", nil, "peer `MULTIADDR` with /p2p/ID to join through, repeatable (default: p2p.bootstrap in the config)")
	return cmd
}

// distServerSetup is what runDistributorServer needs, resolved from flags
// and config.
type distServerSetup struct {
	id                distributor.Identity
	key               chain.Key
	identity, data    string
	listen, bootstrap []string
	endpoint          string
	http              string // --http, for an address in use
	publish           bool
	opts              []distributor.Option
}

// runDistributorServer starts the host and the node, publishes the
// endpoint, prints where it runs and serves until ctx ends.
// checkDistOperator refuses to serve bucket b as worker w unless w
// operates it, saying what to do instead.
func checkDistOperator(b chain.DistributionBucket, w chain.WorkerID) error {
	switch {
	case b.HasOperator(w):
		return nil
	case slices.Contains(b.Invitations, w):
		return fmt.Errorf("distribution worker %d is invited to operate distribution bucket %s but has not accepted; accept with `satchel distributor operator accept-invitation -B %s -w %d`", w, b.ID, b.ID, w)
	}
	return fmt.Errorf("distribution worker %d does not operate distribution bucket %s; see its operators with `satchel bucket show %s`, and pass the right -w/-B", w, b.ID, b.ID)
}

func runDistributorServer(ctx context.Context, app *App, cfg Config, st distServerSetup) error {
	log := app.Log
	c, closeChain, err := dialChain(app, cfg)
	if err != nil {
		return err
	}
	defer closeChain()
	// Buckets that do not exist, or that the worker does not operate, are
	// refused before the host and the cache are made, --no-publish or not.
	for _, bid := range st.id.Buckets {
		b, err := c.DistributionBucket(ctx, bid)
		if err != nil {
			return explain(app, cfg, err, nil)
		}
		if err := checkDistOperator(b, st.id.Worker); err != nil {
			return err
		}
	}
	h, reg, err := startNodeHost(ctx, log, st.identity, st.listen, st.bootstrap)
	if err != nil {
		return err
	}
	defer closeLogged(log, "libp2p host", h)
	fc := fetch.NewClient(h.Libp2p())
	defer closeLogged(log, "fetch client", fc)
	opts := append([]distributor.Option{distributor.WithLogger(log), distributor.WithMetrics(reg)}, st.opts...)
	srv, err := distributor.New(h, fc, c, st.id, opts...)
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		srv.Close()
		return explain(app, cfg, inUse(err, listenSetting{flag: "--http", addr: st.http}), nil)
	}
	defer closeLogged(log, "distributor", srv)
	endpoint := st.endpoint
	if endpoint == "" {
		endpoint = srv.URL() + "/" // a wildcard --http without --endpoint was refused before start
	}
	if st.publish {
		pctx, cancel := context.WithTimeout(ctx, txTimeout)
		err := distributor.PublishEndpoint(pctx, c, st.key, st.id, endpoint)
		cancel()
		if err != nil {
			return explain(app, cfg, err, nil)
		}
	}
	info := distServerInfo{PeerID: h.ID().String(), Worker: st.id.Worker, URL: srv.URL(), Endpoint: endpoint,
		Status: srv.URL() + "/api/v1/status", Cache: st.data, Chain: cfg.Chain.RPC}
	for _, b := range st.id.Buckets {
		info.Buckets = append(info.Buckets, b.String())
	}
	if err := app.Printer().Print(info, func(w io.Writer) error {
		fmt.Fprintf(w, "distributor (worker %d) serving buckets %v (Ctrl-C to stop)\n", info.Worker, info.Buckets)
		fmt.Fprintf(w, "  assets    %s/api/v1/assets/{objectId}\n", info.URL)
		fmt.Fprintf(w, "  endpoint  %s\n", info.Endpoint)
		fmt.Fprintf(w, "  status    %s\n", info.Status)
		fmt.Fprintf(w, "  peer      %s\n", info.PeerID)
		fmt.Fprintf(w, "  cache     %s\n", info.Cache)
		_, err := fmt.Fprintf(w, "  chain     %s\n", info.Chain)
		return err
	}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// checkPublishedEndpoint refuses to publish, in place of a missing
// --endpoint, an HTTP address no client can reach: one listening on every
// interface (0.0.0.0, ::, or no host).
func checkPublishedEndpoint(httpAddr, endpoint string, publish bool) error {
	if endpoint != "" || !publish {
		return nil
	}
	host, _, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return fmt.Errorf("--http %q: %w", httpAddr, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("--http %s listens on every interface, which is no address clients can reach: pass --endpoint with the URL clients use to reach this node (e.g. https://cdn.example.com/), or --no-publish", httpAddr)
	}
	return nil
}
