package distributor

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/satchel-net/satchel/internal/fsutil"
)

// cacheMetrics are the cache's own counters, registered with the node's
// (metrics.go).
type cacheMetrics struct {
	writeFailures *prometheus.CounterVec // by reason (no_space, error)
	noSpace       prometheus.Counter
	writeError    prometheus.Counter
	// dropped counts cached blocks dropped because their file was found
	// bad: failed its check, torn or gone.
	dropped prometheus.Counter
}

func newCacheMetrics() cacheMetrics {
	m := cacheMetrics{
		writeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "cache_write_failures_total",
			Help: "Block writes to the disk cache that failed, by reason (no_space: the disk was full, the cache's bound is lowered to what fits and other objects are evicted for room; error: any other). A block not written is fetched again by the next request for it.",
		}, []string{"reason"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "cache_bad_blocks_total",
			Help: "Cached blocks dropped because their file failed its check on read (CRC-32C, then SHA-256 against the CID), was torn or went missing; never served, each is fetched again.",
		}),
	}
	m.noSpace = m.writeFailures.WithLabelValues("no_space")
	m.writeError = m.writeFailures.WithLabelValues("error")
	return m
}

// collectors returns the collectors to register.
func (m cacheMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.writeFailures, m.dropped}
}

// writeFailed counts a failed block write.
func (m cacheMetrics) writeFailed(err error) {
	if fsutil.NoSpace(err) {
		m.noSpace.Inc()
		return
	}
	m.writeError.Inc()
}
