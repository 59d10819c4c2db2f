package tcpproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"switchyard/builtin/echo"
	"switchyard/upstream"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ioDeadline bounds every socket operation in these tests.
const ioDeadline = 10 * time.Second

// testRegistry returns a registry with seeded randomness, one seed per pool,
// so strategy choices are reproducible.
func testRegistry() *upstream.Registry {
	var mu sync.Mutex
	seed := uint64(0)
	return upstream.NewRegistry(hclog.NewNullLogger(), upstream.WithRand(func() upstream.Rand {
		mu.Lock()
		defer mu.Unlock()
		seed++
		return upstream.SeededRand(seed)
	}))
}

// newPool builds a pool named "up" over addrs; tweak may adjust the config.
func newPool(t testing.TB, reg *upstream.Registry, strategy string, addrs []string, tweak func(*upstream.PoolConfig)) *upstream.Pool {
	t.Helper()
	cfg := upstream.PoolConfig{Name: "up", Strategy: strategy}
	if strategy == upstream.StrategyConsistentHash {
		cfg.HashOn = "client_ip"
	}
	for _, a := range addrs {
		cfg.Backends = append(cfg.Backends, upstream.BackendConfig{Address: a})
	}
	if tweak != nil {
		tweak(&cfg)
	}
	p, err := reg.NewPool(cfg)
	if err != nil {
		t.Fatalf("new pool: %v", err)
	}
	return p
}

// backendOf returns the pool's backend with the given address.
func backendOf(t testing.TB, p *upstream.Pool, addr string) *upstream.Backend {
	t.Helper()
	for _, m := range p.Members() {
		if m.Backend.Address() == addr {
			return m.Backend
		}
	}
	t.Fatalf("pool %q has no backend %s", p.Name(), addr)
	return nil
}

// startEcho serves a builtin echo server on 127.0.0.1:0 until the test ends.
func startEcho(t testing.TB) (string, *echo.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := echo.New("echo-test", hclog.NewNullLogger())
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("echo shutdown: %v", err)
		}
		waitServe(t, serveErr)
	})
	return ln.Addr().String(), srv
}

// startBackend serves handle on every connection of a fresh 127.0.0.1:0
// listener. Cleanup closes the listener and waits for every handler; handlers
// must end on their own (all their I/O has deadlines).
func startBackend(t testing.TB, handle func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(ioDeadline))
				handle(c.(*net.TCPConn))
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// closedAddr returns a loopback address nothing listens on: dials to it are
// refused.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return addr
}

// recorder is an Observer that keeps every record.
type recorder struct {
	mu      sync.Mutex // guards records
	records []Record
}

func (r *recorder) ObserveSession(rec *Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, *rec)
}

func (r *recorder) snapshot() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Record(nil), r.records...)
}

// waitRecords waits until at least n records arrived and returns them.
func (r *recorder) waitRecords(t testing.TB, n int) []Record {
	t.Helper()
	var recs []Record
	waitFor(t, ioDeadline, fmt.Sprintf("%d session records", n), func() bool {
		recs = r.snapshot()
		return len(recs) >= n
	})
	return recs
}

type proxy struct {
	*Server
	addr     string
	serveErr chan error
}

// startProxy serves a tcpproxy Server on 127.0.0.1:0. Cleanup shuts it down
// (tests that check Shutdown themselves make that a no-op) and checks that
// Serve returned nil.
func startProxy(t testing.TB, opts *Options, maxConnections int, obs Observer) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	if obs == nil {
		obs = &recorder{}
	}
	p := &proxy{
		Server:   NewServer(ln, opts, maxConnections, hclog.NewNullLogger(), obs),
		addr:     ln.Addr().String(),
		serveErr: make(chan error, 1),
	}
	go func() { p.serveErr <- p.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("proxy shutdown: %v", err)
		}
		waitServe(t, p.serveErr)
	})
	return p
}

func waitServe(t testing.TB, serveErr <-chan error) {
	t.Helper()
	select {
	case err := <-serveErr:
		if err != nil {
			t.Errorf("Serve returned %v, want nil", err)
		}
	case <-time.After(ioDeadline):
		t.Errorf("Serve did not return")
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// dial connects to addr with every I/O bounded by ioDeadline.
func dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioDeadline)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	_ = c.SetDeadline(time.Now().Add(ioDeadline))
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

// roundTrip writes msg and expects it back verbatim (an echo session).
func roundTrip(t testing.TB, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read echo of %q: %v", msg, err)
	}
	if string(got) != msg {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
}

// expectClosed waits (up to within) for the peer to close c: a read returns
// EOF or a reset, and no data.
func expectClosed(t testing.TB, c net.Conn, within time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	var buf [64]byte
	n, err := c.Read(buf[:])
	if n > 0 {
		t.Fatalf("read %q, want the connection closed", buf[:n])
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", within)
	}
	if err == nil {
		t.Fatalf("read returned no data and no error")
	}
}

// expectSilent checks that nothing arrives on c for d: the negative check of
// a backpressure test, bounded by d.
func expectSilent(t testing.TB, c net.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	var buf [64]byte
	n, err := c.Read(buf[:])
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read %q, %v within %v; want nothing", buf[:n], err, d)
	}
	_ = c.SetReadDeadline(time.Now().Add(ioDeadline))
}

// readAll reads c to EOF.
func readAll(t testing.TB, c net.Conn) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, c); err != nil {
		t.Fatalf("read to EOF: %v", err)
	}
	return buf.Bytes()
}
