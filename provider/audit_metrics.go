package provider

import (
	"github.com/prometheus/client_golang/prometheus"
)

// auditMetrics are the collectors of audits and scrub (namespace satchel,
// subsystem provider), registered and unregistered with the node's others.
type auditMetrics struct {
	audits           *prometheus.CounterVec
	auditBytes       prometheus.Counter
	heard            *prometheus.CounterVec
	resyncs          prometheus.Counter
	resyncsSkipped   prometheus.Counter
	resyncsDropped   prometheus.Counter
	dropped          prometheus.Counter
	stale            prometheus.Counter
	limited          prometheus.Counter
	unpublished      prometheus.Counter
	scrubChecked     prometheus.Counter
	scrubFailed      prometheus.Counter
	scrubRepaired    prometheus.Counter
	scrubBytes       prometheus.Counter
	scrubPasses      prometheus.Counter
	scrubPassSeconds prometheus.Gauge
}

func newAuditMetrics() *auditMetrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "satchel", Subsystem: "provider", Name: name, Help: help}
	}
	return &auditMetrics{
		audits: prometheus.NewCounterVec(prometheus.CounterOpts(opts("audits_total",
			"Audits this node ran of its peers, by peer and result: pass, fail (run = pass + fail), refused (rate limited or busy: no verdict).")), []string{"peer", "result"}),
		auditBytes: prometheus.NewCounter(prometheus.CounterOpts(opts("audit_bytes_in_total", "Bytes received in answers to this node's audits."))),
		heard: prometheus.NewCounterVec(prometheus.CounterOpts(opts("audit_results_heard_total",
			"Signed audit results from the bags' providers heard on the audit topic, by verdict.")), []string{"verdict"}),
		resyncs: prometheus.NewCounter(prometheus.CounterOpts(opts("audit_resyncs_total", "Objects re-checked because an audit found this node failing."))),
		resyncsSkipped: prometheus.NewCounter(prometheus.CounterOpts(opts("audit_resyncs_skipped_total",
			"Failed results about this node not re-checked now: the object was queued already, the auditor's share of the queue (8 of 64) was full, or the auditor's re-check byte budget was spent (before the object's first turn; a started re-check pauses instead)."))),
		resyncsDropped: prometheus.NewCounter(prometheus.CounterOpts(opts("audit_resyncs_dropped_total",
			"Failed results not re-checked because the queue (64) was full: the newest queued one not started is dropped for a new one, or the new one refused when every queued one has started; re-checks wait for the node's re-check byte budget."))),
		dropped: prometheus.NewCounter(prometheus.CounterOpts(opts("audit_results_dropped_total",
			"Audit results dropped because their auditor operates none of the bag's buckets (about this node's bags) or no bucket at all (about others' bags), or the chain could not say."))),
		stale: prometheus.NewCounter(prometheus.CounterOpts(opts("audit_results_stale_total",
			"Audit results ignored because their time is more than a minute from this node's clock or this node heard them already (replays)."))),
		limited: prometheus.NewCounter(prometheus.CounterOpts(opts("audit_results_limited_total",
			"Audit results ignored (not relayed) because their auditor published more than the per-auditor limit."))),
		unpublished: prometheus.NewCounter(prometheus.CounterOpts(opts("audit_results_unpublished_total",
			"This node's own audit results not published because the publish pace would have sent them a minute or more after their challenge, when every node ignores them."))),
		scrubChecked:  prometheus.NewCounter(prometheus.CounterOpts(opts("scrub_blocks_checked_total", "Blocks the scrub read and verified."))),
		scrubFailed:   prometheus.NewCounter(prometheus.CounterOpts(opts("scrub_blocks_failed_total", "Blocks the scrub found corrupt or missing."))),
		scrubRepaired: prometheus.NewCounter(prometheus.CounterOpts(opts("scrub_blocks_repaired_total", "Blocks the scrub found bad that are held again."))),
		scrubBytes:    prometheus.NewCounter(prometheus.CounterOpts(opts("scrub_bytes_total", "Bytes the scrub read."))),
		scrubPasses:   prometheus.NewCounter(prometheus.CounterOpts(opts("scrub_passes_total", "Full scrub passes finished."))),
		scrubPassSeconds: prometheus.NewGauge(prometheus.GaugeOpts(opts("scrub_last_pass_seconds",
			"How long the last full scrub pass took."))),
	}
}

// register adds the collectors to the node's, registering them on its
// registry.
func (am *auditMetrics) register(m *metrics) error {
	cs := []prometheus.Collector{am.audits, am.auditBytes, am.heard, am.resyncs, am.resyncsSkipped, am.resyncsDropped, am.dropped, am.stale, am.limited, am.unpublished, am.scrubChecked, am.scrubFailed,
		am.scrubRepaired, am.scrubBytes, am.scrubPasses, am.scrubPassSeconds}
	for _, c := range cs {
		if m.reg != nil {
			if err := m.reg.Register(c); err != nil {
				m.unregister()
				return err
			}
		}
		m.collectors = append(m.collectors, c)
	}
	return nil
}
