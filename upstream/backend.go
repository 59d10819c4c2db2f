package upstream

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Backend is one backend as seen by one pool generation. Its long-lived
// state (counters, health, latency estimate) is shared by every generation
// that has the same (upstream, address), so it survives reloads; the breaker
// is shared while the breaker settings stay the same.
type Backend struct {
	address string
	weight  int
	state   *backendState
	breaker *breaker
	// passiveCooldown > 0 when this generation's pool has no active health
	// check: a passively failed backend becomes available again after it.
	// With an active check (0) only the checker brings it back.
	passiveCooldown time.Duration
	now             func() time.Time
}

// Address returns the backend's host:port.
func (b *Backend) Address() string { return b.address }

// Upstream returns the name of the pool the backend belongs to.
func (b *Backend) Upstream() string { return b.state.upstream }

// Weight returns the backend's weight in this pool generation (at least 1).
func (b *Backend) Weight() int { return b.weight }

// Healthy reports whether the backend is considered healthy by the active
// and passive checks. Without an active check, a backend marked unhealthy by
// passive checks becomes healthy again once the cooldown has passed.
func (b *Backend) Healthy() bool {
	if b.state.healthy.Load() {
		return true
	}
	if b.passiveCooldown <= 0 {
		return false
	}
	now := b.now()
	if now.UnixNano()-b.state.downAt.Load() < int64(b.passiveCooldown) {
		return false
	}
	b.state.markHealthy("passive cooldown elapsed")
	return true
}

// Available reports whether the backend may take a request: healthy and its
// breaker not open. A half-open breaker counts as available; it may still
// refuse once its probe quota is used up.
func (b *Backend) Available() bool {
	return b.Healthy() && !b.breaker.refusing()
}

// BreakerState returns "closed", "open" or "half-open".
func (b *Backend) BreakerState() string { return b.breaker.cb.State().String() }

// BreakerTransitions counts breaker state changes of this (upstream,
// address) since it first appeared, across breaker replacements.
func (b *Backend) BreakerTransitions() uint64 { return b.state.breakerTransitions.Load() }

// HealthTransitions counts healthy↔unhealthy changes since the backend
// first appeared.
func (b *Backend) HealthTransitions() uint64 { return b.state.healthTransitions.Load() }

// ActiveConnections returns the number of admitted attempts not yet Done.
func (b *Backend) ActiveConnections() int64 { return b.state.active.Load() }

// Requests returns the number of admitted attempts (requests or TCP
// connections).
func (b *Backend) Requests() uint64 { return b.state.requests.Load() }

// Failures returns the number of attempts that ended in Failure.
func (b *Backend) Failures() uint64 { return b.state.failures.Load() }

// LatencyEstimate returns the current peak-EWMA latency estimate (0 before
// the first sample), decayed to now.
func (b *Backend) LatencyEstimate() time.Duration {
	return time.Duration(b.state.latencyView(b.now()))
}

// latencyCost is least_latency's cost before weighting.
func (b *Backend) latencyCost(now time.Time) float64 {
	active := float64(b.state.active.Load())
	if !b.state.probed.Load() {
		if active == 0 {
			return 0
		}
		return unprobedPenalty + active
	}
	return b.state.latencyView(now) * (active + 1)
}

// sameAs reports whether b and other are the same (upstream, address), even
// when they come from different pool generations.
func (b *Backend) sameAs(other *Backend) bool { return other != nil && b.state == other.state }

// backendState is the part of a backend that lives as long as its
// (upstream, address) stays in the config.
type backendState struct {
	upstream string
	address  string
	log      hclog.Logger

	active             atomic.Int64
	requests           atomic.Uint64
	failures           atomic.Uint64
	breakerTransitions atomic.Uint64
	healthTransitions  atomic.Uint64

	healthy         atomic.Bool
	downAt          atomic.Int64 // unix nanos (injected clock) of the last healthy→unhealthy change
	passiveFailures atomic.Int64 // consecutive Failure outcomes

	healthMu sync.Mutex // serializes health transitions and guards the two counters below
	// checkSuccesses and checkFailures are the current runs of active check
	// results; a passive mark-down resets them so the checker needs a full
	// healthy_threshold of fresh successes to bring the backend back.
	checkSuccesses int
	checkFailures  int

	latencyMu    sync.Mutex    // serializes latency updates; readers use the atomics
	latency      atomic.Uint64 // float64 bits, nanoseconds
	latencyStamp atomic.Int64  // unix nanos of the last sample
	probed       atomic.Bool   // at least one latency sample
	now          func() time.Time
}

