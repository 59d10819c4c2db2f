package upstream

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// errAttemptFailed and errAttemptCanceled are what Attempt.Done reports to
// the breaker; canceled attempts are excluded from its counts.
var (
	errAttemptFailed   = errors.New("attempt failed")
	errAttemptCanceled = errors.New("attempt canceled")
)

// breaker wraps one gobreaker two-step breaker with a lock-free view of
// whether it is open, so strategies can skip open backends without taking
// the breaker's mutex for every candidate.
type breaker struct {
	cfg BreakerConfig // with defaults applied; the registry keys breakers by it
	cb  *gobreaker.TwoStepCircuitBreaker[struct{}]
	// open and openUntil mirror the breaker's open state (set from
	// OnStateChange). Once openUntil has passed the backend is offered
	// again and Allow moves the breaker to half-open.
	open      atomic.Bool
	openUntil atomic.Int64 // unix nanos, wall clock as gobreaker uses
}

func newBreaker(cfg BreakerConfig, state *backendState) *breaker {
	br := &breaker{cfg: cfg}
	br.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         state.upstream + "/" + state.address,
		MaxRequests:  uint32(cfg.HalfOpenRequests),
		Interval:     BreakerWindow,
		BucketPeriod: BreakerBucket,
		Timeout:      cfg.OpenTimeout,
		ReadyToTrip:  cfg.readyToTrip,
		IsExcluded:   func(err error) bool { return errors.Is(err, errAttemptCanceled) },
		// Called with the breaker's mutex held: must not call back into cb.
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				br.openUntil.Store(time.Now().Add(cfg.OpenTimeout).UnixNano())
			}
			br.open.Store(to == gobreaker.StateOpen)
			state.breakerTransitions.Add(1)
			if to == gobreaker.StateOpen {
				state.log.Warn("circuit breaker opened", "from", from.String(), "open_timeout", cfg.OpenTimeout)
			} else {
				state.log.Info("circuit breaker state changed", "from", from.String(), "to", to.String())
			}
		},
	})
	return br
}

// readyToTrip implements the breaker's trip rule. The ratio is taken over
// completed (non-excluded) requests in the window: counting in-flight ones
// would dilute it under load.
func (c BreakerConfig) readyToTrip(counts gobreaker.Counts) bool {
	if int(counts.ConsecutiveFailures) >= c.ConsecutiveFailures {
		return true
	}
	completed := counts.TotalSuccesses + counts.TotalFailures
	if completed == 0 || int(completed) < c.MinRequests {
		return false
	}
	return float64(counts.TotalFailures)/float64(completed) >= c.FailureRatio
}

// refusing reports whether the breaker is open and its open timeout has not
// passed yet.
func (br *breaker) refusing() bool {
	return br.open.Load() && time.Now().UnixNano() < br.openUntil.Load()
}
