package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"switchyard/proxy"
)

// admLogBuffer is a goroutine-safe log sink: the proxy logs from many
// goroutines while the test reads.
type admLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *admLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON log lines written so far, decoded.
func (b *admLogBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	raw := b.buf.String()
	b.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(raw) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, line)
		}
		out = append(out, m)
	}
	return out
}

func (b *admLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// admBackend is an HTTP backend whose answers the test can change while the
// proxy runs.
type admBackend struct {
	name         string
	srv          *httptest.Server
	status       atomic.Int32 // for every path but /healthz
	healthStatus atomic.Int32 // for GET /healthz
}

func admStartBackend(t *testing.T, name string) *admBackend {
	t.Helper()
	b := &admBackend{name: name}
	b.status.Store(http.StatusOK)
	b.healthStatus.Store(http.StatusOK)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(int(b.healthStatus.Load()))
			return
		}
		w.Header().Set("X-Backend", name)
		w.WriteHeader(int(b.status.Load()))
		_, _ = io.WriteString(w, "backend "+name+"\n")
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *admBackend) addr() string { return b.srv.Listener.Addr().String() }

// admStartEcho runs a TCP echo server owned by the test.
func admStartEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var connsMu sync.Mutex
	conns := map[net.Conn]struct{}{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			connsMu.Lock()
			conns[c] = struct{}{}
			connsMu.Unlock()
			wg.Go(func() {
				defer func() {
					connsMu.Lock()
					delete(conns, c)
					connsMu.Unlock()
					c.Close()
				}()
				// Wrapped so io.Copy uses a plain read/write loop rather
				// than splicing the socket into itself.
				_, _ = io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		connsMu.Lock()
		for c := range conns {
			c.Close()
		}
		connsMu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// admScenario is a running proxy with backends in known states.
type admScenario struct {
	rt       *proxy.Runtime
	path     string
	logs     *admLogBuffer
	client   *http.Client // the test's keep-alive connections, closed before shutdown
	good     *admBackend  // healthy, answers 200
	flaky    *admBackend  // answers 500: its breaker trips after 2 requests
	sick     *admBackend  // /healthz answers 503: marked unhealthy
	echoAddr string
	adminURL string
	webURL   string
	tcpAddr  string
}

// admConfig is the scenario's proxy.hcl; extraRoute goes at the end of the
// web listener (the reload test adds a route with it).
func admConfig(s *admScenario, extraRoute string) string {
	return fmt.Sprintf(`shutdown_timeout = "5s"

admin {
  listen = "127.0.0.1:0"
}

log {
  level  = "info"
  format = "json"
  access = true
}

listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:0"

  route "good" {
    path_prefix = "/good"
    upstream    = "good"
  }
  route "flaky" {
    path_prefix = "/flaky"
    upstream    = "flaky"
  }
  route "sick" {
    path_prefix = "/sick"
    upstream    = "sick"
  }
%s}

listener "echo" {
  protocol = "tcp"
  listen   = "127.0.0.1:0"
  upstream = "echo"
}

upstream "good" {
  backend %q { weight = 3 }
}

upstream "flaky" {
  backend %q {}
  circuit_breaker {
    consecutive_failures = 2
    open_timeout         = "10m"
  }
}

upstream "sick" {
  strategy = "least_conn"
  backend %q {}
  health_check {
    interval            = "50ms"
    timeout             = "50ms"
    path                = "/healthz"
    healthy_threshold   = 1
    unhealthy_threshold = 1
  }
}

upstream "echo" {
  backend %q {}
}

builtin "hello" {
  handler = "http"
  listen  = "127.0.0.1:0"
}

builtin "chat" {
  handler = "chat"
  listen  = "127.0.0.1:0"
}
`, extraRoute, s.good.addr(), s.flaky.addr(), s.sick.addr(), s.echoAddr)
}

// admStartScenario starts the backends and the proxy; nothing has been sent
// through it yet.
func admStartScenario(t *testing.T) *admScenario {
	t.Helper()
	s := &admScenario{
		logs:     &admLogBuffer{},
		client:   &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}},
		good:     admStartBackend(t, "good"),
		flaky:    admStartBackend(t, "flaky"),
		sick:     admStartBackend(t, "sick"),
		echoAddr: admStartEcho(t),
	}
	s.flaky.status.Store(http.StatusInternalServerError)
	s.sick.healthStatus.Store(http.StatusServiceUnavailable)
	s.path = filepath.Join(t.TempDir(), "proxy.hcl")
	admWriteFile(t, s.path, admConfig(s, ""))

	log := hclog.New(&hclog.LoggerOptions{Output: s.logs, Level: hclog.Info, JSONFormat: true})
	s.rt = proxy.New(proxy.Options{ConfigPath: s.path, Logger: log, Version: "test"})
	if err := s.rt.Start(); err != nil {
		t.Fatalf("start: %v\nlogs:\n%s", err, s.logs)
	}
	t.Cleanup(func() {
		// Idle keep-alive connections would hold the listeners' drain open;
		// drain behaviour is not what these tests are about.
		s.client.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.rt.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	st := s.rt.Status()
	if st.Admin == nil || st.Admin.Address == "" {
		t.Fatalf("admin endpoint not running: %+v", st.Admin)
	}
	s.adminURL = "http://" + st.Admin.Address
	for _, l := range st.Listeners {
		switch l.Name {
		case "web":
			s.webURL = "http://" + l.Address
		case "echo":
			s.tcpAddr = l.Address
		}
	}
	if s.webURL == "" || s.tcpAddr == "" {
		t.Fatalf("listeners not running: %+v", st.Listeners)
	}
	return s
}

func admWriteFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// admDo sends one request and returns the status and body.
func admDo(t *testing.T, client *http.Client, method, url string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if h := header.Get("Host"); h != "" {
		req.Host = h
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return res.StatusCode, string(body)
}

// admEventually polls cond until it holds or within passes.
func admEventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// admTripBreaker sends requests to the failing backend until its breaker
// is open: two 500s trip it, the third request gets the proxy's 503.
func admTripBreaker(t *testing.T, s *admScenario) {
	t.Helper()
	for i, want := range []int{500, 500, 503} {
		if code, body := admDo(t, s.client, http.MethodGet, s.webURL+"/flaky", nil); code != want {
			t.Fatalf("request %d to the flaky pool: %d %q, want %d", i+1, code, body, want)
		}
	}
}

// admDriveTraffic sends the scenario's traffic: 5 good requests, the
// breaker trip, one TCP session; and waits for the sick backend to be
// marked unhealthy.
func admDriveTraffic(t *testing.T, s *admScenario) {
	t.Helper()
	for range 5 {
		if code, body := admDo(t, s.client, http.MethodGet, s.webURL+"/good/x", nil); code != http.StatusOK || body != "backend good\n" {
			t.Fatalf("GET /good/x = %d %q", code, body)
		}
	}
	admTripBreaker(t, s)
	admEchoSession(t, s.tcpAddr, "ping")
	// The session has ended when its backend attempt is done.
	admEventually(t, 5*time.Second, "the sick backend to be marked unhealthy and the TCP session to end", func() bool {
		st := s.rt.Status()
		return !admBackendStatus(t, st, "sick", s.sick.addr()).Healthy &&
			admBackendStatus(t, st, "echo", s.echoAddr).ActiveConnections == 0
	})
}

func admListenerStatus(t *testing.T, st *proxy.Status, name string) proxy.ListenerStatus {
	t.Helper()
	for _, l := range st.Listeners {
		if l.Name == name {
			return l
		}
	}
	t.Fatalf("listener %s not in status", name)
	return proxy.ListenerStatus{}
}

// admEchoSession sends one line through the TCP listener and reads it back.
func admEchoSession(t *testing.T, addr, line string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != line+"\n" {
		t.Fatalf("echo through the tcp listener: %q, %v", got, err)
	}
}

func admBackendStatus(t *testing.T, st *proxy.Status, upstream, addr string) proxy.BackendStatus {
	t.Helper()
	for _, u := range st.Upstreams {
		if u.Name != upstream {
			continue
		}
		for _, b := range u.Backends {
			if b.Address == addr {
				return b
			}
		}
	}
	t.Fatalf("backend %s of %s not in status", addr, upstream)
	return proxy.BackendStatus{}
}

// admGetJSON fetches an admin URL and decodes its JSON body generically, so
// the test sees the keys on the wire rather than Go field names.
func admGetJSON(t *testing.T, client *http.Client, url string) map[string]any {
	t.Helper()
	code, body := admDo(t, client, http.MethodGet, url, nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s = %d %q", url, code, body)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("GET %s: not JSON: %v\n%s", url, err, body)
	}
	return doc
}

// admFind returns the element of a JSON array whose key has the value.
func admFind(t *testing.T, list any, key, value string) map[string]any {
	t.Helper()
	items, ok := list.([]any)
	if !ok {
		t.Fatalf("%v is not an array", list)
	}
	for _, it := range items {
		if m, ok := it.(map[string]any); ok && m[key] == value {
			return m
		}
	}
	t.Fatalf("no element with %s=%q in %v", key, value, list)
	return nil
}

// admRequireKeys checks that m has every key with a JSON value of the given
// kind ("string", "number", "bool", "object", "array").
func admRequireKeys(t *testing.T, where string, m map[string]any, keys map[string]string) {
	t.Helper()
	for key, kind := range keys {
		v, ok := m[key]
		if !ok {
			t.Errorf("%s: key %q missing", where, key)
			continue
		}
		var got string
		switch v.(type) {
		case string:
			got = "string"
		case float64:
			got = "number"
		case bool:
			got = "bool"
		case map[string]any:
			got = "object"
		case []any:
			got = "array"
		default:
			got = fmt.Sprintf("%T", v)
		}
		if got != kind {
			t.Errorf("%s: key %q is %s (%v), want %s", where, key, got, v, kind)
		}
	}
}

func admFileHash(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func admRFC3339(t *testing.T, where string, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Errorf("%s = %v, want an RFC3339 time: %v", where, v, err)
	}
	return at
}

func TestAdminHealthz(t *testing.T) {
	s := admStartScenario(t)
	code, body := admDo(t, s.client, http.MethodGet, s.adminURL+"/healthz", nil)
	if code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Fatalf("GET /healthz = %d %q, want 200 ok", code, body)
	}
}

// TestAdminStatusReflectsLiveRuntime checks every key SPEC §5 names against
// a proxy that has carried real traffic: a tripped breaker, an unhealthy
// backend, TCP sessions and a chat client.
func TestAdminStatusReflectsLiveRuntime(t *testing.T) {
	start := time.Now()
	s := admStartScenario(t)
	admDriveTraffic(t, s)

	// A chat client held open, with one message sent, straight to the builtin.
	chatAddr := ""
	for _, b := range s.rt.Status().Builtins {
		if b.Name == "chat" {
			chatAddr = b.Address
		}
	}
	ws, res, err := websocket.DefaultDialer.Dial("ws://"+chatAddr+"/chat/lobby?name=ada", nil)
	if err != nil {
		t.Fatalf("join chat: %v", err)
	}
	res.Body.Close()
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	// A TCP session held open, to see active_connections.
	held, err := net.DialTimeout("tcp", s.tcpAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	admEventually(t, 5*time.Second, "the chat message and the held TCP session to show", func() bool {
		st := s.rt.Status()
		var chatOK bool
		for _, b := range st.Builtins {
			chatOK = chatOK || b.Name == "chat" && b.ChatMessages != nil && *b.ChatMessages == 1
		}
		return chatOK && admBackendStatus(t, st, "echo", s.echoAddr).ActiveConnections == 1
	})

	doc := admGetJSON(t, s.client, s.adminURL+"/status")
	admRequireKeys(t, "status", doc, map[string]string{
		"version": "string", "uptime_seconds": "number", "config": "object",
		"listeners": "array", "upstreams": "array", "builtins": "array",
	})
	if doc["version"] != "test" {
		t.Errorf("version %v, want test", doc["version"])
	}
	if up := doc["uptime_seconds"].(float64); up <= 0 || up > time.Since(start).Seconds() {
		t.Errorf("uptime_seconds %v, want in (0, %v]", up, time.Since(start).Seconds())
	}

	cfg := doc["config"].(map[string]any)
	admRequireKeys(t, "config", cfg, map[string]string{
		"path": "string", "generation": "number", "hash": "string", "file_hash": "string",
		"loaded_at": "string", "last_reload": "object",
	})
	wantHash := admFileHash(t, s.path)
	if cfg["path"] != s.path || cfg["generation"] != 1.0 || cfg["hash"] != wantHash || cfg["file_hash"] != wantHash {
		t.Errorf("config %v, want path %s, generation 1 and both hashes %s", cfg, s.path, wantHash)
	}
	if at := admRFC3339(t, "loaded_at", cfg["loaded_at"]); at.Before(start.Truncate(time.Second)) || at.After(time.Now()) {
		t.Errorf("loaded_at %v not within the test's run", at)
	}
	lr := cfg["last_reload"].(map[string]any)
	admRequireKeys(t, "config.last_reload", lr, map[string]string{"at": "string", "ok": "bool", "error": "string"})
	admRFC3339(t, "last_reload.at", lr["at"])
	if lr["ok"] != true || lr["error"] != "" {
		t.Errorf("last_reload %v, want ok with no error after start", lr)
	}

	listenerKeys := map[string]string{"name": "string", "protocol": "string", "listen": "string",
		"active_connections": "number", "total_connections": "number"}
	web := admFind(t, doc["listeners"], "name", "web")
	admRequireKeys(t, "listeners[web]", web, listenerKeys)
	if web["protocol"] != "http" || web["listen"] != "127.0.0.1:0" || web["total_connections"].(float64) < 1 {
		t.Errorf("listener web %v", web)
	}
	echo := admFind(t, doc["listeners"], "name", "echo")
	admRequireKeys(t, "listeners[echo]", echo, listenerKeys)
	if echo["protocol"] != "tcp" || echo["active_connections"] != 1.0 || echo["total_connections"] != 2.0 {
		t.Errorf("listener echo %v, want tcp with 1 active of 2 connections", echo)
	}

	backendKeys := map[string]string{"address": "string", "weight": "number", "healthy": "bool", "breaker": "string",
		"active_connections": "number", "requests": "number", "failures": "number"}
	for _, tc := range []struct {
		upstream, strategy string
		backend            *admBackend
		want               map[string]any
	}{
		{"good", "round_robin", s.good, map[string]any{"weight": 3.0, "healthy": true, "breaker": "closed", "requests": 5.0, "failures": 0.0, "active_connections": 0.0}},
		{"flaky", "round_robin", s.flaky, map[string]any{"weight": 1.0, "healthy": true, "breaker": "open", "requests": 2.0, "failures": 2.0}},
		{"sick", "least_conn", s.sick, map[string]any{"healthy": false, "breaker": "closed", "requests": 0.0}},
	} {
		u := admFind(t, doc["upstreams"], "name", tc.upstream)
		admRequireKeys(t, "upstreams["+tc.upstream+"]", u, map[string]string{"name": "string", "strategy": "string", "backends": "array"})
		if u["strategy"] != tc.strategy {
			t.Errorf("upstream %s strategy %v, want %s", tc.upstream, u["strategy"], tc.strategy)
		}
		b := admFind(t, u["backends"], "address", tc.backend.addr())
		admRequireKeys(t, "backend "+tc.upstream, b, backendKeys)
		for k, want := range tc.want {
			if b[k] != want {
				t.Errorf("upstream %s backend %s: %s = %v, want %v", tc.upstream, tc.backend.addr(), k, b[k], want)
			}
		}
	}
	echoBackend := admFind(t, admFind(t, doc["upstreams"], "name", "echo")["backends"], "address", s.echoAddr)
	if echoBackend["requests"] != 2.0 || echoBackend["active_connections"] != 1.0 {
		t.Errorf("tcp backend %v, want 2 forwarded connections, 1 active", echoBackend)
	}

	builtinKeys := map[string]string{"name": "string", "handler": "string", "listen": "string"}
	hello := admFind(t, doc["builtins"], "name", "hello")
	admRequireKeys(t, "builtins[hello]", hello, builtinKeys)
	chat := admFind(t, doc["builtins"], "name", "chat")
	admRequireKeys(t, "builtins[chat]", chat, builtinKeys)
	if hello["handler"] != "http" || chat["handler"] != "chat" || chat["listen"] != "127.0.0.1:0" {
		t.Errorf("builtins %v", doc["builtins"])
	}
	if chat["chat_clients"] != 1.0 || chat["chat_rooms"] != 1.0 || chat["chat_messages"] != 1.0 {
		t.Errorf("chat builtin %v, want 1 client in 1 room, 1 message", chat)
	}
}

// admFamily is one parsed metric family: its type and each series' labels
// and value (a histogram's value is its sample count).
type admFamily struct {
	kind   string
	series []admSeries
}

type admSeries struct {
	labels map[string]string
	value  float64
}

// admScrape fetches /metrics and parses it with Prometheus' text parser.
func admScrape(t *testing.T, client *http.Client, adminURL string) map[string]*admFamily {
	t.Helper()
	code, body := admDo(t, client, http.MethodGet, adminURL+"/metrics", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d %q", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse as Prometheus text: %v", err)
	}
	out := make(map[string]*admFamily, len(parsed))
	for name, f := range parsed {
		fam := &admFamily{kind: f.GetType().String()}
		for _, m := range f.GetMetric() {
			se := admSeries{labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				se.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				se.value = m.GetCounter().GetValue()
			case m.Gauge != nil:
				se.value = m.GetGauge().GetValue()
			case m.Histogram != nil:
				se.value = float64(m.GetHistogram().GetSampleCount())
			case m.Untyped != nil:
				se.value = m.GetUntyped().GetValue()
			}
			fam.series = append(fam.series, se)
		}
		out[name] = fam
	}
	return out
}

// admValue returns the value of the series with exactly these labels, or
// -1 when there is none.
func admValue(families map[string]*admFamily, name string, labels map[string]string) float64 {
	f := families[name]
	if f == nil {
		return -1
	}
	for _, se := range f.series {
		if maps.Equal(se.labels, labels) {
			return se.value
		}
	}
	return -1
}

// TestAdminMetricsExposition parses /metrics the way Prometheus does and
// checks every SPEC §5 family, its labels and the values the traffic
// produced.
func TestAdminMetricsExposition(t *testing.T) {
	s := admStartScenario(t)
	admDriveTraffic(t, s)
	chatAddr := ""
	for _, b := range s.rt.Status().Builtins {
		if b.Name == "chat" {
			chatAddr = b.Address
		}
	}
	ws, res, err := websocket.DefaultDialer.Dial("ws://"+chatAddr+"/chat/lobby?name=ada", nil)
	if err != nil {
		t.Fatalf("join chat: %v", err)
	}
	res.Body.Close()
	defer ws.Close()

	var families map[string]*admFamily
	admEventually(t, 5*time.Second, "the chat client and all requests in /metrics", func() bool {
		families = admScrape(t, s.client, s.adminURL)
		return admValue(families, "switchyard_chat_clients", map[string]string{"builtin": "chat"}) == 1 &&
			admValue(families, "switchyard_requests_total", map[string]string{"listener": "web", "route": "flaky", "upstream": "flaky", "code": "503"}) == 1
	})

	for name, want := range map[string]struct {
		kind   string
		labels []string
	}{
		"switchyard_requests_total":             {"COUNTER", []string{"code", "listener", "route", "upstream"}},
		"switchyard_request_duration_seconds":   {"HISTOGRAM", []string{"listener", "route", "upstream"}},
		"switchyard_connections_active":         {"GAUGE", []string{"listener"}},
		"switchyard_backend_healthy":            {"GAUGE", []string{"backend", "upstream"}},
		"switchyard_backend_breaker_open":       {"GAUGE", []string{"backend", "upstream"}},
		"switchyard_config_reloads_total":       {"COUNTER", []string{"result"}},
		"switchyard_chat_clients":               {"GAUGE", []string{"builtin"}},
		"switchyard_chat_messages_total":        {"COUNTER", []string{"builtin"}},
		"go_goroutines":                         {"GAUGE", nil},
		"process_cpu_seconds_total":             {"COUNTER", nil},
		"process_resident_memory_bytes":         {"GAUGE", nil},
		"switchyard_backend_requests_total":     {"COUNTER", []string{"backend", "upstream"}},
		"switchyard_backend_failures_total":     {"COUNTER", []string{"backend", "upstream"}},
		"switchyard_connections_total":          {"COUNTER", []string{"listener"}},
		"switchyard_tcp_sessions_total":         {"COUNTER", []string{"listener", "result", "upstream"}},
		"switchyard_backend_active_connections": {"GAUGE", []string{"backend", "upstream"}},
	} {
		f := families[name]
		if f == nil {
			t.Errorf("family %s missing from /metrics", name)
			continue
		}
		if f.kind != want.kind {
			t.Errorf("%s is a %s, want %s", name, f.kind, want.kind)
		}
		for _, series := range f.series {
			if got := slices.Sorted(maps.Keys(series.labels)); !slices.Equal(got, want.labels) {
				t.Errorf("%s series has labels %v, want exactly %v", name, got, want.labels)
			}
		}
	}

	for _, tc := range []struct {
		family string
		labels map[string]string
		want   float64
	}{
		{"switchyard_requests_total", map[string]string{"listener": "web", "route": "good", "upstream": "good", "code": "200"}, 5},
		{"switchyard_requests_total", map[string]string{"listener": "web", "route": "flaky", "upstream": "flaky", "code": "500"}, 2},
		{"switchyard_requests_total", map[string]string{"listener": "web", "route": "flaky", "upstream": "flaky", "code": "503"}, 1},
		{"switchyard_request_duration_seconds", map[string]string{"listener": "web", "route": "good", "upstream": "good"}, 5},
		{"switchyard_backend_healthy", map[string]string{"upstream": "good", "backend": s.good.addr()}, 1},
		{"switchyard_backend_healthy", map[string]string{"upstream": "sick", "backend": s.sick.addr()}, 0},
		{"switchyard_backend_breaker_open", map[string]string{"upstream": "flaky", "backend": s.flaky.addr()}, 1},
		{"switchyard_backend_breaker_open", map[string]string{"upstream": "good", "backend": s.good.addr()}, 0},
		{"switchyard_config_reloads_total", map[string]string{"result": "success"}, 1},
		{"switchyard_config_reloads_total", map[string]string{"result": "failure"}, 0},
		{"switchyard_chat_clients", map[string]string{"builtin": "chat"}, 1},
		{"switchyard_chat_messages_total", map[string]string{"builtin": "chat"}, 0},
		{"switchyard_connections_active", map[string]string{"listener": "echo"}, 0},
		{"switchyard_tcp_sessions_total", map[string]string{"listener": "echo", "upstream": "echo", "result": "connected"}, 1},
	} {
		if got := admValue(families, tc.family, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.family, tc.labels, got, tc.want)
		}
	}
	// Label values come from the config and status codes only: no paths,
	// hosts or request ids.
	if n := len(families["switchyard_requests_total"].series); n != 3 {
		t.Errorf("switchyard_requests_total has %d series, want 3 (good/200, flaky/500, flaky/503)", n)
	}
}

// admLineOf returns the 1-based line of the first occurrence of needle.
func admLineOf(t *testing.T, content, needle string) int {
	t.Helper()
	i := strings.Index(content, needle)
	if i < 0 {
		t.Fatalf("%q not in config", needle)
	}
	return strings.Count(content[:i], "\n") + 1
}

// TestAdminReload drives POST /reload with a broken file, then a good one,
// then the same bytes again, and checks the answers, /status and /metrics.
func TestAdminReload(t *testing.T) {
	s := admStartScenario(t)
	firstLoadedAt := admGetJSON(t, s.client, s.adminURL+"/status")["config"].(map[string]any)["loaded_at"].(string)

	broken := strings.Replace(admConfig(s, ""), `    path_prefix = "/good"`, `    path_prefix = "/good"
    bogus       = 1`, 1)
	badLine := admLineOf(t, broken, "bogus")
	admWriteFile(t, s.path, broken)
	wantPos := fmt.Sprintf("proxy.hcl:%d,5", badLine)

	code, body := admDo(t, s.client, http.MethodPost, s.adminURL+"/reload", nil)
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("POST /reload with a broken file = %d %q, want 422", code, body)
	}
	var failed struct {
		Error       string   `json:"error"`
		Diagnostics []string `json:"diagnostics"`
	}
	if err := json.Unmarshal([]byte(body), &failed); err != nil {
		t.Fatalf("422 body is not JSON: %v\n%s", err, body)
	}
	diagFormat := regexp.MustCompile(`^.*proxy\.hcl:\d+,\d+(-\d+)?: .+`)
	if failed.Error == "" || len(failed.Diagnostics) == 0 {
		t.Fatalf("422 body %s, want an error and diagnostics", body)
	}
	for _, d := range failed.Diagnostics {
		if !diagFormat.MatchString(d) {
			t.Errorf("diagnostic %q is not FILE:LINE,COL: message", d)
		}
	}
	if !strings.Contains(failed.Diagnostics[0], wantPos) {
		t.Errorf("diagnostic %q does not point at %s", failed.Diagnostics[0], wantPos)
	}

	cfg := admGetJSON(t, s.client, s.adminURL+"/status")["config"].(map[string]any)
	lr := cfg["last_reload"].(map[string]any)
	if lr["ok"] != false || !strings.Contains(lr["error"].(string), wantPos) {
		t.Errorf("last_reload %v, want ok:false with an error at %s", lr, wantPos)
	}
	if cfg["generation"] != 1.0 || cfg["hash"] == cfg["file_hash"] || cfg["file_hash"] != admFileHash(t, s.path) {
		t.Errorf("config %v, want generation 1 and file_hash (the broken file) != hash", cfg)
	}
	if code, _ := admDo(t, s.client, http.MethodGet, s.webURL+"/good", nil); code != http.StatusOK {
		t.Fatalf("the old config stopped serving after a rejected reload: %d", code)
	}

	fixed := admConfig(s, `  route "extra" {
    path_prefix = "/extra"
    respond {
      status = 200
      body   = "extra route\n"
    }
  }
`)
	admWriteFile(t, s.path, fixed)
	code, body = admDo(t, s.client, http.MethodPost, s.adminURL+"/reload", nil)
	if code != http.StatusOK {
		t.Fatalf("POST /reload with a good file = %d %q, want 200", code, body)
	}
	var ok struct {
		Generation *float64 `json:"generation"`
	}
	if err := json.Unmarshal([]byte(body), &ok); err != nil || ok.Generation == nil || *ok.Generation != 2 {
		t.Fatalf("200 body %s (%v), want generation 2", body, err)
	}
	cfg = admGetJSON(t, s.client, s.adminURL+"/status")["config"].(map[string]any)
	lr = cfg["last_reload"].(map[string]any)
	wantHash := admFileHash(t, s.path)
	if cfg["generation"] != 2.0 || cfg["hash"] != wantHash || cfg["file_hash"] != wantHash || lr["ok"] != true || lr["error"] != "" {
		t.Errorf("config %v, want generation 2, both hashes %s, last reload ok", cfg, wantHash)
	}
	if at := admRFC3339(t, "loaded_at", cfg["loaded_at"]); at.Before(admRFC3339(t, "first loaded_at", firstLoadedAt)) {
		t.Errorf("loaded_at went back: %v after %v", at, firstLoadedAt)
	}
	if code, body := admDo(t, s.client, http.MethodGet, s.webURL+"/extra", nil); code != http.StatusOK || body != "extra route\n" {
		t.Fatalf("new route after reload: %d %q", code, body)
	}

	// The same bytes again: no new generation.
	code, body = admDo(t, s.client, http.MethodPost, s.adminURL+"/reload", nil)
	if err := json.Unmarshal([]byte(body), &ok); code != http.StatusOK || err != nil || *ok.Generation != 2 {
		t.Fatalf("POST /reload with unchanged bytes = %d %s, want 200 generation 2", code, body)
	}

	families := admScrape(t, s.client, s.adminURL)
	for result, want := range map[string]float64{"success": 2, "failure": 1} {
		if got := admValue(families, "switchyard_config_reloads_total", map[string]string{"result": result}); got != want {
			t.Errorf("switchyard_config_reloads_total{result=%q} = %v, want %v", result, got, want)
		}
	}
}

// admAccessLines returns the access log lines matching key=value.
func admAccessLines(t *testing.T, logs *admLogBuffer, key string, value any) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range logs.lines(t) {
		if l["@message"] == "access" && l[key] == value {
			out = append(out, l)
		}
	}
	return out
}

