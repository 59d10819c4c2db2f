package httpproxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/listeners/routing"
	"switchyard/upstream"
)

// Raw-socket regression tests for the request-smuggling, route-bypass and
// header-spoofing findings of the security issue. Each sends exact bytes
// through a real listener of each engine to a recording backend and checks
// what the backend received, not only the status the client got.

// engines are the HTTP engines every test here runs on, in one go test run.
var engines = []string{EngineFast, EngineStd}

func forEachEngine(t *testing.T, fn func(t *testing.T, engine string)) {
	for _, e := range engines {
		t.Run(e, func(t *testing.T) { fn(t, e) })
	}
}

// recordedRequest is one request as a backend's net/http parser read it.
type recordedRequest struct {
	Method, Target string
	Host           string
	Header         http.Header
	Trailer        http.Header
	Body           string
}

// recordingBackend is a raw TCP server that parses requests with net/http's
// reader, as a typical backend does, records each one, and answers 200.
type recordingBackend struct {
	ln net.Listener
	// answer101 makes it switch protocols on every request, asked or not.
	answer101 bool

	mu    sync.Mutex // guards reqs, conns
	reqs  []recordedRequest
	conns int
	wg    sync.WaitGroup
}

func startRecordingBackend(t testing.TB) *recordingBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &recordingBackend{ln: ln}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns++
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				b.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		b.wg.Wait()
	})
	return b
}

func (b *recordingBackend) addr() string { return b.ln.Addr().String() }

func (b *recordingBackend) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testDeadline))
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			// A request whose body broke off (the proxy aborted the
			// upload) was never complete: nothing to serve or record.
			return
		}
		b.mu.Lock()
		b.reqs = append(b.reqs, recordedRequest{Method: req.Method, Target: req.RequestURI, Host: req.Host, Header: req.Header, Trailer: req.Trailer, Body: string(body)})
		b.mu.Unlock()
		if b.answer101 {
			_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
			return
		}
	}
}

func (b *recordingBackend) requests() []recordedRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]recordedRequest(nil), b.reqs...)
}

// securityProxy serves a listener like the probe: /admin answers
// 403 by itself, everything else goes to the recording backend.
func securityProxy(t testing.TB, engine string, backend *recordingBackend, settings Settings, tune func(*Options)) Listener {
	t.Helper()
	pool := newPool(t, "app", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, backend.addr())
	target := upstreamTarget(t, "app", pool)
	target.Retries = 0
	admin := &Target{Route: "admin", Respond: &StaticResponse{Status: 403, Body: []byte("forbidden\n")}}
	opts := options(route(routing.Matcher{PathPrefix: "/admin"}, admin), route(routing.Matcher{}, target))
	if tune != nil {
		tune(opts)
	}
	settings.Engine = engine
	return startProxy(t, opts, settings, nil)
}

// exchangeRaw sends raw bytes on a new connection and returns every
// response read until the proxy closes the connection or stops answering.
func exchangeRaw(t *testing.T, srv Listener, raw string, responses int) []*http.Response {
	t.Helper()
	conn := dial(t, srv)
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	var out []*http.Response
	for len(out) < responses {
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(body))
		out = append(out, resp)
	}
	return out
}

func statusOf(resps []*http.Response) []int {
	var s []int
	for _, r := range resps {
		s = append(s, r.StatusCode)
	}
	return s
}

// Finding 1: Connection nominating a framing field must not strip it.
func TestSmugglingConnectionNominatesFraming(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		backend := startRecordingBackend(t)
		srv := securityProxy(t, engine, backend, Settings{}, nil)

		smuggled := "GET /admin/secret HTTP/1.1\r\nHost: x\r\n\r\n"
		raw := "POST /api/a HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\nContent-Length: " +
			strconv.Itoa(len(smuggled)) + "\r\n\r\n" + smuggled
		resps := exchangeRaw(t, srv, raw, 1)
		if len(resps) != 1 || resps[0].StatusCode != 200 {
			t.Fatalf("statuses %v, want [200]", statusOf(resps))
		}
		chunked := "POST /api/b HTTP/1.1\r\nHost: x\r\nConnection: Transfer-Encoding, Host\r\nTransfer-Encoding: chunked\r\n\r\n" +
			strconv.FormatInt(int64(len(smuggled)), 16) + "\r\n" + smuggled + "\r\n0\r\n\r\n"
		resps = exchangeRaw(t, srv, chunked, 1)
		if len(resps) != 1 || resps[0].StatusCode != 200 {
			t.Fatalf("chunked: statuses %v, want [200]", statusOf(resps))
		}

		eventually(t, "two backend requests", func() bool { return len(backend.requests()) >= 2 })
		time.Sleep(50 * time.Millisecond) // a smuggled third request would arrive right behind
		reqs := backend.requests()
		if len(reqs) != 2 {
			t.Fatalf("backend saw %d requests, want 2: %+v", len(reqs), reqs)
		}
		for i, want := range []string{"/api/a", "/api/b"} {
			r := reqs[i]
			if r.Target != want || r.Body != smuggled || r.Header.Get("Host") != "" && r.Header.Get("Host") != "x" {
				t.Errorf("request %d: %s %q body %q", i, r.Method, r.Target, r.Body)
			}
			if r.Header.Get("X-Forwarded-For") == "" {
				t.Errorf("request %d lacks the proxy's X-Forwarded-For", i)
			}
		}
	})
}

