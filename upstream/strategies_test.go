package upstream

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStrategyNamesAndUnknownStrategy(t *testing.T) {
	want := []string{"consistent_hash", "least_conn", "least_latency", "p2c", "random", "round_robin"}
	if got := StrategyNames(); !slices.Equal(got, want) {
		t.Fatalf("StrategyNames() = %v, want %v", got, want)
	}
	_, err := testRegistry(nil).NewPool(poolConfig("api", "fastest", 1))
	if err == nil {
		t.Fatal("unknown strategy accepted")
	}
	for _, name := range want {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not list %q", err, name)
		}
	}
	if !strings.Contains(err.Error(), `upstream "api"`) {
		t.Errorf("error %q does not name the upstream", err)
	}
}

func TestRoundRobinSmoothWeighted(t *testing.T) {
	p := mustPool(t, testRegistry(nil), poolConfig("rr", StrategyRoundRobin, 5, 1, 1))
	a, b, c := addrs(3)[0], addrs(3)[1], addrs(3)[2]
	// nginx's documented sequence for weights 5:1:1.
	want := []string{a, a, b, a, c, a, a}
	for round := range 3 {
		for i, w := range want {
			if got := pickOnce(t, p, ""); got != w {
				t.Fatalf("round %d pick %d = %s, want %s", round, i, got, w)
			}
		}
	}
}

func TestRoundRobinExactAndNoLongRuns(t *testing.T) {
	p := mustPool(t, testRegistry(nil), poolConfig("rr", StrategyRoundRobin, 3, 1))
	heavy := addrs(2)[0]
	counts := map[string]int{}
	run, maxRun, prev := 0, 0, ""
	for range 4000 {
		got := pickOnce(t, p, "")
		counts[got]++
		if got == prev {
			run++
		} else {
			run = 1
		}
		prev = got
		if got == heavy {
			maxRun = max(maxRun, run)
		} else if run > 1 {
			t.Fatalf("weight-1 backend picked %d times in a row", run)
		}
	}
	if counts[heavy] != 3000 {
		t.Fatalf("counts = %v, want exactly 3000:1000", counts)
	}
	if maxRun > 3 {
		t.Fatalf("weight-3 backend picked %d times in a row, want at most 3", maxRun)
	}
}

func TestRoundRobinConcurrentExact(t *testing.T) {
	p := mustPool(t, testRegistry(nil), poolConfig("rr", StrategyRoundRobin, 3, 1))
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			local := map[string]int{}
			for range 500 {
				a, err := p.Acquire("", nil)
				if err != nil {
					t.Error(err)
					return
				}
				local[a.Backend().Address()]++
				a.Done(Success, 0)
			}
			mu.Lock()
			defer mu.Unlock()
			for k, v := range local {
				counts[k] += v
			}
		})
	}
	wg.Wait()
	if counts[addrs(2)[0]] != 3000 || counts[addrs(2)[1]] != 1000 {
		t.Fatalf("counts = %v, want exactly 3000:1000", counts)
	}
}

// assertShare fails unless got/total is within tol of want.
func assertShare(t *testing.T, what string, got, total int, want, tol float64) {
	t.Helper()
	share := float64(got) / float64(total)
	if math.Abs(share-want) > tol {
		t.Errorf("%s: share %.4f (%d/%d), want %.3f±%.3f", what, share, got, total, want, tol)
	}
}

func TestRandomWeighted(t *testing.T) {
	p := mustPool(t, testRegistry(nil), poolConfig("rnd", StrategyRandom, 3, 1))
	const n = 40000
	counts := countPicks(t, p, n, nil)
	// Binomial sd at 40k picks is ~0.0022: ±0.015 is ~7 sd, and an
	// unweighted pick (0.5) is far outside.
	assertShare(t, "weight 3 of 4", counts[addrs(2)[0]], n, 0.75, 0.015)
}

func TestLeastConnPicksLeastLoaded(t *testing.T) {
	p := mustPool(t, testRegistry(nil), poolConfig("lc", StrategyLeastConn, 1, 1, 1))
	a, b, c := member(p, 0), member(p, 1), member(p, 2)
	var held []*Attempt
	held = append(held, acquireOn(t, p, a), acquireOn(t, p, a), acquireOn(t, p, b))
	for range 20 {
		if got := pickOnce(t, p, ""); got != c.Address() {
			t.Fatalf("picked %s with loads a=2 b=1 c=0, want c", got)
		}
	}
	held = append(held, acquireOn(t, p, c), acquireOn(t, p, c))
	for range 20 {
		if got := pickOnce(t, p, ""); got != b.Address() {
			t.Fatalf("picked %s with loads a=2 b=1 c=2, want b", got)
		}
	}
	for _, h := range held {
		h.Done(Success, 0)
	}
}

