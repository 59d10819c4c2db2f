package upstream

import (
	"strings"
	"sync"
	"testing"
	"time"
)

var allStrategies = []string{
	StrategyRoundRobin, StrategyLeastConn, StrategyRandom,
	StrategyP2C, StrategyConsistentHash, StrategyLeastLatency,
}

func TestEveryStrategySkipsUnavailableAndHonoursExclude(t *testing.T) {
	for _, strategy := range allStrategies {
		t.Run(strategy, func(t *testing.T) {
			clock := newFakeClock()
			cfg := poolConfig("skip", strategy, 1, 1, 1, 1)
			cfg.Breaker = BreakerConfig{ConsecutiveFailures: 1, OpenTimeout: time.Hour}
			cfg.HealthCheck = &HealthCheckConfig{UnhealthyThreshold: 2} // never run: only passive marks
			p := mustPool(t, testRegistry(clock), cfg)
			unhealthy, open, excluded, ok := member(p, 0), member(p, 1), member(p, 2), member(p, 3)

			// Marked unhealthy directly: passive marking needs failures,
			// which would also open its one-failure breaker.
			unhealthy.state.healthMu.Lock()
			unhealthy.state.setUnhealthyLocked("test", nil)
			unhealthy.state.healthMu.Unlock()
			failTimes(t, p, open, 1)
			if open.BreakerState() != "open" || !open.Healthy() {
				t.Fatalf("setup: breaker %s healthy %v, want open and healthy", open.BreakerState(), open.Healthy())
			}
			if unhealthy.Healthy() || unhealthy.BreakerState() != "closed" {
				t.Fatal("setup: want unhealthy with closed breaker")
			}

			for i, key := range hashKeys(300) {
				got := pickOnce(t, p, key, excluded)
				if got != ok.Address() {
					t.Fatalf("pick %d went to %s, want the only available %s", i, got, ok.Address())
				}
			}
			_, err := p.Acquire("k", []*Backend{ok, excluded})
			if !isNoBackend(err) {
				t.Fatalf("Acquire with every backend unavailable or excluded: err %v, want ErrNoBackend", err)
			}
			if !strings.Contains(err.Error(), `upstream "skip"`) {
				t.Errorf("error %q does not name the upstream", err)
			}
		})
	}
}

func TestNoPanicRoutingWhenAllUnhealthy(t *testing.T) {
	cfg := poolConfig("dead", StrategyRoundRobin, 1, 1)
	cfg.HealthCheck = &HealthCheckConfig{UnhealthyThreshold: 1}
	p := mustPool(t, testRegistry(newFakeClock()), cfg)
	failTimes(t, p, member(p, 0), 1)
	failTimes(t, p, member(p, 1), 1)
	for range 10 {
		if _, err := p.Acquire("", nil); !isNoBackend(err) {
			t.Fatalf("all unhealthy: err %v, want ErrNoBackend", err)
		}
	}
}

func TestAttemptCountersAndDoneOnce(t *testing.T) {
	p := mustPool(t, testRegistry(newFakeClock()), poolConfig("c", StrategyRoundRobin, 1))
	b := member(p, 0)
	a1, _ := p.Acquire("", nil)
	a2, _ := p.Acquire("", nil)
	a3, _ := p.Acquire("", nil)
	if b.ActiveConnections() != 3 || b.Requests() != 3 {
		t.Fatalf("active %d requests %d, want 3 3", b.ActiveConnections(), b.Requests())
	}
	a1.Done(Failure, time.Millisecond)
	a1.Done(Failure, time.Millisecond)
	a1.Done(Success, time.Millisecond)
	a2.Done(Success, time.Millisecond)
	a3.Done(Canceled, 0)
	a3.Done(Failure, 0)
	if b.ActiveConnections() != 0 || b.Requests() != 3 || b.Failures() != 1 {
		t.Fatalf("active %d requests %d failures %d, want 0 3 1", b.ActiveConnections(), b.Requests(), b.Failures())
	}
}

