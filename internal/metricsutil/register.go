// Package metricsutil holds what Satchel's packages share about Prometheus
// collectors.
package metricsutil

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Register registers c on reg, or returns the equal collector that is
// already registered there: several nodes of one process (a test network,
// the devnet) may share a registry, and their series then describe the
// process. A nil reg registers nothing and returns c. Any other registration
// error is returned with c.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// MustRegister is Register for collectors whose names are fixed by the code:
// a conflict is a programming error, so it keeps c (unregistered) rather
// than fail the caller.
func MustRegister[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	c, _ = Register(reg, c)
	return c
}

// Counter sums the counters named name in g whose labels include every
// name/value pair of labels: what a test or a status page reads back.
func Counter(g prometheus.Gatherer, name string, labels ...string) (float64, error) {
	return sum(g, name, labels, func(m *dto.Metric) float64 { return m.GetCounter().GetValue() })
}

// Gauge is Counter for gauges: it sums the gauges named name in g whose
// labels include every name/value pair of labels.
func Gauge(g prometheus.Gatherer, name string, labels ...string) (float64, error) {
	return sum(g, name, labels, func(m *dto.Metric) float64 { return m.GetGauge().GetValue() })
}

// sum adds value of the metrics named name in g with labels.
func sum(g prometheus.Gatherer, name string, labels []string, value func(*dto.Metric) float64) (float64, error) {
	fams, err := g.Gather()
	if err != nil {
		return 0, err
	}
	v := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m.GetLabel(), labels) {
				v += value(m)
			}
		}
	}
	return v, nil
}

func hasLabels(have []*dto.LabelPair, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		found := false
		for _, lp := range have {
			if lp.GetName() == want[i] && lp.GetValue() == want[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
