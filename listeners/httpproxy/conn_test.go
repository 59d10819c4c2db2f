package httpproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/listeners/routing"
)

func staticOptions(body string) *Options {
	return options(route(routing.Matcher{}, &Target{Route: "static", Respond: &StaticResponse{Status: 200, Body: []byte(body)}}))
}

func dial(t *testing.T, srv Listener) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", srv.Addr().String(), testDeadline)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// readResponse reads one response from br with a deadline on conn.
func readResponse(t *testing.T, conn net.Conn, br *bufio.Reader) (*http.Response, string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(testDeadline))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, string(body)
}

// waitClosed waits until the peer closes conn and returns how long it took.
func waitClosed(t *testing.T, conn net.Conn) time.Duration {
	t.Helper()
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(testDeadline))
	buf := make([]byte, 512)
	for {
		_, err := conn.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("connection still open at the test deadline")
		}
		return time.Since(start)
	}
}

func TestSlowClientCutOffAfterReadHeaderTimeout(t *testing.T) {
	const headerTimeout = 300 * time.Millisecond
	srv := startProxy(t, staticOptions("ok"), Settings{ReadHeaderTimeout: headerTimeout}, nil)

	// The server's header deadline starts once it has accepted, so timing
	// from before the dial gives a lower bound.
	start := time.Now()
	conn := dial(t, srv)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Headers trickle in one byte at a time and never end.
		head := "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 10000)
		for i := 0; i < len(head); i++ {
			if _, err := conn.Write([]byte{head[i]}); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	waitClosed(t, conn)
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	if elapsed < headerTimeout || elapsed > 5*time.Second {
		t.Fatalf("slow client cut off after %v, want about %v", elapsed, headerTimeout)
	}

	// A client sending its request at once is still served.
	normal := dial(t, srv)
	if _, err := io.WriteString(normal, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if resp, body := readResponse(t, normal, bufio.NewReader(normal)); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("normal client: status %d body %q", resp.StatusCode, body)
	}
}

func TestIdleTimeoutClosesKeepAliveConnection(t *testing.T) {
	const idle = 200 * time.Millisecond
	srv := startProxy(t, staticOptions("ok"), Settings{IdleTimeout: idle}, nil)
	conn := dial(t, srv)
	// The connection cannot turn idle before the request is sent, so this
	// is a lower bound for the idle period.
	sent := time.Now()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if resp, body := readResponse(t, conn, bufio.NewReader(conn)); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	waitClosed(t, conn)
	if d := time.Since(sent); d < idle || d > 5*time.Second {
		t.Fatalf("idle connection closed %v after the request, want about %v", d, idle)
	}
	eventually(t, "the slot to be released", func() bool { return srv.ActiveConnections() == 0 })
}

func TestMaxConnectionsBackpressure(t *testing.T) {
	srv := startProxy(t, staticOptions("ok"), Settings{MaxConnections: 1}, nil)
	const request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"

	first := dial(t, srv)
	firstReader := bufio.NewReader(first)
	if _, err := io.WriteString(first, request); err != nil {
		t.Fatal(err)
	}
	if resp, _ := readResponse(t, first, firstReader); resp.StatusCode != 200 {
		t.Fatalf("first connection: status %d", resp.StatusCode)
	}

	// The kernel completes the second handshake (backlog), but the proxy
	// does not accept it while the first connection is open.
	second, err := net.DialTimeout("tcp", srv.Addr().String(), testDeadline)
	if err != nil {
		t.Fatalf("second connect: %v (backpressure must queue, not refuse)", err)
	}
	defer second.Close()
	if _, err := io.WriteString(second, request); err != nil {
		t.Fatal(err)
	}
	secondReader := bufio.NewReader(second)
	_ = second.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := secondReader.ReadByte(); err == nil {
		t.Fatal("second connection answered while the first one holds the only slot")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("second connection: %v, want it left waiting (not closed)", err)
	}
	if got := srv.TotalConnections(); got != 1 {
		t.Fatalf("accepted %d connections at limit 1, want 1", got)
	}
	if got := srv.ActiveConnections(); got != 1 {
		t.Fatalf("active connections %d, want 1", got)
	}

	// Still served on the same connection: keep-alive holds the slot.
	if _, err := io.WriteString(first, request); err != nil {
		t.Fatal(err)
	}
	if resp, _ := readResponse(t, first, firstReader); resp.StatusCode != 200 {
		t.Fatalf("first connection, second request: status %d", resp.StatusCode)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if resp, body := readResponse(t, second, secondReader); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("second connection after the first closed: status %d body %q", resp.StatusCode, body)
	}
	if got := srv.TotalConnections(); got != 2 {
		t.Fatalf("accepted %d connections, want 2", got)
	}
}

func TestLargeHeadersRejected(t *testing.T) {
	srv := startProxy(t, staticOptions("ok"), Settings{MaxHeaderBytes: 4096}, nil)
	req := mustRequest(t, http.MethodGet, proxyURL(srv)+"/", "")
	req.Header.Set("X-Big", strings.Repeat("b", 16*1024))
	resp, _ := do(t, newClient(t), req)
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
}
