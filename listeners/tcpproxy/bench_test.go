package tcpproxy

import (
	"io"
	"net"
	"testing"
	"time"

	"switchyard/upstream"
)

// benchTargets returns the echo backend's address and the address of a proxy
// in front of it (round robin over that one backend, idle watch on).
func benchTargets(b *testing.B) map[string]string {
	b.Helper()
	backend, _ := startEcho(b)
	pool := newPool(b, testRegistry(), upstream.StrategyRoundRobin, []string{backend}, nil)
	p := startProxy(b, &Options{Listener: "bench", Pool: pool, IdleTimeout: time.Minute}, 0, nil)
	return map[string]string{"direct": backend, "proxy": p.addr}
}

// BenchmarkForward measures throughput of one long session: every op sends
// a 64 KiB chunk to the echo backend and reads it back concurrently, so
// MB/s counts each direction once.
func BenchmarkForward(b *testing.B) {
	const chunk = 64 << 10
	targets := benchTargets(b)
	for _, name := range []string{"direct", "proxy"} {
		b.Run(name, func(b *testing.B) {
			c := dial(b, targets[name])
			_ = c.SetDeadline(time.Now().Add(time.Minute))
			buf := make([]byte, chunk)
			b.SetBytes(chunk)
			b.ResetTimer()
			writeErr := make(chan error, 1)
			go func() {
				var err error
				for range b.N {
					if _, err = c.Write(buf); err != nil {
						break
					}
				}
				writeErr <- err
			}()
			rbuf := make([]byte, chunk)
			for range b.N {
				if _, err := io.ReadFull(c, rbuf); err != nil {
					b.Fatalf("read: %v", err)
				}
			}
			b.StopTimer()
			if err := <-writeErr; err != nil {
				b.Fatalf("write: %v", err)
			}
			_ = c.Close()
		})
	}
}

// BenchmarkConnect measures connection setup: every op dials, exchanges
// one byte with the echo backend (so the proxied op includes the backend
// dial) and closes.
func BenchmarkConnect(b *testing.B) {
	targets := benchTargets(b)
	for _, name := range []string{"direct", "proxy"} {
		b.Run(name, func(b *testing.B) {
			var one [1]byte
			start := time.Now()
			for range b.N {
				c, err := net.DialTimeout("tcp", targets[name], ioDeadline)
				if err != nil {
					b.Fatalf("dial: %v", err)
				}
				_ = c.SetDeadline(time.Now().Add(ioDeadline))
				if _, err := c.Write(one[:]); err != nil {
					b.Fatalf("write: %v", err)
				}
				if _, err := io.ReadFull(c, one[:]); err != nil {
					b.Fatalf("read: %v", err)
				}
				_ = c.Close()
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "conns/s")
		})
	}
}
