package distributor

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the node's Prometheus collectors.
type metrics struct {
	requests    *prometheus.CounterVec // by code
	hits        prometheus.Counter
	misses      prometheus.Counter
	served      *prometheus.CounterVec // bytes, by source (local, external)
	fetched     prometheus.Counter
	fetchErrors prometheus.Counter
	fetchBusy   prometheus.Counter
	active      prometheus.Gauge
	missWaiting prometheus.Gauge
	// missClientWaits counts answers that waited for their client's share
	// of the miss slots (MissClientShare).
	missClientWaits prometheus.Counter
	parks           prometheus.Counter
	slowCuts        prometheus.Counter
	rangesIgnored   prometheus.Counter
	conns           prometheus.Gauge
	connsLimit      prometheus.Gauge
	connsRefused    *prometheus.CounterVec // by reason (per_client, total)
	idleClosed      prometheus.Counter
	chainUp         prometheus.Gauge
	chainFailures   prometheus.Counter

	// Children looked up once, for the answers of every request.
	code200, code206, code304 prometheus.Counter
	servedLocal, servedExt    prometheus.Counter
}

// code returns the request counter of a status code.
func (m *metrics) code(c int) prometheus.Counter {
	switch c {
	case http.StatusOK:
		return m.code200
	case http.StatusPartialContent:
		return m.code206
	case http.StatusNotModified:
		return m.code304
	}
	return m.requests.WithLabelValues(strconv.Itoa(c))
}

func newMetrics(reg prometheus.Registerer, s *Server) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "requests_total",
			Help: "HTTP requests answered, by status code.",
		}, []string{"code"}),
		hits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "cache_hits_total",
			Help: "Asset requests answered wholly from the cache.",
		}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "cache_misses_total",
			Help: "Asset requests that needed blocks from storage providers.",
		}),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "served_bytes_total",
			Help: "Content bytes sent to clients, by where they came from (local: the cache, external: storage providers).",
		}, []string{"source"}),
		fetched: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "fetched_bytes_total",
			Help: "Verified block bytes fetched from storage providers.",
		}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "fetch_errors_total",
			Help: "Block fetches from one provider that failed (the next provider is tried).",
		}),
		fetchBusy: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "fetch_busy_total",
			Help: "Block fetches a provider refused busy, its memory budget for all readers spent (another provider is tried; not errors).",
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "active_requests",
			Help: "HTTP requests being answered.",
		}),
		missWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "miss_waiting_requests",
			Help: "Answers that need blocks from storage providers waiting for one of the --max-misses slots.",
		}),
		missClientWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "miss_client_share_waits_total",
			Help: "Answers needing blocks from storage providers that waited because the answers of their client (or of its IPv6 /48 or /32) held its share (1/4) of the --max-misses slots.",
		}),
		parks: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "miss_slot_parks_total",
			Help: "Times an answer gave back its --max-misses slot while it waited on its client (a write blocked) or on busy providers; it takes one again before fetching more.",
		}),
		slowCuts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "slow_clients_cut_total",
			Help: "Answers needing blocks from storage providers cut off because the client read slower than --min-send-rate.",
		}),
		rangesIgnored: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "ranges_ignored_total",
			Help: "Multi-range requests answered with the whole object because their ranges would fetch more than 8 chunks they do not send whole.",
		}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "http_connections",
			Help: "HTTP connections open.",
		}),
		connsLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "http_connections_limit",
			Help: "The bound on HTTP connections open (--max-conns).",
		}),
		connsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "http_connections_refused_total",
			Help: "HTTP connections refused at once, by reason (per_client: 429, the client, or its IPv6 /48 or /32, held its bound from --max-conns-per-client; total: 503, the node held --max-conns, none idle).",
		}, []string{"reason"}),
		idleClosed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "http_idle_connections_closed_total",
			Help: "Silent (no request begun within 2 s) or idle keep-alive HTTP connections closed to admit a new one at --max-conns.",
		}),
		chainUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "chain_up",
			Help: "1 while the last read of the chain node succeeded, 0 while reads fail (the node answers from the view it holds; records it must read answer 503 chain_unavailable).",
		}),
		chainFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "satchel", Subsystem: "distributor", Name: "chain_read_failures_total",
			Help: "Reads of the chain node that failed: the follower's tries, object records and bags' storage buckets.",
		}),
	}
	m.code200 = m.requests.WithLabelValues("200")
	m.code206 = m.requests.WithLabelValues("206")
	m.code304 = m.requests.WithLabelValues("304")
	m.servedLocal = m.served.WithLabelValues("local")
	m.servedExt = m.served.WithLabelValues("external")
	if reg == nil {
		return m
	}
	cacheUsed := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "satchel", Subsystem: "distributor", Name: "cache_bytes",
		Help: "Bytes held by the disk cache.",
	}, func() float64 { u, _, _, _ := s.cache.usage(); return float64(u) })
	cacheLimit := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "satchel", Subsystem: "distributor", Name: "cache_limit_bytes",
		Help: "The disk cache's bound: --cache-size, or less once the disk filled up first.",
	}, func() float64 { _, l, _, _ := s.cache.usage(); return float64(l) })
	cacheObjects := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "satchel", Subsystem: "distributor", Name: "cache_objects",
		Help: "Objects with blocks in the disk cache.",
	}, func() float64 { _, _, n, _ := s.cache.usage(); return float64(n) })
	fetchLimit := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "satchel", Subsystem: "distributor", Name: "fetches_limit",
		Help: "The bound on block fetches from storage providers running at once (--max-fetches).",
	}, func() float64 { return float64(s.cfg.maxFetches) })
	reg.MustRegister(m.requests, m.hits, m.misses, m.served, m.fetched, m.fetchErrors, m.fetchBusy, m.active, m.missWaiting, m.missClientWaits, m.parks, m.slowCuts, m.rangesIgnored,
		m.conns, m.connsLimit, m.connsRefused, m.idleClosed, m.chainUp, m.chainFailures,
		cacheUsed, cacheLimit, cacheObjects, fetchLimit, &sourceCollector{s: s})
	reg.MustRegister(s.cache.m.collectors()...)
	return m
}

