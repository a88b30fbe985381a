package provider

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/chain"
)

// Defaults of a Server. Each has an Option that changes it.
const (
	// DefaultSyncWorkers is how many objects are fetched from peers at once.
	// Each worker keeps a few chunk reads in flight, so a handful saturates
	// a link without starving the store handler of disk bandwidth.
	DefaultSyncWorkers = 4

	// DefaultCleanupConfirmations is how many other providers must confirm,
	// block by block, that they hold an object of a bag moved away from this
	// node's bucket before it is removed here: with two copies elsewhere a
	// single failure after the removal still leaves one.
	DefaultCleanupConfirmations = 2

	// DefaultReprovideInterval is how often every stored bag is announced on
	// the DHT again: well inside the 48-hour validity of provider records,
	// so a record never lapses even if one round fails.
	DefaultReprovideInterval = 12 * time.Hour

	// DefaultReconcileInterval is how often the node compares the whole
	// chain view of its bucket with its store: a safety net only. The node
	// follows block events and reads what they name (delta.go); it also
	// lists the whole bucket at start and after the chain subscription
	// failed.
	DefaultReconcileInterval = 15 * time.Minute

	// DefaultRetryInterval is how often the node retries what events
	// cannot retrigger, for the objects and bags concerned only: a pending
	// object nobody could serve yet, a cleanup waiting for confirmations,
	// a failed accept, a repair that found no peer, a tombstone come due.
	DefaultRetryInterval = 30 * time.Second

	// DefaultAcceptWindow and DefaultAcceptBatch bound how long bound
	// objects wait to be accepted together in one transaction, and how
	// many go in one. No window by default: the first object is submitted
	// at once, and those bound while its transaction is on its way (about
	// a block) go together in the next, so an upload of many small files
	// still costs a few transactions, not one per file, and a single file
	// waits for no timer.
	DefaultAcceptWindow = 0
	DefaultAcceptBatch  = 100

	// DefaultServeGrace is how long after its last read an object counts as
	// being served: a reader fetches an object's chunks one request after
	// another, so removal waits until the reads have stopped for this long.
	DefaultServeGrace = time.Minute

	// DefaultOrphanedSessionGrace is how long a streamed upload session
	// holding nothing but chunks of an object this node synced is kept
	// before it expires: its uploader lost the node mid-upload and will
	// not bind it here, unless it carries on meanwhile (every chunk it
	// pushes extends the session).
	DefaultOrphanedSessionGrace = 10 * time.Minute

	// DefaultSyncSessionExpiry is how long the blocks a sync stored stay
	// after its last one when the sync never finishes (its sources vanish,
	// the object is deleted, the bag moves): every attempt extends it, so
	// an object retried at each reconcile keeps what it fetched.
	DefaultSyncSessionExpiry = time.Hour

	// DefaultFetchTimeout bounds one block read from a peer during sync,
	// repair or a HAVE round of a cleanup confirmation.
	DefaultFetchTimeout = 30 * time.Second
)

// An Option configures a Server made by New.
type Option func(*config)

type config struct {
	syncWorkers          int
	statusAddr           string
	registerer           prometheus.Registerer
	log                  *slog.Logger
	reprovideInterval    time.Duration
	reconcileInterval    time.Duration
	retryInterval        time.Duration
	cleanupConfirmations int
	acceptWindow         time.Duration
	acceptBatch          int
	serveGrace           time.Duration
	orphanGrace          time.Duration
	fetchTimeout         time.Duration
	stateDir             string
	operatorKey          chain.Key
	publishMetadata      bool
	location             *chain.Location
	audit                auditConfig // audit.go
	scrub                scrubConfig // scrub.go
	deletionGrace        time.Duration
	syncSessionExpiry    time.Duration
}

func defaultConfig() config {
	return config{
		syncWorkers:          DefaultSyncWorkers,
		reprovideInterval:    DefaultReprovideInterval,
		reconcileInterval:    DefaultReconcileInterval,
		retryInterval:        DefaultRetryInterval,
		cleanupConfirmations: DefaultCleanupConfirmations,
		acceptWindow:         DefaultAcceptWindow,
		acceptBatch:          DefaultAcceptBatch,
		serveGrace:           DefaultServeGrace,
		orphanGrace:          DefaultOrphanedSessionGrace,
		fetchTimeout:         DefaultFetchTimeout,
		log:                  slog.Default(),
		publishMetadata:      true,
		audit:                defaultAuditConfig(),
		scrub:                defaultScrubConfig(),
		deletionGrace:        DefaultDeletionGrace,
		syncSessionExpiry:    DefaultSyncSessionExpiry,
	}
}

// WithSyncWorkers sets how many objects are synced from peers in parallel
// (default DefaultSyncWorkers). Values below 1 mean 1.
func WithSyncWorkers(n int) Option {
	return func(c *config) { c.syncWorkers = max(n, 1) }
}

// WithOrphanedSessionGrace sets how long a streamed upload session that
// holds only chunks of an object the node synced is kept (default
// DefaultOrphanedSessionGrace).
func WithOrphanedSessionGrace(d time.Duration) Option {
	return func(c *config) { c.orphanGrace = max(d, 0) }
}

