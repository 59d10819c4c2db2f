package upstream

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// roundRobin is nginx's smooth weighted round robin: every pick adds each
// available member's weight to its current score, takes the highest score
// and subtracts the total from it. Weights 3:1 give a a b a, never a burst
// of more than the weight in a row. Unavailable (or already tried) members
// sit the round out, exactly as nginx skips down and tried peers.
type roundRobin struct {
	members []Member
	mu      sync.Mutex // guards current
	current []int64
}

func newRoundRobin(members []Member, _ StrategyEnv) Strategy {
	return &roundRobin{members: members, current: make([]int64, len(members))}
}

func (s *roundRobin) Pick(available Availability, _ string) *Backend {
	s.mu.Lock()
	defer s.mu.Unlock()
	var total int64
	best := -1
	for i, m := range s.members {
		if !available.Available(m.Backend) {
			continue
		}
		s.current[i] += int64(m.Weight)
		total += int64(m.Weight)
		if best < 0 || s.current[i] > s.current[best] {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	s.current[best] -= total
	return s.members[best].Backend
}

// leastConn picks the member with the fewest active requests per unit of
// weight (active/weight, as nginx). Ties, including the all-idle case, are
// broken by weighted random choice among the tied members, so an idle or
// evenly loaded pool still shares traffic in proportion to the weights.
type leastConn struct {
	members []Member
	rnd     Rand
}

func newLeastConn(members []Member, env StrategyEnv) Strategy {
	return &leastConn{members: members, rnd: env.Rand}
}

func (s *leastConn) Pick(available Availability, _ string) *Backend {
	var best *Backend
	var bestLoad int64
	tiedWeight := 0
	for _, m := range s.members {
		b := m.Backend
		if !available.Available(b) {
			continue
		}
		load := b.ActiveConnections()
		switch {
		case best == nil || lessLoaded(load, b.weight, bestLoad, best.weight):
			best, bestLoad, tiedWeight = b, load, b.weight
		case !lessLoaded(bestLoad, best.weight, load, b.weight):
			// A tie: weighted reservoir sampling keeps each tied member
			// with probability weight/tiedWeight.
			tiedWeight += b.weight
			if s.rnd.IntN(tiedWeight) < b.weight {
				best, bestLoad = b, load
			}
		}
	}
	return best
}

// weightedRandom picks an available member with probability proportional to
// its weight.
type weightedRandom struct {
	members []Member
	rnd     Rand
}

func newRandom(members []Member, env StrategyEnv) Strategy {
	return &weightedRandom{members: members, rnd: env.Rand}
}

func (s *weightedRandom) Pick(available Availability, _ string) *Backend {
	return weightedPick(s.members, available, s.rnd, nil)
}

// p2c is the power of two random choices: draw two distinct members
// (weighted), send to the one with the lower active/weight, the first drawn
// on a tie (so an idle pool splits by weight). It avoids least_conn's
// herding onto one momentarily idle backend while still steering away from
// loaded ones.
type p2c struct {
	members []Member
	rnd     Rand
}

func newP2C(members []Member, env StrategyEnv) Strategy {
	return &p2c{members: members, rnd: env.Rand}
}

func (s *p2c) Pick(available Availability, _ string) *Backend {
	first := weightedPick(s.members, available, s.rnd, nil)
	if first == nil {
		return nil
	}
	second := weightedPick(s.members, available, s.rnd, first)
	if second == nil {
		return first
	}
	if lessLoaded(second.ActiveConnections(), second.weight, first.ActiveConnections(), first.weight) {
		return second
	}
	return first
}

// consistentHash is weighted rendezvous (highest random weight) hashing:
// every member scores weight / -ln(u) with u uniform in (0,1) derived from
// hash(key, member), the highest available score wins. Removing a member
// moves only the keys it owned; an unavailable member's keys go to their
// second-best member. An empty key (e.g. the header is missing) would pin
// all such requests to one backend, so it falls back to weighted random.
type consistentHash struct {
	members  []Member
	nodeHash []uint64
	uniform  bool // all weights equal: compare raw hashes, skip the logarithm
	rnd      Rand
}

func newConsistentHash(members []Member, env StrategyEnv) Strategy {
	s := &consistentHash{members: members, nodeHash: make([]uint64, len(members)), uniform: true, rnd: env.Rand}
	for i, m := range members {
		s.nodeHash[i] = mix64(hashString(m.Backend.Address()))
		if m.Weight != members[0].Weight {
			s.uniform = false
		}
	}
	return s
}

func (s *consistentHash) Pick(available Availability, hashKey string) *Backend {
	if hashKey == "" {
		return weightedPick(s.members, available, s.rnd, nil)
	}
	keyHash := hashString(hashKey)
	var best *Backend
	var bestRaw uint64
	bestScore := math.Inf(-1)
	for i, m := range s.members {
		if !available.Available(m.Backend) {
			continue
		}
		raw := mix64(keyHash ^ s.nodeHash[i])
		if s.uniform {
			if best == nil || raw > bestRaw {
				best, bestRaw = m.Backend, raw
			}
			continue
		}
		u := (float64(raw>>11) + 0.5) / (1 << 53)
		score := float64(m.Weight) / -math.Log(u)
		if best == nil || score > bestScore {
			best, bestScore = m.Backend, score
		}
	}
	return best
}

// hashString is 64-bit FNV-1a, inlined to avoid hash.Hash allocations.
func hashString(s string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return h
}

// mix64 is the splitmix64 finalizer: FNV's low bits are weak and XOR of two
// FNV hashes is far from uniform, so every score goes through it.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// unprobedPenalty is the cost of a backend with requests in flight but no
// latency sample yet (Finagle's penalty): it got its first request because
// it was unprobed, and must not take all the others before that one answers.
const unprobedPenalty = float64(math.MaxInt64 >> 16)

// leastLatency picks the member with the lowest peak-EWMA cost
// (latency estimate × (active+1) / weight), as Finagle and linkerd do.
// Unprobed idle members cost 0, so new backends get tried first; estimates
// decay towards 0 while a member is not picked, so a backend that was slow
// gets probed again after a while instead of being starved forever.
type leastLatency struct {
	members []Member
	next    atomic.Uint32
	now     func() time.Time
}

func newLeastLatency(members []Member, env StrategyEnv) Strategy {
	return &leastLatency{members: members, now: env.Now}
}

func (s *leastLatency) Pick(available Availability, _ string) *Backend {
	n := len(s.members)
	if n == 0 {
		return nil
	}
	now := s.now()
	start := int(s.next.Add(1) % uint32(n))
	var best *Backend
	bestCost := math.Inf(1)
	for k := range n {
		b := s.members[(start+k)%n].Backend
		if !available.Available(b) {
			continue
		}
		cost := b.latencyCost(now) / float64(b.weight)
		if best == nil || cost < bestCost {
			best, bestCost = b, cost
		}
	}
	return best
}
