package admin

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// fakeRuntime answers Status with a fixed document and Reload with a fixed
// outcome, counting reloads.
type fakeRuntime struct {
	status  any
	outcome ReloadOutcome

	mu      sync.Mutex
	reloads int
}

func (f *fakeRuntime) Status() any { return f.status }

func (f *fakeRuntime) Reload() ReloadOutcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
	return f.outcome
}

func (f *fakeRuntime) reloadCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reloads
}

// serve starts the admin handler on a real loopback socket.
func serve(t *testing.T, rt Runtime, g prometheus.Gatherer) string {
	t.Helper()
	if g == nil {
		g = prometheus.NewRegistry()
	}
	srv := httptest.NewServer(NewHandler(rt, g))
	t.Cleanup(srv.Close)
	return srv.URL
}

var client = &http.Client{Timeout: 5 * time.Second}

// do sends one request and returns the response with its body read.
func do(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
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
	return res, string(body)
}

func TestStatusServesTheRuntimeDocument(t *testing.T) {
	doc := map[string]any{"version": "1.2.3", "config": map[string]any{"generation": 7.0}}
	url := serve(t, &fakeRuntime{status: doc}, nil)
	res, body := do(t, http.MethodGet, url+"/status")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %q", res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store (the dashboard polls it)", cc)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	if got["version"] != "1.2.3" || got["config"].(map[string]any)["generation"] != 7.0 {
		t.Fatalf("got %v, want the runtime's document %v", got, doc)
	}
}

func TestHealthz(t *testing.T) {
	url := serve(t, &fakeRuntime{}, nil)
	res, body := do(t, http.MethodGet, url+"/healthz")
	if res.StatusCode != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Fatalf("GET /healthz = %d %q, want 200 ok", res.StatusCode, body)
	}
}

