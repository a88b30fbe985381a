package contracts

import (
	"sync/atomic"

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
	// room is what the room gauges read: the Room of the responder given
	// these metrics, when it counts its reservations (*Ledger does).
	room atomic.Pointer[roomCounter]
}

// roomCounter is what a Room may tell of its reservations for the gauges.
type roomCounter interface {
	Reserved() uint64
	Pending() uint64
	Open() int
}

// NewMetrics registers the collectors on reg:
//
//	satchel_contracts_proposals_validated_total{result}  accept, reject, ignore
//	satchel_contracts_proposals_answered_total{outcome}  offered, not_assigned, not_owner, id_taken, no_room, offer_failed, busy, duplicate (a copy published again)
//	satchel_contracts_requests_total{kind,result}         kind consign|renew|retrieve|mirror|other; result ok or the refusal code
//	satchel_contracts_consign_waits_total                 CONSIGNs that waited for a request of their contract in flight
//	satchel_contracts_reserved_bytes                      bytes the responder's Ledger holds reserved for open contracts
//	satchel_contracts_pending_bytes                       of them, those not yet received (what the free disk does not show)
//	satchel_contracts_open_uploads                        open reservations: uploads not bound, dropped or lapsed
//
// The three gauges read the Room of the responder started WithMetrics(m),
// when it is a *Ledger, at each scrape; they are 0 until then.
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
	gauge := func(name, help string, read func(roomCounter) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			if rc := m.room.Load(); rc != nil {
				return read(*rc)
			}
			return 0
		})
	}
	reserved := gauge("satchel_contracts_reserved_bytes",
		"Bytes the provider holds reserved for open storage contracts (uploads not yet bound, MIRRORs).",
		func(rc roomCounter) float64 { return float64(rc.Reserved()) })
	pending := gauge("satchel_contracts_pending_bytes",
		"Reserved bytes not yet received: what the free disk does not show yet.",
		func(rc roomCounter) float64 { return float64(rc.Pending()) })
	open := gauge("satchel_contracts_open_uploads",
		"Open reservations: contract uploads not yet bound, dropped or lapsed, and MIRRORs within their grant time.",
		func(rc roomCounter) float64 { return float64(rc.Open()) })
	for _, c := range []prometheus.Collector{m.validated, m.answered, m.requests, m.waits, reserved, pending, open} {
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

// watchRoom makes the room gauges read room, when it counts its
// reservations.
func (m *Metrics) watchRoom(room Room) {
	if rc, ok := room.(roomCounter); ok && m != nil {
		m.room.Store(&rc)
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