func TestLeastConnWeightAware(t *testing.T) {
	p := mustPool(t, testRegistry(nil), poolConfig("lc", StrategyLeastConn, 2, 1, 1))
	// Filling the pool without finishing anything must spread the load in
	// proportion to the weights.
	var held []*Attempt
	counts := map[string]int{}
	for range 40 {
		a, err := p.Acquire("", nil)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, a)
		counts[a.Backend().Address()]++
	}
	if counts[addrs(3)[0]] != 20 || counts[addrs(3)[1]] != 10 || counts[addrs(3)[2]] != 10 {
		t.Fatalf("in-flight counts = %v, want 20:10:10", counts)
	}
	for _, h := range held {
		h.Done(Success, 0)
	}
	// Idle pool: ties are broken by weight.
	const n = 20000
	counts = countPicks(t, p, n, nil)
	assertShare(t, "idle weight 2 of 4", counts[addrs(3)[0]], n, 0.5, 0.02)
}

func TestP2CPrefersLessLoaded(t *testing.T) {
	p := mustPool(t, testRegistry(nil), poolConfig("p2c", StrategyP2C, 1, 1, 1, 1))
	loaded := member(p, 0)
	var held []*Attempt
	for range 5 {
		held = append(held, acquireOn(t, p, loaded))
	}
	const n = 4000
	counts := countPicks(t, p, n, nil)
	if counts[loaded.Address()] != 0 {
		t.Fatalf("loaded backend got %d picks, want 0 (it always loses its duel)", counts[loaded.Address()])
	}
	for _, a := range addrs(4)[1:] {
		assertShare(t, "idle backend "+a, counts[a], n, 1.0/3, 0.04)
	}
	for _, h := range held {
		h.Done(Success, 0)
	}
	// Two backends: every duel is between both, so the less loaded wins
	// whatever the draw.
	p2 := mustPool(t, testRegistry(nil), poolConfig("p2c2", StrategyP2C, 1, 1))
	h := acquireOn(t, p2, member(p2, 1))
	defer h.Done(Success, 0)
	for range 200 {
		if got := pickOnce(t, p2, ""); got != member(p2, 0).Address() {
			t.Fatalf("p2c picked the loaded backend %s", got)
		}
	}
}

func TestP2CIdleSplitsByWeight(t *testing.T) {
	p := mustPool(t, testRegistry(nil), poolConfig("p2c", StrategyP2C, 3, 1))
	const n = 20000
	counts := countPicks(t, p, n, nil)
	assertShare(t, "idle weight 3 of 4", counts[addrs(2)[0]], n, 0.75, 0.02)
}

func hashKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	}
	return keys
}

func TestConsistentHashStableAndMinimalRemap(t *testing.T) {
	r := testRegistry(nil)
	five := mustPool(t, r, poolConfig("ch", StrategyConsistentHash, 1, 1, 1, 1, 1))
	keys := hashKeys(10000)
	before := make(map[string]string, len(keys))
	perBackend := map[string]int{}
	for _, k := range keys {
		before[k] = pickOnce(t, five, k)
		perBackend[before[k]]++
	}
	for _, a := range addrs(5) {
		assertShare(t, "key share of "+a, perBackend[a], len(keys), 0.2, 0.03)
	}
	for _, k := range keys[:1000] {
		if got := pickOnce(t, five, k); got != before[k] {
			t.Fatalf("key %s moved from %s to %s without any change", k, before[k], got)
		}
	}

	cfg := poolConfig("ch", StrategyConsistentHash, 1, 1, 1, 1, 1)
	removed := cfg.Backends[2].Address
	cfg.Backends = slices.Delete(cfg.Backends, 2, 3)
	four := mustPool(t, r, cfg)
	moved := 0
	for _, k := range keys {
		got := pickOnce(t, four, k)
		if got == before[k] {
			continue
		}
		moved++
		if before[k] != removed {
			t.Fatalf("key %s moved from remaining backend %s to %s", k, before[k], got)
		}
	}
	if frac := float64(moved) / float64(len(keys)); frac > 0.30 || frac < 0.10 {
		t.Fatalf("removing 1 of 5 backends remapped %.3f of keys, want ~0.2 (< 0.30)", frac)
	}
}