// WithStatusAddr serves the status page (GET /api/v1/status) and Prometheus
// metrics (GET /metrics) over HTTP on addr, such as "127.0.0.1:7070";
// port 0 takes a free port (see Server.StatusAddr). Without it no HTTP server
// runs. The page tells anyone who can reach it what the node stores, so
// keep it on loopback unless a firewall guards it.
func WithStatusAddr(addr string) Option {
	return func(c *config) { c.statusAddr = addr }
}

// WithMetrics registers the server's Prometheus collectors, and those of
// its store and fetch handlers, on reg. When reg is also a
// prometheus.Gatherer (a *prometheus.Registry is), the status server
// serves it at /metrics. Without it nothing is registered anywhere.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(c *config) { c.registerer = reg }
}

// WithLogger sets the logger; records carry component=provider. The default
// is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.log = l
		}
	}
}

// WithReprovideInterval sets how often every stored bag is announced again
// on the DHT (default DefaultReprovideInterval).
func WithReprovideInterval(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.reprovideInterval = d
		}
	}
}

// WithReconcileInterval sets how often the node compares the chain's whole
// view of its bucket with its store (default DefaultReconcileInterval).
// Chain events trigger the work they concern at once; this is the safety
// net. Retries run at least this often too (WithRetryInterval).
func WithReconcileInterval(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.reconcileInterval = d
		}
	}
}

// WithRetryInterval sets how often the node retries what waits on peers or
// on a failed chain call (default DefaultRetryInterval), for the objects
// and bags concerned only.
func WithRetryInterval(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.retryInterval = d
		}
	}
}

// WithCleanupConfirmations sets how many other providers must confirm they
// hold every block of an object of a bag moved away from this node's
// bucket before the object is removed here (default
// DefaultCleanupConfirmations). Values below 1 mean 1: a node never drops
// the last copy it knows of.
func WithCleanupConfirmations(n int) Option {
	return func(c *config) { c.cleanupConfirmations = max(n, 1) }
}

// WithAcceptBatch sets how long bound objects are collected before they are
// accepted on chain, and how many at most go in one transaction (defaults
// DefaultAcceptWindow and DefaultAcceptBatch).
func WithAcceptBatch(window time.Duration, maxObjects int) Option {
	return func(c *config) {
		if window >= 0 {
			c.acceptWindow = window
		}
		if maxObjects > 0 {
			c.acceptBatch = maxObjects
		}
	}
}

// WithServeGrace sets how long after its last read an object is still
// treated as being served, and so kept, when the chain says it may be
// removed (default DefaultServeGrace). Zero removes objects as soon as
// no read of theirs has started since the removal was decided.
func WithServeGrace(d time.Duration) Option {
	return func(c *config) {
		if d >= 0 {
			c.serveGrace = d
		}
	}
}

// WithFetchTimeout bounds each block read and HAVE round the node makes to
// a peer (default DefaultFetchTimeout).
func WithFetchTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.fetchTimeout = d
		}
	}
}

// WithStateDir keeps the node's own small state in dir: the last chain
// height it handled and the bags it has held, so a restarted node resumes
// its event stream where it stopped and still cleans up bags that moved
// away while it was down. The default is the block store's directory
// (file provider-state.json beside the store's own layout).
func WithStateDir(dir string) Option {
	return func(c *config) { c.stateDir = dir }
}

// WithOperatorKey sets the worker's role account key, which signs the
// operator metadata (peer ID and addresses) the node publishes on chain
// when the chain's copy is out of date. The chain accepts metadata only
// from the role account; without this option the transactor key is tried,
// which works when the operator registered no separate transactor.
func WithOperatorKey(k chain.Key) Option {
	return func(c *config) { c.operatorKey = k }
}

// WithMetadataPublishing turns the on-start check and update of the
// operator metadata on or off (default on). Turn it off when the operator
// publishes the metadata by hand, with `satchel storage operator
// set-metadata`.
func WithMetadataPublishing(on bool) Option {
	return func(c *config) { c.publishMetadata = on }
}

// WithLocation sets the location published in the operator metadata.
func WithLocation(l chain.Location) Option {
	return func(c *config) { c.location = &l }
}

// WithDeletionGrace sets how long an object the chain deleted is kept
// before it is removed (default DefaultDeletionGrace). While it waits, its
// tombstone shows on the status page and an operator can keep the object
// (Server.KeepObject). Zero removes it at the first reconcile after the
// deletion is confirmed; negative values mean zero.
func WithDeletionGrace(d time.Duration) Option {
	return func(c *config) { c.deletionGrace = max(d, 0) }
}

// WithSyncSessionExpiry sets how long the blocks a sync stored are kept
// after its last block when the sync does not finish (default
// DefaultSyncSessionExpiry); the block store's session expiry then deletes
// them. Values of zero or less mean the default.
func WithSyncSessionExpiry(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.syncSessionExpiry = d
		}
	}
}
