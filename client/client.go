package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/rpc"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/store"
	storepb "github.com/satchel-net/satchel/protocol/store/pb"
)

// Chain is what the client needs of the data directory. *chain.Client
// implements it.
type Chain interface {
	Bag(ctx context.Context, id chain.BagID) (chain.Bag, error)
	Bags(ctx context.Context) ([]chain.Bag, error)
	StorageBucket(ctx context.Context, id chain.StorageBucketID) (chain.StorageBucket, error)
	StorageBuckets(ctx context.Context) ([]chain.StorageBucket, error)
	DataObject(ctx context.Context, bag chain.BagID, id chain.ObjectID) (chain.DataObject, error)
	Objects(ctx context.Context, bag chain.BagID) ([]chain.DataObject, error)
	Params(ctx context.Context) (chain.Params, error)
	Submit(ctx context.Context, key chain.Key, msg chain.Msg) (chain.Committed, error)
	Transport() chain.Transport
}

// Config is what a Client needs: where the data directory is, who signs,
// the libp2p host, and where upload state lives. Required things are here;
// optional behaviour comes in Options.
type Config struct {
	// Chain is the data directory client. When nil, ChainRPC is dialled.
	Chain Chain
	// ChainRPC is the CometBFT RPC URL of a chain node, used when Chain is
	// nil, e.g. "http://127.0.0.1:26657".
	ChainRPC string
	// ChainTrust says how the answers of the node at ChainRPC are trusted.
	// By default every read is proven against headers the validators
	// signed, so it must name a root: the network's genesis file
	// (ChainTrust.Genesis) or a trusted header (Height and Hash). An
	// endpoint that answers what the validators did not sign is refused
	// with an error naming it (verify.ErrLyingEndpoint). Only
	// ChainTrust.TrustRPC believes the endpoint as it is.
	ChainTrust rpc.Trust

	// Key is the member's account key, which signs the registration of
	// uploaded objects (the bag's owner). Downloads need none.
	Key chain.Key

	// Host is the libp2p host to use. When nil, New starts one (a DHT
	// client listening on loopback, see WithHostOptions) and Close stops it.
	Host *p2p.Host

	// StateDir is where upload state is kept (a goleveldb database), so an
	// interrupted upload resumes. Empty keeps it in memory: nothing resumes
	// across processes.
	StateDir string

	// ChunkSize is the chunk size of uploads (default
	// chunker.DefaultChunkSize). Downloads follow the object's own DAG.
	ChunkSize int
}

// Option configures a Client. New fails with an error wrapping
// ErrInvalidOption, naming the option, when one is given a value it cannot
// take.
type Option func(*options)

type options struct {
	log         *slog.Logger
	hostOpts    []p2p.Option
	window      int
	fetchWindow int
	pushTimeout time.Duration
	locate      time.Duration
	busyWait    time.Duration
	reconnect   time.Duration // WithReconnectWait
	err         error         // the first invalid option, which New returns
}

// invalid records the first option New must refuse.
func (o *options) invalid(format string, args ...any) {
	if o.err == nil {
		o.err = optionErrorf(format, args...)
	}
}

// WithLogger sets the logger (component=client); the default discards.
// The client logs at Debug and Info and never prints.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// WithHostOptions adds options to the p2p.New call of a host the client
// starts itself (Config.Host nil), for example p2p.WithBootstrapAddrs.
func WithHostOptions(opts ...p2p.Option) Option {
	return func(o *options) { o.hostOpts = append(o.hostOpts, opts...) }
}

// WithWindow sets how many chunks an upload holds in memory at once, shared
// by every provider it pushes to (default 24), 1 or more. Memory is about
// window × chunk size.
func WithWindow(n int) Option {
	return func(o *options) {
		if n < 1 {
			o.invalid("WithWindow(%d): an upload holds 1 chunk in memory or more", n)
			return
		}
		o.window = n
	}
}

