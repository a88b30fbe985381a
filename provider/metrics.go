package provider

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the node's Prometheus collectors (namespace satchel,
// subsystem provider). They always exist, so code records without checks;
// they are registered only on the registry WithMetrics names, and
// unregistered by Close so a restarted node can register again.
type metrics struct {
	reg        prometheus.Registerer
	collectors []prometheus.Collector

	chainHeight     prometheus.Gauge
	reconciles      prometheus.Counter
	fullReconciles  prometheus.Counter
	chainLies       prometheus.Counter
	syncObjects     *prometheus.CounterVec
	syncBytes       prometheus.Counter
	boundObjects    prometheus.Counter
	acceptTxs       *prometheus.CounterVec
	acceptedObjects prometheus.Counter
	cleanupObjects  *prometheus.CounterVec
	cleanupDeferred prometheus.Counter
	repairs         *prometheus.CounterVec
	provides        *prometheus.CounterVec

	// Deletion safety (tombstones.go).
	tombstones       prometheus.Gauge
	deletionsRefused prometheus.Counter

	// noSpaceWrites counts block store writes a full disk failed, by what
	// was written: upload, sync, repair (diskfull.go).
	noSpaceWrites *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, s *Server) (*metrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "satchel", Subsystem: "provider", Name: name, Help: help}
	}
	m := &metrics{
		reg:         reg,
		chainHeight: prometheus.NewGauge(prometheus.GaugeOpts(opts("chain_height", "Last chain block whose events the node handled."))),
		reconciles:  prometheus.NewCounter(prometheus.CounterOpts(opts("reconciles_total", "Reconcile passes of chain state against the store."))),
		fullReconciles: prometheus.NewCounter(prometheus.CounterOpts(opts("full_reconciles_total",
			"Reconcile passes that listed the whole bucket (start, resubscription, the reconcile interval)."))),
		chainLies: prometheus.NewCounter(prometheus.CounterOpts(opts("chain_lies_total",
			"Chain answers refused because they failed proof verification against the validators' headers."))),
		syncObjects: prometheus.NewCounterVec(prometheus.CounterOpts(opts("sync_objects_total", "Object sync attempts by result: ok, no_source, failed.")), []string{"result"}),
		syncBytes:   prometheus.NewCounter(prometheus.CounterOpts(opts("sync_bytes_total", "Bytes fetched from peers by sync."))),
		boundObjects: prometheus.NewCounter(prometheus.CounterOpts(opts("bound_objects_total",
			"Objects bound by the store protocol's BIND, each counted once (a BIND repeated for a recent object is not counted again)."))),
		acceptTxs: prometheus.NewCounterVec(prometheus.CounterOpts(opts("accept_txs_total",
			"accept_pending_data_objects transactions by result: ok, split, gone, failed.")), []string{"result"}),
		acceptedObjects: prometheus.NewCounter(prometheus.CounterOpts(opts("accepted_objects_total", "Objects this node accepted on chain."))),
		cleanupObjects:  prometheus.NewCounterVec(prometheus.CounterOpts(opts("cleanup_objects_total", "Objects removed, by reason: deleted (on chain), moved (bag left the bucket).")), []string{"reason"}),
		cleanupDeferred: prometheus.NewCounter(prometheus.CounterOpts(opts("cleanup_deferred_total", "Removals put off because the object was being served."))),
		repairs:         prometheus.NewCounterVec(prometheus.CounterOpts(opts("repairs_total", "Corrupt block repairs by result: ok, not_held, failed.")), []string{"result"}),
		provides:        prometheus.NewCounterVec(prometheus.CounterOpts(opts("dht_provides_total", "DHT provides of bag keys by result.")), []string{"result"}),
		tombstones: prometheus.NewGauge(prometheus.GaugeOpts(opts("tombstones",
			"Objects the chain deleted that wait for their grace to end (or are kept by an operator)."))),
		deletionsRefused: prometheus.NewCounter(prometheus.CounterOpts(opts("deletions_unconfirmed_total",
			"Times an object missing from the chain's answers was kept because its deletion was not confirmed."))),
		noSpaceWrites: prometheus.NewCounterVec(prometheus.CounterOpts(opts("disk_full_writes_total",
			"Block store writes that failed because the disk is full, by what was written: upload, sync, repair.")), []string{"op"}),
	}
	m.collectors = []prometheus.Collector{
		m.chainHeight, m.reconciles, m.fullReconciles, m.chainLies, m.syncObjects, m.syncBytes, m.boundObjects, m.acceptTxs,
		m.acceptedObjects, m.cleanupObjects, m.cleanupDeferred, m.repairs, m.provides,
		m.tombstones, m.deletionsRefused, m.noSpaceWrites,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("disk_free_bytes", "Bytes the node may still write on the block store's file system.")),
			func() float64 { u, _ := diskUsageOf(s.bs); return float64(u.Free) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("disk_used_bytes", "Bytes in use on the block store's file system (by anything).")),
			func() float64 { u, _ := diskUsageOf(s.bs); return float64(u.Used) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("objects", "Objects held (manifests in the store).")),
			func() float64 { return float64(s.bs.Stats().Objects) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("bytes", "Bytes of blocks held.")),
			func() float64 { return float64(s.bs.Stats().Bytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("quarantined_blocks", "Corrupt blocks set aside.")),
			func() float64 { return float64(s.bs.Stats().Quarantined) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("bad_upload_sessions", "Upload session records that do not decode, kept with their chunks.")),
			func() float64 { return float64(s.bs.Stats().BadSessions) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("sync_backlog", "Objects waiting to be synced or being synced.")),
			func() float64 { q, r := s.syncer.counts(); return float64(q + r) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("cleanup_waiting", "Objects of moved bags waiting for confirmations.")),
			func() float64 { return float64(s.cleanupWaiting()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("bags", "Bags assigned to the bucket.")),
			func() float64 { return float64(len(s.assignedList())) }),
	}
	if s.auth != nil { // tests may build a node without one
		m.collectors = append(m.collectors, s.auth.reads, s.auth.missHits,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("auth_chain_reads_in_flight", "Chain reads of the upload authorizer in flight (at most 16; 4 per peer).")),
				func() float64 { return float64(s.auth.limit.sem.Held()) }))
	}
	if reg == nil {
		return m, nil
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, done := range m.collectors[:i] {
				reg.Unregister(done)
			}
			return nil, err
		}
	}
	return m, nil
}

// unregister removes the collectors from the registry.
func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}