func TestReloadSuccessAnswersTheGeneration(t *testing.T) {
	rt := &fakeRuntime{outcome: ReloadOutcome{OK: true, Generation: 4, Changed: true}}
	url := serve(t, rt, nil)
	res, body := do(t, http.MethodPost, url+"/reload")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %q", res.StatusCode, body)
	}
	var got struct {
		Generation *uint64 `json:"generation"`
		Changed    bool    `json:"changed"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	if got.Generation == nil || *got.Generation != 4 || !got.Changed {
		t.Fatalf("body %s, want generation 4 and changed", body)
	}
	if n := rt.reloadCount(); n != 1 {
		t.Fatalf("runtime reloaded %d times, want 1", n)
	}
}

func TestReloadFailureAnswers422WithDiagnostics(t *testing.T) {
	for _, tc := range []struct {
		name      string
		outcome   ReloadOutcome
		wantDiags []string
	}{
		{
			name: "diagnostics",
			outcome: ReloadOutcome{Error: "proxy.hcl:3,5-9: Unsupported argument",
				Diagnostics: []string{"proxy.hcl:3,5-9: Unsupported argument", "proxy.hcl:7,1-2: Missing name"}},
			wantDiags: []string{"proxy.hcl:3,5-9: Unsupported argument", "proxy.hcl:7,1-2: Missing name"},
		},
		{
			name:      "no diagnostics is an empty list, not null",
			outcome:   ReloadOutcome{Error: "runtime is shutting down"},
			wantDiags: []string{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := serve(t, &fakeRuntime{outcome: tc.outcome}, nil)
			res, body := do(t, http.MethodPost, url+"/reload")
			if res.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422; body %q", res.StatusCode, body)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("body is not JSON: %v\n%s", err, body)
			}
			if got["error"] != tc.outcome.Error {
				t.Errorf("error %q, want %q", got["error"], tc.outcome.Error)
			}
			diags, ok := got["diagnostics"].([]any)
			if !ok {
				t.Fatalf("diagnostics %v (%T), want a JSON array", got["diagnostics"], got["diagnostics"])
			}
			if len(diags) != len(tc.wantDiags) {
				t.Fatalf("diagnostics %v, want %v", diags, tc.wantDiags)
			}
			for i := range diags {
				if diags[i] != tc.wantDiags[i] {
					t.Errorf("diagnostics[%d] = %v, want %q", i, diags[i], tc.wantDiags[i])
				}
			}
		})
	}
}

func TestMethodsAndUnknownPaths(t *testing.T) {
	rt := &fakeRuntime{outcome: ReloadOutcome{OK: true, Generation: 1}}
	url := serve(t, rt, nil)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/reload", http.StatusMethodNotAllowed},
		{http.MethodPost, "/status", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/", http.StatusMethodNotAllowed},
		{http.MethodGet, "/nope", http.StatusNotFound},
		{http.MethodGet, "/status/extra", http.StatusNotFound},
		{http.MethodHead, "/healthz", http.StatusOK},
	} {
		res, _ := do(t, tc.method, url+tc.path)
		if res.StatusCode != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, res.StatusCode, tc.want)
		}
	}
	if n := rt.reloadCount(); n != 0 {
		t.Fatalf("runtime reloaded %d times; only POST /reload may reload", n)
	}
}

func TestMetricsServesTheGivenGatherer(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchyard_test_total", Help: "test"}, []string{"kind"})
	reg.MustRegister(c)
	c.WithLabelValues("a").Add(3)
	url := serve(t, &fakeRuntime{}, reg)
	res, body := do(t, http.MethodGet, url+"/metrics")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %q", res.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v\n%s", err, body)
	}
	f := families["switchyard_test_total"]
	if f == nil || len(f.GetMetric()) != 1 || f.GetMetric()[0].GetCounter().GetValue() != 3 {
		t.Fatalf("switchyard_test_total = %v, want one series at 3", f)
	}
	if len(families) != 1 {
		t.Errorf("families %d, want only the gatherer's (no global registry)", len(families))
	}
}

// TestDashboardIsSelfContained checks that the page needs nothing but the
// admin endpoint: no CDN scripts, stylesheets, fonts or images.
func TestDashboardIsSelfContained(t *testing.T) {
	url := serve(t, &fakeRuntime{}, nil)
	res, body := do(t, http.MethodGet, url+"/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("Content-Type %q, want text/html", ct)
	}
	if !strings.Contains(body, "<script>") || !strings.Contains(body, "<style>") {
		t.Fatal("dashboard has no inline script or style")
	}
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?\s*(https?:)?//|@import|url\(\s*["']?\s*(https?:)?//|<script[^>]+src=`)
	if m := external.FindString(body); m != "" {
		t.Fatalf("dashboard loads an external resource: %q", m)
	}
	// A relative URL keeps the page working behind a reverse proxy that
	// mounts the admin endpoint under a path prefix.
	if !strings.Contains(body, `fetch("status"`) {
		t.Fatal(`dashboard does not poll the relative URL "status"`)
	}
}

// TestDashboardContentSecurityPolicy checks that the policy admits exactly
// the page's own inline blocks: a hash that does not match would stop the
// dashboard from running in every browser.
func TestDashboardContentSecurityPolicy(t *testing.T) {
	url := serve(t, &fakeRuntime{}, nil)
	res, body := do(t, http.MethodGet, url+"/")
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("policy %q lacks %q", csp, want)
		}
	}
	blocks := inlineBlock.FindAllStringSubmatch(body, -1)
	if len(blocks) != 2 {
		t.Fatalf("found %d inline blocks, want one script and one style", len(blocks))
	}
	for _, b := range blocks {
		sum := sha256.Sum256([]byte(b[2]))
		want := b[1] + "-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if !strings.Contains(csp, want) {
			t.Errorf("policy %q does not admit the page's %s block (%s)", csp, b[1], want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("policy %q allows unsafe sources", csp)
	}
}
