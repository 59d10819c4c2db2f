package responder

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// deadline bounds every wait in these tests.
const deadline = 10 * time.Second

type running struct {
	srv      *Server
	url      string
	client   *http.Client
	serveErr chan error
}

// start serves a new responder on 127.0.0.1:0 with a keep-alive client of
// its own. Cleanup shuts the server down and checks Serve returned nil.
func start(t *testing.T, opts Options, extra ...ServerOption) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	transport := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}
	r := &running{
		srv:      New("hello-1", opts, hclog.NewNullLogger(), extra...),
		url:      "http://" + ln.Addr().String(),
		client:   &http.Client{Transport: transport, Timeout: deadline},
		serveErr: make(chan error, 1),
	}
	go func() { r.serveErr <- r.srv.Serve(ln) }()
	t.Cleanup(func() {
		transport.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
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
		r.serveErr <- nil
	case <-time.After(deadline):
		t.Fatalf("Serve did not return within %v after Shutdown", deadline)
	}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (r *running) do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

func (r *running) get(t *testing.T, path string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.url+path, nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	return r.do(t, req)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDefaultBodyEchoesRequestAsJSON(t *testing.T) {
	r := start(t, Options{Healthy: true})
	req, err := http.NewRequest(http.MethodPost, r.url+"/api/items?a=1&b=x%20y", strings.NewReader(`{"hello":"<world>"}`))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Host = "api.localhost"
	req.Header.Add("X-Test", "one")
	req.Header.Add("X-Test", "two")
	got := r.do(t, req)

	if got.status != http.StatusOK {
		t.Fatalf("status = %d, want 200", got.status)
	}
	if ct := got.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if b := got.header.Get("X-Backend"); b != "hello-1" {
		t.Errorf("X-Backend = %q, want hello-1", b)
	}

	var keys map[string]json.RawMessage
	if err := json.Unmarshal([]byte(got.body), &keys); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, got.body)
	}
	wantKeys := []string{"body", "headers", "host", "instance", "method", "path", "query"}
	gotKeys := make([]string, 0, len(keys))
	for k := range keys {
		gotKeys = append(gotKeys, k)
	}
	slices.Sort(gotKeys)
	if !slices.Equal(gotKeys, wantKeys) {
		t.Errorf("keys = %v, want %v", gotKeys, wantKeys)
	}

	var echo requestEcho
	if err := json.Unmarshal([]byte(got.body), &echo); err != nil {
		t.Fatalf("decode echo: %v", err)
	}
	want := map[string]string{
		"instance": "hello-1",
		"method":   "POST",
		"path":     "/api/items",
		"query":    "a=1&b=x%20y",
		"host":     "api.localhost",
		"body":     `{"hello":"<world>"}`,
	}
	gotFields := map[string]string{
		"instance": echo.Instance, "method": echo.Method, "path": echo.Path,
		"query": echo.Query, "host": echo.Host, "body": echo.Body,
	}
	for k, v := range want {
		if gotFields[k] != v {
			t.Errorf("%s = %q, want %q", k, gotFields[k], v)
		}
	}
	if h := echo.Headers["X-Test"]; !slices.Equal(h, []string{"one", "two"}) {
		t.Errorf(`headers["X-Test"] = %q, want ["one" "two"]`, h)
	}
	if !strings.Contains(got.body, `<world>`) {
		t.Errorf("body escapes HTML; want it verbatim: %s", got.body)
	}
}

func TestLargeBodyIsTruncatedAndConnectionReused(t *testing.T) {
	r := start(t, Options{Healthy: true})
	big := strings.Repeat("x", MaxEchoedBody+512<<10) // beyond what net/http drains by itself (256 KiB)
	req, err := http.NewRequest(http.MethodPut, r.url+"/upload", strings.NewReader(big))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	got := r.do(t, req)
	var echo requestEcho
	if err := json.Unmarshal([]byte(got.body), &echo); err != nil {
		t.Fatalf("decode echo: %v", err)
	}
	if len(echo.Body) != MaxEchoedBody || !echo.BodyTruncated {
		t.Fatalf("echoed %d bytes, truncated=%v; want %d, true", len(echo.Body), echo.BodyTruncated, MaxEchoedBody)
	}

	// The rest of the body was drained, so the next request reuses the
	// same connection and is framed correctly.
	reused := false
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
	req, err = http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, r.url+"/after", nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	got = r.do(t, req)
	var second requestEcho
	if err := json.Unmarshal([]byte(got.body), &second); err != nil {
		t.Fatalf("decode second echo: %v", err)
	}
	if second.Path != "/after" || second.BodyTruncated {
		t.Fatalf("second echo path=%q truncated=%v; want /after, false", second.Path, second.BodyTruncated)
	}
	if !reused {
		t.Errorf("second request opened a new connection; want keep-alive reuse")
	}
}

