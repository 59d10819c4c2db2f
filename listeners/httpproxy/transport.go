package httpproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"switchyard/upstream"
)

// proxyError carries the status the proxy answers with when no upstream
// response can be passed on.
type proxyError struct {
	status int
	msg    string
	err    error
}

func (e *proxyError) Error() string {
	if e.err == nil {
		return e.msg
	}
	return e.msg + ": " + e.err.Error()
}

func (e *proxyError) Unwrap() error { return e.err }

// DialError marks a failure to establish the upstream connection: nothing was
// sent, so any request may be retried on another backend.
type DialError struct{ Err error }

func (e *DialError) Error() string { return "connect: " + e.Err.Error() }
func (e *DialError) Unwrap() error { return e.Err }

// NewTransport returns the pooled upstream transport of one upstream. Dial
// errors come back wrapped in *DialError so the retry logic can tell "nothing
// was sent" apart from everything else.
func NewTransport(connectTimeout time.Duration, maxIdlePerHost int) *http.Transport {
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, &DialError{Err: err}
			}
			return c, nil
		},
		MaxIdleConns:          0, // bounded per host below
		MaxIdleConnsPerHost:   maxIdlePerHost,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // pass encodings through untouched
		ForceAttemptHTTP2:     false,
		WriteBufferSize:       16 * 1024,
		ReadBufferSize:        16 * 1024,
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// idempotent methods may be retried after the upstream saw them (SPEC §3).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func retryableStatus(code int) bool {
	return code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

// retryingTransport picks a backend per attempt and retries on another one
// exactly where SPEC §3 allows it.
type retryingTransport struct{}

// RoundTrip runs up to 1+Retries attempts. A request goes to another backend
// when nothing of it was sent (no connection was obtained: connect error or
// a timeout while connecting), whatever the method; and, for an idempotent
// request without a body, also after a timeout, a broken exchange or a
// 502/503/504 answer. A request body is streamed, not kept, so a request
// with a body is never sent twice once a connection carried it.
func (retryingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := req.Context().Value(ctxKey{}).(*exchange)
	t := ex.target
	clientCtx := req.Context()

	var body *trackedBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &trackedBody{rc: req.Body}
		req.Body = body
		req.GetBody = nil
	}
	repeatable := idempotent(req.Method) && body == nil && req.Header.Get("Upgrade") == ""

	var triedBuf [4]*upstream.Backend
	tried := triedBuf[:0]
	var lastErr error
	// held is a retryable 5xx answer kept until the next backend is
	// admitted: when no other backend is left it is passed on as it is
	// rather than turned into a 503 of our own.
	var held *http.Response
	for try := 0; ; try++ {
		att, err := t.Pool.Acquire(ex.hashKey, tried)
		if err != nil {
			switch {
			case held != nil:
				return held, nil
			case lastErr != nil:
				return nil, lastErr
			}
			return nil, &proxyError{status: http.StatusServiceUnavailable, msg: "no available backend in upstream " + t.Pool.Name(), err: err}
		}
		if held != nil {
			discard(held)
			held = nil
		}
		backend := att.Backend()
		tried = append(tried, backend)
		addr := backend.Address()
		ex.backend.Store(&addr)

		a := startAttempt(clientCtx, att, t.Timeout)
		out := req.WithContext(a.ctx)
		u := *req.URL // a failed attempt's transport may still read its request
		u.Host = addr
		out.URL = &u
		resp, err := t.Transport.RoundTrip(out)
		a.latency = time.Since(a.start)

		if err != nil {
			a.stop()
			if body != nil && body.failed() && !a.timedOut.Load() {
				// The client's upload broke; not the backend's fault.
				// (Checked before the client's context: net/http cancels
				// it when a body read fails.)
				att.Done(upstream.Canceled, a.latency)
				if ex.body != nil && ex.body.timedOut.Load() {
					return nil, &proxyError{status: http.StatusRequestTimeout, msg: "request body timeout", err: err}
				}
				return nil, &proxyError{status: http.StatusBadRequest, msg: "cannot read the request body", err: err}
			}
			if clientCtx.Err() != nil {
				att.Done(upstream.Canceled, a.latency)
				return nil, err
			}
			// No answer at all (connect error, timeout, broken exchange):
			// that counts for passive health as well as the breaker, on
			// both engines alike (upstream.Unreachable).
			att.Done(upstream.Unreachable, a.latency)
			var dialErr *DialError
			var perr *proxyError
			switch {
			case a.timedOut.Load():
				perr = &proxyError{status: http.StatusGatewayTimeout, msg: "upstream timeout", err: err}
			case errors.As(err, &dialErr):
				perr = &proxyError{status: http.StatusBadGateway, msg: "bad gateway: cannot connect to a backend", err: err}
			default:
				perr = &proxyError{status: http.StatusBadGateway, msg: "bad gateway: upstream protocol error", err: err}
			}
			lastErr = perr
			nothingSent := !a.gotConn.Load() && (body == nil || !body.wasRead())
			if try < t.Retries && (nothingSent || repeatable) {
				continue
			}
			return nil, perr
		}

		if resp.StatusCode == http.StatusSwitchingProtocols {
			// The exchange becomes a tunnel; the route timeout only bounded
			// the handshake.
			a.stopTimer()
		}
		outcome := upstream.Success
		if resp.StatusCode >= 500 {
			outcome = upstream.Failure
		}
		resp.Body = newAttemptBody(resp.Body, a, outcome, clientCtx)
		if try < t.Retries && repeatable && retryableStatus(resp.StatusCode) {
			// Nothing has been written to the client yet: try elsewhere.
			held = resp
			lastErr = nil
			continue
		}
		return resp, nil
	}
}