func newBackendState(upstream, address string, log hclog.Logger, now func() time.Time) *backendState {
	s := &backendState{
		upstream: upstream,
		address:  address,
		log:      log.With("upstream", upstream, "backend", address),
		now:      now,
	}
	s.healthy.Store(true)
	return s
}

// markHealthy flips the backend to healthy if it is not, logging why.
func (s *backendState) markHealthy(reason string) {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	s.setHealthyLocked(reason)
}

func (s *backendState) setHealthyLocked(reason string) {
	if s.healthy.Load() {
		return
	}
	s.passiveFailures.Store(0)
	s.healthy.Store(true)
	s.healthTransitions.Add(1)
	s.log.Info("backend healthy", "reason", reason)
}

func (s *backendState) setUnhealthyLocked(reason string, err error) {
	if !s.healthy.Load() {
		return
	}
	s.downAt.Store(s.now().UnixNano())
	s.healthy.Store(false)
	s.healthTransitions.Add(1)
	if err != nil {
		s.log.Info("backend unhealthy", "reason", reason, "error", err)
	} else {
		s.log.Info("backend unhealthy", "reason", reason)
	}
}

// recordCheck applies one active health check result.
func (s *backendState) recordCheck(err error, cfg HealthCheckConfig) {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	if err == nil {
		s.checkFailures = 0
		s.checkSuccesses++
		if s.checkSuccesses >= cfg.HealthyThreshold {
			s.setHealthyLocked("active check passed")
		}
		return
	}
	s.checkSuccesses = 0
	s.checkFailures++
	if s.checkFailures >= cfg.UnhealthyThreshold {
		s.setUnhealthyLocked("active check failed", err)
	}
}

// passiveFailure counts a failed request; threshold in a row mark the
// backend unhealthy.
func (s *backendState) passiveFailure(threshold int) {
	if s.passiveFailures.Add(1) < int64(threshold) || !s.healthy.Load() {
		return
	}
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	s.checkSuccesses = 0
	s.setUnhealthyLocked("consecutive failed requests", nil)
}

// passiveSuccess ends a run of failed requests. The load first keeps the
// hot path from writing a shared cache line on every success.
func (s *backendState) passiveSuccess() {
	if s.passiveFailures.Load() != 0 {
		s.passiveFailures.Store(0)
	}
}

// observeLatency folds one sample into the peak-EWMA estimate: a sample above
// the estimate replaces it (react to slowness at once), a lower one is mixed
// in with a weight that grows with the time since the previous sample.
// peakOnly samples (from failures, whose fast errors say nothing good about
// the backend) may only raise the estimate.
func (s *backendState) observeLatency(rtt time.Duration, now time.Time, peakOnly bool) {
	x := float64(max(rtt, 0))
	s.latencyMu.Lock()
	defer s.latencyMu.Unlock()
	stamp := now.UnixNano()
	if !s.probed.Load() {
		if peakOnly && x == 0 {
			return
		}
		s.latency.Store(math.Float64bits(x))
		s.latencyStamp.Store(stamp)
		s.probed.Store(true)
		return
	}
	estimate := math.Float64frombits(s.latency.Load())
	switch {
	case x > estimate:
		estimate = x
	case peakOnly:
		return
	default:
		elapsed := float64(max(stamp-s.latencyStamp.Load(), 0))
		w := math.Exp(-elapsed / float64(LatencyDecay))
		estimate = estimate*w + x*(1-w)
	}
	s.latency.Store(math.Float64bits(estimate))
	s.latencyStamp.Store(stamp)
}

// latencyView is the estimate decayed towards zero for the time since the
// last sample, so an idle backend's cost drops and it gets probed again.
func (s *backendState) latencyView(now time.Time) float64 {
	estimate := math.Float64frombits(s.latency.Load())
	elapsed := float64(max(now.UnixNano()-s.latencyStamp.Load(), 0))
	return estimate * math.Exp(-elapsed/float64(LatencyDecay))
}
