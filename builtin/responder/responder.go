// Package responder is the built-in `http` handler: a configurable HTTP
// backend for demos and fault injection. Every path answers the configured
// status and body; with no body configured it answers a JSON description of
// the request, so a client behind the proxy can see which backend served it
// and what the proxy forwarded.
//
// The default JSON body has this shape (keys in this order):
//
//	{
//	  "instance": "hello-1",          // the builtin's name
//	  "method":   "GET",
//	  "path":     "/api/x",           // decoded URL path
//	  "query":    "a=1&b=2",          // raw query string, "" when absent
//	  "host":     "api.localhost",    // the Host header as received
//	  "headers":  {"Accept": ["*/*"]},// canonical name -> every value, in order
//	  "body":     "...",              // request body as a string (first 1 MiB)
//	  "body_truncated": true          // present only when the body was cut
//	}
//
// Header values are always arrays so that clients need no type switch.
// Request bodies that are not valid UTF-8 have the invalid bytes replaced by
// U+FFFD, as encoding/json does for every string.
//
// GET and HEAD /healthz answer 200 "ok" (503 "unhealthy" when Options.Healthy
// is false) without the configured latency or injected faults: health checks
// have their own short timeouts, and a demo of a slow backend should not also
// mark it unhealthy. Every other request, including injected 503s, waits
// Options.Latency first.
package responder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"switchyard/builtin"
)

// MaxEchoedBody is how much of a request body the default JSON answer
// includes; the rest is read and discarded so the connection stays reusable.
const MaxEchoedBody = 1 << 20

// HealthPath is the path that answers health checks.
const HealthPath = "/healthz"

// Server timeouts. There is no ReadTimeout or WriteTimeout: request bodies
// are streamed through the proxy and Options.Latency may be long, and both
// would cut legitimate slow exchanges. IdleTimeout is longer than the usual
// client-side idle timeout (net/http's 90s) so that a pooled proxy connection
// is closed by the proxy rather than raced by us.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 120 * time.Second
)

// Options is the live configuration of a Server; Update replaces it.
type Options struct {
	// Status answers every request except health checks and injected
	// faults. 0 means 200; values outside 200..999 are answered as 500,
	// because net/http treats 1xx as informational and panics above 999.
	Status int
	// Body is the answer's body; "" means the JSON echo of the request.
	Body string
	// Latency is waited before every response except health checks.
	Latency time.Duration
	// ErrorRate is the fraction of requests answered 503 with
	// {"error":"injected fault"}; it is clamped to [0, 1].
	ErrorRate float64
	// Healthy false makes GET /healthz answer 503.
	Healthy bool
}

// normalized returns o with the documented defaults and clamps applied.
func (o Options) normalized() Options {
	switch {
	case o.Status == 0:
		o.Status = http.StatusOK
	case o.Status < 200 || o.Status > 999:
		o.Status = http.StatusInternalServerError
	}
	if math.IsNaN(o.ErrorRate) || o.ErrorRate < 0 {
		o.ErrorRate = 0
	}
	o.ErrorRate = min(o.ErrorRate, 1)
	o.Latency = max(o.Latency, 0)
	return o
}

// ServerOption customises a Server at construction.
type ServerOption func(*Server)

// WithRandomSource makes the fault injection draw from src instead of the
// process-wide generator, so tests can make it deterministic. The Server
// serialises its use of src, which need not be safe for concurrent use.
func WithRandomSource(src rand.Source) ServerOption {
	return func(s *Server) {
		rng := rand.New(src)
		var mu sync.Mutex
		s.uniform = func() float64 {
			mu.Lock()
			defer mu.Unlock()
			return rng.Float64()
		}
	}
}

// Server is a built-in HTTP responder. The zero value is not usable; call New.
type Server struct {
	name    string
	log     hclog.Logger
	opts    atomic.Pointer[Options] // never nil
	uniform func() float64          // uniform in [0, 1); safe for concurrent use
	http    *http.Server

	requests atomic.Uint64

	// mu guards closed. A handler registers with handlers under mu while
	// closed is false, so every handlers.Add happens before Shutdown's Wait.
	mu       sync.Mutex
	closed   bool
	handlers sync.WaitGroup
}

var _ builtin.Server = (*Server)(nil)

// New returns a responder named name; the name is the X-Backend header value
// and the "instance" of the JSON echo.
func New(name string, opts Options, log hclog.Logger, extra ...ServerOption) *Server {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s := &Server{
		name:    name,
		log:     log.With("builtin", name, "handler", "http"),
		uniform: rand.Float64,
	}
	for _, apply := range extra {
		apply(s)
	}
	s.Update(opts)
	s.http = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog: s.log.StandardLogger(&hclog.StandardLoggerOptions{
			InferLevels: true,
			ForceLevel:  hclog.Debug, // client misbehaviour is not our error
		}),
	}
	return s
}

