package httpproxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"switchyard/listeners/routing"
	"switchyard/upstream"
)

func TestRoundRobinThroughProxy(t *testing.T) {
	names := []string{"a", "b", "c"}
	addrs := make([]string, len(names))
	byAddr := map[string]string{}
	for i, n := range names {
		addrs[i] = startBackend(t, nameHandler(n))
		byAddr[addrs[i]] = n
	}
	pool := newPool(t, "app", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, addrs...)
	rec := &recorder{}
	srv := startProxy(t, options(route(routing.Matcher{}, upstreamTarget(t, "all", pool))), Settings{}, rec)
	c := newClient(t)

	const perBackend = 10
	counts := map[string]int{}
	for range perBackend * len(names) {
		resp, body := get(t, c, proxyURL(srv)+"/")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, body %q", resp.StatusCode, body)
		}
		counts[body]++
	}
	for _, n := range names {
		if counts[n] != perBackend {
			t.Fatalf("distribution %v, want %d each", counts, perBackend)
		}
	}
	for _, r := range rec.waitRecords(t, perBackend*len(names)) {
		if byAddr[r.Backend] == "" || r.Upstream != "app" || r.Route != "all" {
			t.Fatalf("record %+v: want a backend of upstream app on route all", r)
		}
	}
}

// switchable answers 500 while failing is set, 200 otherwise.
type switchable struct {
	failing atomic.Bool
	calls   atomic.Int64
}

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	if s.failing.Load() {
		http.Error(w, "broken", http.StatusInternalServerError)
		return
	}
	_, _ = io.WriteString(w, "ok")
}

func TestBreakerCycleThroughProxy(t *testing.T) {
	backend := &switchable{}
	backend.failing.Store(true)
	addr := startBackend(t, backend)
	pool := newPool(t, "app", upstream.StrategyRoundRobin, upstream.BreakerConfig{
		// Long enough that the request meant to find the breaker open
		// always comes before it turns half-open.
		ConsecutiveFailures: 2, OpenTimeout: time.Second, HalfOpenRequests: 1,
	}, addr)
	target := upstreamTarget(t, "all", pool)
	target.Retries = 0
	srv := startProxy(t, options(route(routing.Matcher{}, target)), Settings{}, nil)
	c := newClient(t)
	b := backendOf(t, pool, addr)

	for i := range 2 {
		if resp, body := get(t, c, proxyURL(srv)+"/"); resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("request %d: status %d (%q), want the backend's 500 passed on", i, resp.StatusCode, body)
		}
	}
	if got := b.BreakerState(); got != "open" {
		t.Fatalf("breaker %s after 2 failures, want open", got)
	}
	resp, body := get(t, c, proxyURL(srv)+"/")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d while open, want 503", resp.StatusCode)
	}
	jsonError(t, resp, body)
	if n := backend.calls.Load(); n != 2 {
		t.Fatalf("backend called %d times, want 2: an open breaker must keep requests away", n)
	}

	backend.failing.Store(false)
	eventually(t, "half-open breaker", func() bool { return b.BreakerState() == "half-open" })
	resp, body = get(t, c, proxyURL(srv)+"/")
	if resp.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("probe: status %d body %q, want 200 ok", resp.StatusCode, body)
	}
	if got := b.BreakerState(); got != "closed" {
		t.Fatalf("breaker %s after a successful probe, want closed", got)
	}
	if got := b.BreakerTransitions(); got != 3 {
		t.Fatalf("%d breaker transitions, want 3 (closed→open→half-open→closed)", got)
	}
}

func TestRetriesHideDeadBackend(t *testing.T) {
	dead := deadAddr(t)
	var bodies atomic.Int64
	echoBody := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if len(b) > 0 {
			bodies.Add(1)
		}
		_, _ = w.Write(b)
	})
	live1, live2 := startBackend(t, echoBody), startBackend(t, echoBody)
	pool := newPool(t, "app", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, dead, live1, live2)
	srv := startProxy(t, options(route(routing.Matcher{}, upstreamTarget(t, "all", pool))), Settings{}, nil)
	c := newClient(t)

	const n = 30
	for i := range n {
		method := http.MethodGet
		payload := ""
		if i%2 == 1 {
			// A connect error is retried whatever the method: nothing was sent.
			method, payload = http.MethodPost, fmt.Sprintf("payload-%d", i)
		}
		req, err := http.NewRequest(method, proxyURL(srv)+"/", strings.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		resp, body := do(t, c, req)
		if resp.StatusCode != http.StatusOK || body != payload {
			t.Fatalf("request %d (%s): status %d body %q, want 200 %q", i, method, resp.StatusCode, body, payload)
		}
	}
	if f := backendOf(t, pool, dead).Failures(); f == 0 {
		t.Fatal("the dead backend was never tried; the test proves nothing")
	}
	if got := bodies.Load(); got != n/2 {
		t.Fatalf("backends received %d bodies, want %d (each POST exactly once)", got, n/2)
	}
}

