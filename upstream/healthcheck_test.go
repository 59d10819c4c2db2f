package upstream

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// runChecks starts p.RunHealthChecks and returns a stop func that cancels
// it and fails the test unless it returns promptly.
func runChecks(t *testing.T, p *Pool) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.RunHealthChecks(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("RunHealthChecks did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func TestHTTPHealthCheckFlipsBothWays(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	var badHost atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		if r.Host != r.Context().Value(http.LocalAddrContextKey).(net.Addr).String() {
			badHost.Store(r.Host)
		}
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()

	cfg := PoolConfig{
		Name: "web", Strategy: StrategyRoundRobin,
		Backends: []BackendConfig{{Address: srv.Listener.Addr().String()}},
		HealthCheck: &HealthCheckConfig{
			Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond,
			Path: "/healthz", HealthyThreshold: 2, UnhealthyThreshold: 2,
		},
	}
	p := mustPool(t, testRegistry(nil), cfg)
	b := member(p, 0)
	stop := runChecks(t, p)

	healthy.Store(false)
	waitFor(t, 5*time.Second, "backend unhealthy", func() bool { return !b.Healthy() })
	if _, err := p.Acquire("", nil); !isNoBackend(err) {
		t.Fatalf("unhealthy backend: err %v, want ErrNoBackend", err)
	}
	healthy.Store(true)
	waitFor(t, 5*time.Second, "backend healthy again", b.Healthy)
	if _, err := p.Acquire("", nil); err != nil {
		t.Fatalf("healthy again: %v", err)
	} else if h := b.HealthTransitions(); h != 2 {
		t.Fatalf("HealthTransitions() = %d, want 2", h)
	}
	stop()
	if v := badHost.Load(); v != nil {
		t.Fatalf("health check Host header %q, want the backend address", v)
	}
}

func TestTCPHealthCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepts sync.WaitGroup
	accepts.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.Close()
		}
	})
	defer accepts.Wait()
	defer ln.Close()

	cfg := PoolConfig{
		Name: "tcp", Strategy: StrategyLeastConn,
		Backends: []BackendConfig{{Address: ln.Addr().String()}},
		HealthCheck: &HealthCheckConfig{
			Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond,
			HealthyThreshold: 1, UnhealthyThreshold: 2,
		},
	}
	p := mustPool(t, testRegistry(nil), cfg)
	b := member(p, 0)
	// Mark it down first so a flip to healthy proves the checker connected.
	failTimes(t, p, b, 2)
	if b.Healthy() {
		t.Fatal("setup: passive failures did not mark the backend unhealthy")
	}
	runChecks(t, p)
	waitFor(t, 5*time.Second, "healthy via tcp connect", b.Healthy)
	_ = ln.Close()
	waitFor(t, 5*time.Second, "unhealthy after listener closed", func() bool { return !b.Healthy() })
}

func TestFirstCheckRunsImmediately(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	cfg := PoolConfig{
		Name: "dead", Strategy: StrategyRoundRobin,
		Backends:    []BackendConfig{{Address: dead}},
		HealthCheck: &HealthCheckConfig{Interval: time.Hour, Timeout: time.Second, UnhealthyThreshold: 1},
	}
	p := mustPool(t, testRegistry(nil), cfg)
	if !member(p, 0).Healthy() {
		t.Fatal("new backend should start healthy")
	}
	runChecks(t, p)
	waitFor(t, 5*time.Second, "first check marks the dead backend down", func() bool { return !member(p, 0).Healthy() })
}

func TestRunHealthChecksStopsMidCheck(t *testing.T) {
	entered := make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-r.Context().Done() // hang until the checker gives up
	}))
	defer srv.Close()
	cfg := PoolConfig{
		Name: "slow", Strategy: StrategyRoundRobin,
		Backends:    []BackendConfig{{Address: srv.Listener.Addr().String()}},
		HealthCheck: &HealthCheckConfig{Interval: time.Hour, Timeout: time.Hour, Path: "/", UnhealthyThreshold: 1},
	}
	p := mustPool(t, testRegistry(nil), cfg)
	stop := runChecks(t, p)
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("health check never reached the server")
	}
	stop() // fails the test unless RunHealthChecks returns promptly
	if !member(p, 0).Healthy() {
		t.Fatal("a check cut short by shutdown must not count as a failure")
	}
}

