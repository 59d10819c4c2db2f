package upstream

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// Strategy picks one backend for the next request among a pool's members
// (fixed when the strategy is built). It returns nil when no member is
// available. Implementations are safe for concurrent use; they never look
// at the request itself, only at the small hashKey the listener extracted.
type Strategy interface {
	Pick(available Availability, hashKey string) *Backend
}

// Availability reports whether a backend may take the next request. Pool
// passes one that combines health, breaker state and the caller's
// exclusions; an interface (rather than a func) lets Acquire pass a pointer
// it already allocated instead of a fresh closure per call.
type Availability interface {
	Available(b *Backend) bool
}

// AvailableFunc adapts a function to Availability.
type AvailableFunc func(b *Backend) bool

// Available calls f(b).
func (f AvailableFunc) Available(b *Backend) bool { return f(b) }

// Rand is the randomness strategies draw from. It must be safe for
// concurrent use. IntN returns a value in [0, n) for n > 0.
type Rand interface {
	IntN(n int) int
}

// StrategyEnv carries what a strategy may need besides its members.
type StrategyEnv struct {
	Rand Rand             // nil: DefaultRand
	Now  func() time.Time // nil: time.Now
}

// StrategyFactory builds a strategy over a fixed member list.
type StrategyFactory func(members []Member, env StrategyEnv) Strategy

// Strategy names as used by the strategy attribute of an upstream block.
const (
	StrategyRoundRobin     = "round_robin"
	StrategyLeastConn      = "least_conn"
	StrategyRandom         = "random"
	StrategyP2C            = "p2c"
	StrategyConsistentHash = "consistent_hash"
	StrategyLeastLatency   = "least_latency"
)

// strategyFactories is the name → constructor table. It is never modified.
var strategyFactories = map[string]StrategyFactory{
	StrategyRoundRobin:     newRoundRobin,
	StrategyLeastConn:      newLeastConn,
	StrategyRandom:         newRandom,
	StrategyP2C:            newP2C,
	StrategyConsistentHash: newConsistentHash,
	StrategyLeastLatency:   newLeastLatency,
}

// StrategyNames returns the valid strategy names, sorted, for validation and
// error messages.
func StrategyNames() []string {
	names := make([]string, 0, len(strategyFactories))
	for name := range strategyFactories {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// NewStrategy builds the named strategy over members. An unknown name is an
// error listing the valid names.
func NewStrategy(name string, members []Member, env StrategyEnv) (Strategy, error) {
	factory, ok := strategyFactories[name]
	if !ok {
		return nil, fmt.Errorf("unknown strategy %q (valid: %s)", name, strings.Join(StrategyNames(), ", "))
	}
	if env.Rand == nil {
		env.Rand = DefaultRand()
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	return factory(members, env), nil
}

// DefaultRand returns randomness backed by math/rand/v2's top-level
// functions: concurrency-safe and lock-free, seeded by the runtime.
func DefaultRand() Rand { return runtimeRand{} }

type runtimeRand struct{}

func (runtimeRand) IntN(n int) int { return rand.IntN(n) }

// SeededRand returns deterministic, concurrency-safe randomness for tests
// and reproducible runs.
func SeededRand(seed uint64) Rand {
	return &lockedRand{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

type lockedRand struct {
	mu sync.Mutex // guards r, which is not safe for concurrent use
	r  *rand.Rand
}

func (l *lockedRand) IntN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

// Interface guards.
var (
	_ Strategy = (*roundRobin)(nil)
	_ Strategy = (*leastConn)(nil)
	_ Strategy = (*weightedRandom)(nil)
	_ Strategy = (*p2c)(nil)
	_ Strategy = (*consistentHash)(nil)
	_ Strategy = (*leastLatency)(nil)
)

// lessLoaded reports whether load a/wa is strictly below load b/wb, by
// cross-multiplication so integer loads compare exactly.
func lessLoaded(a int64, wa int, b int64, wb int) bool {
	return a*int64(wb) < b*int64(wa)
}

// weightedPick draws an available member with probability proportional to
// its weight, skipping skip (may be nil). Two passes over the members: if
// availability changes between them, the last available member seen wins.
func weightedPick(members []Member, available Availability, rnd Rand, skip *Backend) *Backend {
	total := 0
	for _, m := range members {
		if m.Backend != skip && available.Available(m.Backend) {
			total += m.Weight
		}
	}
	if total == 0 {
		return nil
	}
	r := rnd.IntN(total)
	var last *Backend
	for _, m := range members {
		if m.Backend == skip || !available.Available(m.Backend) {
			continue
		}
		last = m.Backend
		if r < m.Weight {
			return m.Backend
		}
		r -= m.Weight
	}
	return last
}
