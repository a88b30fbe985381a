package p2p

import (
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/internal/metricsutil"
)

// metricsNamespace and metricsSubsystem prefix every collector of this package:
// satchel_p2p_….
const (
	metricsNamespace = "satchel"
	metricsSubsystem = "p2p"
)

// Frame error kinds, the values of the "kind" label of frame_errors_total.
const (
	frameErrTooLarge  = "too_large"
	frameErrTruncated = "truncated"
	frameErrDecode    = "decode"
	frameErrTooMany   = "too_many_elements"
	frameErrWrite     = "write"
	frameErrRead      = "read"
)

// Handler outcome kinds, the values of the "kind" label of
// handler_failures_total.
const (
	handlerErrError = "error"
	handlerErrPanic = "panic"
)

// metrics holds the package's Prometheus collectors. A nil *metrics records
// nothing, so code paths need not check whether metrics are enabled.
//
// Several hosts may share one registry (tests run many hosts in a process):
// registering finds the collectors already there and the hosts add to the same
// series, which then describe the process rather than one host.
type metrics struct {
	peersConnected prometheus.Gauge
	framesSent     *prometheus.CounterVec
	framesReceived *prometheus.CounterVec
	bytesSent      *prometheus.CounterVec
	bytesReceived  *prometheus.CounterVec
	frameErrors    *prometheus.CounterVec
	handlerErrors  *prometheus.CounterVec
	// providerRecords counts the DHT provider records of other peers
	// kept, by pool: priority (the chain's storage operators) or ordinary.
	providerRecords *prometheus.GaugeVec
}

// newMetrics creates the collectors and registers them on reg.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: name, Help: help,
		}, labels)
	}
	m := &metrics{
		peersConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem,
			Name: "peers_connected",
			Help: "Number of peers with at least one open connection.",
		}),
		framesSent:     counter("frames_sent_total", "Length-prefixed frames written to streams.", "protocol"),
		framesReceived: counter("frames_received_total", "Length-prefixed frames read from streams.", "protocol"),
		bytesSent:      counter("frame_bytes_sent_total", "Bytes of frames written to streams, length prefixes included.", "protocol"),
		bytesReceived:  counter("frame_bytes_received_total", "Bytes of frames read from streams, length prefixes included.", "protocol"),
		frameErrors: counter("frame_errors_total",
			"Frames that failed, by kind: too_large, too_many_elements, truncated, decode, read, write.", "protocol", "kind"),
		handlerErrors: counter("handler_failures_total",
			"Inbound streams reset because their handler returned an error or panicked.", "protocol", "kind"),
		providerRecords: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: "dht_provider_records",
			Help: "DHT provider records of other peers kept, by pool: priority (the chain's active storage operators) or ordinary.",
		}, []string{"pool"}),
	}
	var err error
	if m.peersConnected, err = metricsutil.Register(reg, m.peersConnected); err != nil {
		return nil, err
	}
	if m.providerRecords, err = metricsutil.Register(reg, m.providerRecords); err != nil {
		return nil, err
	}
	for _, c := range []**prometheus.CounterVec{
		&m.framesSent, &m.framesReceived, &m.bytesSent, &m.bytesReceived, &m.frameErrors, &m.handlerErrors,
	} {
		if *c, err = metricsutil.Register(reg, *c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) peersDelta(d int) {
	if m != nil && d != 0 {
		m.peersConnected.Add(float64(d))
	}
}

// providerRecordsDelta adds d to the records counted in pool.
func (m *metrics) providerRecordsDelta(pool string, d int) {
	if m != nil {
		m.providerRecords.WithLabelValues(pool).Add(float64(d))
	}
}

func (m *metrics) frameSent(p protocol.ID, n int) {
	if m != nil {
		m.framesSent.WithLabelValues(string(p)).Inc()
		m.bytesSent.WithLabelValues(string(p)).Add(float64(n))
	}
}

func (m *metrics) frameReceived(p protocol.ID, n int) {
	if m != nil {
		m.framesReceived.WithLabelValues(string(p)).Inc()
		m.bytesReceived.WithLabelValues(string(p)).Add(float64(n))
	}
}

func (m *metrics) frameError(p protocol.ID, kind string) {
	if m != nil {
		m.frameErrors.WithLabelValues(string(p), kind).Inc()
	}
}

func (m *metrics) handlerFailed(p protocol.ID, kind string) {
	if m != nil {
		m.handlerErrors.WithLabelValues(string(p), kind).Inc()
	}
}
