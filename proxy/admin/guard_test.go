package admin

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// send sends one request with the given Host (when not "") and headers and
// returns the response with its body read.
func send(t *testing.T, method, rawURL, host string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, rawURL, err)
	}
	return res, string(body)
}

// wantForbiddenJSON checks a 403 with a JSON {"error": "..."} body.
func wantForbiddenJSON(t *testing.T, what string, res *http.Response, body string) {
	t.Helper()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("%s = %d %q, want 403", what, res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	if ns := res.Header.Get("X-Content-Type-Options"); ns != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options %q, want nosniff", what, ns)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("%s: body is not JSON: %v\n%s", what, err, body)
	}
	if msg, ok := got["error"].(string); !ok || msg == "" {
		t.Fatalf("%s: body %s, want a non-empty \"error\" string", what, body)
	}
}

func port(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

// TestReloadRefusesCrossSiteBrowserRequests: a page on another site can send
// a "simple" POST (text/plain, no preflight); the endpoint must refuse it
// before reloading anything.
func TestReloadRefusesCrossSiteBrowserRequests(t *testing.T) {
	rt := &fakeRuntime{outcome: ReloadOutcome{OK: true, Generation: 2, Changed: true}}
	base := serve(t, rt, nil)
	self := strings.TrimPrefix(base, "http://") // 127.0.0.1:PORT
	for _, tc := range []struct {
		name   string
		header map[string]string
	}{
		{"foreign Origin", map[string]string{"Origin": "http://evil.example", "Content-Type": "text/plain"}},
		{"Origin on another port of the same host", map[string]string{"Origin": "http://127.0.0.1:1"}},
		{"Origin on localhost instead of the IP", map[string]string{"Origin": "http://localhost:" + port(t, base)}},
		{"opaque Origin", map[string]string{"Origin": "null"}},
		{"non-web Origin scheme", map[string]string{"Origin": "file://" + self}},
		{"Sec-Fetch-Site cross-site", map[string]string{"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}},
		{"Sec-Fetch-Site same-site", map[string]string{"Sec-Fetch-Site": "same-site"}},
		{"Sec-Fetch-Site overrides a matching Origin", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": base}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := send(t, http.MethodPost, base+"/reload", "", tc.header)
			wantForbiddenJSON(t, "POST /reload", res, body)
		})
	}
	if n := rt.reloadCount(); n != 0 {
		t.Fatalf("runtime reloaded %d times on refused requests, want 0", n)
	}
}

// TestReloadAcceptsSameOriginAndNonBrowserRequests: the dashboard (same
// origin), a typed-in navigation (Sec-Fetch-Site: none) and curl (no
// browser headers at all) all reload.
func TestReloadAcceptsSameOriginAndNonBrowserRequests(t *testing.T) {
	rt := &fakeRuntime{outcome: ReloadOutcome{OK: true, Generation: 2, Changed: true}}
	base := serve(t, rt, nil)
	localhost := "localhost:" + port(t, base)
	for i, tc := range []struct {
		name   string
		host   string
		header map[string]string
	}{
		{"no Origin", "", nil},
		{"same-origin Origin", "", map[string]string{"Origin": base, "Content-Type": "text/plain"}},
		{"same-origin Origin, https", "", map[string]string{"Origin": strings.Replace(base, "http:", "https:", 1)}},
		{"same-origin Origin on localhost", localhost, map[string]string{"Origin": "http://" + localhost}},
		{"Sec-Fetch-Site same-origin", "", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": base}},
		{"Sec-Fetch-Site none", "", map[string]string{"Sec-Fetch-Site": "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := send(t, http.MethodPost, base+"/reload", tc.host, tc.header)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("POST /reload = %d %q, want 200", res.StatusCode, body)
			}
			if n := rt.reloadCount(); n != i+1 {
				t.Fatalf("runtime reloaded %d times, want %d", n, i+1)
			}
		})
	}
}

// TestForeignHostIsRefused: with DNS rebinding a page on evil.example reads
// the endpoint as its own origin; its requests still say Host: evil.example.
func TestForeignHostIsRefused(t *testing.T) {
	rt := &fakeRuntime{status: map[string]any{"version": "secret"}, outcome: ReloadOutcome{OK: true}}
	base := serve(t, rt, nil)
	p := port(t, base)
	for _, host := range []string{
		"evil.example",
		"evil.example:" + p,
		"localhost.evil.example:" + p,
		"127.0.0.1.nip.io:" + p,
		"sub.localhost:" + p,
		"10.11.12.13:" + p, // an IP literal, but not this endpoint's
	} {
		for _, path := range []string{"/status", "/metrics", "/", "/nope"} {
			res, body := send(t, http.MethodGet, base+path, host, nil)
			wantForbiddenJSON(t, "GET "+path+" with Host "+host, res, body)
			if strings.Contains(body, "secret") {
				t.Fatalf("GET %s with Host %s leaked the status document: %s", path, host, body)
			}
		}
		res, body := send(t, http.MethodPost, base+"/reload", host, nil)
		wantForbiddenJSON(t, "POST /reload with Host "+host, res, body)
	}
	if n := rt.reloadCount(); n != 0 {
		t.Fatalf("runtime reloaded %d times on refused requests, want 0", n)
	}
}

func TestLocalHostNamesAreAccepted(t *testing.T) {
	base := serve(t, &fakeRuntime{status: map[string]any{"version": "1"}}, nil)
	p := port(t, base)
	for _, host := range []string{
		"localhost:" + p,
		"LocalHost:" + p,
		"localhost",
		"localhost.:" + p,
		"localhost:8080", // a port forward
		"127.0.0.1:" + p,
		"127.0.0.1",
		"[::1]:" + p,
		"[::1]",
	} {
		res, body := send(t, http.MethodGet, base+"/status", host, nil)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET /status with Host %s = %d %q, want 200", host, res.StatusCode, body)
		}
	}
}

// TestHealthzAnswersAnyHost: Kubernetes probes send Host = pod IP:port.
func TestHealthzAnswersAnyHost(t *testing.T) {
	base := serve(t, &fakeRuntime{}, nil)
	for _, host := range []string{"evil.example", "10.1.2.3:9090"} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			res, body := send(t, method, base+"/healthz", host, nil)
			if res.StatusCode != http.StatusOK {
				t.Errorf("%s /healthz with Host %s = %d %q, want 200", method, host, res.StatusCode, body)
			}
		}
	}
}

