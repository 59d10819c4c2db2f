package httpproxy

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"switchyard/listeners/routing"
	"switchyard/upstream"
)

// seen is what the inspecting backend reports about the request it got.
type seen struct {
	Host     string
	Path     string
	RawPath  string
	Query    string
	Header   http.Header
	BodySize int
}

// inspectHandler answers with a JSON description of the request and sets a
// hop-by-hop header of its own, which the proxy must drop.
func inspectHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Connection", "X-Backend-Hop")
		w.Header().Set("X-Backend-Hop", "secret")
		w.Header().Set("X-From-Backend", "yes")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(seen{Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, Query: r.URL.RawQuery, Header: r.Header, BodySize: len(b)})
	})
}

func decodeSeen(t *testing.T, body string) seen {
	t.Helper()
	var s seen
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("backend answer %q: %v", body, err)
	}
	return s
}

func TestForwardedHeaders(t *testing.T) {
	addr := startBackend(t, inspectHandler())
	pool := newPool(t, "app", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, addr)
	target := upstreamTarget(t, "api", pool)
	target.RequestHeaders = []routing.Header{{Name: "X-Env", Value: "test"}, {Name: "User-Agent", Value: "switchyard-test"}}
	target.ResponseHeaders = []routing.Header{{Name: "X-Served-By", Value: "switchyard"}, {Name: "X-From-Backend", Value: "overridden"}}
	srv := startProxy(t, options(route(routing.Matcher{}, target)), Settings{}, nil)
	c := newClient(t)

	t.Run("forwarding, hop-by-hop and configured headers", func(t *testing.T) {
		req := mustRequest(t, http.MethodGet, proxyURL(srv)+"/x?q=1", "")
		req.Host = "Shop.Example.com:8080"
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		req.Header.Set("Connection", "X-Client-Hop")
		req.Header.Set("X-Client-Hop", "secret")
		req.Header.Set("Keep-Alive", "timeout=5")
		req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
		req.Header.Set("X-Env", "from-client")
		resp, body := do(t, c, req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d (%q)", resp.StatusCode, body)
		}
		s := decodeSeen(t, body)
		checks := []struct{ what, got, want string }{
			{"Host", s.Host, "Shop.Example.com:8080"},
			{"X-Forwarded-Host", s.Header.Get("X-Forwarded-Host"), "Shop.Example.com:8080"},
			{"X-Forwarded-Proto", s.Header.Get("X-Forwarded-Proto"), "http"},
			// A client's own X-Forwarded-For is not trusted (Rewrite drops it).
			{"X-Forwarded-For", s.Header.Get("X-Forwarded-For"), "127.0.0.1"},
			{"X-Env", s.Header.Get("X-Env"), "test"},
			{"User-Agent", s.Header.Get("User-Agent"), "switchyard-test"},
			{"X-Client-Hop", s.Header.Get("X-Client-Hop"), ""},
			{"Keep-Alive", s.Header.Get("Keep-Alive"), ""},
			{"Proxy-Authorization", s.Header.Get("Proxy-Authorization"), ""},
			{"path", s.Path, "/x"},
			{"query", s.Query, "q=1"},
			{"response X-Served-By", resp.Header.Get("X-Served-By"), "switchyard"},
			{"response X-From-Backend", resp.Header.Get("X-From-Backend"), "overridden"},
			{"response X-Backend-Hop", resp.Header.Get("X-Backend-Hop"), ""},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
			}
		}
	})

	t.Run("request id kept and returned", func(t *testing.T) {
		req := mustRequest(t, http.MethodGet, proxyURL(srv)+"/", "")
		req.Header.Set("X-Request-Id", "abc-123")
		resp, body := do(t, c, req)
		if got := decodeSeen(t, body).Header.Get("X-Request-Id"); got != "abc-123" {
			t.Fatalf("backend saw X-Request-Id %q, want abc-123", got)
		}
		if got := resp.Header.Get("X-Request-Id"); got != "abc-123" {
			t.Fatalf("response X-Request-Id %q, want abc-123", got)
		}
	})

	t.Run("request id created and returned", func(t *testing.T) {
		ids := map[string]bool{}
		for range 3 {
			resp, body := get(t, c, proxyURL(srv)+"/")
			sent := decodeSeen(t, body).Header.Get("X-Request-Id")
			if len(sent) != 32 || resp.Header.Get("X-Request-Id") != sent {
				t.Fatalf("backend saw X-Request-Id %q, client got %q: want the same new 32-hex id", sent, resp.Header.Get("X-Request-Id"))
			}
			ids[sent] = true
		}
		if len(ids) != 3 {
			t.Fatalf("request ids repeat: %v", ids)
		}
	})
}