func TestConsistentHashWeightedAndFallbacks(t *testing.T) {
	r := testRegistry(nil)
	p := mustPool(t, r, poolConfig("chw", StrategyConsistentHash, 2, 1))
	keys := hashKeys(10000)
	counts := map[string]int{}
	for _, k := range keys {
		counts[pickOnce(t, p, k)]++
	}
	assertShare(t, "keys on weight 2 of 3", counts[addrs(2)[0]], len(keys), 2.0/3, 0.03)

	// An excluded backend's keys go to another; the others' keys stay.
	p3 := mustPool(t, r, poolConfig("ch3", StrategyConsistentHash, 1, 1, 1))
	first := member(p3, 0)
	for _, k := range keys[:2000] {
		home := pickOnce(t, p3, k)
		got := pickOnce(t, p3, k, first)
		if got == first.Address() {
			t.Fatalf("excluded backend picked for %s", k)
		}
		if home != first.Address() && got != home {
			t.Fatalf("key %s moved from %s to %s although its backend is available", k, home, got)
		}
	}

	// No key: spread (weighted random) instead of pinning to one backend.
	empty := countPicks(t, p3, 3000, nil)
	for _, a := range addrs(3) {
		assertShare(t, "empty-key share of "+a, empty[a], 3000, 1.0/3, 0.06)
	}
}

func TestLeastLatency(t *testing.T) {
	clock := newFakeClock()
	p := mustPool(t, testRegistry(clock), poolConfig("ll", StrategyLeastLatency, 1, 1))
	slow, fast := member(p, 0), member(p, 1)

	// Unprobed backends go first, and an unprobed one with a request in
	// flight is not sent a second one before it answers.
	a1, err := p.Acquire("", nil)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := p.Acquire("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a1.Backend() == a2.Backend() {
		t.Fatalf("both unprobed picks went to %s", a1.Backend().Address())
	}
	for _, a := range []*Attempt{a1, a2} {
		lat := 2 * time.Millisecond
		if a.Backend() == slow {
			lat = 50 * time.Millisecond
		}
		a.Done(Success, lat)
	}

	latency := map[*Backend]time.Duration{slow: 50 * time.Millisecond, fast: 2 * time.Millisecond}
	counts := map[*Backend]int{}
	for range 1000 {
		a, err := p.Acquire("", nil)
		if err != nil {
			t.Fatal(err)
		}
		counts[a.Backend()]++
		clock.Advance(time.Millisecond)
		a.Done(Success, latency[a.Backend()])
	}
	if counts[fast] < 950 {
		t.Fatalf("fast backend got %d of 1000 picks, want >= 950", counts[fast])
	}

	// A backend left alone long enough decays and is probed again.
	clock.Advance(2 * time.Minute)
	for range 5 {
		a := acquireOn(t, p, fast)
		a.Done(Success, 2*time.Millisecond)
	}
	if got := pickOnce(t, p, ""); got != slow.Address() {
		t.Fatalf("after 2 idle minutes the slow backend was not re-probed (picked %s)", got)
	}
	if est := slow.LatencyEstimate(); est > 2*time.Millisecond {
		t.Fatalf("slow estimate after re-probe %v, want decayed towards 0 then ~1ms", est)
	}
}

func TestLeastLatencyCountsInFlight(t *testing.T) {
	clock := newFakeClock()
	p := mustPool(t, testRegistry(clock), poolConfig("ll", StrategyLeastLatency, 1, 1))
	a, b := member(p, 0), member(p, 1)
	acquireOn(t, p, a).Done(Success, 10*time.Millisecond)
	acquireOn(t, p, b).Done(Success, 15*time.Millisecond)
	// a is faster, but with 2 in flight its cost (10ms*3) exceeds b's (15ms).
	h1, h2 := acquireOn(t, p, a), acquireOn(t, p, a)
	if got := pickOnce(t, p, ""); got != b.Address() {
		t.Fatalf("picked %s, want %s (a has 2 in flight)", got, b.Address())
	}
	h1.Done(Canceled, 0)
	h2.Done(Canceled, 0)
	if got := pickOnce(t, p, ""); got != a.Address() {
		t.Fatalf("picked %s, want the faster idle %s", got, a.Address())
	}
}