func TestConfiguredStatusAndBody(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		wantCode int
		wantBody string
		wantType string
	}{
		{"text", Options{Status: 201, Body: "created\n"}, 201, "created\n", "text/plain; charset=utf-8"},
		{"html", Options{Status: 404, Body: "<html><body>gone</body></html>"}, 404, "<html><body>gone</body></html>", "text/html; charset=utf-8"},
		{"zero status means 200", Options{Body: "hi"}, 200, "hi", "text/plain; charset=utf-8"},
		{"no content", Options{Status: 204, Body: "ignored"}, 204, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := start(t, tc.opts)
			got := r.get(t, "/any/path?x=1")
			if got.status != tc.wantCode || got.body != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", got.status, got.body, tc.wantCode, tc.wantBody)
			}
			if ct := got.header.Get("Content-Type"); ct != tc.wantType {
				t.Errorf("Content-Type = %q, want %q", ct, tc.wantType)
			}
			if b := got.header.Get("X-Backend"); b != "hello-1" {
				t.Errorf("X-Backend = %q, want hello-1", b)
			}
		})
	}
}

func TestLatencyDelaysResponses(t *testing.T) {
	const latency = 150 * time.Millisecond
	r := start(t, Options{Latency: latency, Healthy: true})
	for range 3 {
		began := time.Now()
		got := r.get(t, "/slow")
		took := time.Since(began)
		if got.status != http.StatusOK {
			t.Fatalf("status = %d, want 200", got.status)
		}
		if took < latency || took > latency+2*time.Second {
			t.Fatalf("request took %v, want at least %v and not much more", took, latency)
		}
	}
}

func TestHealthzSkipsLatencyAndFaults(t *testing.T) {
	r := start(t, Options{Latency: 5 * time.Second, ErrorRate: 1, Healthy: true})
	began := time.Now()
	got := r.get(t, HealthPath)
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("healthz took %v; want no configured latency", took)
	}
	if got.status != http.StatusOK || got.body != "ok" || got.header.Get("X-Backend") != "hello-1" {
		t.Fatalf("healthz = %d %q X-Backend=%q, want 200 ok hello-1", got.status, got.body, got.header.Get("X-Backend"))
	}
}

func TestHealthz(t *testing.T) {
	r := start(t, Options{Status: 500, Body: "broken", Healthy: true})
	if got := r.get(t, HealthPath); got.status != 200 || got.body != "ok" {
		t.Fatalf("healthy: healthz = %d %q, want 200 ok", got.status, got.body)
	}

	r.srv.Update(Options{Status: 500, Body: "broken", Healthy: false})
	got := r.get(t, HealthPath)
	if got.status != http.StatusServiceUnavailable || got.header.Get("X-Backend") != "hello-1" {
		t.Fatalf("unhealthy: healthz = %d X-Backend=%q, want 503 hello-1", got.status, got.header.Get("X-Backend"))
	}

	// Only GET and HEAD are health checks; other methods get the normal answer.
	req, err := http.NewRequest(http.MethodPost, r.url+HealthPath, nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if got := r.do(t, req); got.status != 500 || got.body != "broken" {
		t.Fatalf("POST /healthz = %d %q, want the configured 500 broken", got.status, got.body)
	}
}

func TestErrorRateFollowsInjectedSource(t *testing.T) {
	const (
		rate     = 0.3
		requests = 2000
		seed1    = 42
		seed2    = 7
	)
	r := start(t, Options{ErrorRate: rate, Body: "fine", Healthy: true}, WithRandomSource(rand.NewPCG(seed1, seed2)))

	faults := 0
	for range requests {
		got := r.get(t, "/")
		switch {
		case got.status == http.StatusServiceUnavailable:
			if got.body != `{"error":"injected fault"}`+"\n" || got.header.Get("Content-Type") != "application/json" {
				t.Fatalf("fault answer = %q (%s)", got.body, got.header.Get("Content-Type"))
			}
			if got.header.Get("X-Backend") != "hello-1" {
				t.Fatalf("fault answer lacks X-Backend")
			}
			faults++
		case got.status != http.StatusOK || got.body != "fine":
			t.Fatalf("answer = %d %q, want 200 fine or an injected 503", got.status, got.body)
		}
	}

	// The expected count is 600 with a standard deviation of about 20.5;
	// ±100 is almost five deviations, while ignoring or inverting the rate
	// lands hundreds away.
	if faults < 500 || faults > 700 {
		t.Errorf("%d of %d requests faulted, want about %d", faults, requests, int(rate*requests))
	}
	// Sequential requests draw once each from the injected source, so the
	// same seed predicts the count exactly.
	rng := rand.New(rand.NewPCG(seed1, seed2))
	predicted := 0
	for range requests {
		if rng.Float64() < rate {
			predicted++
		}
	}
	if faults != predicted {
		t.Errorf("%d faults, the injected source predicts %d: it is not the one in use", faults, predicted)
	}
	if got := r.srv.Requests(); got != requests {
		t.Errorf("Requests() = %d, want %d", got, requests)
	}
}

func TestErrorRateExtremesAreExact(t *testing.T) {
	for _, tc := range []struct {
		rate       float64
		wantStatus int
	}{{0, http.StatusOK}, {1, http.StatusServiceUnavailable}} {
		r := start(t, Options{ErrorRate: tc.rate, Healthy: true})
		for i := range 200 {
			if got := r.get(t, "/"); got.status != tc.wantStatus {
				t.Fatalf("error_rate %v: request %d answered %d, want %d", tc.rate, i, got.status, tc.wantStatus)
			}
		}
	}
}

func TestUpdateChangesNextRequest(t *testing.T) {
	r := start(t, Options{Healthy: true})
	if got := r.get(t, "/"); got.status != 200 || !strings.Contains(got.body, `"instance":"hello-1"`) {
		t.Fatalf("before Update: %d %q", got.status, got.body)
	}
	r.srv.Update(Options{Status: 502, Body: "switched\n", Healthy: true})
	if got := r.get(t, "/"); got.status != 502 || got.body != "switched\n" {
		t.Fatalf("after Update: %d %q, want 502 switched", got.status, got.body)
	}
	if o := r.srv.Options(); o.Status != 502 || o.Body != "switched\n" {
		t.Fatalf("Options() = %+v after Update", o)
	}
}

func TestUpdateDuringTrafficIsRaceFree(t *testing.T) {
	r := start(t, Options{Healthy: true})
	stop := make(chan struct{})
	var updater sync.WaitGroup
	updater.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r.srv.Update(Options{Status: 200 + i%2, Body: "v", Healthy: i%2 == 0})
		}
	})
	for range 100 {
		if got := r.get(t, "/"); got.status != 200 && got.status != 201 {
			t.Errorf("status %d during updates, want 200 or 201", got.status)
		}
	}
	close(stop)
	updater.Wait()
}

