// Package metrics owns switchyard's Prometheus registry and the families
// recorded on the request path. Gauges that mirror runtime state (backend
// health, breakers, connections, chat clients) are read at scrape time by a
// collector the runtime registers, so the hot path never touches them.
package metrics

import (
	"maps"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"switchyard/listeners/httpproxy"
	"switchyard/listeners/tcpproxy"
)

// DurationBuckets span 100µs to 10s: loopback hops sit in the first buckets,
// slow upstreams and timeouts in the last.
var durationBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// maxCachedSeries bounds the request-series cache. Label values come from
// config names and status codes, so real configs stay far below it; past it
// (say, an upstream answering every possible status code on many routes)
// requests are still counted, only without the cache.
const maxCachedSeries = 4096

// Metrics is the registry of one runtime and the families it records.
type Metrics struct {
	Registry *prometheus.Registry

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	sessions *prometheus.CounterVec
	tcpBytes *prometheus.CounterVec
	reloads  *prometheus.CounterVec

	// series caches the children of requests and duration per label set.
	// WithLabelValues hashes and validates every label value and takes the
	// vector's lock on each call; a lookup here is one map read of an
	// immutable map. Children are never deleted from the vectors, so a
	// cached child stays the one the vector exports, across reloads too:
	// renamed or removed routes simply stop being looked up.
	series      atomic.Pointer[map[seriesKey]*requestSeries]
	seriesMu    sync.Mutex // serialises copy-on-write additions to series
	seriesLimit int        // maxCachedSeries; lowered by tests
}

// seriesKey is one label set of switchyard_requests_total.
type seriesKey struct {
	listener, route, upstream string
	code                      int
}

// requestSeries holds the children one finished request updates.
type requestSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// New creates a registry with the Go and process collectors and every
// request-path family.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry:    reg,
		seriesLimit: maxCachedSeries,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_requests_total",
			Help: "HTTP requests handled, by listener, route, upstream and status code.",
		}, []string{"listener", "route", "upstream", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchyard_request_duration_seconds",
			Help:    "Time from receiving an HTTP request to finishing its response.",
			Buckets: durationBuckets,
		}, []string{"listener", "route", "upstream"}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_tcp_sessions_total",
			Help: "TCP sessions handled, by listener, upstream and result (connected or no_backend).",
		}, []string{"listener", "upstream", "result"}),
		tcpBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_tcp_bytes_total",
			Help: "Bytes forwarded by TCP listeners, by direction (in = client to backend).",
		}, []string{"listener", "direction"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_config_reloads_total",
			Help: "Configuration reloads by result.",
		}, []string{"result"}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.sessions, m.tcpBytes, m.reloads,
	)
	// Both results exist from the start so rate() works before the first failure.
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	m.series.Store(&map[seriesKey]*requestSeries{})
	return m
}

// ObserveRequest records one finished HTTP request. It runs on the request
// path: after the first request of a label set it neither locks nor
// allocates.
func (m *Metrics) ObserveRequest(rec *httpproxy.Record) {
	s := m.requestSeries(seriesKey{listener: rec.Listener, route: rec.Route, upstream: rec.Upstream, code: rec.Status})
	s.requests.Inc()
	s.duration.Observe(rec.Duration.Seconds())
}

// requestSeries returns the cached children for key, creating them on first
// use. Additions copy the map, which is cheap because label sets are few and
// each is added once.
func (m *Metrics) requestSeries(key seriesKey) *requestSeries {
	cached := *m.series.Load()
	if s, ok := cached[key]; ok {
		return s
	}
	if len(cached) >= m.seriesLimit {
		return m.newRequestSeries(key)
	}
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()
	current := *m.series.Load()
	if s, ok := current[key]; ok {
		return s
	}
	s := m.newRequestSeries(key)
	if len(current) >= m.seriesLimit {
		return s
	}
	next := make(map[seriesKey]*requestSeries, len(current)+1)
	maps.Copy(next, current)
	next[key] = s
	m.series.Store(&next)
	return s
}

func (m *Metrics) newRequestSeries(key seriesKey) *requestSeries {
	return &requestSeries{
		requests: m.requests.WithLabelValues(key.listener, key.route, key.upstream, statusCode(key.code)),
		duration: m.duration.WithLabelValues(key.listener, key.route, key.upstream),
	}
}

// ObserveSession records one finished TCP session.
func (m *Metrics) ObserveSession(rec *tcpproxy.Record) {
	result := "connected"
	if !rec.Connected {
		result = "no_backend"
	}
	m.sessions.WithLabelValues(rec.Listener, rec.Upstream, result).Inc()
	m.tcpBytes.WithLabelValues(rec.Listener, "in").Add(float64(rec.BytesIn))
	m.tcpBytes.WithLabelValues(rec.Listener, "out").Add(float64(rec.BytesOut))
}

// Reload counts one reload attempt.
func (m *Metrics) Reload(ok bool) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		return
	}
	m.reloads.WithLabelValues("failure").Inc()
}

// statusCode avoids an allocation for the common codes.
func statusCode(code int) string {
	switch code {
	case 200:
		return "200"
	case 404:
		return "404"
	case 502:
		return "502"
	case 503:
		return "503"
	case 504:
		return "504"
	}
	return strconv.Itoa(code)
}

// RouteKey names the request series of one route of one listener.
type RouteKey struct{ Listener, Route, Upstream string }

// RetainRoutes drops the request series of every (listener, route,
// upstream) not in live, so renaming or removing routes across reloads
// does not grow /metrics without bound. Unmatched requests (route "") are
// always kept. A request of an old generation still in flight may bring a
// dropped series back; the next reload drops it again.
func (m *Metrics) RetainRoutes(live []RouteKey) {
	keep := make(map[RouteKey]bool, len(live))
	for _, k := range live {
		keep[k] = true
	}
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()
	current := *m.series.Load()
	next := make(map[seriesKey]*requestSeries, len(current))
	dropped := make(map[RouteKey]bool)
	for key, s := range current {
		rk := RouteKey{Listener: key.listener, Route: key.route, Upstream: key.upstream}
		if key.route == "" || keep[rk] {
			next[key] = s
			continue
		}
		dropped[rk] = true
	}
	m.series.Store(&next)
	for rk := range dropped {
		labels := prometheus.Labels{"listener": rk.Listener, "route": rk.Route, "upstream": rk.Upstream}
		m.requests.DeletePartialMatch(labels)
		m.duration.DeletePartialMatch(labels)
	}
}
