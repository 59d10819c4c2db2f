package upstream

import (
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Registry keeps backend state keyed by (upstream name, address) across
// config generations. It is safe for concurrent use.
type Registry struct {
	log     hclog.Logger
	now     func() time.Time
	newRand func() Rand

	mu      sync.Mutex // guards entries
	entries map[backendKey]*registryEntry
}

type backendKey struct {
	upstream string
	address  string
}

// registryEntry is the state of one (upstream, address) and the breakers
// live pools use for it. Two generations may briefly differ in breaker
// settings (the old one drains while the new one serves), so breakers are
// keyed by their settings and pruned by Retain.
type registryEntry struct {
	state    *backendState
	breakers map[BreakerConfig]*breaker
}

// Option configures a Registry.
type Option func(*Registry)

// WithClock sets the clock used for passive-health cooldowns and latency
// estimates (default time.Now). Breakers always use the wall clock.
func WithClock(now func() time.Time) Option {
	return func(r *Registry) { r.now = now }
}

// WithRand sets how each new pool gets its randomness (default DefaultRand).
func WithRand(newRand func() Rand) Option {
	return func(r *Registry) { r.newRand = newRand }
}

// NewRegistry returns an empty registry.
func NewRegistry(log hclog.Logger, opts ...Option) *Registry {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	r := &Registry{
		log:     log,
		now:     time.Now,
		newRand: DefaultRand,
		entries: make(map[backendKey]*registryEntry),
	}
	for _, opt := range opts {
		opt(r)
	}
	return r
}

// NewPool builds an immutable Pool for a new config generation, reusing the
// state of every (pool name, address) the registry already has and creating
// the rest (new backends start healthy). It starts nothing. A breaker is
// kept while its settings (after defaults) are unchanged and a fresh, closed
// one is used when they change; the previous generation keeps its own
// breaker until Retain drops it, so building a pool that is never swapped in
// changes nothing for the running one.
func (r *Registry) NewPool(cfg PoolConfig) (*Pool, error) {
	if err := validatePoolConfig(cfg); err != nil {
		return nil, fmt.Errorf("upstream %q: %w", cfg.Name, err)
	}
	hashKind, hashHeader, err := parseHashOn(cfg.Strategy, cfg.HashOn)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", cfg.Name, err)
	}
	breakerCfg := cfg.Breaker.WithDefaults()
	p := &Pool{
		name:             cfg.Name,
		strategyName:     cfg.Strategy,
		hashKind:         hashKind,
		hashHeader:       hashHeader,
		connectTimeout:   cfg.ConnectTimeout,
		passiveThreshold: DefaultPassiveFailures,
		now:              r.now,
	}
	if p.connectTimeout <= 0 {
		p.connectTimeout = DefaultConnectTimeout
	}
	var passiveCooldown time.Duration
	if cfg.HealthCheck != nil {
		hc := cfg.HealthCheck.WithDefaults()
		p.health = &hc
		p.passiveThreshold = hc.UnhealthyThreshold
	} else {
		// Without a checker nothing else would ever revive the backend.
		passiveCooldown = breakerCfg.OpenTimeout
	}

	r.mu.Lock()
	p.members = make([]Member, len(cfg.Backends))
	for i, bc := range cfg.Backends {
		key := backendKey{upstream: cfg.Name, address: bc.Address}
		entry := r.entries[key]
		if entry == nil {
			entry = &registryEntry{
				state:    newBackendState(cfg.Name, bc.Address, r.log, r.now),
				breakers: make(map[BreakerConfig]*breaker),
			}
			r.entries[key] = entry
		}
		br := entry.breakers[breakerCfg]
		if br == nil {
			br = newBreaker(breakerCfg, entry.state)
			entry.breakers[breakerCfg] = br
		}
		weight := max(bc.Weight, 1)
		p.members[i] = Member{
			Backend: &Backend{
				address:         bc.Address,
				weight:          weight,
				state:           entry.state,
				breaker:         br,
				passiveCooldown: passiveCooldown,
				now:             r.now,
			},
			Weight: weight,
		}
	}
	r.mu.Unlock()

	p.strategy, err = NewStrategy(cfg.Strategy, p.members, StrategyEnv{Rand: r.newRand(), Now: r.now})
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", cfg.Name, err)
	}
	return p, nil
}

// Retain drops the state of every (pool, address) not in live, and every
// breaker no live pool uses. Call it after a swap with the pools now serving;
// pools of older generations keep working on the state they hold.
func (r *Registry) Retain(live []*Pool) {
	used := make(map[*breaker]bool)
	keep := make(map[backendKey]bool)
	for _, p := range live {
		for _, m := range p.members {
			keep[backendKey{upstream: p.name, address: m.Backend.address}] = true
			used[m.Backend.breaker] = true
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, entry := range r.entries {
		if !keep[key] {
			delete(r.entries, key)
			continue
		}
		for cfg, br := range entry.breakers {
			if !used[br] {
				delete(entry.breakers, cfg)
			}
		}
	}
}

func validatePoolConfig(cfg PoolConfig) error {
	if cfg.Name == "" {
		return fmt.Errorf("empty upstream name")
	}
	if len(cfg.Backends) == 0 {
		return fmt.Errorf("no backends")
	}
	seen := make(map[string]bool, len(cfg.Backends))
	for _, b := range cfg.Backends {
		if _, _, err := net.SplitHostPort(b.Address); err != nil {
			return fmt.Errorf("backend %q: %w", b.Address, err)
		}
		if seen[b.Address] {
			return fmt.Errorf("backend %q listed twice", b.Address)
		}
		seen[b.Address] = true
		if b.Weight < 0 {
			return fmt.Errorf("backend %q: negative weight %d", b.Address, b.Weight)
		}
	}
	if fr := cfg.Breaker.FailureRatio; fr < 0 || fr > 1 {
		return fmt.Errorf("circuit breaker failure_ratio %v outside [0, 1]", fr)
	}
	return nil
}

// parseHashOn validates hash_on. It is required by consistent_hash and
// ignored (HashNone) by the other strategies.
func parseHashOn(strategy, hashOn string) (HashKind, string, error) {
	if strategy != StrategyConsistentHash {
		return HashNone, "", nil
	}
	switch {
	case hashOn == "client_ip":
		return HashClientIP, "", nil
	case hashOn == "path":
		return HashPath, "", nil
	case strings.HasPrefix(hashOn, "header:"):
		name := strings.TrimSpace(strings.TrimPrefix(hashOn, "header:"))
		if name == "" {
			return HashNone, "", fmt.Errorf("hash_on %q: missing header name", hashOn)
		}
		return HashHeader, textproto.CanonicalMIMEHeaderKey(name), nil
	case hashOn == "":
		return HashNone, "", fmt.Errorf("strategy consistent_hash requires hash_on (client_ip, path or header:NAME)")
	default:
		return HashNone, "", fmt.Errorf("invalid hash_on %q (valid: client_ip, path, header:NAME)", hashOn)
	}
}