// TestAdminAccessLog checks that one HTTP request and one TCP session
// through a proxy with `log { access = true }` each produce exactly one
// access line with their details.
func TestAdminAccessLog(t *testing.T) {
	s := admStartScenario(t)
	code, body := admDo(t, s.client, http.MethodGet, s.webURL+"/good/page?q=1", http.Header{
		"Host": {"shop.example"}, "X-Request-Id": {"adm-req-1"},
	})
	if code != http.StatusOK {
		t.Fatalf("request through the proxy: %d %q", code, body)
	}
	// The line is written after the response; a second request's line
	// appearing means the first request has long been logged.
	admDo(t, s.client, http.MethodGet, s.webURL+"/good/other", http.Header{"X-Request-Id": {"adm-req-2"}})
	admEventually(t, 5*time.Second, "the second request's access line", func() bool {
		return len(admAccessLines(t, s.logs, "request_id", "adm-req-2")) == 1
	})
	lines := admAccessLines(t, s.logs, "request_id", "adm-req-1")
	if len(lines) != 1 {
		t.Fatalf("%d access lines for one request, want 1:\n%s", len(lines), s.logs)
	}
	line := lines[0]
	for k, want := range map[string]any{
		"@level": "info", "listener": "web", "method": "GET", "host": "shop.example", "path": "/good/page",
		"status": 200.0, "route": "good", "upstream": "good", "backend": s.good.addr(),
		"bytes": float64(len(body)), "request_id": "adm-req-1",
	} {
		if line[k] != want {
			t.Errorf("access line %s = %v (%T), want %v", k, line[k], line[k], want)
		}
	}
	if d, err := time.ParseDuration(fmt.Sprint(line["duration"])); err != nil || d <= 0 {
		t.Errorf("access line duration %v: want a positive duration (%v)", line["duration"], err)
	}

	admEchoSession(t, s.tcpAddr, "ping")
	admEventually(t, 5*time.Second, "the TCP session's access line", func() bool {
		return len(admAccessLines(t, s.logs, "listener", "echo")) > 0
	})
	tcpLines := admAccessLines(t, s.logs, "listener", "echo")
	if len(tcpLines) != 1 {
		t.Fatalf("%d access lines for one TCP session, want 1", len(tcpLines))
	}
	for k, want := range map[string]any{
		"upstream": "echo", "backend": s.echoAddr, "bytes_in": 5.0, "bytes_out": 5.0, "connected": true,
	} {
		if tcpLines[0][k] != want {
			t.Errorf("tcp access line %s = %v, want %v", k, tcpLines[0][k], want)
		}
	}
}
