package httpproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
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

// idempotent methods may be retried after the upstream saw them (SPEC §3).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// retryingTransport picks a backend per attempt and retries on another one
// exactly where SPEC §3 allows it.
type retryingTransport struct{}

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
	hasBody := body != nil
	upgrade := req.Header.Get("Upgrade") != ""

	var triedBuf [4]*upstream.Backend
	tried := triedBuf[:0]
	var lastErr error
	for try := 0; ; try++ {
		att, err := t.Pool.Acquire(ex.hashKey, tried)
		if err != nil {
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, &proxyError{status: http.StatusServiceUnavailable, msg: "no available backend in upstream " + t.Pool.Name(), err: err}
		}
		backend := att.Backend()
		tried = append(tried, backend)
		addr := backend.Address()
		ex.backend.Store(&addr)
		req.URL.Host = addr

		ctx, cancel := context.WithCancel(clientCtx)
		var timedOut atomic.Bool
		timer := time.AfterFunc(t.Timeout, func() { timedOut.Store(true); cancel() })
		start := time.Now()
		resp, err := t.Transport.RoundTrip(req.WithContext(ctx))
		latency := time.Since(start)

		if err != nil {
			timer.Stop()
			cancel()
			if clientCtx.Err() != nil {
				att.Done(upstream.Canceled, latency)
				return nil, err
			}
			att.Done(upstream.Failure, latency)
			var dialErr *DialError
			var perr *proxyError
			switch {
			case timedOut.Load():
				perr = &proxyError{status: http.StatusGatewayTimeout, msg: "upstream timeout", err: err}
			case errors.As(err, &dialErr):
				perr = &proxyError{status: http.StatusBadGateway, msg: "bad gateway: cannot connect to a backend", err: err}
			default:
				perr = &proxyError{status: http.StatusBadGateway, msg: "bad gateway: upstream protocol error", err: err}
			}
			lastErr = perr
			if try >= t.Retries {
				return nil, perr
			}
			switch {
			case dialErr != nil && (body == nil || !body.wasRead()):
				// Nothing reached the backend: safe for every method.
				continue
			case idempotent(req.Method) && !hasBody && !upgrade:
				// Timeouts and broken exchanges of a bodiless idempotent
				// request can be repeated without side effects.
				continue
			}
			return nil, perr
		}

		if resp.StatusCode == http.StatusSwitchingProtocols {
			// The exchange becomes a tunnel; the route timeout only bounded
			// the handshake.
			timer.Stop()
			ex.upgraded.Store(true)
		}
		outcome := upstream.Success
		if resp.StatusCode >= 500 {
			outcome = upstream.Failure
		}
		if try < t.Retries && idempotent(req.Method) && !hasBody && !upgrade && retryableStatus(resp.StatusCode) {
			// Nothing has been written to the client yet: try elsewhere.
			_, _ = io.CopyN(io.Discard, resp.Body, 4096)
			resp.Body.Close()
			timer.Stop()
			cancel()
			att.Done(upstream.Failure, latency)
			lastErr = nil
			continue
		}
		resp.Body = newAttemptBody(resp.Body, att, outcome, latency, timer, cancel, clientCtx)
		return resp, nil
	}
}

func retryableStatus(code int) bool {
	return code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

// trackedBody remembers whether the transport read any byte of the client's
// body, which is what decides whether a request may be sent again. Close is
// a no-op: the server closes the real body after the handler returns, and a
// failed attempt must not close it under a retry.
type trackedBody struct {
	rc   io.ReadCloser
	read atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.read.Store(true)
	}
	return n, err
}

func (b *trackedBody) Close() error  { return nil }
func (b *trackedBody) wasRead() bool { return b.read.Load() }

// attemptBody ends the upstream attempt when the response body is finished,
// so the backend's active count and latency cover the whole exchange.
type attemptBody struct {
	io.ReadCloser
	once      sync.Once
	att       *upstream.Attempt
	outcome   upstream.Outcome
	latency   time.Duration
	timer     *time.Timer
	cancel    context.CancelFunc
	clientCtx context.Context
	sawEOF    atomic.Bool
}

func newAttemptBody(rc io.ReadCloser, att *upstream.Attempt, outcome upstream.Outcome, latency time.Duration, timer *time.Timer, cancel context.CancelFunc, clientCtx context.Context) io.ReadCloser {
	b := &attemptBody{ReadCloser: rc, att: att, outcome: outcome, latency: latency, timer: timer, cancel: cancel, clientCtx: clientCtx}
	if rwc, ok := rc.(io.ReadWriteCloser); ok {
		// Upgraded connections must stay writable for the tunnel.
		return &attemptRWBody{attemptBody: b, w: rwc}
	}
	return b
}

func (b *attemptBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.sawEOF.Store(true)
	}
	return n, err
}

func (b *attemptBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() {
		b.timer.Stop()
		outcome := b.outcome
		if !b.sawEOF.Load() && outcome == upstream.Success && b.clientCtx.Err() != nil {
			// The client left mid-body: not the backend's fault.
			outcome = upstream.Canceled
		}
		b.att.Done(outcome, b.latency)
		b.cancel()
	})
	return err
}

type attemptRWBody struct {
	*attemptBody
	w io.Writer
}

func (b *attemptRWBody) Write(p []byte) (int, error) { return b.w.Write(p) }