// WithFetchWindow sets how many chunks a download fetches ahead of the one
// it writes (default 16), 1 or more. Memory is about window × chunk size.
func WithFetchWindow(n int) Option {
	return func(o *options) {
		if n < 1 {
			o.invalid("WithFetchWindow(%d): a download fetches 1 chunk at a time or more", n)
			return
		}
		o.fetchWindow = n
	}
}

// WithPushTimeout bounds one chunk exchange with one provider (default 2
// minutes); a provider that takes longer is treated as failed.
func WithPushTimeout(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.invalid("WithPushTimeout(%s): a chunk exchange needs longer than 0", d)
			return
		}
		o.pushTimeout = d
	}
}

// WithLocateTimeout bounds the DHT lookup of a bag's live providers and the
// connection attempts to them (default 10 seconds), and a download's wait
// for the chain's next block before it looks up again the providers it
// could not connect to.
func WithLocateTimeout(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.invalid("WithLocateTimeout(%s): finding providers needs longer than 0", d)
			return
		}
		o.locate = d
	}
}

// WithBusyWait bounds how long a download waits, retrying, for a block
// every provider holding it answers busy (its memory budget for all
// readers spent) before it fails with ErrProvidersBusy (default 15
// seconds, fetch.DefaultBusyWait), and how long an upload keeps asking a
// provider that answers busy (its budget for all uploaders spent) for a
// chunk or a bind before it gives the provider up: a spare replaces it,
// or, with none left, the upload fails matching ErrProvidersBusy. Zero
// fails (or gives the provider up) at once.
func WithBusyWait(d time.Duration) Option {
	return func(o *options) {
		if d < 0 {
			o.invalid("WithBusyWait(%s): want 0 (give up at once) or more", d)
			return
		}
		o.busyWait = d
	}
}

// WithReconnectWait bounds how long an upload keeps dialling, by peer ID,
// a provider whose store stream broke or whose dial was refused, before it
// gives the provider up (default DefaultReconnectWait, 30 seconds): a
// provider restarted within it is pushed the chunks it has not yet
// acknowledged (those it signed a receipt for are not sent again). Then a
// spare replaces it or, with none left, the upload fails saying the
// provider is unreachable. Zero gives it up at once.
func WithReconnectWait(d time.Duration) Option {
	return func(o *options) {
		if d < 0 {
			o.invalid("WithReconnectWait(%s): want 0 (give up at once) or more", d)
			return
		}
		o.reconnect = d
	}
}

// storeConn is the uploader's side of one store stream
// (*store.Stream).
type storeConn interface {
	Push(ctx context.Context, c store.ChunkPush) (*storepb.Receipt, error)
	PushPipeline(ctx context.Context, c store.ChunkPush) (store.PipelineResult, error)
	Bind(ctx context.Context, b store.BindRequest) error
	Drop(ctx context.Context, session []byte, bag string) error
	Close() error
}

// blockFetcher reads verified blocks from providers (*fetch.Client).
type blockFetcher interface {
	Have(ctx context.Context, p peer.ID, cids []cid.Cid) ([]bool, error)
	// ReadBlock reads and verifies block c; the caller releases it once
	// done with its bytes.
	ReadBlock(ctx context.Context, p peer.ID, c cid.Cid) (fetch.Block, error)
}

// Client puts content into a Satchel network and gets it back. It is safe
// for concurrent use; Close releases it.
type Client struct {
	cfg     Config
	opts    options
	chain   Chain
	host    *p2p.Host
	journal *journal
	log     *slog.Logger
	closers []func() error
	fetch   blockFetcher
	// fetchVerifies says fetch verifies every block against its CID
	// itself (fetch.Client does), so reads need not hash again.
	fetchVerifies bool
	openConn      func(ctx context.Context, p peer.ID) (storeConn, error)
	// progressEvery bounds how often storage link changes and download
	// bytes are reported (progressInterval; tests set 0 to see every one).
	progressEvery time.Duration
	// now is the client's clock, which a pipeline hop's receipt is read
	// against (tests set it).
	now func() time.Time

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // uploads and downloads in progress
}