func TestCancelledRequestEndsLatencyWait(t *testing.T) {
	r := start(t, Options{Latency: time.Minute, Healthy: true})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url+"/", nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if _, err := r.client.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("request = %v, want the client's deadline", err)
	}
	// Had the handler kept waiting, a graceful Shutdown would hit its
	// deadline; it returns nil once the cancelled handler has gone.
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := r.srv.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown = %v, want nil: the cancelled request still holds the server", err)
	}
}

func TestShutdownDrainsInFlightRequest(t *testing.T) {
	const latency = 300 * time.Millisecond
	r := start(t, Options{Latency: latency, Body: "done", Healthy: true})

	type result struct {
		a   answer
		err error
	}
	inFlight := make(chan result, 1)
	go func() {
		resp, err := r.client.Get(r.url + "/slow")
		if err != nil {
			inFlight <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		inFlight <- result{answer{status: resp.StatusCode, body: string(body)}, err}
	}()
	eventually(t, "the request to reach the server", func() bool { return r.srv.Requests() == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v, want nil after draining", err)
	}
	select {
	case res := <-inFlight:
		if res.err != nil || res.a.status != 200 || res.a.body != "done" {
			t.Fatalf("in-flight request = %d %q, %v; want 200 done", res.a.status, res.a.body, res.err)
		}
	default:
		t.Fatalf("Shutdown returned before the in-flight request was answered")
	}
	r.waitServe(t)
	if _, err := r.client.Get(r.url + "/"); err == nil {
		t.Fatalf("request after Shutdown succeeded")
	}
}

func TestShutdownCutsSlowRequestAtDeadline(t *testing.T) {
	r := start(t, Options{Latency: time.Minute, Healthy: true})
	inFlight := make(chan error, 1)
	go func() {
		resp, err := r.client.Get(r.url + "/stuck")
		if err == nil {
			resp.Body.Close()
		}
		inFlight <- err
	}()
	eventually(t, "the request to reach the server", func() bool { return r.srv.Requests() == 1 })

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
	select {
	case err := <-inFlight:
		if err == nil {
			t.Fatalf("cut request succeeded; want a connection error")
		}
	case <-time.After(deadline):
		t.Fatalf("client never saw the connection close")
	}
}

func TestOptionsNormalized(t *testing.T) {
	tests := []struct {
		in   Options
		want Options
	}{
		{Options{}, Options{Status: 200}},
		{Options{Status: 99}, Options{Status: 500}},
		{Options{Status: 1000}, Options{Status: 500}},
		{Options{Status: 503, ErrorRate: math.NaN()}, Options{Status: 503}},
		{Options{ErrorRate: -0.5, Latency: -time.Second}, Options{Status: 200}},
		{Options{ErrorRate: 1.5}, Options{Status: 200, ErrorRate: 1}},
		{Options{Status: 418, Body: "teapot", Latency: time.Second, ErrorRate: 0.25, Healthy: true},
			Options{Status: 418, Body: "teapot", Latency: time.Second, ErrorRate: 0.25, Healthy: true}},
	}
	for _, tc := range tests {
		if got := tc.in.normalized(); got != tc.want {
			t.Errorf("normalized(%+v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestServeAfterShutdownReturnsNil(t *testing.T) {
	srv := New("hello-1", Options{Healthy: true}, hclog.NewNullLogger())
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