// Update replaces the options; requests that start afterwards use them.
// It is safe to call while requests are being served.
func (s *Server) Update(opts Options) {
	n := opts.normalized()
	if n.Status != opts.Status && opts.Status != 0 {
		s.log.Warn("status out of range; answering 500 instead", "status", opts.Status)
	}
	s.opts.Store(&n)
}

// Options returns the options in force (with defaults applied).
func (s *Server) Options() Options { return *s.opts.Load() }

// Requests is the number of requests received since New, health checks
// included.
func (s *Server) Requests() uint64 { return s.requests.Load() }

// Serve answers HTTP requests on ln until Shutdown is called, then returns
// nil.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("http builtin %q: serve on %s: %w", s.name, ln.Addr(), err)
}

// Shutdown stops accepting, lets in-flight requests finish until ctx is done,
// then closes the remaining connections and waits for their handlers. It
// returns ctx's error when requests had to be cut.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if err != nil {
		// Close cancels the remaining requests' contexts, which ends any
		// latency wait, and fails their body reads.
		if cerr := s.http.Close(); cerr != nil {
			s.log.Debug("closing remaining connections", "error", cerr)
		}
		err = fmt.Errorf("http builtin %q: shutdown: %w", s.name, err)
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.handlers.Wait()
	return err
}

// enter registers a handler; it reports false once Shutdown has finished.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.handlers.Add(1)
	return true
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		// Only reachable on a connection that outlived Close; answering
		// would outlive our owner.
		return
	}
	defer s.handlers.Done()
	s.requests.Add(1)

	// One load per request: a concurrent Update never mixes two configs in
	// one answer.
	opts := *s.opts.Load()
	w.Header().Set("X-Backend", s.name)

	if r.URL.Path == HealthPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		if opts.Healthy {
			writeBody(w, http.StatusOK, "text/plain; charset=utf-8", []byte("ok"))
		} else {
			writeBody(w, http.StatusServiceUnavailable, "text/plain; charset=utf-8", []byte("unhealthy"))
		}
		return
	}

	var echo []byte
	if opts.Body == "" {
		var err error
		if echo, err = s.describe(r); err != nil {
			s.log.Debug("reading request body", "error", err)
			return // the client went away; nobody to answer
		}
	}

	if opts.Latency > 0 && !wait(r.Context(), opts.Latency) {
		return // the client gave up; writing would fail anyway
	}

	if s.injectFault(opts.ErrorRate) {
		writeBody(w, http.StatusServiceUnavailable, "application/json", []byte(`{"error":"injected fault"}`+"\n"))
		return
	}
	if opts.Body == "" {
		writeBody(w, opts.Status, "application/json", echo)
		return
	}
	body := []byte(opts.Body)
	writeBody(w, opts.Status, http.DetectContentType(body), body)
}

// injectFault decides whether this request gets an injected 503. The
// generator is not consulted at the extremes, which keeps 0 and 1 exact and
// spares the lock in the common case.
func (s *Server) injectFault(rate float64) bool {
	switch {
	case rate <= 0:
		return false
	case rate >= 1:
		return true
	default:
		return s.uniform() < rate
	}
}

// requestEcho is the default JSON body; see the package doc for its shape.
type requestEcho struct {
	Instance      string              `json:"instance"`
	Method        string              `json:"method"`
	Path          string              `json:"path"`
	Query         string              `json:"query"`
	Host          string              `json:"host"`
	Headers       map[string][]string `json:"headers"`
	Body          string              `json:"body"`
	BodyTruncated bool                `json:"body_truncated,omitempty"`
}

// describe reads the request body (keeping the first MaxEchoedBody bytes)
// and renders the JSON echo.
func (s *Server) describe(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxEchoedBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	truncated := len(body) > MaxEchoedBody
	if truncated {
		body = body[:MaxEchoedBody]
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return nil, fmt.Errorf("discard body: %w", err)
		}
	}
	headers := r.Header
	if headers == nil {
		headers = http.Header{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err = enc.Encode(requestEcho{
		Instance:      s.name,
		Method:        r.Method,
		Path:          r.URL.Path,
		Query:         r.URL.RawQuery,
		Host:          r.Host,
		Headers:       headers,
		Body:          string(body),
		BodyTruncated: truncated,
	})
	if err != nil {
		return nil, fmt.Errorf("encode echo: %w", err)
	}
	return buf.Bytes(), nil
}

// wait blocks for d or until ctx is done, and reports whether d elapsed.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	h := w.Header()
	if status == http.StatusNoContent || status == http.StatusNotModified {
		// These statuses carry no body by definition (RFC 9110 §15.3.5, §15.4.5).
		w.WriteHeader(status)
		return
	}
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	// A write error means the client left; there is nobody to tell.
	_, _ = w.Write(body)
}
