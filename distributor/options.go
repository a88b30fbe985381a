package distributor

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/satchel-net/satchel/protocol/fetch"
)

// Defaults of the options.
const (
	// DefaultCacheSize bounds the disk cache: 10 GiB.
	DefaultCacheSize = 10 << 30
	// DefaultMaxCachedObject is the largest object the cache keeps: larger
	// ones are streamed to the client and not kept. 2 GiB.
	DefaultMaxCachedObject = 2 << 30
	// DefaultHTTPAddr is where the HTTP API listens.
	DefaultHTTPAddr = "127.0.0.1:3334"
	// DefaultWriteTimeout bounds how long one write to a client may block:
	// a client that reads nothing for this long is cut off.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultFetchTimeout bounds one attempt to fetch one block from one
	// provider.
	DefaultFetchTimeout = 15 * time.Second
	// DefaultMaxAge is the max-age of an accepted object's Cache-Control.
	DefaultMaxAge = 365 * 24 * time.Hour
	// DefaultMaxFetches is how many block fetches run at once; with the
	// largest chunk size it bounds the memory fetches hold.
	DefaultMaxFetches = 32
	// DefaultMaxMisses is how many answers needing blocks from the network
	// fetch at once; more wait. Each holds at most three chunks in memory,
	// so this bounds the memory misses take whatever the request count. An
	// answer waiting on its client (a write blocked) or on busy providers
	// gives its slot back, keeping at most one chunk under one of as many
	// parked tokens.
	DefaultMaxMisses = 48
	// DefaultObjectRecords is how many objects' chain records the node
	// keeps in memory (about 250 bytes each); others are read from the
	// chain when requested.
	DefaultObjectRecords = 1 << 16
	// DefaultMinSendRate is the slowest a client may read an answer that
	// needs blocks from storage providers, averaged over
	// DefaultSendRateWindow of time spent writing to it: 64 KiB/s.
	DefaultMinSendRate = 64 << 10
	// DefaultSendRateWindow is the window DefaultMinSendRate is averaged
	// over.
	DefaultSendRateWindow = 30 * time.Second
	// DefaultMaxConns bounds the HTTP connections the node keeps open in
	// all: 4096, or half the process's open-file limit when that is lower
	// (the other half stays for cache files and libp2p connections). An
	// idle keep-alive connection holds about 19 KiB (measured: its
	// goroutine and buffers), so 4096 idle ones hold about 80 MiB.
	DefaultMaxConns = 4096
	// DefaultMaxConnsPerClient bounds the HTTP connections one client (an
	// IPv4 address, or an IPv6 /64) keeps open: a browser opens at most 6
	// to one host, so 64 admits ten busy browsers behind one NAT, while
	// one address holds at most 1/64 of DefaultMaxConns (an IPv6 /48 at
	// most 1/16, a /32 1/4: see WithMaxConnsPerClient).
	DefaultMaxConnsPerClient = 64
	// DefaultBusyWait bounds how long a block fetch waits, retrying, while
	// every provider holding the block answers busy.
	DefaultBusyWait = fetch.DefaultBusyWait
)

type config struct {
	log               *slog.Logger
	reg               prometheus.Registerer
	cacheDir          string
	cacheSize         int64
	maxCachedObject   int64
	httpAddr          string
	writeTimeout      time.Duration
	fetchTimeout      time.Duration
	maxAge            time.Duration
	maxFetches        int
	maxMisses         int
	objectRecords     int
	busyWait          time.Duration
	minSendRate       int64
	sendRateWindow    time.Duration
	maxConns          int // 0: derived from the open-file limit
	maxConnsPerClient int
	// followBackoff and maxFollowBackoff replace the follower's backoff
	// (tests only; 0: the defaults).
	followBackoff, maxFollowBackoff time.Duration
}

func defaults() config {
	return config{
		log:               slog.New(slog.DiscardHandler),
		cacheSize:         DefaultCacheSize,
		maxCachedObject:   DefaultMaxCachedObject,
		httpAddr:          DefaultHTTPAddr,
		writeTimeout:      DefaultWriteTimeout,
		fetchTimeout:      DefaultFetchTimeout,
		maxAge:            DefaultMaxAge,
		maxFetches:        DefaultMaxFetches,
		maxMisses:         DefaultMaxMisses,
		objectRecords:     DefaultObjectRecords,
		busyWait:          DefaultBusyWait,
		minSendRate:       DefaultMinSendRate,
		sendRateWindow:    DefaultSendRateWindow,
		maxConnsPerClient: DefaultMaxConnsPerClient,
	}
}

// Option configures a Server.
type Option func(*config)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithMetrics registers the node's Prometheus collectors on r.
func WithMetrics(r prometheus.Registerer) Option { return func(c *config) { c.reg = r } }

// WithCacheDir sets the directory of the disk cache (required).
func WithCacheDir(dir string) Option { return func(c *config) { c.cacheDir = dir } }

