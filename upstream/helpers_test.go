package upstream

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a manually advanced clock for cooldowns and latency decay.
type fakeClock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testRegistry returns a registry with seeded randomness (a fresh seed per
// pool, derived from a counter so runs are reproducible) and the given clock.
func testRegistry(clock *fakeClock) *Registry {
	var mu sync.Mutex
	seed := uint64(0)
	opts := []Option{WithRand(func() Rand {
		mu.Lock()
		defer mu.Unlock()
		seed++
		return SeededRand(seed)
	})}
	if clock != nil {
		opts = append(opts, WithClock(clock.Now))
	}
	return NewRegistry(hclog.NewNullLogger(), opts...)
}

// addrs returns n distinct loopback addresses that are never dialed.
func addrs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("127.0.0.1:%d", 20001+i)
	}
	return out
}

func poolConfig(name, strategy string, weights ...int) PoolConfig {
	cfg := PoolConfig{Name: name, Strategy: strategy}
	if strategy == StrategyConsistentHash {
		cfg.HashOn = "client_ip"
	}
	for i, a := range addrs(len(weights)) {
		cfg.Backends = append(cfg.Backends, BackendConfig{Address: a, Weight: weights[i]})
	}
	return cfg
}

func mustPool(t testing.TB, r *Registry, cfg PoolConfig) *Pool {
	t.Helper()
	p, err := r.NewPool(cfg)
	if err != nil {
		t.Fatalf("NewPool(%s): %v", cfg.Name, err)
	}
	return p
}

// pickOnce acquires and immediately ends an attempt with Success, returning
// the chosen address.
func pickOnce(t testing.TB, p *Pool, key string, exclude ...*Backend) string {
	t.Helper()
	a, err := p.Acquire(key, exclude)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	a.Done(Success, time.Millisecond)
	return a.Backend().Address()
}

func countPicks(t testing.TB, p *Pool, n int, key func(i int) string) map[string]int {
	t.Helper()
	counts := make(map[string]int)
	for i := range n {
		k := ""
		if key != nil {
			k = key(i)
		}
		counts[pickOnce(t, p, k)]++
	}
	return counts
}

func member(p *Pool, i int) *Backend { return p.Members()[i].Backend }

// failTimes admits n attempts on b (only b available) and fails them as
// unreachable, which counts for both the breaker and passive health.
func failTimes(t testing.TB, p *Pool, b *Backend, n int) {
	t.Helper()
	for range n {
		a := acquireOn(t, p, b)
		a.Done(Unreachable, time.Millisecond)
	}
}

// acquireOn admits one attempt on b by excluding every other member.
func acquireOn(t testing.TB, p *Pool, b *Backend) *Attempt {
	t.Helper()
	var others []*Backend
	for _, m := range p.Members() {
		if m.Backend != b {
			others = append(others, m.Backend)
		}
	}
	a, err := p.Acquire("k", others)
	if err != nil {
		t.Fatalf("Acquire on %s: %v", b.Address(), err)
	}
	if a.Backend() != b {
		t.Fatalf("Acquire on %s got %s", b.Address(), a.Backend().Address())
	}
	return a
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func isNoBackend(err error) bool { return errors.Is(err, ErrNoBackend) }
