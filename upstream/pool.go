package upstream

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Pool is one upstream of one config generation. It is immutable after
// NewPool; the state it points to (backends, strategy) is safe for
// concurrent use.
type Pool struct {
	name           string
	strategyName   string
	strategy       Strategy
	hashKind       HashKind
	hashHeader     string
	connectTimeout time.Duration
	members        []Member
	health         *HealthCheckConfig // with defaults; nil = passive only
	// passiveThreshold is how many failed requests in a row mark a backend
	// unhealthy.
	passiveThreshold int
	now              func() time.Time
}

// Member is one backend of a pool with its weight in this generation.
type Member struct {
	Backend *Backend
	Weight  int
}

// Name returns the upstream's name.
func (p *Pool) Name() string { return p.name }

// Strategy returns the strategy name.
func (p *Pool) Strategy() string { return p.strategyName }

// ConnectTimeout returns the dial timeout for backends (never zero).
func (p *Pool) ConnectTimeout() time.Duration { return p.connectTimeout }

// HashOn says what the listener must pass as Acquire's hashKey: the client
// IP, the request path, or the value of the named header. It is HashNone for
// every strategy but consistent_hash.
func (p *Pool) HashOn() (kind HashKind, header string) { return p.hashKind, p.hashHeader }

// HealthCheck returns the active health check settings (defaults applied),
// or nil when the pool relies on passive health only.
func (p *Pool) HealthCheck() *HealthCheckConfig {
	if p.health == nil {
		return nil
	}
	hc := *p.health
	return &hc
}

// Members returns the pool's backends in file order.
func (p *Pool) Members() []Member {
	return append([]Member(nil), p.members...)
}

// Acquire picks an available backend by the pool's strategy and admits one
// request or connection on it. It skips backends that are unhealthy, whose
// breaker is open, that are in exclude (already tried by this request; any
// generation's *Backend for the same address matches), or whose half-open
// breaker refuses. It returns ErrNoBackend (wrapped with the upstream name)
// when nothing is available. The caller must call Done on the attempt.
func (p *Pool) Acquire(hashKey string, exclude []*Backend) (*Attempt, error) {
	a := &Attempt{pool: p}
	a.selection = selection{exclude: exclude}
	a.selection.refused = a.selection.refusedBuf[:0]
	// Each round either admits a backend or adds one to refused, so the
	// loop ends after at most one round per member.
	for range len(p.members) {
		b := p.strategy.Pick(&a.selection, hashKey)
		if b == nil {
			break
		}
		done, err := b.breaker.cb.Allow()
		if err != nil {
			a.selection.refused = append(a.selection.refused, b)
			continue
		}
		b.state.requests.Add(1)
		b.state.active.Add(1)
		a.backend = b
		a.breakerDone = done
		a.selection = selection{}
		return a, nil
	}
	return nil, fmt.Errorf("upstream %q: %w", p.name, ErrNoBackend)
}

// selection is the Availability of one Acquire call.
type selection struct {
	exclude    []*Backend
	refused    []*Backend // picked, but the half-open breaker refused
	refusedBuf [2]*Backend
}

// Available implements Availability.
func (s *selection) Available(b *Backend) bool {
	if !b.Available() {
		return false
	}
	for _, e := range s.exclude {
		if b.sameAs(e) {
			return false
		}
	}
	for _, r := range s.refused {
		if b == r {
			return false
		}
	}
	return true
}

// Attempt is one admitted request or connection on one backend.
type Attempt struct {
	pool        *Pool
	backend     *Backend
	breakerDone func(error)
	ended       atomic.Bool
	settled     atomic.Bool // outcome reported (by Settle or Done)
	selection   selection   // used only while Acquire runs
}

// Backend returns the backend the attempt was admitted on.
func (a *Attempt) Backend() *Backend { return a.backend }

// Done ends the attempt: it updates the breaker, the active count, the
// failure counter, passive health and the latency estimate. Only the first
// call counts; later ones are ignored. Canceled (and any unknown outcome)
// counts neither as success nor as failure.
func (a *Attempt) Done(outcome Outcome, latency time.Duration) {
	if !a.ended.CompareAndSwap(false, true) {
		return
	}
	a.backend.state.active.Add(-1)
	a.settle(outcome, latency)
}

// Settle reports the outcome to the breaker, passive health and the
// latency estimate now, while the attempt stays in flight (it still counts
// as an active connection until Done). Long-lived sessions use it once they
// are connected: a half-open breaker's probe is then decided by the connect,
// not held until the session ends. Done after Settle only ends the attempt;
// a second Settle does nothing.
func (a *Attempt) Settle(outcome Outcome, latency time.Duration) {
	if a.ended.Load() {
		return
	}
	a.settle(outcome, latency)
}

func (a *Attempt) settle(outcome Outcome, latency time.Duration) {
	if !a.settled.CompareAndSwap(false, true) {
		return
	}
	state := a.backend.state
	switch outcome {
	case Success:
		a.breakerDone(nil)
		state.passiveSuccess()
		state.observeLatency(latency, a.pool.now(), false)
	case Failure:
		state.failures.Add(1)
		a.breakerDone(errAttemptFailed)
		state.passiveSuccess() // it answered: reachable
		state.observeLatency(latency, a.pool.now(), true)
	case Unreachable:
		state.failures.Add(1)
		a.breakerDone(errAttemptFailed)
		state.passiveFailure(a.pool.passiveThreshold)
		state.observeLatency(latency, a.pool.now(), true)
	default:
		a.breakerDone(errAttemptCanceled)
	}
}
