// Package metrics owns switchyard's Prometheus registry and the families
// recorded on the request path. Gauges that mirror runtime state (backend
// health, breakers, connections, chat clients) are read at scrape time by a
// collector the runtime registers, so the hot path never touches them.
package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"switchyard/listeners/httpproxy"
	"switchyard/listeners/tcpproxy"
)

// DurationBuckets span 100µs to 10s: loopback hops sit in the first buckets,
// slow upstreams and timeouts in the last.
var durationBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Metrics is the registry of one runtime and the families it records.
type Metrics struct {
	Registry *prometheus.Registry

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	sessions *prometheus.CounterVec
	tcpBytes *prometheus.CounterVec
	reloads  *prometheus.CounterVec
}

// New creates a registry with the Go and process collectors and every
// request-path family.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
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
	return m
}

// ObserveRequest records one finished HTTP request.
func (m *Metrics) ObserveRequest(rec *httpproxy.Record) {
	m.requests.WithLabelValues(rec.Listener, rec.Route, rec.Upstream, statusCode(rec.Status)).Inc()
	m.duration.WithLabelValues(rec.Listener, rec.Route, rec.Upstream).Observe(rec.Duration.Seconds())
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