func TestConcurrentAcquireDone(t *testing.T) {
	for _, strategy := range allStrategies {
		t.Run(strategy, func(t *testing.T) {
			cfg := poolConfig("conc", strategy, 3, 1, 2)
			cfg.Breaker = BreakerConfig{ConsecutiveFailures: 1000, FailureRatio: 1, MinRequests: 1000}
			cfg.HealthCheck = &HealthCheckConfig{UnhealthyThreshold: 1000}
			p := mustPool(t, testRegistry(nil), cfg)
			const workers, perWorker = 8, 300
			keys := hashKeys(perWorker)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					var tried []*Backend
					for i := range perWorker {
						a, err := p.Acquire(keys[i], tried[:0])
						if err != nil {
							t.Error(err)
							return
						}
						tried = append(tried[:0], a.Backend())
						a.Done(Outcome((w+i)%3), time.Duration(i)*time.Microsecond)
					}
				})
			}
			wg.Wait()
			var requests uint64
			for _, m := range p.Members() {
				if m.Backend.ActiveConnections() != 0 {
					t.Errorf("%s: active %d after all Done", m.Backend.Address(), m.Backend.ActiveConnections())
				}
				requests += m.Backend.Requests()
			}
			if requests != workers*perWorker {
				t.Fatalf("requests %d, want %d", requests, workers*perWorker)
			}
		})
	}
}