func TestPostRetriedAfterConnectError(t *testing.T) {
	dead := deadAddr(t)
	var got atomic.Value
	live := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
	}))
	// Round robin starts with the first member, so the dead one is tried first.
	pool := newPool(t, "app", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, dead, live)
	srv := startProxy(t, options(route(routing.Matcher{}, upstreamTarget(t, "all", pool))), Settings{}, nil)

	resp, body := do(t, newClient(t), mustRequest(t, http.MethodPost, proxyURL(srv)+"/", "the body"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d (%q), want 200", resp.StatusCode, body)
	}
	if f := backendOf(t, pool, dead).Failures(); f != 1 {
		t.Fatalf("dead backend failures = %d, want 1", f)
	}
	if got.Load() != "the body" {
		t.Fatalf("live backend got body %q", got.Load())
	}
}

func mustRequest(t testing.TB, method, url, body string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestNonIdempotentNotResent(t *testing.T) {
	tests := []struct {
		name string
		// backend reads the whole body, then misbehaves.
		backend    func(w http.ResponseWriter)
		method     string
		body       string
		wantStatus int
		wantCalls  int64
	}{
		{
			name: "POST, backend hangs up after reading the body",
			backend: func(w http.ResponseWriter) {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					_ = conn.Close()
				}
			},
			method: http.MethodPost, body: "order #1", wantStatus: http.StatusBadGateway, wantCalls: 1,
		},
		{
			name:    "POST, backend answers 503",
			backend: func(w http.ResponseWriter) { http.Error(w, "busy", http.StatusServiceUnavailable) },
			method:  http.MethodPost, body: "order #2", wantStatus: http.StatusServiceUnavailable, wantCalls: 1,
		},
		{
			name:    "PATCH without body, backend answers 503",
			backend: func(w http.ResponseWriter) { http.Error(w, "busy", http.StatusServiceUnavailable) },
			method:  http.MethodPatch, wantStatus: http.StatusServiceUnavailable, wantCalls: 1,
		},
		{
			name:    "PUT with body, backend answers 503: a streamed body cannot be replayed",
			backend: func(w http.ResponseWriter) { http.Error(w, "busy", http.StatusServiceUnavailable) },
			method:  http.MethodPut, body: "doc", wantStatus: http.StatusServiceUnavailable, wantCalls: 1,
		},
		{
			name:    "GET, backend answers 503: retried once, the last answer is passed on",
			backend: func(w http.ResponseWriter) { http.Error(w, "busy", http.StatusServiceUnavailable) },
			method:  http.MethodGet, wantStatus: http.StatusServiceUnavailable, wantCalls: 2,
		},
		{
			name: "GET, backend hangs up: retried once",
			backend: func(w http.ResponseWriter) {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					_ = conn.Close()
				}
			},
			method: http.MethodGet, wantStatus: http.StatusBadGateway, wantCalls: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				b, _ := io.ReadAll(r.Body)
				if string(b) != tc.body {
					t.Errorf("backend got body %q, want %q", b, tc.body)
				}
				tc.backend(w)
			})
			// Both backends misbehave alike, so the count does not depend on
			// which one is picked first.
			pool := newPool(t, "app", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, startBackend(t, h), startBackend(t, h))
			srv := startProxy(t, options(route(routing.Matcher{}, upstreamTarget(t, "all", pool))), Settings{}, nil)
			resp, body := do(t, newClient(t), mustRequest(t, tc.method, proxyURL(srv)+"/", tc.body))
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if tc.wantStatus == http.StatusBadGateway {
				jsonError(t, resp, body)
			} else if body != "busy\n" {
				t.Fatalf("body %q, want the backend's own answer passed on", body)
			}
			if n := calls.Load(); n != tc.wantCalls {
				t.Fatalf("backends called %d times, want %d", n, tc.wantCalls)
			}
		})
	}
}

func TestRetryAfterStatusGoesToAnotherBackend(t *testing.T) {
	var badCalls atomic.Int64
	bad := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		badCalls.Add(1)
		http.Error(w, "down for maintenance", http.StatusBadGateway)
	}))
	good := startBackend(t, nameHandler("good"))
	pool := newPool(t, "app", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, bad, good)
	rec := &recorder{}
	srv := startProxy(t, options(route(routing.Matcher{}, upstreamTarget(t, "all", pool))), Settings{}, rec)
	c := newClient(t)
	for i := range 6 {
		resp, body := get(t, c, proxyURL(srv)+"/")
		if resp.StatusCode != http.StatusOK || body != "good" {
			t.Fatalf("request %d: status %d body %q, want 200 from the good backend", i, resp.StatusCode, body)
		}
	}
	if badCalls.Load() == 0 {
		t.Fatal("the bad backend was never tried; the test proves nothing")
	}
	for _, r := range rec.waitRecords(t, 6) {
		if r.Backend != good {
			t.Fatalf("record backend %q, want the last one tried (%s)", r.Backend, good)
		}
	}
}