// WithCacheSize bounds the disk cache to n bytes (default DefaultCacheSize).
func WithCacheSize(n int64) Option {
	return func(c *config) {
		if n > 0 {
			c.cacheSize = n
		}
	}
}

// WithMaxCachedObject sets the largest object the cache keeps (default
// DefaultMaxCachedObject); larger objects are streamed, not cached.
func WithMaxCachedObject(n int64) Option {
	return func(c *config) {
		if n >= 0 {
			c.maxCachedObject = n
		}
	}
}

// WithHTTPAddr sets the HTTP listen address (default DefaultHTTPAddr);
// "127.0.0.1:0" takes a free port.
func WithHTTPAddr(addr string) Option { return func(c *config) { c.httpAddr = addr } }

// WithWriteTimeout sets how long one write to a client may block (default
// DefaultWriteTimeout).
func WithWriteTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.writeTimeout = d
		}
	}
}

// WithFetchTimeout bounds one attempt to fetch a block from one provider
// (default DefaultFetchTimeout).
func WithFetchTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.fetchTimeout = d
		}
	}
}

// WithMaxAge sets the max-age of accepted objects' Cache-Control (default
// DefaultMaxAge).
func WithMaxAge(d time.Duration) Option {
	return func(c *config) {
		if d >= 0 {
			c.maxAge = d
		}
	}
}

// WithMaxFetches sets how many block fetches run at once (default
// DefaultMaxFetches).
func WithMaxFetches(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxFetches = n
		}
	}
}

// WithMaxMisses sets how many answers that need blocks from the network
// run at once (default DefaultMaxMisses); answers from the cache are not
// limited.
func WithMaxMisses(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxMisses = n
		}
	}
}

// WithObjectRecords sets how many objects' chain records the node keeps in
// memory (default DefaultObjectRecords, at least 2): the most recently
// registered or requested. A request for another one reads it from the
// chain first.
func WithObjectRecords(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.objectRecords = max(n, 2)
		}
	}
}

// WithBusyWait bounds how long a block fetch waits, asking again after
// pauses of 250 ms doubling to 2 s, while every provider holding the block
// answers busy (default DefaultBusyWait); then the answer is 503 with
// Retry-After. Zero fails at once. The fetch holds its --max-fetches slot
// meanwhile.
func WithBusyWait(d time.Duration) Option {
	return func(c *config) {
		if d >= 0 {
			c.busyWait = d
		}
	}
}

// WithMinSendRate cuts off a client that reads an answer needing blocks
// from storage providers (x-cache miss or pending) slower than
// bytesPerSec, averaged over window of time spent writing to it (time the
// node spends fetching does not count); the cut is logged and counted
// (satchel_distributor_slow_clients_cut_total). Default DefaultMinSendRate
// over DefaultSendRateWindow; bytesPerSec 0 cuts off none but clients that
// stop reading (WithWriteTimeout). Answers from the cache are not held to
// it. A window of 0 keeps the default.
func WithMinSendRate(bytesPerSec int64, window time.Duration) Option {
	return func(c *config) {
		if bytesPerSec >= 0 {
			c.minSendRate = bytesPerSec
		}
		if window > 0 {
			c.sendRateWindow = window
		}
	}
}

// WithMaxConns bounds the HTTP connections the node keeps open to total
// (default: DefaultMaxConns, or half the process's open-file limit when
// that is lower; 0 keeps the default). At the bound the oldest connection
// that began no request within 2 s, else the longest idle keep-alive one,
// is closed to admit a new one; with none a new connection is answered 503
// with Retry-After and closed (never holding up Accept).
func WithMaxConns(total int) Option {
	return func(c *config) {
		if total >= 0 {
			c.maxConns = total
		}
	}
}

// WithMaxConnsPerClient bounds the HTTP connections one client keeps open
// to n (default DefaultMaxConnsPerClient): a client is an IPv4 address,
// or an IPv6 /64. A site is commonly given a /48 (65,536 /64s) and a
// network a /32 (65,536 /48s), so one IPv6 /48 keeps at most 4n open,
// and one /32 16n: fresh /64s (or /48s) buy no more. A connection past it is answered 429 with Retry-After
// and closed (never holding up Accept). 0 sets no bound per client, for a node behind a
// reverse proxy whose connections all come from the proxy's address.
func WithMaxConnsPerClient(n int) Option {
	return func(c *config) {
		if n >= 0 {
			c.maxConnsPerClient = n
		}
	}
}

// maxConnsTotal returns the bound on HTTP connections in all.
func (c *config) maxConnsTotal() int {
	if c.maxConns > 0 {
		return c.maxConns
	}
	if n := openFileLimit(); n > 0 {
		return max(min(DefaultMaxConns, n/2), 1)
	}
	return DefaultMaxConns
}