// connMetrics returns the collectors of the HTTP connection limits.
func (m *metrics) connMetrics() connMetrics {
	return connMetrics{open: m.conns, idleClosed: m.idleClosed,
		refusedPerClient: m.connsRefused.WithLabelValues("per_client"), refusedTotal: m.connsRefused.WithLabelValues("total")}
}

// sourceCollector exports the ranking of storage providers.
type sourceCollector struct{ s *Server }

var (
	sourceScoreDesc = prometheus.NewDesc("satchel_distributor_source_score_seconds",
		"Expected seconds to fetch a 1 MiB chunk from a storage provider (lower ranks first).", []string{"peer"}, nil)
	sourceTTFBDesc = prometheus.NewDesc("satchel_distributor_source_ttfb_seconds",
		"Measured time to first byte of a storage provider (moving average).", []string{"peer"}, nil)
	sourceThroughputDesc = prometheus.NewDesc("satchel_distributor_source_throughput_bytes",
		"Measured throughput of a storage provider in bytes per second (moving average).", []string{"peer"}, nil)
)

// Describe implements prometheus.Collector.
func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sourceScoreDesc
	ch <- sourceTTFBDesc
	ch <- sourceThroughputDesc
}

// Collect implements prometheus.Collector.
func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.s.srcs.status() {
		ch <- prometheus.MustNewConstMetric(sourceScoreDesc, prometheus.GaugeValue, st.Score, st.Peer)
		ch <- prometheus.MustNewConstMetric(sourceTTFBDesc, prometheus.GaugeValue, st.TTFBMillis/1000, st.Peer)
		ch <- prometheus.MustNewConstMetric(sourceThroughputDesc, prometheus.GaugeValue, st.Throughput, st.Peer)
	}
}
