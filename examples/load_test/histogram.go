package main

import (
	"math"
	"math/bits"
	"time"
)

// histogram records latencies in log-linear buckets: values below 128ns are
// exact, larger ones keep their top 7 significant bits, so any reported
// percentile is within 1/64 (about 1.6%) of a recorded value. Memory is fixed
// (about 30 KiB) however long the run, unlike keeping every sample.
// A histogram is owned by one goroutine; merge combines them afterwards.
type histogram struct {
	counts [histogramBuckets]uint64
	total  uint64
	max    time.Duration
}

const (
	mantissaBits     = 7
	subBuckets       = 1 << (mantissaBits - 1) // buckets per power of two above the exact range
	exactBelow       = 1 << mantissaBits
	histogramBuckets = (64-mantissaBits+1)*subBuckets + subBuckets
)

func bucketOf(v uint64) int {
	if v < exactBelow {
		return int(v)
	}
	shift := bits.Len64(v) - mantissaBits
	return shift*subBuckets + int(v>>shift)
}

// bucketMidpoint is the value a bucket reports: the middle of its range.
func bucketMidpoint(i int) uint64 {
	if i < exactBelow {
		return uint64(i)
	}
	shift := i/subBuckets - 1
	mantissa := uint64(i%subBuckets + subBuckets)
	low := mantissa << shift
	return low + (uint64(1)<<shift)/2
}

func (h *histogram) record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(uint64(d))]++
	h.total++
	h.max = max(h.max, d)
}

func (h *histogram) merge(other *histogram) {
	for i, c := range other.counts {
		h.counts[i] += c
	}
	h.total += other.total
	h.max = max(h.max, other.max)
}

// percentile returns the latency below which a fraction q of the recorded
// values fall (nearest rank), or 0 when nothing was recorded.
func (h *histogram) percentile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			// The midpoint may overshoot the largest value in the top bucket.
			return min(time.Duration(bucketMidpoint(i)), h.max)
		}
	}
	return h.max
}
