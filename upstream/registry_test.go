package upstream

import (
	"testing"
	"time"
)

func TestStateCarriesOverReloads(t *testing.T) {
	clock := newFakeClock()
	r := testRegistry(clock)
	bc := BreakerConfig{ConsecutiveFailures: 1, OpenTimeout: time.Hour}
	cfg1 := poolConfig("api", StrategyRoundRobin, 1, 1, 1)
	cfg1.Breaker = bc
	cfg1.HealthCheck = &HealthCheckConfig{UnhealthyThreshold: 1}
	p1 := mustPool(t, r, cfg1)
	a, b, c := member(p1, 0), member(p1, 1), member(p1, 2)
	for range 4 {
		acquireOn(t, p1, a).Done(Success, time.Millisecond)
	}
	held := acquireOn(t, p1, a) // in flight across the reload
	failTimes(t, p1, b, 1)      // b: unhealthy and breaker open
	if b.Healthy() || b.BreakerState() != "open" {
		t.Fatalf("setup: b healthy %v breaker %s", b.Healthy(), b.BreakerState())
	}

	// Generation 2: c removed, d added, weights and strategy changed.
	cfg2 := PoolConfig{Name: "api", Strategy: StrategyLeastConn, Breaker: bc, HealthCheck: cfg1.HealthCheck,
		Backends: []BackendConfig{{Address: a.Address(), Weight: 5}, {Address: b.Address()}, {Address: "127.0.0.1:29999"}}}
	p2 := mustPool(t, r, cfg2)
	a2, b2, d2 := member(p2, 0), member(p2, 1), member(p2, 2)
	if a2.Requests() != 5 || a2.ActiveConnections() != 1 || a2.Weight() != 5 {
		t.Fatalf("a after reload: requests %d active %d weight %d, want 5 1 5", a2.Requests(), a2.ActiveConnections(), a2.Weight())
	}
	if b2.Healthy() || b2.BreakerState() != "open" || b2.Failures() != 1 {
		t.Fatalf("b after reload: healthy %v breaker %s failures %d, want false open 1", b2.Healthy(), b2.BreakerState(), b2.Failures())
	}
	if !d2.Healthy() || d2.Requests() != 0 {
		t.Fatal("new backend d should start healthy and empty")
	}
	// The request admitted by generation 1 ends after the swap.
	held.Done(Success, time.Millisecond)
	if a2.ActiveConnections() != 0 {
		t.Fatalf("active after the old attempt ended: %d", a2.ActiveConnections())
	}
	// An exclude list from another generation still matches by address.
	for range 20 {
		if got := pickOnce(t, p2, "", a); got != d2.Address() {
			t.Fatalf("excluded a (generation 1 pointer) and b is down; picked %s", got)
		}
	}

	// Another upstream with the same address has its own state.
	other := mustPool(t, r, PoolConfig{Name: "other", Strategy: StrategyRoundRobin, Backends: []BackendConfig{{Address: a.Address()}}})
	if member(other, 0).Requests() != 0 {
		t.Fatal("state leaked between upstreams sharing an address")
	}

	// Retain drops c (no longer in a live pool): bringing it back starts fresh.
	acquireOn(t, p1, c).Done(Success, time.Millisecond)
	r.Retain([]*Pool{p2, other})
	p3 := mustPool(t, r, cfg1)
	if got := member(p3, 2).Requests(); got != 0 {
		t.Fatalf("c re-added after Retain dropped it: requests %d, want 0", got)
	}
	if got := member(p3, 0).Requests(); got != 5 {
		t.Fatalf("a kept by Retain: requests %d, want 5", got)
	}
}

func TestBreakerReplacedWhenConfigChanges(t *testing.T) {
	r := testRegistry(nil)
	cfg := poolConfig("brk", StrategyRoundRobin, 1)
	cfg.Breaker = BreakerConfig{ConsecutiveFailures: 1, OpenTimeout: time.Hour}
	cfg.HealthCheck = &HealthCheckConfig{UnhealthyThreshold: 100}
	p1 := mustPool(t, r, cfg)
	failTimes(t, p1, member(p1, 0), 1)
	if member(p1, 0).BreakerState() != "open" {
		t.Fatal("setup: breaker not open")
	}

	// Same settings (spelled with and without defaults): same breaker.
	same := cfg
	same.Breaker.FailureRatio = DefaultBreakerFailureRatio
	if s := member(mustPool(t, r, same), 0).BreakerState(); s != "open" {
		t.Fatalf("unchanged breaker settings: %s, want open (kept)", s)
	}

	changed := cfg
	changed.Breaker.OpenTimeout = 2 * time.Hour
	p2 := mustPool(t, r, changed)
	if s := member(p2, 0).BreakerState(); s != "closed" {
		t.Fatalf("changed breaker settings: %s, want a fresh closed breaker", s)
	}
	// Building the new generation must not disturb the one still serving.
	if s := member(p1, 0).BreakerState(); s != "open" {
		t.Fatalf("old generation's breaker became %s", s)
	}
	if member(p2, 0).BreakerTransitions() != 1 {
		t.Fatal("transition count should carry over the breaker replacement")
	}

	// Once only p2 is live, the old breaker is gone: its settings start fresh.
	r.Retain([]*Pool{p2})
	if s := member(mustPool(t, r, cfg), 0).BreakerState(); s != "closed" {
		t.Fatalf("breaker dropped by Retain came back %s", s)
	}
	if s := member(mustPool(t, r, changed), 0).BreakerState(); s != "closed" {
		t.Fatalf("live breaker: %s", s)
	}
}
