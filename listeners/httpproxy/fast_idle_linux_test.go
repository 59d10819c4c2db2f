package httpproxy

import (
	"bufio"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// TestFastIdleConnectionsPinNothing: keep-alive connections that finished
// a request and went idle hold no goroutine and no buffer in the fast
// engine. 1,000 of them must not add goroutines, and the heap and stacks of
// the whole process (clients included) must grow by well under 4 KiB each.
func TestFastIdleConnectionsPinNothing(t *testing.T) {
	if testEngine() != EngineFast {
		t.Skip("fast engine property")
	}
	const conns = 1000
	srv := startProxy(t, staticOptions("ok"), Settings{MaxConnections: 2 * conns}, nil)
	if _, fast := srv.(*FastServer); !fast {
		t.Skip("the fast engine is not available here")
	}

	measure := func() (goroutines int, bytes uint64) {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapInuse + ms.StackInuse
	}
	// One connection first, so worker goroutines and pools exist before the
	// baseline.
	warm := dialAndServe(t, srv.Addr().String())
	defer warm.Close()
	g0, b0 := measure()

	clients := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for range conns {
		clients = append(clients, dialAndServe(t, srv.Addr().String()))
	}
	eventually(t, "every connection accepted", func() bool { return srv.ActiveConnections() == conns+1 })
	g1, b1 := measure()

	// Workers that served the burst of first requests retire within a few
	// sweeps; goroutines of earlier tests may still be ending too.
	deadline := time.Now().Add(testDeadline)
	for extra := g1 - g0; extra > 20; extra = runtime.NumGoroutine() - g0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle connections added %d goroutines; the fast engine parks idle connections without one", conns, extra)
		}
		time.Sleep(20 * time.Millisecond)
	}
	perConn := float64(int64(b1)-int64(b0)) / conns
	t.Logf("heap+stack per idle connection, client side included: %.0f bytes", perConn)
	if perConn > 4096 {
		t.Errorf("heap+stack per idle connection %.0f bytes, want well under 4 KiB", perConn)
	}
}

// dialAndServe opens a keep-alive connection, completes one request on it
// and leaves it idle.
func dialAndServe(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: idle\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 512), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return c
}