func TestRunHealthChecksWithoutConfigReturns(t *testing.T) {
	p := mustPool(t, testRegistry(nil), poolConfig("passive", StrategyRoundRobin, 1))
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.RunHealthChecks(context.Background())
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunHealthChecks without health_check blocked")
	}
}

func TestPassiveHealthWithoutChecker(t *testing.T) {
	clock := newFakeClock()
	cfg := poolConfig("passive", StrategyRoundRobin, 1, 1)
	cfg.Breaker = BreakerConfig{OpenTimeout: 30 * time.Second}
	p := mustPool(t, testRegistry(clock), cfg)
	b, other := member(p, 0), member(p, 1)

	failTimes(t, p, b, DefaultPassiveFailures-1)
	acquireOn(t, p, b).Done(Success, time.Millisecond) // breaks the run
	failTimes(t, p, b, DefaultPassiveFailures-1)
	if !b.Healthy() {
		t.Fatal("non-consecutive failures marked the backend unhealthy")
	}
	acquireOn(t, p, b).Done(Canceled, 0) // neither breaks nor extends the run
	failTimes(t, p, b, 1)
	if b.Healthy() {
		t.Fatalf("%d consecutive failures did not mark the backend unhealthy", DefaultPassiveFailures)
	}
	if b.BreakerState() != "closed" {
		t.Fatalf("breaker %s, want closed (5 consecutive failures needed)", b.BreakerState())
	}
	for range 10 {
		if got := pickOnce(t, p, ""); got != other.Address() {
			t.Fatalf("passively unhealthy backend picked")
		}
	}
	clock.Advance(29 * time.Second)
	if b.Healthy() {
		t.Fatal("backend recovered before the cooldown")
	}
	clock.Advance(2 * time.Second)
	if !b.Healthy() {
		t.Fatal("backend still unhealthy after the cooldown: a pool without health_check would stay dead")
	}
	seen := countPicks(t, p, 10, nil)
	if seen[b.Address()] != 5 {
		t.Fatalf("after recovery picks %v, want 5:5", seen)
	}
}

func TestPassiveHealthWithCheckerNeedsChecker(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	clock := newFakeClock()
	cfg := PoolConfig{
		Name: "mixed", Strategy: StrategyRoundRobin,
		Backends: []BackendConfig{{Address: srv.Listener.Addr().String()}},
		HealthCheck: &HealthCheckConfig{
			Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond,
			Path: "/ok", HealthyThreshold: 3, UnhealthyThreshold: 2,
		},
	}
	p := mustPool(t, testRegistry(clock), cfg)
	b := member(p, 0)
	failTimes(t, p, b, 2) // the pool's unhealthy_threshold
	if b.Healthy() {
		t.Fatal("passive failures did not mark the backend unhealthy")
	}
	clock.Advance(time.Hour)
	if b.Healthy() {
		t.Fatal("with an active check configured only the checker may revive a backend")
	}
	runChecks(t, p)
	waitFor(t, 5*time.Second, "checker revives the backend", b.Healthy)
}

func TestHealthCheckErrorsAreDescriptive(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	hc := HealthCheckConfig{Timeout: time.Second, Path: "/healthz"}.WithDefaults()
	p := mustPool(t, testRegistry(nil), PoolConfig{Name: "x", Strategy: StrategyRoundRobin,
		Backends: []BackendConfig{{Address: srv.Listener.Addr().String()}}})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	c := &healthChecker{backend: member(p, 0), cfg: hc, client: client, url: srv.URL + "/healthz"}
	err := c.check(context.Background())
	if err == nil || err.Error() != "http get /healthz: status 302" {
		t.Fatalf("redirect answer: err %v, want status 302 failure", err)
	}
}