func TestTimeouts(t *testing.T) {
	release := make(chan struct{})
	slow := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a closed connection only once the body is
		// consumed.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	// Registered after startBackend so it runs before the server's Close,
	// which waits for this handler.
	t.Cleanup(func() { close(release) })
	fast := startBackend(t, nameHandler("fast"))
	// Generous enough that connecting over loopback always fits in it,
	// even on a loaded machine: a timeout while connecting is retried for
	// any method (nothing was sent), which is not what these cases test.
	const routeTimeout = 300 * time.Millisecond

	t.Run("single slow backend gives 504", func(t *testing.T) {
		pool := newPool(t, "slow", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, slow)
		target := upstreamTarget(t, "slow", pool)
		target.Timeout = routeTimeout
		srv := startProxy(t, options(route(routing.Matcher{}, target)), Settings{}, nil)
		start := time.Now()
		resp, body := get(t, newClient(t), proxyURL(srv)+"/")
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("status %d (%q), want 504", resp.StatusCode, body)
		}
		jsonError(t, resp, body)
		if d := time.Since(start); d < routeTimeout || d > 5*time.Second {
			t.Fatalf("504 after %v, want about the %v route timeout", d, routeTimeout)
		}
	})
	t.Run("idempotent request retried after a timeout", func(t *testing.T) {
		pool := newPool(t, "mixed", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, slow, fast)
		target := upstreamTarget(t, "mixed", pool)
		target.Timeout = routeTimeout
		srv := startProxy(t, options(route(routing.Matcher{}, target)), Settings{}, nil)
		resp, body := get(t, newClient(t), proxyURL(srv)+"/")
		if resp.StatusCode != http.StatusOK || body != "fast" {
			t.Fatalf("status %d body %q, want 200 from the fast backend", resp.StatusCode, body)
		}
		if f := backendOf(t, pool, slow).Failures(); f != 1 {
			t.Fatalf("slow backend failures %d, want 1: it must have been tried and timed out first", f)
		}
	})
	t.Run("POST not retried after a timeout", func(t *testing.T) {
		pool := newPool(t, "mixed-post", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, slow, fast)
		target := upstreamTarget(t, "mixed-post", pool)
		target.Timeout = routeTimeout
		srv := startProxy(t, options(route(routing.Matcher{}, target)), Settings{}, nil)
		resp, body := do(t, newClient(t), mustRequest(t, http.MethodPost, proxyURL(srv)+"/", "x"))
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("status %d (%q), want 504", resp.StatusCode, body)
		}
		if n := backendOf(t, pool, slow).Requests(); n != 1 {
			t.Fatalf("slow backend tried %d times, want once", n)
		}
		if n := backendOf(t, pool, fast).Requests(); n != 0 {
			t.Fatalf("POST resent to the fast backend after a timeout (%d times)", n)
		}
	})
}

func TestProxyStatuses(t *testing.T) {
	dead1, dead2 := deadAddr(t), deadAddr(t)
	deadPool := newPool(t, "dead", upstream.StrategyRoundRobin, upstream.BreakerConfig{ConsecutiveFailures: 100}, dead1, dead2)
	// One failure opens this breaker, so the second request finds nothing.
	tripPool := newPool(t, "trip", upstream.StrategyRoundRobin, upstream.BreakerConfig{ConsecutiveFailures: 1, OpenTimeout: time.Minute}, deadAddr(t))
	tripTarget := upstreamTarget(t, "trip", tripPool)
	tripTarget.Retries = 0
	srv := startProxy(t, options(
		route(routing.Matcher{PathPrefix: "/dead"}, upstreamTarget(t, "dead", deadPool)),
		route(routing.Matcher{PathPrefix: "/trip"}, tripTarget),
	), Settings{}, nil)
	c := newClient(t)

	tests := []struct {
		path   string
		status int
	}{
		{"/nowhere", http.StatusNotFound},
		{"/dead", http.StatusBadGateway},         // every try failed to connect
		{"/trip", http.StatusBadGateway},         // connect error; opens the breaker
		{"/trip", http.StatusServiceUnavailable}, // nothing available
	}
	for _, tc := range tests {
		resp, body := get(t, c, proxyURL(srv)+tc.path)
		if resp.StatusCode != tc.status {
			t.Fatalf("GET %s: status %d (%q), want %d", tc.path, resp.StatusCode, body, tc.status)
		}
		jsonError(t, resp, body)
		if resp.Header.Get("X-Request-Id") == "" {
			t.Fatalf("GET %s: no X-Request-Id on the proxy's own answer", tc.path)
		}
	}
}

func TestUpstreamConnectionsReused(t *testing.T) {
	var newConns atomic.Int64
	backend := httptestServer(t, nameHandler("b"), func(s http.ConnState) {
		if s == http.StateNew {
			newConns.Add(1)
		}
	})
	pool := newPool(t, "app", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, backend)
	srv := startProxy(t, options(route(routing.Matcher{}, upstreamTarget(t, "all", pool))), Settings{}, nil)
	c := newClient(t)
	for range 20 {
		if resp, _ := get(t, c, proxyURL(srv)+"/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if n := newConns.Load(); n != 1 {
		t.Fatalf("backend saw %d connections for 20 sequential requests, want 1 kept alive", n)
	}
	if srv.TotalConnections() != 1 {
		t.Fatalf("proxy accepted %d client connections, want 1 kept alive", srv.TotalConnections())
	}
}
