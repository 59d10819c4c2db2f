// Package httpproxy is switchyard's HTTP listener: it matches each request
// against the listener's route table, picks a backend from the route's pool,
// forwards with retries and timeouts, and passes upgrades (WebSocket) through.
//
// The route table and everything hanging off it is immutable and swapped as a
// whole by Update, so a reload never changes a request that already started.
package httpproxy

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"switchyard/listeners/l7"
	"switchyard/listeners/routing"
	"switchyard/upstream"
)

// Options is one generation of a listener's configuration. It is immutable
// once handed to Update.
type Options struct {
	Listener  string
	Table     *routing.Table[*Target]
	AccessLog bool
	// Forward says which client fields reach backends and whose
	// X-Forwarded-* are believed (trusted_proxies, underscores_in_headers).
	Forward l7.ForwardPolicy
}

// Target is what a route forwards to: an upstream pool or a static answer.
type Target struct {
	Route string
	// Pool and Transport are set for upstream routes.
	Pool      *upstream.Pool
	Transport http.RoundTripper
	// Respond is set for static routes.
	Respond *StaticResponse

	StripPrefix     string // path prefix removed before forwarding; "" = none
	Timeout         time.Duration
	Retries         int
	RequestHeaders  []routing.Header
	ResponseHeaders []routing.Header
}

// StaticResponse is a fixed answer configured with respond {}.
type StaticResponse struct {
	Status  int
	Body    []byte
	Headers []routing.Header
}

// Observer receives one record per finished request. It must be cheap and
// safe for concurrent use: it runs on the request path. The record and its
// strings are only valid during the call (the fast engine lends views of its
// buffers); an observer that keeps anything copies it.
type Observer interface {
	ObserveRequest(rec *Record)
}

// Record describes a finished request for metrics and access logs.
type Record struct {
	Listener  string
	Route     string // "" when no route matched
	Upstream  string // "" for static routes and unmatched requests
	Backend   string // address of the last backend tried, "" if none
	Method    string
	Host      string
	Path      string
	Status    int
	Bytes     int64
	Duration  time.Duration
	RequestID string
	Upgraded  bool
}

// Handler is the http.Handler of one listener.
type Handler struct {
	opts     atomic.Pointer[Options]
	log      hclog.Logger
	observer Observer
	proxy    *httputil.ReverseProxy
	tunnels  tunnelSet
	// bodyTimeout bounds each wait for request body bytes, in nanoseconds
	// (Settings.RequestBodyTimeout); Update may change it.
	bodyTimeout atomic.Int64
}

// NewHandler builds a handler; observer may be nil.
func NewHandler(opts *Options, log hclog.Logger, observer Observer) *Handler {
	h := &Handler{log: log, observer: observer}
	h.opts.Store(opts)
	h.proxy = &httputil.ReverseProxy{
		Rewrite:        rewrite,
		Transport:      retryingTransport{},
		ModifyResponse: modifyResponse,
		ErrorHandler:   h.errorHandler,
		BufferPool:     newBufferPool(),
		ErrorLog:       log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
	}
	return h
}

// Update swaps in a new generation; requests already running keep theirs.
func (h *Handler) Update(opts *Options) { h.opts.Store(opts) }

// Options returns the current generation.
func (h *Handler) Options() *Options { return h.opts.Load() }

type ctxKey struct{}

// exchange is the per-request state shared by the handler, the rewrite hook
// and the retrying transport.
type exchange struct {
	target    *Target
	requestID string
	hashKey   string
	// path is the normalised path (still percent-encoded where it must
	// be) that was routed and is forwarded (SPEC §3).
	path    string
	policy  *l7.ForwardPolicy
	trusted bool // the TCP peer is a trusted proxy
	peerIP  string
	// websocket: the client asked for a WebSocket upgrade, the only one
	// passed on.
	websocket bool
	body      *deadlineBody          // nil without a request body
	backend   atomic.Pointer[string] // last backend tried
}

