package distributor

import (
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// chainLogEvery is how often a chain node that stays unreachable is logged
// again (with the failures since).
const chainLogEvery = time.Minute

// chainHealth is whether the node reaches its chain node, as its reads
// show: the follower's, the object records' and the providers' look-ups
// report to it. The first failure is logged at warn with what to check,
// then at most once a chainLogEvery with a count; the recovery at info.
// The status and the metrics show it; answers to clients never carry a
// read's error (it names the operator's endpoint).
type chainHealth struct {
	log      *slog.Logger
	up       prometheus.Gauge
	failures prometheus.Counter

	mu          sync.Mutex
	downSince   time.Time // zero while reads succeed
	lastContact time.Time
	failed      uint64 // failures since down
	unlogged    uint64 // failures since the last log line
	loggedAt    time.Time
}

func newChainHealth(log *slog.Logger, up prometheus.Gauge, failures prometheus.Counter) *chainHealth {
	up.Set(1) // until a read fails
	return &chainHealth{log: log, up: up, failures: failures}
}

// ok records a read the chain node answered (not found included).
func (h *chainHealth) ok() {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastContact = now
	if h.downSince.IsZero() {
		return
	}
	h.up.Set(1)
	h.log.Info("chain node reachable again", "down_for", now.Sub(h.downSince).Round(time.Second), "failures", h.failed)
	h.downSince = time.Time{}
}

// fail records a read that failed: what the node was reading, and why.
func (h *chainHealth) fail(what string, err error) {
	now := time.Now()
	h.failures.Inc()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.downSince.IsZero() {
		h.downSince, h.failed, h.unlogged, h.loggedAt = now, 1, 0, now
		h.up.Set(0)
		h.log.Warn("cannot read the chain; check that chain.rpc in the config names a running chain node; retrying with backoff",
			"reading", what, "err", err)
		return
	}
	h.failed++
	h.unlogged++
	if now.Sub(h.loggedAt) < chainLogEvery {
		return
	}
	h.log.Warn("chain node still unreachable; check chain.rpc in the config", "reading", what, "err", err,
		"since", h.downSince.UTC().Format(time.RFC3339), "failures_since_last_log", h.unlogged, "failures", h.failed)
	h.loggedAt, h.unlogged = now, 0
}

// state returns whether the last read succeeded, when a read last did
// (zero before any), and since when reads fail (zero while up).
func (h *chainHealth) state() (up bool, lastContact, downSince time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.downSince.IsZero(), h.lastContact, h.downSince
}
