package echo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ioDeadline bounds every socket operation in these tests.
const ioDeadline = 10 * time.Second

type running struct {
	srv      *Server
	addr     string
	serveErr chan error
}

// start serves a new echo server on 127.0.0.1:0. Cleanup shuts it down and
// checks that Serve returned nil.
func start(t *testing.T) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	r := &running{
		srv:      New("echo-test", hclog.NewNullLogger()),
		addr:     ln.Addr().String(),
		serveErr: make(chan error, 1),
	}
	go func() { r.serveErr <- r.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = r.srv.Shutdown(ctx) // tests that care about the result check it themselves
		r.waitServe(t)
	})
	return r
}

func (r *running) waitServe(t *testing.T) {
	t.Helper()
	select {
	case err := <-r.serveErr:
		if err != nil {
			t.Errorf("Serve returned %v, want nil after Shutdown", err)
		}
		r.serveErr <- nil // later callers (cleanup) see it returned
	case <-time.After(ioDeadline):
		t.Fatalf("Serve did not return within %v after Shutdown", ioDeadline)
	}
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, ioDeadline)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(ioDeadline)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	return conn.(*net.TCPConn)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ioDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// roundTrip writes msg and reads back exactly len(msg) bytes.
func roundTrip(t *testing.T, conn net.Conn, msg []byte) {
	t.Helper()
	if _, err := conn.Write(msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
}

func TestLargePayloadRoundTrip(t *testing.T) {
	r := start(t)
	conn := dial(t, r.addr)

	const size = 8 << 20
	payload := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	want := sha256.Sum256(payload)

	// The writer runs beside the reader: the server echoes as it reads, so a
	// client that wrote everything first would fill both socket buffers and
	// deadlock.
	writeErr := make(chan error, 1)
	go func() {
		_, err := conn.Write(payload)
		if err == nil {
			err = conn.CloseWrite()
		}
		writeErr <- err
	}()

	h := sha256.New()
	n, err := io.Copy(h, conn)
	if err != nil {
		t.Fatalf("read echo after %d bytes: %v", n, err)
	}
	if err := <-writeErr; err != nil {
		t.Fatalf("write payload: %v", err)
	}
	if n != size {
		t.Fatalf("echoed %d bytes, want %d", n, size)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
		t.Fatalf("sha256 of echo = %x, want %x", got, want)
	}
}

func TestHalfClose(t *testing.T) {
	r := start(t)
	conn := dial(t, r.addr)

	// Interactive echo first: bytes come back before the client half-closes.
	roundTrip(t, conn, []byte("ping\n"))

	if _, err := conn.Write([]byte("last words")); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := conn.CloseWrite(); err != nil {
		t.Fatalf("close write: %v", err)
	}
	// ReadAll returns nil only on a clean EOF, i.e. the server half-closed
	// its side after the echo instead of resetting the connection.
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("read after half-close: %v", err)
	}
	if string(got) != "last words" {
		t.Fatalf("echo after half-close = %q, want %q", got, "last words")
	}
	eventually(t, "connection to be released", func() bool { return r.srv.ActiveConnections() == 0 })
}

func TestManyConcurrentConnections(t *testing.T) {
	r := start(t)
	const clients = 100

	conns := make([]*net.TCPConn, clients)
	for i := range conns {
		conns[i] = dial(t, r.addr)
	}

	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i, conn := range conns {
		wg.Go(func() {
			msg := bytes.Repeat([]byte(fmt.Sprintf("client %03d|", i)), 4096)
			if _, err := conn.Write(msg); err != nil {
				errs <- fmt.Errorf("client %d write: %w", i, err)
				return
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(conn, got); err != nil {
				errs <- fmt.Errorf("client %d read: %w", i, err)
				return
			}
			if !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("client %d got another client's bytes", i)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	if got := r.srv.ActiveConnections(); got != clients {
		t.Errorf("ActiveConnections = %d with %d open, want %d", got, clients, clients)
	}
	for _, conn := range conns {
		conn.Close()
	}
	eventually(t, "active connections to drop to 0", func() bool { return r.srv.ActiveConnections() == 0 })
	if got := r.srv.TotalConnections(); got != clients {
		t.Errorf("TotalConnections = %d, want %d", got, clients)
	}
}

func TestShutdownCutsOpenConnectionAtDeadline(t *testing.T) {
	r := start(t)
	conn := dial(t, r.addr)
	roundTrip(t, conn, []byte("hello"))

	const budget = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	began := time.Now()
	err := r.srv.Shutdown(ctx)
	took := time.Since(began)

	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	if took < budget || took > budget+2*time.Second {
		t.Fatalf("Shutdown took %v, want about %v", took, budget)
	}
	// The server closed our connection: the read ends with EOF or a reset,
	// not with our own deadline.
	_, err = conn.Read(make([]byte, 1))
	var netErr net.Error
	if err == nil || errors.As(err, &netErr) && netErr.Timeout() {
		t.Fatalf("read after forced shutdown = %v, want EOF or reset", err)
	}
	if got := r.srv.ActiveConnections(); got != 0 {
		t.Fatalf("ActiveConnections after Shutdown = %d, want 0", got)
	}
	r.waitServe(t)
	if c, err := net.DialTimeout("tcp", r.addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("dial after Shutdown succeeded, want refused")
	}
}

func TestShutdownWaitsForConnectionToFinish(t *testing.T) {
	r := start(t)
	conn := dial(t, r.addr)
	roundTrip(t, conn, []byte("before"))

	ctx, cancel := context.WithTimeout(context.Background(), ioDeadline)
	defer cancel()
	shutdownErr := make(chan error, 1)
	go func() { shutdownErr <- r.srv.Shutdown(ctx) }()

	// Once Serve has returned the listener is closed, so Shutdown is in its
	// draining phase: the open connection must still be echoed.
	r.waitServe(t)
	select {
	case err := <-shutdownErr:
		t.Fatalf("Shutdown returned %v while a connection was still open", err)
	default:
	}
	roundTrip(t, conn, []byte("during drain"))

	if err := conn.CloseWrite(); err != nil {
		t.Fatalf("close write: %v", err)
	}
	if rest, err := io.ReadAll(conn); err != nil || len(rest) != 0 {
		t.Fatalf("after half-close read %q, %v; want clean EOF", rest, err)
	}
	select {
	case err := <-shutdownErr:
		if err != nil {
			t.Fatalf("Shutdown = %v, want nil after the last connection ended", err)
		}
	case <-time.After(ioDeadline):
		t.Fatalf("Shutdown did not return after the last connection ended")
	}
}

func TestServeAfterShutdownReturnsNil(t *testing.T) {
	srv := New("echo-test", hclog.NewNullLogger())
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown of an idle server = %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	if err := srv.Serve(ln); err != nil {
		t.Fatalf("Serve after Shutdown = %v, want nil", err)
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatalf("listener still accepting after Serve returned")
	}
}

// failingListener fails Accept with a permanent error.
type failingListener struct{ net.Listener }

func (failingListener) Accept() (net.Conn, error) { return nil, errors.New("boom") }

func TestServeReportsPermanentAcceptError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := New("echo-test", hclog.NewNullLogger())
	err = srv.Serve(failingListener{ln})
	if err == nil || err.Error() == "boom" {
		t.Fatalf("Serve = %v, want a wrapped accept error", err)
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatalf("listener left open after Serve failed")
	}
}