func TestNewPoolValidation(t *testing.T) {
	r := testRegistry(nil)
	cases := map[string]struct {
		cfg  PoolConfig
		want string
	}{
		"no backends":     {PoolConfig{Name: "x", Strategy: StrategyRoundRobin}, "no backends"},
		"bad address":     {PoolConfig{Name: "x", Strategy: StrategyRoundRobin, Backends: []BackendConfig{{Address: "nohost"}}}, "nohost"},
		"duplicate":       {PoolConfig{Name: "x", Strategy: StrategyRoundRobin, Backends: []BackendConfig{{Address: "a:1"}, {Address: "a:1"}}}, "twice"},
		"negative weight": {PoolConfig{Name: "x", Strategy: StrategyRoundRobin, Backends: []BackendConfig{{Address: "a:1", Weight: -1}}}, "negative weight"},
		"hash_on missing": {PoolConfig{Name: "x", Strategy: StrategyConsistentHash, Backends: []BackendConfig{{Address: "a:1"}}}, "requires hash_on"},
		"hash_on invalid": {PoolConfig{Name: "x", Strategy: StrategyConsistentHash, HashOn: "cookie", Backends: []BackendConfig{{Address: "a:1"}}}, "invalid hash_on"},
		"header no name":  {PoolConfig{Name: "x", Strategy: StrategyConsistentHash, HashOn: "header:", Backends: []BackendConfig{{Address: "a:1"}}}, "missing header name"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := r.NewPool(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestPoolAccessors(t *testing.T) {
	r := testRegistry(nil)
	cfg := poolConfig("h", StrategyConsistentHash, 0, 4)
	cfg.HashOn = "header:x-user-id"
	p := mustPool(t, r, cfg)
	if kind, header := p.HashOn(); kind != HashHeader || header != "X-User-Id" {
		t.Fatalf("HashOn() = %v %q", kind, header)
	}
	if p.Name() != "h" || p.Strategy() != StrategyConsistentHash || p.ConnectTimeout() != DefaultConnectTimeout {
		t.Fatalf("accessors: %q %q %v", p.Name(), p.Strategy(), p.ConnectTimeout())
	}
	ms := p.Members()
	if len(ms) != 2 || ms[0].Weight != 1 || ms[1].Weight != 4 || ms[0].Backend.Address() != addrs(2)[0] {
		t.Fatalf("Members() = %+v", ms)
	}
	ms[0] = Member{}
	if p.Members()[0].Backend == nil {
		t.Fatal("Members() exposes the pool's own slice")
	}
	for hashOn, want := range map[string]HashKind{"client_ip": HashClientIP, "path": HashPath} {
		cfg.HashOn = hashOn
		if kind, _ := mustPool(t, r, cfg).HashOn(); kind != want {
			t.Errorf("hash_on %s: kind %v", hashOn, kind)
		}
	}
	rr := poolConfig("h", StrategyRoundRobin, 1)
	rr.HashOn = "path"
	if kind, _ := mustPool(t, r, rr).HashOn(); kind != HashNone {
		t.Errorf("round_robin HashOn() = %v, want HashNone", kind)
	}
}

// TestAnswered5xxLeavesPassiveHealthToTheBreaker: 5xx answers trip the
// breaker but do not mark the backend unhealthy (it is reachable);
// unreachable attempts do both.
func TestAnswered5xxLeavesPassiveHealthToTheBreaker(t *testing.T) {
	cfg := poolConfig("answers", StrategyRoundRobin, 1)
	cfg.Breaker = BreakerConfig{ConsecutiveFailures: 5, OpenTimeout: time.Minute}
	p := mustPool(t, testRegistry(nil), cfg)
	b := member(p, 0)
	for range 4 {
		acquireOn(t, p, b).Done(Failure, time.Millisecond)
	}
	if !b.Healthy() || b.BreakerState() != "closed" {
		t.Fatalf("after 4 answered failures: healthy %v breaker %s", b.Healthy(), b.BreakerState())
	}
	acquireOn(t, p, b).Done(Failure, time.Millisecond)
	if !b.Healthy() || b.BreakerState() != "open" {
		t.Fatalf("after 5 answered failures: healthy %v breaker %s; want healthy and open", b.Healthy(), b.BreakerState())
	}

	p2 := mustPool(t, testRegistry(nil), poolConfig("unreachable", StrategyRoundRobin, 1))
	b2 := member(p2, 0)
	failTimes(t, p2, b2, DefaultPassiveFailures)
	if b2.Healthy() {
		t.Fatal("unreachable attempts did not mark the backend unhealthy")
	}
}

// TestSettleFreesHalfOpenProbe: a long session settled as a success at
// connect time closes a half-open breaker at once and frees its probe,
// while it still counts as active until Done.
func TestSettleFreesHalfOpenProbe(t *testing.T) {
	cfg := poolConfig("settle", StrategyRoundRobin, 1)
	cfg.Breaker = BreakerConfig{ConsecutiveFailures: 1, OpenTimeout: 20 * time.Millisecond, HalfOpenRequests: 1}
	p := mustPool(t, testRegistry(nil), cfg)
	b := member(p, 0)
	acquireOn(t, p, b).Done(Failure, time.Millisecond)
	if b.BreakerState() != "open" {
		t.Fatalf("breaker %s after a failure, want open", b.BreakerState())
	}
	deadline := time.Now().Add(2 * time.Second)
	var probe *Attempt
	for probe == nil {
		if a, err := p.Acquire("", nil); err == nil {
			probe = a
		} else if time.Now().After(deadline) {
			t.Fatal("breaker never let a probe through")
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	probe.Settle(Success, time.Millisecond)
	if b.BreakerState() != "closed" {
		t.Fatalf("breaker %s after the probe settled as a success, want closed", b.BreakerState())
	}
	if b.ActiveConnections() != 1 {
		t.Fatalf("active %d while the session runs, want 1", b.ActiveConnections())
	}
	other, err := p.Acquire("", nil)
	if err != nil {
		t.Fatalf("a second connection was refused while the first session runs: %v", err)
	}
	other.Done(Success, time.Millisecond)
	probe.Done(Success, time.Hour) // ends the session; must not count twice
	if b.ActiveConnections() != 0 || b.Requests() != 3 || b.Failures() != 1 {
		t.Errorf("after the sessions: active %d requests %d failures %d", b.ActiveConnections(), b.Requests(), b.Failures())
	}
}
