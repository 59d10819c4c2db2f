package httpproxy

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"switchyard/listeners/routing"
	"switchyard/upstream"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testDeadline bounds every wait in these tests.
const testDeadline = 10 * time.Second

// eventually polls cond until it holds or testDeadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startBackend runs h on 127.0.0.1:0 and returns its address.
func startBackend(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// deadAddr returns a loopback address nobody listens on: connecting to it is
// refused at once.
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// newPool builds a pool over addrs from a fresh registry.
func newPool(t testing.TB, name, strategy string, breaker upstream.BreakerConfig, addrs ...string) *upstream.Pool {
	t.Helper()
	backends := make([]upstream.BackendConfig, len(addrs))
	for i, a := range addrs {
		backends[i] = upstream.BackendConfig{Address: a}
	}
	pool, err := upstream.NewRegistry(hclog.NewNullLogger()).NewPool(upstream.PoolConfig{
		Name:           name,
		Strategy:       strategy,
		ConnectTimeout: time.Second,
		Backends:       backends,
		Breaker:        breaker,
	})
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// backendOf returns the pool member with address addr.
func backendOf(t testing.TB, pool *upstream.Pool, addr string) *upstream.Backend {
	t.Helper()
	for _, m := range pool.Members() {
		if m.Backend.Address() == addr {
			return m.Backend
		}
	}
	t.Fatalf("no backend %s in pool %s", addr, pool.Name())
	return nil
}

// newTransport returns an upstream transport closed when the test ends.
func newTransport(t testing.TB) *http.Transport {
	tr := NewTransport(time.Second, 16)
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// upstreamTarget is a Target forwarding to pool, as compileRoute builds it.
func upstreamTarget(t testing.TB, route string, pool *upstream.Pool) *Target {
	return &Target{Route: route, Pool: pool, Transport: newTransport(t), Timeout: 5 * time.Second, Retries: 1}
}

// route wraps a target into a route matching m.
func route(m routing.Matcher, target *Target) *routing.Route[*Target] {
	return &routing.Route[*Target]{Name: target.Route, Matcher: m, Target: target}
}

func options(routes ...*routing.Route[*Target]) *Options {
	return &Options{Listener: "web", Table: routing.NewTable(routes)}
}

// recorder is an Observer that keeps every record.
type recorder struct {
	mu      sync.Mutex // guards records
	records []Record
}

func (r *recorder) ObserveRequest(rec *Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	kept := *rec // the strings are views valid only during the call
	kept.Method, kept.Host, kept.Path = strings.Clone(rec.Method), strings.Clone(rec.Host), strings.Clone(rec.Path)
	kept.RequestID, kept.Backend = strings.Clone(rec.RequestID), strings.Clone(rec.Backend)
	r.records = append(r.records, kept)
}

func (r *recorder) all() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Record(nil), r.records...)
}

// waitRecords waits until at least n records arrived and returns them.
func (r *recorder) waitRecords(t testing.TB, n int) []Record {
	t.Helper()
	eventually(t, "request records", func() bool { return len(r.all()) >= n })
	return r.all()
}

// testEngine is the engine the behaviour tests run on: the fast engine by
// default, net/http with SWITCHYARD_TEST_HTTP_ENGINE=std (.ci/run runs
// both), so both engines are held to the same tests.
func testEngine() string {
	if e := os.Getenv("SWITCHYARD_TEST_HTTP_ENGINE"); e != "" {
		return e
	}
	return EngineFast
}

// startProxy serves opts on 127.0.0.1:0 until the test ends, with the
// engine testEngine names unless settings picks one.
func startProxy(t testing.TB, opts *Options, settings Settings, observer Observer) Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if observer == nil {
		observer = &recorder{}
	}
	if settings.Engine == "" {
		settings.Engine = testEngine()
	}
	srv, err := New(ln, opts, settings, hclog.NewNullLogger(), observer)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return srv
}

// proxyURL is the base URL of a running proxy.
func proxyURL(s Listener) string { return "http://" + s.Addr().String() }

// newClient returns a keep-alive client released when the test ends.
func newClient(t testing.TB) *http.Client {
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: testDeadline}
}

// do sends one request and returns the response with its body read.
func do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return resp, string(body)
}

func get(t testing.TB, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, c, req)
}

// jsonError decodes a proxy error body, failing unless it is {"error": "..."}.
func jsonError(t testing.TB, resp *http.Response, body string) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json (body %q)", ct, body)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("body %q is not JSON: %v", body, err)
	}
	msg, ok := v["error"].(string)
	if !ok || msg == "" || len(v) != 1 {
		t.Fatalf("body %q is not {\"error\": \"...\"}", body)
	}
	return msg
}

// nameHandler answers 200 with its name in X-Backend and the body.
func nameHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Backend", name)
		_, _ = io.WriteString(w, name)
	})
}

// httptestServer is startBackend with a connection state hook.
func httptestServer(t testing.TB, h http.Handler, connState func(http.ConnState)) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) { connState(s) }
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func hclogNull() hclog.Logger { return hclog.NewNullLogger() }
