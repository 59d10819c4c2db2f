// Package admin serves switchyard's admin endpoint: the live dashboard,
// /status (JSON), /metrics (Prometheus), /healthz and POST /reload. It knows
// the runtime only through the small Backend interface, so it can be tested
// against anything that reports status and reloads.
package admin

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed dashboard
var dashboardFS embed.FS

// Runtime is what the admin endpoint needs from the running proxy.
type Runtime interface {
	// Status returns the JSON-encodable /status document.
	Status() any
	// Reload reloads the config file now.
	Reload() ReloadOutcome
}

// ReloadOutcome is the result of POST /reload.
type ReloadOutcome struct {
	OK          bool
	Generation  uint64
	Changed     bool
	Error       string
	Diagnostics []string
}

// NewHandler returns the admin endpoint's handler. It refuses foreign Host
// values (DNS rebinding) and cross-site state-changing requests; see guard.
func NewHandler(rt Runtime, gatherer prometheus.Gatherer, opts ...Option) http.Handler {
	mux := http.NewServeMux()
	page, pageErr := dashboardFS.ReadFile("dashboard/index.html")
	csp := contentSecurityPolicy(page)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if pageErr != nil {
			http.Error(w, "dashboard missing from the binary", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		_, _ = w.Write(page)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, rt.Status())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		res := rt.Reload()
		if !res.OK {
			diags := res.Diagnostics
			if diags == nil {
				diags = []string{}
			}
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": res.Error, "diagnostics": diags})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"generation": res.Generation, "changed": res.Changed})
	})
	g := &guard{next: mux, hosts: map[string]bool{}}
	for _, opt := range opts {
		opt(g)
	}
	return g
}

// inlineBlock matches the dashboard's inline <script> and <style> blocks.
var inlineBlock = regexp.MustCompile(`(?s)<(script|style)>(.*?)</(?:script|style)>`)

// contentSecurityPolicy allows exactly the page's own inline script and
// style (by hash), requests to the admin endpoint itself and data: images
// (the favicon). The page is self-contained by design; the policy keeps it
// so, and stops anything injected into it from running.
func contentSecurityPolicy(page []byte) string {
	var scripts, styles []string
	for _, m := range inlineBlock.FindAllSubmatch(page, -1) {
		sum := sha256.Sum256(m[2])
		source := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if string(m[1]) == "script" {
			scripts = append(scripts, source)
		} else {
			styles = append(styles, source)
		}
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src " + sourceList(scripts),
		"style-src " + sourceList(styles),
		"connect-src 'self'",
		"img-src data:",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}

func sourceList(sources []string) string {
	if len(sources) == 0 {
		return "'none'"
	}
	return strings.Join(sources, " ")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