// Finding 2: ambiguous framing is 400 and closes; identical duplicate
// Content-Length fields collapse to one.
func TestSmugglingAmbiguousFraming(t *testing.T) {
	cases := []struct{ name, raw string }{
		{"CL and TE", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin/s HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"TE in HTTP/1.0", "POST /x HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{"CL list", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello"},
		{"CL differing", "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
		{"obs-fold", "GET /x HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n"},
		{"bare CR", "GET /x HTTP/1.1\r\nHost: x\r\nX-A: 1\r2\r\n\r\n"},
	}
	forEachEngine(t, func(t *testing.T, engine string) {
		backend := startRecordingBackend(t)
		srv := securityProxy(t, engine, backend, Settings{}, nil)
		for _, tc := range cases {
			resps := exchangeRaw(t, srv, tc.raw, 2)
			if len(resps) != 1 || resps[0].StatusCode != 400 {
				t.Errorf("%s: statuses %v, want exactly [400] and a close", tc.name, statusOf(resps))
			}
		}
		resps := exchangeRaw(t, srv, "POST /dup HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 1)
		if len(resps) != 1 || resps[0].StatusCode != 200 {
			t.Fatalf("duplicate identical Content-Length: statuses %v, want [200]", statusOf(resps))
		}
		eventually(t, "the /dup request", func() bool { return len(backend.requests()) >= 1 })
		reqs := backend.requests()
		if len(reqs) != 1 || reqs[0].Target != "/dup" || reqs[0].Body != "hello" || len(reqs[0].Header["Content-Length"]) != 1 {
			t.Fatalf("backend saw %+v, want only /dup with one Content-Length", reqs)
		}
	})
}

// Finding 3: encoded, dotted and doubled paths route as their normal form.
func TestRouteBypassByPathForms(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		backend := startRecordingBackend(t)
		srv := securityProxy(t, engine, backend, Settings{}, nil)
		for _, p := range []string{"/%61dmin/x", "/api/../admin/x", "//admin/x", "/./admin/x", "/%2e/admin/x", "/api/%2E%2E/admin/x"} {
			resps := exchangeRaw(t, srv, "GET "+p+" HTTP/1.1\r\nHost: x\r\n\r\n", 1)
			if len(resps) != 1 || resps[0].StatusCode != 403 {
				t.Errorf("GET %s: statuses %v, want [403] from the /admin route", p, statusOf(resps))
			}
		}
		for _, p := range []string{"/..", "/a/../../admin", "/%2e%2e/x"} {
			resps := exchangeRaw(t, srv, "GET "+p+" HTTP/1.1\r\nHost: x\r\n\r\n", 1)
			if len(resps) != 1 || resps[0].StatusCode != 400 {
				t.Errorf("GET %s: statuses %v, want [400]", p, statusOf(resps))
			}
		}
		if n := len(backend.requests()); n != 0 {
			t.Fatalf("backend saw %d requests: %+v", n, backend.requests())
		}
		// What was routed is what is served: the backend gets the normal form.
		resps := exchangeRaw(t, srv, "GET /a/./b/../%7Euser/%2f%41?q=%2e%2E/x HTTP/1.1\r\nHost: x\r\n\r\n", 1)
		if len(resps) != 1 || resps[0].StatusCode != 200 {
			t.Fatalf("statuses %v", statusOf(resps))
		}
		eventually(t, "the request", func() bool { return len(backend.requests()) == 1 })
		if got, want := backend.requests()[0].Target, "/a/~user/%2FA?q=%2e%2E/x"; got != want {
			t.Fatalf("backend got %q, want %q", got, want)
		}
	})
}

