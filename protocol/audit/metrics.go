package audit

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/internal/metricsutil"
)

// metrics are the audit handler's Prometheus collectors.
type metrics struct {
	challenges *prometheus.CounterVec
	bytesOut   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		challenges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "provider_audit", Name: "challenges_total",
			Help: "Audit challenges answered, by status: ok, not_found, failed, invalid, replay, rate_limited, busy (over the node's answer budget), abandoned (the challenger left first), malformed.",
		}, []string{"status"}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "provider_audit", Name: "bytes_out_total",
			Help: "Chunk bytes sent in audit answers.",
		}),
	}
	if reg != nil {
		m.challenges = metricsutil.MustRegister(reg, m.challenges)
		m.bytesOut = metricsutil.MustRegister(reg, m.bytesOut)
	}
	return m
}

func (m *metrics) challenge(status string) { m.challenges.WithLabelValues(status).Inc() }
