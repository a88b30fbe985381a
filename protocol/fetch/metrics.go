package fetch

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/internal/metricsutil"
	"github.com/satchel-net/satchel/protocol/fetch/pb"
)

// metrics are the fetch handler's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec
	bytesOut prometheus.Counter
	// verifyRefused counts ranged GETs refused for a spent verification
	// budget, by budget: the peer's or the node's.
	verifyRefused *prometheus.CounterVec
	// evicted counts streams reset for a stalled write to make room.
	evicted prometheus.Counter
	// abandoned counts the block bytes of replies left unsent by streams
	// their readers reset (charged to the peers' abandonment budgets).
	abandoned prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "provider_fetch", Name: "requests_total",
			Help: "Fetch requests by kind (have, get; malformed: a frame over the wire limits or undecodable, whose stream was reset) and status (ok, not_found, refused, failed).",
		}, []string{"kind", "status"}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "provider_fetch", Name: "bytes_out_total",
			Help: "Block bytes sent in GET replies (counted once a reply is written; a reply its reader reset the stream before taking is counted in abandoned_bytes_total instead).",
		}),
		verifyRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "provider_fetch", Name: "range_verify_refused_total",
			Help: "Ranged GETs refused because a budget for reading whole blocks to verify them was spent, by budget: peer (the reader's own), overflow (one a reader shares with others when the provider tracks too many readers to keep one each) or node (all readers' together).",
		}, []string{"budget"}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "provider_fetch", Name: "streams_evicted_total",
			Help: "Fetch streams reset because their reply write was stalled while another peer's GET needed the memory budget all peers share.",
		}),
		abandoned: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "provider_fetch", Name: "abandoned_bytes_total",
			Help: "Block bytes of GET replies left unsent by fetch streams their readers reset, charged to the readers' abandonment budgets.",
		}),
	}
	if reg != nil {
		m.requests = metricsutil.MustRegister(reg, m.requests)
		m.bytesOut = metricsutil.MustRegister(reg, m.bytesOut)
		m.verifyRefused = metricsutil.MustRegister(reg, m.verifyRefused)
		m.evicted = metricsutil.MustRegister(reg, m.evicted)
		m.abandoned = metricsutil.MustRegister(reg, m.abandoned)
	}
	return m
}

func (m *metrics) request(kind string, st pb.FetchStatus) {
	var status string
	switch st {
	case pb.FetchStatus_FETCH_STATUS_OK:
		status = "ok"
	case pb.FetchStatus_FETCH_STATUS_NOT_FOUND:
		status = "not_found"
	case pb.FetchStatus_FETCH_STATUS_REFUSED:
		status = "refused"
	default:
		status = "failed"
	}
	m.requests.WithLabelValues(kind, status).Inc()
}
