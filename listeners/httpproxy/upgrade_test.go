package httpproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"switchyard/listeners/routing"
	"switchyard/upstream"
)

// echoWS is a gorilla echo server; it reports each connection's end on
// closed so tests can wait for it.
func echoWS(t *testing.T) (addr string, closed <-chan struct{}) {
	ch := make(chan struct{}, 16)
	upgrader := websocket.Upgrader{}
	addr = startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, http.Header{"X-Echo": {"1"}})
		if err != nil {
			return
		}
		defer func() { ch <- struct{}{} }()
		defer conn.Close()
		for {
			kind, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if err := conn.WriteMessage(kind, msg); err != nil {
				return
			}
		}
	}))
	return addr, ch
}

func wsURL(srv Listener, path string) string { return "ws://" + srv.Addr().String() + path }

func dialWS(t *testing.T, url string) (*websocket.Conn, *http.Response) {
	t.Helper()
	dialer := websocket.Dialer{HandshakeTimeout: testDeadline}
	conn, resp, err := dialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn, resp
}

func echo(t *testing.T, conn *websocket.Conn, msg string) {
	t.Helper()
	_ = conn.SetWriteDeadline(time.Now().Add(testDeadline))
	if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(testDeadline))
	_, got, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(got) != msg {
		t.Fatalf("echo %q, want %q", got, msg)
	}
}

func TestWebSocketThroughProxy(t *testing.T) {
	addr, backendClosed := echoWS(t)
	pool := newPool(t, "chat", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, addr)
	target := upstreamTarget(t, "chat", pool)
	const routeTimeout = 300 * time.Millisecond
	target.Timeout = routeTimeout
	rec := &recorder{}
	srv := startProxy(t, options(route(routing.Matcher{PathPrefix: "/chat"}, target)), Settings{}, rec)
	b := backendOf(t, pool, addr)

	conn, resp := dialWS(t, wsURL(srv, "/chat/room1"))
	if resp.Header.Get("X-Echo") != "1" || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("handshake headers %v: want the backend's and X-Request-Id", resp.Header)
	}
	echo(t, conn, "hello")
	if got := b.ActiveConnections(); got != 1 {
		t.Fatalf("backend active connections %d while the socket is open, want 1", got)
	}
	if got := srv.Tunnels(); got != 1 {
		t.Fatalf("hijacked count %d, want 1", got)
	}
	// The route timeout bounds the handshake, not the tunnel: outlive it.
	time.Sleep(2 * routeTimeout)
	for i := range 5 {
		echo(t, conn, strings.Repeat("x", i*1000+1))
	}
	if got := b.ActiveConnections(); got != 1 {
		t.Fatalf("backend active connections %d after the route timeout, want 1", got)
	}

	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(testDeadline))
	_ = conn.Close()
	select {
	case <-backendClosed:
	case <-time.After(testDeadline):
		t.Fatal("backend connection not closed after the client left")
	}
	eventually(t, "backend active connections to drop to 0", func() bool { return b.ActiveConnections() == 0 })
	eventually(t, "the tunnel to be unregistered", func() bool { return srv.Tunnels() == 0 })
	if f := b.Failures(); f != 0 {
		t.Fatalf("a normally closed tunnel counted %d failures", f)
	}
	recs := rec.waitRecords(t, 1)
	if r := recs[0]; !r.Upgraded || r.Status != http.StatusSwitchingProtocols || r.Backend != addr || r.Route != "chat" {
		t.Fatalf("record %+v: want an upgraded 101 on route chat via %s", r, addr)
	}
}

// TestUpgradedConnSurvivesAttemptContext checks what the retrying transport
// relies on: once NewTransport returned a 101, canceling the context the
// request was sent with does not close the tunnel.
func TestUpgradedConnSurvivesAttemptContext(t *testing.T) {
	addr, _ := echoWS(t)
	tr := newTransport(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	tunnel, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("101 body %T is not writable", resp.Body)
	}
	defer tunnel.Close()
	cancel()

	// A masked client text frame "ping" (RFC 6455 §5.2), echoed unmasked.
	frame := []byte{0x81, 0x84, 1, 2, 3, 4}
	for i, c := range []byte("ping") {
		frame = append(frame, c^frame[2+i%4])
	}
	if _, err := tunnel.Write(frame); err != nil {
		t.Fatalf("write after cancel: %v", err)
	}
	got := make([]byte, 6)
	if _, err := io.ReadFull(tunnel, got); err != nil {
		t.Fatalf("read after cancel: %v", err)
	}
	if string(got[2:]) != "ping" {
		t.Fatalf("echoed frame % x", got)
	}
}

func TestShutdownClosesTunnelsAfterBudget(t *testing.T) {
	addr, backendClosed := echoWS(t)
	pool := newPool(t, "chat", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, addr)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ln, options(route(routing.Matcher{}, upstreamTarget(t, "chat", pool))), Settings{}, hclogNull(), nil)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()

	conn, _ := dialWS(t, wsURL(srv, "/"))
	echo(t, conn, "before shutdown")

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the deadline error: the tunnel outlived the budget", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 5*time.Second {
		t.Fatalf("Shutdown took %v, want about the 100ms budget", d)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if n := srv.Tunnels(); n != 0 {
		t.Fatalf("%d tunnels left after Shutdown", n)
	}
	_ = conn.SetReadDeadline(time.Now().Add(testDeadline))
	if _, _, err := conn.ReadMessage(); err == nil {
		t.Fatal("client socket still open after Shutdown")
	}
	select {
	case <-backendClosed:
	case <-time.After(testDeadline):
		t.Fatal("backend side of the tunnel not closed")
	}
	eventually(t, "backend active connections to drop to 0", func() bool { return backendOf(t, pool, addr).ActiveConnections() == 0 })
}

func TestShutdownWaitsForTunnels(t *testing.T) {
	addr, _ := echoWS(t)
	pool := newPool(t, "chat", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, addr)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ln, options(route(routing.Matcher{}, upstreamTarget(t, "chat", pool))), Settings{}, hclogNull(), nil)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()

	conn, _ := dialWS(t, wsURL(srv, "/"))
	echo(t, conn, "hi")

	shutdownDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
		defer cancel()
		shutdownDone <- srv.Shutdown(ctx)
	}()
	// Shutdown must not return while the tunnel is open and the budget
	// lasts; the tunnel still works meanwhile.
	eventually(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", srv.Addr().String(), time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	})
	echo(t, conn, "still here")
	select {
	case err := <-shutdownDone:
		t.Fatalf("Shutdown returned %v with a tunnel open", err)
	default:
	}
	_ = conn.Close()
	select {
	case err := <-shutdownDone:
		if err != nil {
			t.Fatalf("Shutdown = %v, want nil after the tunnel closed", err)
		}
	case <-time.After(testDeadline):
		t.Fatal("Shutdown did not return after the tunnel closed")
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v", err)
	}
}
