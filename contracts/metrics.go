package contracts

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus collectors of contract negotiation on one
// node. Make them with NewMetrics on the node's registry and pass them with
// WithMetrics (responder) and WithGossipMetrics (validator). A nil
// *Metrics counts nothing.
type Metrics struct {
	validated *prometheus.CounterVec
	answered  *prometheus.CounterVec
	requests  *prometheus.CounterVec
	waits     prometheus.Counter
}

// NewMetrics registers the collectors on reg:
//
//	satchel_contracts_proposals_validated_total{result}  accept, reject, ignore
//	satchel_contracts_proposals_answered_total{outcome}  offered, not_assigned, not_owner, id_taken, no_room, offer_failed, busy, duplicate (a copy published again)
//	satchel_contracts_requests_total{kind,result}         kind consign|renew|retrieve|mirror|other; result ok or the refusal code
//	satchel_contracts_consign_waits_total                 CONSIGNs that waited for a request of their contract in flight
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		validated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "satchel_contracts_proposals_validated_total",
			Help: "Contract proposals the gossipsub validator saw, by result.",
		}, []string{"result"}),
		answered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "satchel_contracts_proposals_answered_total",
			Help: "Valid proposals a provider handled, by outcome.",
		}, []string{"outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "satchel_contracts_requests_total",
			Help: "Requests served on /satchel/contract/1.0.0 by a provider, by kind and result.",
		}, []string{"kind", "result"}),
		waits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "satchel_contracts_consign_waits_total",
			Help: "CONSIGNs a provider made wait for an earlier request of their contract still in flight (a renter's retry while the provider is slow).",
		}),
	}
	for _, c := range []prometheus.Collector{m.validated, m.answered, m.requests, m.waits} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) validation(result string) {
	if m != nil {
		m.validated.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) answer(outcome string) {
	if m != nil {
		m.answered.WithLabelValues(outcome).Inc()
	}
}

func (m *Metrics) request(kind, result string) {
	if m != nil {
		m.requests.WithLabelValues(kind, result).Inc()
	}
}

func (m *Metrics) claimWait() {
	if m != nil {
		m.waits.Inc()
	}
}

// WithMetrics counts the responder's work in m.
func WithMetrics(m *Metrics) ResponderOption { return func(r *Responder) { r.metrics = m } }

// A GossipOption configures a Gossip.
type GossipOption func(*Gossip)

// WithGossipMetrics counts the validator's results in m.
func WithGossipMetrics(m *Metrics) GossipOption { return func(g *Gossip) { g.metrics = m } }