// discard drops a response that will not be passed on, reading a little of
// its body first so a short error page does not cost the connection.
func discard(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 4096)
	_ = resp.Body.Close()
}

// attempt is one try on one backend: its admission, the per-try context
// and the route timeout.
type attempt struct {
	att      *upstream.Attempt
	ctx      context.Context
	cancel   context.CancelFunc
	timer    *time.Timer // nil without a route timeout
	timedOut atomic.Bool
	// gotConn is set once the transport has a connection for the request;
	// until then nothing of it can have reached the backend.
	gotConn atomic.Bool
	start   time.Time
	latency time.Duration // time to the response header
}

// startAttempt derives the per-try context from the client's; timeout <= 0
// means no route timeout.
func startAttempt(clientCtx context.Context, att *upstream.Attempt, timeout time.Duration) *attempt {
	a := &attempt{att: att, start: time.Now()}
	ctx, cancel := context.WithCancel(clientCtx)
	a.ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { a.gotConn.Store(true) },
	})
	a.cancel = cancel
	if timeout > 0 {
		a.timer = time.AfterFunc(timeout, func() {
			a.timedOut.Store(true)
			cancel()
		})
	}
	return a
}

func (a *attempt) stopTimer() {
	if a.timer != nil {
		a.timer.Stop()
	}
}

// stop ends the attempt's timer and context.
func (a *attempt) stop() {
	a.stopTimer()
	a.cancel()
}

// trackedBody remembers whether the transport read any byte of the client's
// body and whether reading it failed. Close is a no-op: the server closes
// the real body after the handler returns, and a failed attempt must not
// close it under a retry.
type trackedBody struct {
	rc      io.ReadCloser
	read    atomic.Bool
	readErr atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.read.Store(true)
	}
	if err != nil && err != io.EOF {
		b.readErr.Store(true)
	}
	return n, err
}

func (b *trackedBody) Close() error  { return nil }
func (b *trackedBody) wasRead() bool { return b.read.Load() }
func (b *trackedBody) failed() bool  { return b.readErr.Load() }

// attemptBody ends the upstream attempt when the response body is closed,
// so the backend's active count covers the whole exchange (for an upgrade,
// the whole tunnel).
type attemptBody struct {
	io.ReadCloser
	closed    atomic.Bool
	attempt   *attempt
	outcome   upstream.Outcome
	tunnel    bool // an upgraded connection: however it ends, it ended normally
	clientCtx context.Context
	sawEOF    atomic.Bool
	readErr   atomic.Bool
}

func newAttemptBody(rc io.ReadCloser, a *attempt, outcome upstream.Outcome, clientCtx context.Context) io.ReadCloser {
	b := &attemptBody{ReadCloser: rc, attempt: a, outcome: outcome, clientCtx: clientCtx}
	if rwc, ok := rc.(io.ReadWriteCloser); ok {
		// Upgraded connections must stay writable for the tunnel.
		b.tunnel = true
		return &attemptRWBody{attemptBody: b, w: rwc}
	}
	return b
}

func (b *attemptBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.sawEOF.Store(true)
	case err != nil:
		b.readErr.Store(true)
	}
	return n, err
}

// Close closes the body and reports the attempt's outcome once. The outcome
// is settled before the body is closed, so a read that fails because of
// this very Close does not count against the backend.
func (b *attemptBody) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return b.ReadCloser.Close()
	}
	outcome := b.outcome
	switch {
	case b.tunnel || b.sawEOF.Load() || outcome != upstream.Success:
	case b.clientCtx.Err() != nil:
		// The client left mid-body: not the backend's fault.
		outcome = upstream.Canceled
	case b.readErr.Load():
		// The backend broke off its answer, or the route timeout cut it.
		outcome = upstream.Failure
	}
	err := b.ReadCloser.Close()
	b.attempt.stop()
	b.attempt.att.Done(outcome, b.attempt.latency)
	return err
}

type attemptRWBody struct {
	*attemptBody
	w io.Writer
}

func (b *attemptRWBody) Write(p []byte) (int, error) { return b.w.Write(p) }