// ServeHTTP routes and forwards one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	opts := h.opts.Load()
	rw := &recordingWriter{ResponseWriter: w, handler: h}

	requestID := r.Header.Get("X-Request-Id")
	if requestID == "" || len(requestID) > 200 {
		requestID = newRequestID()
		r.Header.Set("X-Request-Id", requestID)
	}

	path := r.URL.EscapedPath()
	if norm, changed, err := l7.NormalizePath(nil, path); err != nil {
		path = ""
	} else if changed {
		path = string(norm)
	}
	rec := Record{Listener: opts.Listener, Method: r.Method, Host: r.Host, Path: path, RequestID: requestID}
	var ex *exchange
	// Deferred so that the record is also written when the reverse proxy
	// aborts a response mid-body with panic(http.ErrAbortHandler).
	defer func() {
		if rw.tunnel {
			h.tunnels.end(rw)
		}
		rec.Status = rw.status
		rec.Bytes = rw.bytes
		rec.Duration = time.Since(start)
		if ex != nil {
			if b := ex.backend.Load(); b != nil {
				rec.Backend = *b
			}
		}
		if rw.hijacked {
			rec.Upgraded = true
			if rec.Status == 0 {
				rec.Status = http.StatusSwitchingProtocols
			}
		}
		h.finish(opts, &rec)
	}()

	if path == "" {
		rw.Header().Set("X-Request-Id", requestID)
		rec.Path = r.URL.EscapedPath()
		writeJSONError(rw, http.StatusBadRequest, "bad request: "+l7.ErrPathAboveRoot.Error())
		return
	}
	route := opts.Table.Match(routing.Request{
		Method: r.Method,
		Host:   r.Host,
		Path:   path,
		Header: r.Header.Get,
	})
	if route == nil {
		rw.Header().Set("X-Request-Id", requestID)
		writeJSONError(rw, http.StatusNotFound, "no route matches "+r.Method+" "+path)
		return
	}
	target := route.Target
	rec.Route = target.Route

	if target.Respond != nil {
		hdr := rw.Header()
		hdr.Set("X-Request-Id", requestID)
		for _, kv := range target.Respond.Headers {
			hdr.Set(kv.Name, kv.Value)
		}
		for _, kv := range target.ResponseHeaders {
			hdr.Set(kv.Name, kv.Value)
		}
		if hdr.Get("Content-Type") == "" {
			hdr.Set("Content-Type", "text/plain; charset=utf-8")
		}
		status := target.Respond.Status
		if status == 0 {
			status = http.StatusOK
		}
		if !bodyAllowed(status) {
			hdr.Del("Content-Type")
			rw.WriteHeader(status)
			return
		}
		hdr.Set("Content-Length", strconv.Itoa(len(target.Respond.Body)))
		rw.WriteHeader(status)
		if r.Method != http.MethodHead {
			_, _ = rw.Write(target.Respond.Body)
		}
		return
	}

	rec.Upstream = target.Pool.Name()
	peerIP, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		peerIP = r.RemoteAddr
	}
	ex = &exchange{
		target: target, requestID: requestID, path: path, policy: &opts.Forward,
		peerIP: peerIP, trusted: opts.Forward.Trusts(peerIP),
		websocket: l7.IsWebSocketUpgrade(r.Header.Get("Upgrade")) && connectionHas(r.Header, "upgrade"),
	}
	ex.hashKey = hashKey(target.Pool, r, peerIP, path)
	if r.Body != nil && r.Body != http.NoBody {
		ex.body = &deadlineBody{rc: r.Body, ctl: http.NewResponseController(rw), timeout: time.Duration(h.bodyTimeout.Load())}
		r.Body = ex.body
	}
	h.proxy.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), ctxKey{}, ex)))
}

func (h *Handler) finish(opts *Options, rec *Record) {
	finishRequest(opts, rec, h.observer, h.log)
}

// finishRequest reports a finished request, the same way for both engines:
// to the observer (metrics) and, when enabled, as one access log line.
func finishRequest(opts *Options, rec *Record, observer Observer, log hclog.Logger) {
	if observer != nil {
		observer.ObserveRequest(rec)
	}
	if opts.AccessLog {
		log.Info("access",
			"listener", rec.Listener, "method", rec.Method, "host", rec.Host, "path", rec.Path,
			"status", rec.Status, "route", rec.Route, "upstream", rec.Upstream, "backend", rec.Backend,
			"duration", rec.Duration.String(), "bytes", rec.Bytes, "request_id", rec.RequestID)
	}
}

func hashKey(pool *upstream.Pool, r *http.Request, peerIP, path string) string {
	kind, header := pool.HashOn()
	switch kind {
	case upstream.HashClientIP:
		return peerIP
	case upstream.HashPath:
		return path
	case upstream.HashHeader:
		return r.Header.Get(header)
	}
	return ""
}

