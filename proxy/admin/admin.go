// Package admin serves switchyard's admin endpoint: the live dashboard,
// /status (JSON), /metrics (Prometheus), /healthz and POST /reload. It knows
// the runtime only through the small Backend interface, so it can be tested
// against anything that reports status and reloads.
package admin

import (
	"embed"
	"encoding/json"
	"net/http"

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

// NewHandler returns the admin endpoint's handler.
func NewHandler(rt Runtime, gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		page, err := dashboardFS.ReadFile("dashboard/index.html")
		if err != nil {
			http.Error(w, "dashboard missing from the binary", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
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
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
