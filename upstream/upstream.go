// Package upstream holds upstream pools: per-backend state that survives
// config reloads (health, circuit breaker, counters, latency estimate), the
// balancing strategies, and active and passive health checks.
//
// A Registry owns the long-lived backend state keyed by (upstream name,
// address). Every config generation builds immutable Pools from it with
// NewPool; listeners call Pool.Acquire to pick a backend and Attempt.Done to
// report how the request or connection ended.
//
// A backend is available while it is healthy and its breaker is not open.
// When no backend is available Acquire fails with ErrNoBackend; there is no
// "panic routing" to unhealthy backends.
//
// Health: new backends start healthy. An active check (health_check block)
// marks a backend unhealthy after unhealthy_threshold failed checks in a row
// and healthy after healthy_threshold passed ones. Passive health watches
// real traffic: unhealthy_threshold (DefaultPassiveFailures without a
// health_check block) Failure outcomes in a row mark the backend unhealthy.
// With an active check only the checker brings it back; without one it
// becomes healthy again after the breaker's open_timeout, so a pool without
// health_check never stays dead.
//
// Breaker: one gobreaker TwoStepCircuitBreaker per backend, see
// BreakerConfig. Canceled outcomes are excluded from its counts.
package upstream

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNoBackend is returned by Pool.Acquire when no backend of the pool is
// available: all are unhealthy, breaker-open, refused by a half-open breaker
// or excluded by the caller. Listeners answer 503 (HTTP) or close (TCP).
var ErrNoBackend = errors.New("no available backend")

// Defaults applied by the WithDefaults methods to zero-valued fields. They
// match the defaults of the config layer so a zero field and an explicit
// default compare equal (the breaker is kept across reloads by config value).
const (
	DefaultConnectTimeout     = 2 * time.Second
	DefaultHealthInterval     = 2 * time.Second
	DefaultHealthTimeout      = 1 * time.Second
	DefaultHealthyThreshold   = 2
	DefaultUnhealthyThreshold = 2

	DefaultBreakerConsecutiveFailures = 5
	DefaultBreakerFailureRatio        = 0.5
	DefaultBreakerMinRequests         = 20
	DefaultBreakerOpenTimeout         = 10 * time.Second
	DefaultBreakerHalfOpenRequests    = 1

	// DefaultPassiveFailures is how many consecutive failed requests mark a
	// backend unhealthy when the pool has no active health check (with one,
	// its unhealthy_threshold is used instead).
	DefaultPassiveFailures = 3

	// BreakerWindow is the rolling window over which the breaker's failure
	// ratio is computed while closed. A minute smooths short bursts, and
	// BreakerBucket makes old results leave gradually instead of all at once.
	BreakerWindow = 60 * time.Second
	// BreakerBucket is the granularity of the rolling window.
	BreakerBucket = 10 * time.Second

	// LatencyDecay is the time constant of the peak-EWMA latency estimate
	// (as in Finagle and linkerd): an observation's weight halves in ~7s, and
	// an idle backend's estimate decays towards zero so it gets probed again.
	LatencyDecay = 10 * time.Second
)

// PoolConfig describes one upstream pool of one config generation.
type PoolConfig struct {
	Name           string
	Strategy       string // one of StrategyNames()
	HashOn         string // consistent_hash only: "client_ip" | "path" | "header:NAME"
	ConnectTimeout time.Duration
	Backends       []BackendConfig
	HealthCheck    *HealthCheckConfig // nil = passive health only
	Breaker        BreakerConfig
}

// BackendConfig is one backend of a pool. Weight 0 means 1.
type BackendConfig struct {
	Address string
	Weight  int
}

// HealthCheckConfig configures active health checks. Path "" means a TCP
// connect check; otherwise an HTTP GET of http://ADDRESS+Path expecting 2xx.
type HealthCheckConfig struct {
	Interval           time.Duration
	Timeout            time.Duration
	Path               string
	HealthyThreshold   int
	UnhealthyThreshold int
}

// WithDefaults returns c with zero fields set to their defaults and Timeout
// capped at Interval, so checks of one backend never overlap.
func (c HealthCheckConfig) WithDefaults() HealthCheckConfig {
	if c.Interval <= 0 {
		c.Interval = DefaultHealthInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultHealthTimeout
	}
	c.Timeout = min(c.Timeout, c.Interval)
	if c.HealthyThreshold <= 0 {
		c.HealthyThreshold = DefaultHealthyThreshold
	}
	if c.UnhealthyThreshold <= 0 {
		c.UnhealthyThreshold = DefaultUnhealthyThreshold
	}
	if c.Path != "" && !strings.HasPrefix(c.Path, "/") {
		c.Path = "/" + c.Path
	}
	return c
}

// BreakerConfig configures the circuit breaker of every backend of a pool.
// The breaker trips after ConsecutiveFailures failures in a row, or when at
// least MinRequests requests completed within BreakerWindow and the share of
// failures among them is at least FailureRatio. It stays open for
// OpenTimeout, then lets HalfOpenRequests probes through; that many
// successes close it, one failure opens it again.
type BreakerConfig struct {
	ConsecutiveFailures int
	FailureRatio        float64
	MinRequests         int
	OpenTimeout         time.Duration
	HalfOpenRequests    int
}

// WithDefaults returns c with zero fields set to their defaults.
func (c BreakerConfig) WithDefaults() BreakerConfig {
	if c.ConsecutiveFailures <= 0 {
		c.ConsecutiveFailures = DefaultBreakerConsecutiveFailures
	}
	if c.FailureRatio <= 0 {
		c.FailureRatio = DefaultBreakerFailureRatio
	}
	if c.MinRequests <= 0 {
		c.MinRequests = DefaultBreakerMinRequests
	}
	if c.OpenTimeout <= 0 {
		c.OpenTimeout = DefaultBreakerOpenTimeout
	}
	if c.HalfOpenRequests <= 0 {
		c.HalfOpenRequests = DefaultBreakerHalfOpenRequests
	}
	return c
}

// Outcome is how an attempt ended.
type Outcome int

// Outcomes reported to Attempt.Done.
const (
	// Success: the backend answered (HTTP status below 500) or the TCP
	// session ended normally.
	Success Outcome = iota
	// Failure: the backend answered, but with a 5xx. It counts against the
	// breaker; passive health only tracks reachability, so a backend that
	// answers badly is the breaker's business, not the health check's.
	Failure
	// Canceled: the client went away. It counts neither as success nor as
	// failure for the breaker and passive health, and records no latency.
	Canceled
	// Unreachable: connect error, timeout, or a connection that broke before
	// an answer. It counts against the breaker and toward passive health.
	Unreachable
)

// String returns the outcome's name for logs.
func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Canceled:
		return "canceled"
	case Unreachable:
		return "unreachable"
	default:
		return fmt.Sprintf("outcome(%d)", int(o))
	}
}

// HashKind says what consistent_hash hashes on.
type HashKind int

// Hash kinds; HashNone for every strategy but consistent_hash.
const (
	HashNone HashKind = iota
	HashClientIP
	HashPath
	HashHeader
)

// String returns the hash_on spelling of the kind (without a header name).
func (k HashKind) String() string {
	switch k {
	case HashNone:
		return "none"
	case HashClientIP:
		return "client_ip"
	case HashPath:
		return "path"
	case HashHeader:
		return "header"
	default:
		return fmt.Sprintf("hashkind(%d)", int(k))
	}
}
