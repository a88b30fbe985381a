package metricsutil_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/internal/metricsutil"
)

// Counter and Gauge sum the series of their kind named, over the labels
// asked for; a name of the other kind reads as nothing.
func TestCounterAndGauge(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := metricsutil.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total"}, []string{"k"}))
	g := metricsutil.MustRegister(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "g"}, []string{"k"}))
	c.WithLabelValues("a").Add(2)
	c.WithLabelValues("b").Add(3)
	g.WithLabelValues("a").Set(5)
	g.WithLabelValues("b").Set(-1)
	for _, tc := range []struct {
		read   func(prometheus.Gatherer, string, ...string) (float64, error)
		name   string
		labels []string
		want   float64
	}{
		{metricsutil.Counter, "c_total", nil, 5},
		{metricsutil.Counter, "c_total", []string{"k", "b"}, 3},
		{metricsutil.Counter, "g", nil, 0},
		{metricsutil.Gauge, "g", nil, 4},
		{metricsutil.Gauge, "g", []string{"k", "a"}, 5},
		{metricsutil.Gauge, "g", []string{"k", "c"}, 0},
		{metricsutil.Gauge, "c_total", nil, 0},
	} {
		got, err := tc.read(reg, tc.name, tc.labels...)
		if err != nil || got != tc.want {
			t.Errorf("%s %v = %v, %v; want %v", tc.name, tc.labels, got, err, tc.want)
		}
	}
}
