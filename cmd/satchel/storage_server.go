package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/internal/units"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/provider"
	"github.com/satchel-net/satchel/provider/blockstore"
	"github.com/satchel-net/satchel/topics"
)

// defaultStatusAddr is where `storage server` serves its status page and
// metrics unless --status says otherwise: loopback, so only the machine's
// own users and scrapers see them.
const defaultStatusAddr = "127.0.0.1:7070"

func init() { registerStorageCommand(newStorageServerCmd) }

// serverInfo is what `storage server` prints once the node runs.
type serverInfo struct {
	PeerID string                `json:"peerId"`
	Addrs  []string              `json:"addrs"`
	Worker chain.WorkerID        `json:"worker"`
	Bucket chain.StorageBucketID `json:"bucket"`
	Data   string                `json:"data"`
	Status string                `json:"status,omitempty"`
	Chain  string                `json:"chain"`
	// Topics are the contract topics the node answers proposals on.
	Topics []string `json:"contractTopics"`
}

func newStorageServerCmd(app *App) *cobra.Command {
	var (
		keyPath, operatorKeyPath, dataDir, statusAddr string
		listen, bootstrap                             []string
		syncWorkers, confirmations                    int
		contractTopics                                []string
		audits                                        auditFlags // audit.go
		ledger                                        ledgerFlags
		deletionGrace                                 time.Duration
	)
	worker := newFlag("", chain.WorkerID(0), chain.ParseWorkerID, "workerId")
	bucket := newFlag("", chain.StorageBucketID(0), chain.ParseStorageBucketID, "bucketId")
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a storage provider node for a bucket until Ctrl-C",
		Long: `Run the storage provider node of a storage bucket: it stores every bag the chain
assigns to the bucket, accepts uploads (the store protocol) and serves reads
(the fetch protocol) over libp2p, accepts bound uploads on chain, syncs what it
lacks from the bag's other providers, drops what the chain removed, repairs
corrupt chunks from peers and announces its bags on the DHT.

The worker must be the bucket's active operator. --key is the account that
accepts uploads: the transactor the operator registered when accepting the
invitation, or the worker's role account (the default account key). The node
publishes its peer ID and addresses in the operator metadata when they
changed; the chain takes that only from the role account, so pass
--operator-key when the transactor is a separate account.

Data (chunk files, index, state) lives in --data; the libp2p identity in
p2p.identityFile (default HOME/identity.key). Status: GET /api/v1/status and
Prometheus /metrics on --status.`,
		Example: `  satchel storage server -w 3 -i 1
  satchel storage server -w 3 -i 1 --key transactor.key --operator-key worker.key \
      --listen /ip4/0.0.0.0/tcp/4001 --bootstrap /ip4/10.0.0.2/tcp/4001/p2p/12D3KooW...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if worker.raw == "" || bucket.raw == "" {
				return errors.New(`-w/--worker and -i/--bucketId are required: the storage worker and the bucket it operates (see them with "satchel bucket list --storage")`)
			}
			room, err := ledger.options()
			if err != nil {
				return err
			}
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			s, err := loadSigner(app, cfg, keyPath, accountRole, false)
			if err != nil {
				return err
			}
			opKey := s.key
			if operatorKeyPath != "" {
				if opKey, err = chain.LoadKey(operatorKeyPath); err != nil {
					return fmt.Errorf("--operator-key: %w", err)
				}
			}
			if dataDir == "" {
				dataDir = filepath.Join(cfg.Home, "provider")
			}
			if len(listen) == 0 {
				listen = cfg.P2P.Listen
			}
			if len(bootstrap) == 0 {
				bootstrap = cfg.P2P.Bootstrap
			}
			grace := provider.DefaultDeletionGrace
			if cfg.Storage.DeletionGrace > 0 {
				grace = cfg.Storage.DeletionGrace
			}
			if cmd.Flags().Changed("deletion-grace") {
				grace = deletionGrace
			}
			idFile := cfg.P2P.IdentityFile
			if idFile == "" {
				idFile = filepath.Join(cfg.Home, "identity.key")
			}
			ts, err := parseTopics(contractTopics)
			if err != nil {
				return err
			}
			if err := audits.parse(); err != nil {
				return err
			}
			opts := append([]provider.Option{provider.WithOperatorKey(opKey), provider.WithSyncWorkers(syncWorkers), provider.WithCleanupConfirmations(confirmations),
				audits.scrubOption(), provider.WithDeletionGrace(grace)}, audits.options()...)
			return runStorageServer(cmd.Context(), app, cfg, storageServerSetup{
				roleKey:    opKey,
				topics:     ts,
				room:       room,
				id:         provider.Identity{Worker: worker.value, Bucket: bucket.value, Transactor: s.key},
				identity:   idFile,
				data:       dataDir,
				listen:     listen,
				bootstrap:  bootstrap,
				status:     statusAddr,
				opts:       opts,
				keyAccount: s.String(),
			})
		},
	}
	f := cmd.Flags()
	f.VarP(worker, "worker", "w", "storage worker `ID` that operates the bucket (required)")
	f.Var(worker, "workerId", "same as --worker")
	_ = f.MarkHidden("workerId")
	f.VarP(bucket, "bucketId", "i", "storage bucket `ID` the node operates (required)")
	f.StringVarP(&keyPath, "key", "k", "", "transactor key `FILE` that accepts uploads on chain (default: key in the config, else the account key under the home)")
	f.StringVar(&operatorKeyPath, "operator-key", "", "worker role account key `FILE` that publishes the node metadata (default: --key)")
	f.StringVar(&dataDir, "data", "", "data `DIR` for chunks, index and state (default HOME/provider)")
	f.StringSliceVar(&listen, "listen", nil, "libp2p listen `MULTIADDR`, repeatable (default: p2p.listen in the config)")
	f.StringSliceVar(&bootstrap, "bootstrap", nil, "peer `MULTIADDR` with /p2p/ID to join through, repeatable (default: p2p.bootstrap in the config)")
	f.StringVar(&statusAddr, "status", defaultStatusAddr, "status and metrics HTTP `HOST:PORT` (\"\" turns it off)")
	f.IntVar(&syncWorkers, "sync-workers", provider.DefaultSyncWorkers, "objects synced from peers in parallel")
	f.StringSliceVar(&contractTopics, "contract-topic", nil, "contract `TOPIC` to answer proposals on, e.g. 0f01020303; repeatable (see satchel topic)")
	f.IntVar(&confirmations, "cleanup-confirmations", provider.DefaultCleanupConfirmations, "other providers that must hold a moved bag's object before it is removed here")
	audits.add(f)
	ledger.add(f)
	// The default is 0 so pflag prints only the default the text gives:
	// the config's, else provider.DefaultDeletionGrace (the flag counts only
	// when given, see Changed above).
	f.DurationVar(&deletionGrace, "deletion-grace", 0, fmt.Sprintf("how long an object the chain deleted is kept (and can be kept for good over the status API) before it is removed (default: storage.deletionGrace in the config, else %gh)", provider.DefaultDeletionGrace.Hours()))
	return cmd
}

// storageServerSetup is what runStorageServer needs, resolved from flags
// and config.
type storageServerSetup struct {
	id         provider.Identity
	identity   string
	data       string
	listen     []string
	bootstrap  []string
	status     string
	opts       []provider.Option
	keyAccount string
	roleKey    chain.Key      // the worker's role account: signs contracts
	topics     []topics.Topic // contract topics (cmd/satchel/contract.go)
	room       []contracts.LedgerOption
}

// checkStorageOperator refuses to run a node for bucket b as worker w
// unless w is its active operator, saying what to do instead.
func checkStorageOperator(b chain.StorageBucket, w chain.WorkerID) error {
	switch {
	case b.OperatorStatus == chain.OperatorActive && b.Operator != nil && *b.Operator == w:
		return nil
	case b.Operator != nil && *b.Operator == w:
		return fmt.Errorf("storage worker %d is invited to operate storage bucket %d but has not accepted; accept with `satchel storage operator accept-invitation -i %d -w %d`", w, b.ID, b.ID, w)
	case b.Operator != nil:
		return fmt.Errorf("storage bucket %d is operated by storage worker %d (%s), not %d; pass the right -w/-i (see `satchel bucket show %d`)", b.ID, *b.Operator, b.OperatorStatus, w, b.ID)
	}
	return fmt.Errorf("storage bucket %d has no operator; the storage lead invites worker %d with `satchel storage leader invite-bucket-operator -i %d -w %d`", b.ID, w, b.ID, w)
}

// runStorageServer starts the host, the block store and the provider node,
// prints where it runs and serves until ctx ends.
func runStorageServer(ctx context.Context, app *App, cfg Config, st storageServerSetup) (err error) {
	log := app.Log
	c, closeChain, err := dialChain(app, cfg)
	if err != nil {
		return err
	}
	defer closeChain()
	// A bucket that does not exist, or that the worker does not operate,
	// is refused before the data directory and the host are made.
	b, err := c.StorageBucket(ctx, st.id.Bucket)
	if err != nil {
		return explain(app, cfg, err, nil) // the chain's error names the bucket
	}
	if err := checkStorageOperator(b, st.id.Worker); err != nil {
		return err
	}

	h, reg, err := startNodeHost(ctx, log, st.identity, st.listen, st.bootstrap, p2p.WithPubSubOptions(contracts.ScoreOptions()...))
	if err != nil {
		return err
	}
	defer closeLogged(log, "libp2p host", h)
	bs, err := blockstore.Open(filepath.Join(st.data, "blocks"), blockstore.WithLogger(log))
	if err != nil {
		return fmt.Errorf("open block store: %w", err)
	}
	defer closeLogged(log, "block store", bs)

	opts := append([]provider.Option{
		provider.WithLogger(log),
		provider.WithMetrics(reg),
		provider.WithStateDir(st.data),
		provider.WithStatusAddr(st.status),
	}, st.opts...)
	srv, err := provider.New(h, bs, c, st.id, opts...)
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		srv.Close()
		return explain(app, cfg, inUse(err, listenSetting{flag: "--status", addr: st.status}), nil)
	}
	defer closeLogged(log, "storage provider", srv)
	stopContracts, err := startContractResponder(h, c, srv, st.id, st.roleKey, st.data, st.topics, reg, log, st.room...)
	if err != nil {
		return err
	}
	defer stopContracts()

	info := serverInfo{PeerID: h.ID().String(), Worker: st.id.Worker, Bucket: st.id.Bucket, Data: st.data, Chain: cfg.Chain.RPC, Topics: topicStrings(st.topics)}
	for _, a := range h.Addrs() {
		info.Addrs = append(info.Addrs, fmt.Sprintf("%s/p2p/%s", a, h.ID()))
	}
	if a := srv.StatusAddr(); a != "" {
		info.Status = "http://" + a + provider.StatusPath
	}
	if err := app.Printer().Print(info, func(w io.Writer) error {
		fmt.Fprintf(w, "storage provider for bucket %d (worker %d) running (Ctrl-C to stop)\n", info.Bucket, info.Worker)
		fmt.Fprintf(w, "  peer     %s\n", info.PeerID)
		for _, a := range info.Addrs {
			fmt.Fprintf(w, "  address  %s\n", a)
		}
		fmt.Fprintf(w, "  data     %s\n", info.Data)
		fmt.Fprintf(w, "  accepts  as %s\n", st.keyAccount)
		if info.Status != "" {
			fmt.Fprintf(w, "  status   %s\n", info.Status)
		}
		if len(info.Topics) > 0 {
			fmt.Fprintf(w, "  topics   %s\n", strings.Join(info.Topics, " "))
		}
		_, err := fmt.Fprintf(w, "  chain    %s\n", info.Chain)
		return err
	}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// closeLogged closes c, logging a failure: at shutdown there is no one left
// to return it to.
func closeLogged(log interface{ Warn(string, ...any) }, what string, c io.Closer) {
	if err := c.Close(); err != nil {
		log.Warn("close "+what, "err", err)
	}
}

// startNodeHost starts a node's libp2p host with its persistent identity,
// its listen and bootstrap addresses and a fresh metrics registry that
// also carries the Go and process collectors; extra adds options.
func startNodeHost(ctx context.Context, log *slog.Logger, identity string, listen, bootstrap []string, extra ...p2p.Option) (*p2p.Host, *prometheus.Registry, error) {
	key, err := p2p.LoadOrCreateIdentity(identity)
	if err != nil {
		return nil, nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := append([]p2p.Option{p2p.WithIdentity(key), p2p.WithListenAddrs(listen...),
		p2p.WithBootstrapAddrs(bootstrap...), p2p.WithLogger(log), p2p.WithMetrics(reg)}, extra...)
	h, err := p2p.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("start libp2p host: %w", err)
	}
	return h, reg, nil
}

// ledgerFlags are the knobs of the room a node with --contract-topic
// reserves for open contract uploads (contracts.Ledger); each default is
// the contracts package's.
type ledgerFlags struct {
	window             *valueFlag[uint64]
	idle               time.Duration
	perMember, maxOpen int
	share              int
}

func (l *ledgerFlags) add(f *pflag.FlagSet) {
	l.window = newFlag(strings.ReplaceAll(units.FormatBytes(contracts.ReserveWindow), " ", ""), uint64(contracts.ReserveWindow), parseBytes, "size")
	f.Var(l.window, "contract-reserve-window",
		"how far ahead of the bytes received an open contract upload reserves room, e.g. 64MiB (with --contract-topic)")
	f.DurationVar(&l.idle, "contract-idle-release", contracts.IdleRelease,
		"how long an open contract upload may send no chunk before the room it reserved and has not received is given back (with --contract-topic)")
	f.IntVar(&l.perMember, "contract-open-per-member", contracts.MaxOpenPerMember,
		"open contract uploads one member may hold on the node; a further CONSIGN is refused BUSY (with --contract-topic)")
	f.IntVar(&l.maxOpen, "contract-open-max", contracts.MaxOpenGrants,
		"open contract uploads the node holds in all (with --contract-topic)")
	f.IntVar(&l.share, "contract-member-share", contracts.MemberRoomShare,
		"`N`: one member's reserved, not yet received, bytes may reach 1/N of the room the other members leave; 1 lets one member take it all (with --contract-topic)")
}

// options checks the flags and returns them as Ledger options.
func (l *ledgerFlags) options() ([]contracts.LedgerOption, error) {
	window := l.window.value
	switch {
	case window == 0:
		return nil, errors.New("--contract-reserve-window must be more than 0 bytes, e.g. 256MiB")
	case l.idle <= 0:
		return nil, fmt.Errorf("--contract-idle-release must be more than 0, e.g. %v", contracts.IdleRelease)
	case l.perMember < 1:
		return nil, fmt.Errorf("--contract-open-per-member must be at least 1 (default %d)", contracts.MaxOpenPerMember)
	case l.maxOpen < l.perMember:
		return nil, fmt.Errorf("--contract-open-max %d is less than --contract-open-per-member %d; raise it (default %d)", l.maxOpen, l.perMember, contracts.MaxOpenGrants)
	case l.share < 1:
		return nil, fmt.Errorf("--contract-member-share must be at least 1 (1: no share limit; default %d)", contracts.MemberRoomShare)
	}
	return []contracts.LedgerOption{contracts.WithReserveWindow(window), contracts.WithIdleRelease(l.idle),
		contracts.WithOpenLimits(l.perMember, l.maxOpen), contracts.WithMemberShare(l.share)}, nil
}