// rewrite prepares the outbound request by the rules of package l7. The
// backend address is filled in per attempt by the transport.
func rewrite(pr *httputil.ProxyRequest) {
	ex := pr.In.Context().Value(ctxKey{}).(*exchange)
	t := ex.target
	out := pr.Out
	out.URL.Scheme = "http"
	out.URL.Host = t.Pool.Name() // placeholder until a backend is chosen
	path := ex.path
	if t.StripPrefix != "" {
		path = stripPrefix(path, t.StripPrefix)
	}
	out.URL.RawPath = path
	if decoded, err := url.PathUnescape(path); err == nil {
		out.URL.Path = decoded
	} else {
		out.URL.Path = path
	}

	// ReverseProxy has removed the hop-by-hop fields (those named in
	// Connection too) and X-Forwarded-For/Host/Proto and Forwarded; drop
	// what else the policy does not forward as sent.
	for name := range out.Header {
		if c := l7.ClassifyRequestField(name); c != l7.FieldHopByHop && !ex.policy.ForwardsAsSent(c, ex.trusted) {
			delete(out.Header, name)
		}
	}
	if ex.websocket {
		out.Header.Set("Connection", "Upgrade")
		out.Header.Set("Upgrade", "websocket")
	} else {
		// Any other protocol switch (h2c above all) is not passed on;
		// a 101 to this request is then a 502.
		out.Header.Del("Connection")
		out.Header.Del("Upgrade")
	}
	in := pr.In.Header
	out.Header.Set("X-Forwarded-For", l7.ForwardedFor(ex.peerIP, ex.trusted, in["X-Forwarded-For"]))
	if v := in["Forwarded"]; ex.trusted && len(v) > 0 {
		out.Header["Forwarded"] = v
	}
	if v := in.Get("X-Forwarded-Host"); ex.trusted && v != "" {
		out.Header.Set("X-Forwarded-Host", v)
	} else {
		out.Header.Set("X-Forwarded-Host", pr.In.Host)
	}
	if v := in.Get("X-Forwarded-Proto"); ex.trusted && v != "" {
		out.Header.Set("X-Forwarded-Proto", v)
	} else {
		out.Header.Set("X-Forwarded-Proto", "http")
	}
	// Keep the client's Host: backends behind a proxy usually route on it.
	out.Host = pr.In.Host
	out.Header.Set("X-Request-Id", ex.requestID)
	for _, kv := range t.RequestHeaders {
		if kv.Name == "Host" {
			out.Host = kv.Value // net/http sends out.Host, never a Host field
			continue
		}
		out.Header.Set(kv.Name, kv.Value)
	}
}

// deadlineBody bounds each read of a request body by the listener's
// request_body_timeout, so a client trickling its body (R.U.D.Y.) cannot
// hold a backend connection for long. The deadline is cleared after every
// read: net/http's own read of the next request must not inherit it.
type deadlineBody struct {
	rc       io.ReadCloser
	ctl      *http.ResponseController
	timeout  time.Duration
	timedOut atomic.Bool
	sawEOF   atomic.Bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	_ = b.ctl.SetReadDeadline(time.Now().Add(b.timeout))
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.sawEOF.Store(true)
	case err != nil && isTimeout(err):
		// Leave the deadline passed: net/http would otherwise wait for
		// the rest of the body (to keep the connection) without one.
		b.timedOut.Store(true)
		return n, err
	}
	_ = b.ctl.SetReadDeadline(time.Time{})
	return n, err
}

func (b *deadlineBody) Close() error { return b.rc.Close() }

// bodyAllowed reports whether a response with this status may carry a body
// (RFC 9110 §6.4.1).
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

func stripPrefix(path, prefix string) string {
	rest := strings.TrimPrefix(path, prefix)
	if !strings.HasPrefix(rest, "/") {
		rest = "/" + rest
	}
	return rest
}

func modifyResponse(resp *http.Response) error {
	ex := resp.Request.Context().Value(ctxKey{}).(*exchange)
	resp.Header.Set("X-Request-Id", ex.requestID)
	for _, kv := range ex.target.ResponseHeaders {
		resp.Header.Set(kv.Name, kv.Value)
	}
	return nil
}

// errorHandler turns a failed exchange into the status SPEC §3 names.
func (h *Handler) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	ex, _ := r.Context().Value(ctxKey{}).(*exchange)
	status, msg := http.StatusBadGateway, "bad gateway"
	var pe *proxyError
	switch {
	case errors.As(err, &pe):
		status, msg = pe.status, pe.msg
	case r.Context().Err() != nil:
		// The client went away; nobody reads this answer. 499 is the
		// de-facto code for it in access logs.
		status, msg = 499, "client closed request"
	}
	if ex != nil {
		if ex.body != nil && !ex.body.sawEOF.Load() {
			// The rest of the body is not worth waiting for (net/http
			// would read it before answering): answer and close.
			w.Header().Set("Connection", "close")
		}
		w.Header().Set("X-Request-Id", ex.requestID)
		for _, kv := range ex.target.ResponseHeaders {
			w.Header().Set(kv.Name, kv.Value)
		}
	}
	h.log.Debug("upstream exchange failed", "path", r.URL.Path, "status", status, "error", err)
	writeJSONError(w, status, msg)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	body, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Del("Transfer-Encoding")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func newRequestID() string {
	var b [16]byte
	u1, u2 := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		b[i] = byte(u1 >> (8 * i))
		b[8+i] = byte(u2 >> (8 * i))
	}
	return hex.EncodeToString(b[:])
}

// bufferPool lends 32 KiB copy buffers to the ReverseProxy.
type bufferPool struct{ pool sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}}
}

func (p *bufferPool) Get() []byte  { return *(p.pool.Get().(*[]byte)) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

// connectionHas reports whether a Connection field of h lists token.
func connectionHas(h http.Header, token string) bool {
	for _, v := range h["Connection"] {
		if l7.HasToken(v, token) {
			return true
		}
	}
	return false
}