func TestStripPrefix(t *testing.T) {
	addr := startBackend(t, inspectHandler())
	pool := newPool(t, "app", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, addr)
	target := upstreamTarget(t, "api", pool)
	target.StripPrefix = "/api/"
	srv := startProxy(t, options(route(routing.Matcher{PathPrefix: "/api/"}, target)), Settings{}, nil)
	c := newClient(t)

	tests := []struct {
		path, wantPath, wantRaw, wantQuery string
	}{
		{"/api/users?id=7", "/users", "", "id=7"},
		{"/api/", "/", "", ""},
		{"/api/a/b/c", "/a/b/c", "", ""},
		{"/api/files/a%2Fb", "/files/a/b", "/files/a%2Fb", ""},
	}
	for _, tc := range tests {
		_, body := get(t, c, proxyURL(srv)+tc.path)
		s := decodeSeen(t, body)
		if s.Path != tc.wantPath || s.RawPath != tc.wantRaw || s.Query != tc.wantQuery {
			t.Errorf("GET %s: backend saw path %q raw %q query %q, want %q %q %q", tc.path, s.Path, s.RawPath, s.Query, tc.wantPath, tc.wantRaw, tc.wantQuery)
		}
	}
}

func TestRoutingThroughProxy(t *testing.T) {
	apps := startBackend(t, nameHandler("apps"))
	api := startBackend(t, nameHandler("api"))
	appsPool := newPool(t, "apps", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, apps)
	apiPool := newPool(t, "api", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, api)
	srv := startProxy(t, options(
		route(routing.Matcher{Host: "*.apps.test"}, upstreamTarget(t, "apps", appsPool)),
		route(routing.Matcher{Host: "api.test", PathPrefix: "/v1/", Methods: []string{"GET", "POST"}, Headers: []routing.Header{{Name: "X-Canary", Value: "1"}}}, upstreamTarget(t, "api", apiPool)),
		route(routing.Matcher{Path: "/teapot"}, &Target{Route: "teapot", Respond: &StaticResponse{
			Status: http.StatusTeapot, Body: []byte("short and stout\n"), Headers: []routing.Header{{Name: "X-Static", Value: "1"}},
		}, ResponseHeaders: []routing.Header{{Name: "X-Served-By", Value: "switchyard"}}}),
		route(routing.Matcher{Path: "/empty"}, &Target{Route: "empty", Respond: &StaticResponse{Status: http.StatusNoContent}}),
	), Settings{}, nil)
	c := newClient(t)

	tests := []struct {
		name, method, host, path string
		canary                   bool
		wantStatus               int
		wantBody                 string
	}{
		{"wildcard one label, port ignored", "GET", "shop.apps.test:9999", "/", false, 200, "apps"},
		{"wildcard two labels", "GET", "a.shop.apps.test", "/", false, 404, ""},
		{"wildcard bare domain", "GET", "apps.test", "/", false, 404, ""},
		{"exact host, prefix, method, header", "POST", "API.test", "/v1/orders", true, 200, "api"},
		{"header missing", "GET", "api.test", "/v1/orders", false, 404, ""},
		{"method not listed", "DELETE", "api.test", "/v1/orders", true, 404, ""},
		{"static answer", "GET", "any", "/teapot", false, http.StatusTeapot, "short and stout\n"},
		{"static answer, HEAD", "HEAD", "any", "/teapot", false, http.StatusTeapot, ""},
		{"static 204", "GET", "any", "/empty", false, http.StatusNoContent, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := mustRequest(t, tc.method, proxyURL(srv)+tc.path, "")
			req.Host = tc.host
			if tc.canary {
				req.Header.Set("X-Canary", "1")
			}
			resp, body := do(t, c, req)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if tc.wantStatus == http.StatusNotFound {
				if msg := jsonError(t, resp, body); !strings.Contains(msg, tc.path) {
					t.Fatalf("404 message %q does not name the path", msg)
				}
				return
			}
			if body != tc.wantBody {
				t.Fatalf("body %q, want %q", body, tc.wantBody)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Fatal("no X-Request-Id")
			}
			if tc.path == "/teapot" {
				if resp.Header.Get("X-Static") != "1" || resp.Header.Get("X-Served-By") != "switchyard" {
					t.Fatalf("static answer headers %v", resp.Header)
				}
				if resp.ContentLength != int64(len("short and stout\n")) {
					t.Fatalf("Content-Length %d", resp.ContentLength)
				}
			}
		})
	}
}