// Finding 4: forwarding claims from an untrusted client are dropped; a
// trusted proxy's are kept and its X-Forwarded-For is appended to.
func TestHeaderSpoofingDropped(t *testing.T) {
	spoofs := "Forwarded: for=1.2.3.4\r\nX-Real-Ip: 1.2.3.4\r\nX-Forwarded-Port: 1\r\nX-Forwarded-Prefix: /evil\r\n" +
		"Client-Ip: 1.2.3.4\r\nTrue-Client-Ip: 1.2.3.4\r\nX_Forwarded_For: 1.2.3.4\r\nX-Forwarded-For: 1.2.3.4\r\n" +
		"X-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\nX-Keep: yes\r\n"
	raw := "GET /h HTTP/1.1\r\nHost: x\r\n" + spoofs + "\r\n"
	forEachEngine(t, func(t *testing.T, engine string) {
		t.Run("untrusted", func(t *testing.T) {
			backend := startRecordingBackend(t)
			srv := securityProxy(t, engine, backend, Settings{}, nil)
			if resps := exchangeRaw(t, srv, raw, 1); len(resps) != 1 || resps[0].StatusCode != 200 {
				t.Fatalf("statuses %v", statusOf(resps))
			}
			eventually(t, "the request", func() bool { return len(backend.requests()) == 1 })
			h := backend.requests()[0].Header
			for _, name := range []string{"Forwarded", "X-Real-Ip", "X-Forwarded-Port", "X-Forwarded-Prefix", "Client-Ip", "True-Client-Ip", "X_forwarded_for", "X_Forwarded_For"} {
				if v, ok := h[http.CanonicalHeaderKey(name)]; ok {
					t.Errorf("%s reached the backend: %q", name, v)
				}
				if v, ok := h[name]; ok {
					t.Errorf("%s reached the backend: %q", name, v)
				}
			}
			want := map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "x", "X-Forwarded-Proto": "http", "X-Keep": "yes"}
			for k, v := range want {
				if got := h.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("%s = %q, want [%q]", k, got, v)
				}
			}
		})
		t.Run("trusted", func(t *testing.T) {
			backend := startRecordingBackend(t)
			srv := securityProxy(t, engine, backend, Settings{}, func(o *Options) {
				o.Forward.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
				o.Forward.AllowUnderscores = true
			})
			if resps := exchangeRaw(t, srv, raw, 1); len(resps) != 1 || resps[0].StatusCode != 200 {
				t.Fatalf("statuses %v", statusOf(resps))
			}
			eventually(t, "the request", func() bool { return len(backend.requests()) == 1 })
			h := backend.requests()[0].Header
			want := map[string]string{"X-Forwarded-For": "1.2.3.4, 127.0.0.1", "X-Forwarded-Host": "evil", "X-Forwarded-Proto": "https",
				"Forwarded": "for=1.2.3.4", "X-Real-Ip": "1.2.3.4", "X-Forwarded-Prefix": "/evil"}
			for k, v := range want {
				if got := h.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("%s = %q, want [%q]", k, got, v)
				}
			}
			if got := h.Get("X_forwarded_for"); got != "1.2.3.4" {
				t.Errorf("underscore field with underscores allowed: %q", got)
			}
		})
	})
}

// Finding 5: only WebSocket upgrades pass; a 101 to anything else is 502.
func TestOnlyWebSocketUpgradesPass(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		backend := startRecordingBackend(t)
		srv := securityProxy(t, engine, backend, Settings{}, nil)
		raw := "GET /u HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
		if resps := exchangeRaw(t, srv, raw, 1); len(resps) != 1 || resps[0].StatusCode != 200 {
			t.Fatalf("statuses %v, want [200] (the request, without its upgrade)", statusOf(resps))
		}
		eventually(t, "the request", func() bool { return len(backend.requests()) == 1 })
		h := backend.requests()[0].Header
		for _, name := range []string{"Upgrade", "Connection", "Http2-Settings"} {
			if v := h.Get(name); v != "" {
				t.Errorf("%s reached the backend: %q", name, v)
			}
		}

		backend101 := startRecordingBackend(t)
		backend101.answer101 = true
		srv = securityProxy(t, engine, backend101, Settings{}, nil)
		for _, raw := range []string{raw, "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n"} {
			resps := exchangeRaw(t, srv, raw, 1)
			if len(resps) != 1 || resps[0].StatusCode != 502 {
				t.Errorf("unasked 101: statuses %v, want [502]", statusOf(resps))
			}
		}
	})
}

