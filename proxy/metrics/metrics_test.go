package metrics

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"switchyard/listeners/httpproxy"
	"switchyard/listeners/tcpproxy"
)

// counterValue reads one counter child directly.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var out dto.Metric
	if err := c.Write(&out); err != nil {
		t.Fatalf("read counter: %v", err)
	}
	return out.GetCounter().GetValue()
}

// family gathers the registry and returns one family (nil if absent).
func family(t *testing.T, m *Metrics, name string) *dto.MetricFamily {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

func record(listener, route, upstream string, status int, d time.Duration) *httpproxy.Record {
	return &httpproxy.Record{Listener: listener, Route: route, Upstream: upstream, Status: status, Duration: d}
}

// histogramCount returns the sample count of one duration series, read back
// through the registry the way a scrape sees it.
func histogramCount(t *testing.T, m *Metrics, listener, route, upstream string) uint64 {
	t.Helper()
	for _, metric := range family(t, m, "switchyard_request_duration_seconds").GetMetric() {
		if labelsEqual(metric.GetLabel(), map[string]string{"listener": listener, "route": route, "upstream": upstream}) {
			return metric.GetHistogram().GetSampleCount()
		}
	}
	return 0
}

func labelsEqual(got []*dto.LabelPair, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, l := range got {
		if want[l.GetName()] != l.GetValue() {
			return false
		}
	}
	return true
}

func TestObserveRequestCountsEachLabelSet(t *testing.T) {
	m := New()
	for range 3 {
		m.ObserveRequest(record("web", "api", "api", 200, time.Millisecond))
	}
	m.ObserveRequest(record("web", "api", "api", 503, time.Millisecond))
	m.ObserveRequest(record("web", "api", "api", 418, time.Millisecond))
	m.ObserveRequest(record("web", "", "", 404, time.Millisecond))
	// Same names in other positions must be other series.
	m.ObserveRequest(record("api", "web", "api", 200, time.Millisecond))

	for _, tc := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"web", "api", "api", "200"}, 3},
		{[]string{"web", "api", "api", "503"}, 1},
		{[]string{"web", "api", "api", "418"}, 1},
		{[]string{"web", "", "", "404"}, 1},
		{[]string{"api", "web", "api", "200"}, 1},
	} {
		if got := counterValue(t, m.requests.WithLabelValues(tc.labels...)); got != tc.want {
			t.Errorf("requests%v = %v, want %v", tc.labels, got, tc.want)
		}
	}
	if got := histogramCount(t, m, "web", "api", "api"); got != 5 {
		t.Errorf("duration samples for web/api/api = %d, want 5 (every code shares the histogram)", got)
	}
	if got := len(family(t, m, "switchyard_requests_total").GetMetric()); got != 5 {
		t.Errorf("requests series = %d, want 5", got)
	}
}

func TestObserveRequestRecordsDurationInSeconds(t *testing.T) {
	m := New()
	m.ObserveRequest(record("web", "api", "api", 200, 1500*time.Millisecond))
	m.ObserveRequest(record("web", "api", "api", 200, 500*time.Millisecond))
	f := family(t, m, "switchyard_request_duration_seconds")
	if f == nil || len(f.GetMetric()) != 1 {
		t.Fatalf("want one duration series, got %v", f)
	}
	if sum := f.GetMetric()[0].GetHistogram().GetSampleSum(); sum != 2 {
		t.Fatalf("duration sum = %v s, want 2", sum)
	}
}

func TestObserveRequestDoesNotAllocate(t *testing.T) {
	m := New()
	rec := record("web", "api", "api", 200, time.Millisecond)
	m.ObserveRequest(rec) // first request of a label set creates it
	if allocs := testing.AllocsPerRun(1000, func() { m.ObserveRequest(rec) }); allocs != 0 {
		t.Fatalf("ObserveRequest allocates %v times per call, want 0", allocs)
	}
}

// TestObserveRequestConcurrentFirstUse races the first requests of many
// label sets; every request must be counted exactly once.
func TestObserveRequestConcurrentFirstUse(t *testing.T) {
	m := New()
	const workers, perWorker, routes = 8, 200, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				route := fmt.Sprintf("r%d", (i+w)%routes)
				m.ObserveRequest(record("web", route, "pool", 200+i%2, time.Millisecond))
			}
		})
	}
	wg.Wait()
	var total float64
	for r := range routes {
		for _, code := range []string{"200", "201"} {
			total += counterValue(t, m.requests.WithLabelValues("web", fmt.Sprintf("r%d", r), "pool", code))
		}
	}
	if total != workers*perWorker {
		t.Fatalf("counted %v requests, want %d", total, workers*perWorker)
	}
	if n := len(*m.series.Load()); n != routes*2 {
		t.Fatalf("cache holds %d label sets, want %d", n, routes*2)
	}
}

