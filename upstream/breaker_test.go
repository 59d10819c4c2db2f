package upstream

import (
	"testing"
	"time"
)

func breakerPool(t *testing.T, bc BreakerConfig) (*Pool, *Backend) {
	t.Helper()
	cfg := poolConfig("brk", StrategyRoundRobin, 1)
	cfg.Breaker = bc
	// A high passive threshold keeps passive health out of breaker tests.
	cfg.HealthCheck = &HealthCheckConfig{UnhealthyThreshold: 1000}
	p := mustPool(t, testRegistry(nil), cfg)
	return p, member(p, 0)
}

func TestBreakerLifecycle(t *testing.T) {
	p, b := breakerPool(t, BreakerConfig{ConsecutiveFailures: 3, OpenTimeout: 50 * time.Millisecond, HalfOpenRequests: 1})
	failTimes(t, p, b, 2)
	if b.BreakerState() != "closed" {
		t.Fatalf("after 2 of 3 failures: %s, want closed", b.BreakerState())
	}
	failTimes(t, p, b, 1)
	if b.BreakerState() != "open" {
		t.Fatalf("after 3 failures: %s, want open", b.BreakerState())
	}
	if _, err := p.Acquire("", nil); !isNoBackend(err) {
		t.Fatalf("open breaker: err %v, want ErrNoBackend", err)
	}
	if b.Available() {
		t.Fatal("Available() with an open breaker")
	}

	// After open_timeout one probe is admitted (half-open), a second is
	// refused while it runs.
	var probe *Attempt
	waitFor(t, 2*time.Second, "half-open probe admitted", func() bool {
		a, err := p.Acquire("", nil)
		probe = a
		return err == nil
	})
	if b.BreakerState() != "half-open" {
		t.Fatalf("during probe: %s, want half-open", b.BreakerState())
	}
	if _, err := p.Acquire("", nil); !isNoBackend(err) {
		t.Fatalf("second request during the probe: err %v, want ErrNoBackend", err)
	}
	// A canceled probe proves nothing and frees the slot.
	probe.Done(Canceled, 0)
	probe, err := p.Acquire("", nil)
	if err != nil {
		t.Fatalf("probe after a canceled probe: %v", err)
	}
	probe.Done(Success, time.Millisecond)
	if b.BreakerState() != "closed" {
		t.Fatalf("after a successful probe: %s, want closed", b.BreakerState())
	}

	// A failed probe opens it again.
	failTimes(t, p, b, 3)
	waitFor(t, 2*time.Second, "second half-open probe", func() bool {
		a, err := p.Acquire("", nil)
		probe = a
		return err == nil
	})
	probe.Done(Failure, time.Millisecond)
	if b.BreakerState() != "open" {
		t.Fatalf("after a failed probe: %s, want open", b.BreakerState())
	}
	// closed→open→half-open→closed→open→half-open→open
	if got := b.BreakerTransitions(); got != 6 {
		t.Fatalf("BreakerTransitions() = %d, want 6", got)
	}
}

func TestBreakerFailureRatio(t *testing.T) {
	p, b := breakerPool(t, BreakerConfig{ConsecutiveFailures: 100, FailureRatio: 0.5, MinRequests: 10, OpenTimeout: time.Hour})
	outcomes := []Outcome{Failure, Success, Failure, Success, Failure, Success, Failure, Success, Failure}
	for _, o := range outcomes {
		acquireOn(t, p, b).Done(o, time.Millisecond)
	}
	// 5 of 9 failed, but fewer than min_requests completed.
	if b.BreakerState() != "closed" {
		t.Fatalf("below min_requests: %s, want closed", b.BreakerState())
	}
	acquireOn(t, p, b).Done(Success, time.Millisecond)
	acquireOn(t, p, b).Done(Failure, time.Millisecond) // 6 of 11
	if b.BreakerState() != "open" {
		t.Fatalf("ratio 6/11 over min_requests: %s, want open", b.BreakerState())
	}
}

func TestBreakerRatioIgnoresCanceledAndLowRatio(t *testing.T) {
	p, b := breakerPool(t, BreakerConfig{ConsecutiveFailures: 2, FailureRatio: 0.5, MinRequests: 4, OpenTimeout: time.Hour})
	for range 50 {
		acquireOn(t, p, b).Done(Canceled, 0)
	}
	for range 20 {
		acquireOn(t, p, b).Done(Success, 0)
		acquireOn(t, p, b).Done(Success, 0)
		acquireOn(t, p, b).Done(Failure, 0)
	}
	if b.BreakerState() != "closed" || b.Failures() != 20 {
		t.Fatalf("ratio 1/3 with cancellations: %s failures %d, want closed 20", b.BreakerState(), b.Failures())
	}
}

func TestBreakerConfigDefaults(t *testing.T) {
	got := BreakerConfig{}.WithDefaults()
	want := BreakerConfig{ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20, OpenTimeout: 10 * time.Second, HalfOpenRequests: 1}
	if got != want {
		t.Fatalf("defaults %+v, want %+v", got, want)
	}
	hc := HealthCheckConfig{Interval: 100 * time.Millisecond, Timeout: time.Second, Path: "healthz"}.WithDefaults()
	if hc.Timeout != 100*time.Millisecond || hc.Path != "/healthz" || hc.HealthyThreshold != 2 || hc.UnhealthyThreshold != 2 {
		t.Fatalf("health defaults %+v", hc)
	}
}
