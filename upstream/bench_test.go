package upstream

import (
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// BenchmarkAcquire measures Acquire+Done on a healthy 4-backend pool, one
// goroutine (serial) and GOMAXPROCS goroutines (parallel).
func BenchmarkAcquire(b *testing.B) {
	for _, strategy := range allStrategies {
		cfg := poolConfig("bench", strategy, 3, 1, 2, 1)
		p, err := NewRegistry(hclog.NewNullLogger()).NewPool(cfg)
		if err != nil {
			b.Fatal(err)
		}
		keys := hashKeys(1024)
		b.Run(strategy, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				a, err := p.Acquire(keys[i&1023], nil)
				if err != nil {
					b.Fatal(err)
				}
				a.Done(Success, time.Millisecond)
				i++
			}
		})
		b.Run(strategy+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					a, err := p.Acquire(keys[i&1023], nil)
					if err != nil {
						b.Error(err)
						return
					}
					a.Done(Success, time.Millisecond)
					i++
				}
			})
		})
	}
}