// Finding 6: a body that trickles is cut by request_body_timeout (408),
// and the route timeout covers the whole exchange, upload included (504).
func TestSlowRequestBody(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		backend := startRecordingBackend(t)
		srv := securityProxy(t, engine, backend, Settings{RequestBodyTimeout: 300 * time.Millisecond}, nil)
		conn := dial(t, srv)
		start := time.Now()
		if _, err := io.WriteString(conn, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\na"); err != nil {
			t.Fatal(err)
		}
		resp, _ := readResponse(t, conn, bufio.NewReader(conn))
		if resp.StatusCode != 408 {
			t.Fatalf("status %d, want 408", resp.StatusCode)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("408 took %v", d)
		}
		waitClosed(t, conn)

		// Route timeout 500ms, body timeout generous: a byte every 100ms
		// never trips the latter, so the former must end the exchange.
		pool := newPool(t, "app", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, backend.addr())
		target := upstreamTarget(t, "app", pool)
		target.Timeout = 500 * time.Millisecond
		srv = startProxy(t, options(route(routing.Matcher{}, target)), Settings{Engine: engine, RequestBodyTimeout: 10 * time.Second}, nil)
		conn = dial(t, srv)
		if _, err := io.WriteString(conn, "POST /trickle HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i < 50; i++ {
				if _, err := conn.Write([]byte("b")); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		start = time.Now()
		resp, _ = readResponse(t, conn, bufio.NewReader(conn))
		if resp.StatusCode != 504 {
			t.Fatalf("trickled body: status %d, want 504", resp.StatusCode)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("504 took %v", d)
		}
		_ = conn.Close()
		<-done
	})
}

// Finding 8: a refusal is not destroyed by a reset when the client is
// still sending: the proxy closes gracefully (lingering close).
func TestRefusalSurvivesUnreadInput(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		backend := startRecordingBackend(t)
		srv := securityProxy(t, engine, backend, Settings{}, nil)
		for _, tc := range []struct {
			name, head string
			status     int
		}{
			{"400", "GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
			{"431", "GET /x HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 70*1024) + "\r\n\r\n", 431},
		} {
			conn := dial(t, srv)
			junk := strings.Repeat("j", 512*1024)
			go func() {
				_ = conn.SetWriteDeadline(time.Now().Add(testDeadline))
				_, _ = io.WriteString(conn, tc.head+junk)
			}()
			_ = conn.SetReadDeadline(time.Now().Add(testDeadline))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: the refusal was lost: %v", tc.name, err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("%s: status %d", tc.name, resp.StatusCode)
			}
			// The connection must end in an orderly close (EOF), not a
			// reset: on a slower path a reset can destroy the answer
			// before the client has read it.
			_, _ = io.Copy(io.Discard, resp.Body)
			if _, err := br.ReadByte(); err != io.EOF {
				t.Fatalf("%s: after the answer the connection ended with %v, want EOF (a lingering close)", tc.name, err)
			}
			_ = conn.Close()
		}
	})
}

// Finding 2, trailers: fields in a request's trailer section are not
// forwarded, so framing fields cannot arrive there.
func TestRequestTrailersNotForwarded(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		backend := startRecordingBackend(t)
		srv := securityProxy(t, engine, backend, Settings{}, nil)
		raw := "POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nContent-Length: 99\r\nX-Trailer: 1\r\n\r\n" +
			"GET /after HTTP/1.1\r\nHost: x\r\n\r\n"
		resps := exchangeRaw(t, srv, raw, 2)
		if len(resps) != 2 || resps[0].StatusCode != 200 || resps[1].StatusCode != 200 {
			t.Fatalf("statuses %v, want [200 200]", statusOf(resps))
		}
		eventually(t, "two requests", func() bool { return len(backend.requests()) == 2 })
		reqs := backend.requests()
		if reqs[0].Body != "hello" || len(reqs[0].Trailer) != 0 {
			t.Fatalf("backend got body %q trailer %v, want hello and no trailer", reqs[0].Body, reqs[0].Trailer)
		}
		if reqs[1].Target != "/after" {
			t.Fatalf("second request %q", reqs[1].Target)
		}
	})
}

// An HTTP/1.0 keep-alive client is told the connection stays open, and a
// route's request_headers can set the upstream Host (one Host line).
func TestHTTP10KeepAliveAndHostOverride(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		backend := startRecordingBackend(t)
		srv := securityProxy(t, engine, backend, Settings{}, func(o *Options) {
			for _, r := range o.Table.Routes() {
				if r.Target.Pool != nil {
					r.Target.RequestHeaders = []routing.Header{{Name: "Host", Value: "internal.example"}}
				}
			}
		})
		raw := "GET /one HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /two HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"
		resps := exchangeRaw(t, srv, raw, 2)
		if len(resps) != 2 {
			t.Fatalf("statuses %v, want two answers on one connection", statusOf(resps))
		}
		for i, r := range resps {
			if r.StatusCode != 200 || r.Header.Get("Connection") != "keep-alive" {
				t.Errorf("answer %d: %d Connection %q, want 200 keep-alive", i, r.StatusCode, r.Header.Get("Connection"))
			}
		}
		eventually(t, "two requests", func() bool { return len(backend.requests()) == 2 })
		for _, r := range backend.requests() {
			if r.Host != "internal.example" {
				t.Errorf("backend got Host %q, want the route's internal.example", r.Host)
			}
		}
	})
}