// New returns a client. It dials the chain (Config.ChainRPC) and starts a
// host when Config gives none, and opens the upload state in
// Config.StateDir.
func New(cfg Config, opts ...Option) (_ *Client, err error) {
	o := options{window: 24, fetchWindow: 16, pushTimeout: 2 * time.Minute, locate: 10 * time.Second, busyWait: fetch.DefaultBusyWait, reconnect: DefaultReconnectWait}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if o.err != nil {
		return nil, o.err
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = chunker.DefaultChunkSize
	}
	if cfg.ChunkSize < 1 || cfg.ChunkSize > chunker.MaxChunkSize {
		return nil, fmt.Errorf("client: chunk size %d is outside 1..%d bytes", cfg.ChunkSize, chunker.MaxChunkSize)
	}
	c := &Client{cfg: cfg, opts: o, log: o.log.With("component", "client"), progressEvery: progressInterval, now: time.Now}
	defer func() {
		if err != nil {
			c.release()
		}
	}()
	c.chain = cfg.Chain
	if c.chain == nil {
		if cfg.ChainRPC == "" {
			return nil, errors.New("client: config names no chain: set Config.Chain or Config.ChainRPC")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		t, err := rpc.Open(ctx, cfg.ChainRPC, cfg.ChainTrust, rpc.WithLogger(o.log))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("client: dial chain %s: %w", cfg.ChainRPC, err)
		}
		c.closers = append(c.closers, t.Close)
		c.chain = chain.NewClient(t)
	}
	c.host = cfg.Host
	if c.host == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		hopts := append([]p2p.Option{p2p.WithDHTMode(dht.ModeClient), p2p.WithLogger(o.log)}, o.hostOpts...)
		h, err := p2p.New(ctx, hopts...)
		if err != nil {
			return nil, fmt.Errorf("client: start libp2p host: %w", err)
		}
		c.host = h
		c.closers = append(c.closers, h.Close)
	}
	j, err := openJournal(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	c.journal = j
	c.closers = append(c.closers, j.close)
	fc := fetch.NewClient(c.host.Libp2p())
	c.closers = append(c.closers, fc.Close)
	c.fetch, c.fetchVerifies = fc, true
	lh := c.host.Libp2p()
	c.openConn = func(ctx context.Context, p peer.ID) (storeConn, error) {
		// One segment per chunk: its hash is the chunk's own digest, taken
		// from its CID, so the uploader does not hash every byte a second
		// time. The provider still checks every byte against the CID, and
		// a chunk fits one data frame, so smaller segments would check
		// nothing sooner.
		return store.Open(ctx, lh, p, store.WithSegmentSize(store.MaxSegmentSize))
	}
	return c, nil
}

// Host returns the client's libp2p host.
func (c *Client) Host() *p2p.Host { return c.host }

// begin registers an operation; it fails once the client is closed.
func (c *Client) begin() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.wg.Add(1)
	return nil
}

func (c *Client) end() { c.wg.Done() }

// Close waits for operations in progress to return, then releases the
// upload state, and the host and chain connection if the client made them.
// Operations in progress include every open Upload and Reader: Close
// returns only once each Upload was committed or aborted and each Reader
// closed with its reads returned (a read blocked in its writer's Write
// returns when the Write does). Cancel the operations' contexts first to
// make it quick. Calls made after Close fail with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.wg.Wait()
	return c.release()
}

func (c *Client) release() error {
	var errs []error
	for i := len(c.closers) - 1; i >= 0; i-- {
		if err := c.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	c.closers = nil
	return errors.Join(errs...)
}

// closeQuietly closes c, ignoring the error: for cleanup paths that
// already report another error.
func closeQuietly(c io.Closer) { _ = c.Close() }