// TestSeriesCacheLimit checks that label sets past the cache's limit are
// still counted, and that the cache stops growing.
func TestSeriesCacheLimit(t *testing.T) {
	m := New()
	m.seriesLimit = 3
	for round := range 2 {
		for code := 200; code < 210; code++ {
			m.ObserveRequest(record("web", "api", "api", code, time.Millisecond))
		}
		for code := 200; code < 210; code++ {
			want := float64(round + 1)
			if got := counterValue(t, m.requests.WithLabelValues("web", "api", "api", fmt.Sprint(code))); got != want {
				t.Fatalf("round %d: code %d counted %v, want %v", round, code, got, want)
			}
		}
	}
	if n := len(*m.series.Load()); n != 3 {
		t.Fatalf("cache holds %d label sets, want the limit 3", n)
	}
}

func TestObserveSession(t *testing.T) {
	m := New()
	m.ObserveSession(&tcpproxy.Record{Listener: "echo", Upstream: "echo", Connected: true, BytesIn: 10, BytesOut: 7})
	m.ObserveSession(&tcpproxy.Record{Listener: "echo", Upstream: "echo", Connected: false})
	for _, tc := range []struct {
		c    prometheus.Counter
		want float64
	}{
		{m.sessions.WithLabelValues("echo", "echo", "connected"), 1},
		{m.sessions.WithLabelValues("echo", "echo", "no_backend"), 1},
		{m.tcpBytes.WithLabelValues("echo", "in"), 10},
		{m.tcpBytes.WithLabelValues("echo", "out"), 7},
	} {
		if got := counterValue(t, tc.c); got != tc.want {
			t.Errorf("%v = %v, want %v", tc.c.Desc(), got, tc.want)
		}
	}
}

func TestReloadCountsBothResultsFromTheStart(t *testing.T) {
	m := New()
	check := func(wantSuccess, wantFailure float64) {
		t.Helper()
		got := map[string]float64{}
		for _, metric := range family(t, m, "switchyard_config_reloads_total").GetMetric() {
			got[metric.GetLabel()[0].GetValue()] = metric.GetCounter().GetValue()
		}
		want := map[string]float64{"success": wantSuccess, "failure": wantFailure}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("reloads by result = %v, want %v", got, want)
		}
	}
	check(0, 0)
	m.Reload(true)
	m.Reload(true)
	m.Reload(false)
	check(2, 1)
}

// TestRegistriesAreIndependent guards against registering on the global
// registry: two runtimes in one process must not share or clash.
func TestRegistriesAreIndependent(t *testing.T) {
	a, b := New(), New()
	a.ObserveRequest(record("web", "api", "api", 200, time.Millisecond))
	if f := family(t, b, "switchyard_requests_total"); f != nil {
		t.Fatalf("second registry sees request series %v, want none", f.GetMetric())
	}
	families, err := a.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range families {
		seen[f.GetName()] = true
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "switchyard_requests_total", "switchyard_request_duration_seconds"} {
		if !seen[name] {
			t.Errorf("family %s missing from the runtime's registry", name)
		}
	}
}

func TestStatusCode(t *testing.T) {
	for _, code := range []int{100, 200, 201, 404, 418, 502, 503, 504, 599} {
		if got := statusCode(code); got != fmt.Sprint(code) {
			t.Errorf("statusCode(%d) = %q", code, got)
		}
	}
}

func BenchmarkObserveRequest(b *testing.B) {
	m := New()
	rec := record("web", "api", "api", 200, 3*time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveRequest(rec)
	}
}

// BenchmarkObserveRequestParallel spreads requests over a few label sets,
// as a busy listener with several routes would.
func BenchmarkObserveRequestParallel(b *testing.B) {
	m := New()
	recs := []*httpproxy.Record{
		record("web", "api", "api", 200, 3*time.Millisecond),
		record("web", "api", "api", 503, 3*time.Millisecond),
		record("web", "static", "", 200, 100*time.Microsecond),
		record("web", "chat", "chat", 101, 30*time.Second),
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.ObserveRequest(recs[i%len(recs)])
			i++
		}
	})
}

// BenchmarkWithLabelValues is the uncached cost ObserveRequest avoids.
func BenchmarkWithLabelValues(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.requests.WithLabelValues("web", "api", "api", "200").Inc()
		m.duration.WithLabelValues("web", "api", "api").Observe(0.003)
	}
}

// TestRetainRoutesDropsRemovedSeries: series of routes that left the config
// disappear from the registry; live ones and unmatched requests stay.
func TestRetainRoutesDropsRemovedSeries(t *testing.T) {
	m := New()
	for _, rec := range []*httpproxy.Record{
		{Listener: "web", Route: "old", Upstream: "api", Status: 200},
		{Listener: "web", Route: "kept", Upstream: "api", Status: 200},
		{Listener: "web", Route: "", Upstream: "", Status: 404},
	} {
		m.ObserveRequest(rec)
	}
	m.RetainRoutes([]RouteKey{{Listener: "web", Route: "kept", Upstream: "api"}})
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]bool{}
	for _, f := range families {
		if f.GetName() != "switchyard_requests_total" {
			continue
		}
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "route" {
					routes[l.GetValue()] = true
				}
			}
		}
	}
	if routes["old"] || !routes["kept"] || !routes[""] {
		t.Errorf("routes left in switchyard_requests_total: %v; want kept and the unmatched one only", routes)
	}
	// A request on the kept route still counts on the cached series.
	m.ObserveRequest(&httpproxy.Record{Listener: "web", Route: "kept", Upstream: "api", Status: 200})
}