func TestUpdateSwapsRoutes(t *testing.T) {
	srv := startProxy(t, options(route(routing.Matcher{}, &Target{Route: "old", Respond: &StaticResponse{Status: 200, Body: []byte("old")}})), Settings{}, nil)
	c := newClient(t)
	if _, body := get(t, c, proxyURL(srv)+"/"); body != "old" {
		t.Fatalf("body %q, want old", body)
	}
	srv.Update(options(route(routing.Matcher{}, &Target{Route: "new", Respond: &StaticResponse{Status: 200, Body: []byte("new")}})), Settings{})
	if _, body := get(t, c, proxyURL(srv)+"/"); body != "new" {
		t.Fatalf("body %q after Update, want new", body)
	}
}

func TestRecords(t *testing.T) {
	addr := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "created!")
	}))
	pool := newPool(t, "app", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, addr)
	rec := &recorder{}
	srv := startProxy(t, options(
		route(routing.Matcher{PathPrefix: "/api"}, upstreamTarget(t, "api", pool)),
		route(routing.Matcher{Path: "/static"}, &Target{Route: "static", Respond: &StaticResponse{Status: 200, Body: []byte("hello")}}),
	), Settings{}, rec)
	c := newClient(t)

	req := mustRequest(t, http.MethodPost, proxyURL(srv)+"/api/items", "payload")
	req.Host = "shop.test"
	req.Header.Set("X-Request-Id", "rid-1")
	do(t, c, req)
	get(t, c, proxyURL(srv)+"/static")
	get(t, c, proxyURL(srv)+"/missing")

	recs := rec.waitRecords(t, 3)
	want := []Record{
		{Listener: "web", Route: "api", Upstream: "app", Backend: addr, Method: "POST", Host: "shop.test", Path: "/api/items", Status: 201, Bytes: 8, RequestID: "rid-1"},
		{Listener: "web", Route: "static", Method: "GET", Path: "/static", Status: 200, Bytes: 5},
		{Listener: "web", Method: "GET", Path: "/missing", Status: 404},
	}
	for i, w := range want {
		got := recs[i]
		if got.Duration <= 0 || got.RequestID == "" {
			t.Errorf("record %d: duration %v, request id %q", i, got.Duration, got.RequestID)
		}
		got.Duration = 0
		if w.RequestID == "" {
			got.RequestID = ""
		}
		if w.Host == "" {
			got.Host = ""
		}
		if i == 2 {
			if got.Bytes == 0 {
				t.Errorf("404 record counts no body bytes")
			}
			got.Bytes = 0
		}
		if got != w {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got, w)
		}
	}
}