func TestEveryAnswerIsNosniff(t *testing.T) {
	base := serve(t, &fakeRuntime{outcome: ReloadOutcome{Error: "bad"}}, nil)
	for _, tc := range []struct {
		method, path, host string
		header             map[string]string
	}{
		{http.MethodGet, "/", "", nil},
		{http.MethodGet, "/status", "", nil},
		{http.MethodGet, "/healthz", "", nil},
		{http.MethodGet, "/metrics", "", nil},
		{http.MethodPost, "/reload", "", nil},
		{http.MethodGet, "/nope", "", nil},
		{http.MethodGet, "/reload", "", nil},
		{http.MethodGet, "/status", "evil.example", nil},
		{http.MethodPost, "/reload", "", map[string]string{"Origin": "http://evil.example"}},
	} {
		res, body := send(t, tc.method, base+tc.path, tc.host, tc.header)
		if ns := res.Header.Get("X-Content-Type-Options"); ns != "nosniff" {
			t.Errorf("%s %s (Host %q) = %d %q: X-Content-Type-Options %q, want nosniff",
				tc.method, tc.path, tc.host, res.StatusCode, body, ns)
		}
	}
}

// TestHostOfTheConnectionIsAccepted: on a wildcard or non-loopback bind the
// endpoint is reached by its IP address; the Host is then the local address
// of the connection. (Injected here: tests listen on loopback only.)
func TestHostOfTheConnectionIsAccepted(t *testing.T) {
	h := NewHandler(&fakeRuntime{status: map[string]any{}}, prometheus.NewRegistry(), AllowHost("admin.internal:9090"))
	for _, tc := range []struct {
		local net.Addr
		host  string
		want  int
	}{
		{&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 9090}, "10.1.2.3:9090", http.StatusOK},
		{&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 9090}, "10.1.2.3", http.StatusOK},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:10.1.2.3"), Port: 9090}, "10.1.2.3:9090", http.StatusOK},
		{&net.TCPAddr{IP: net.ParseIP("fd00::7"), Port: 9090}, "[fd00::7]:9090", http.StatusOK},
		{&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 9090}, "10.1.2.4:9090", http.StatusForbidden},
		{&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 9090}, "evil.example:9090", http.StatusForbidden},
		{&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 9090}, "admin.internal:9090", http.StatusOK},
		{&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 9090}, "Admin.Internal", http.StatusOK},
		{nil, "10.1.2.3:9090", http.StatusForbidden},
	} {
		req := httptest.NewRequest(http.MethodGet, "/status", nil)
		req.Host = tc.host
		if tc.local != nil {
			req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, tc.local))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("Host %s on local address %v = %d %q, want %d", tc.host, tc.local, rec.Code, rec.Body.String(), tc.want)
		}
	}
}
