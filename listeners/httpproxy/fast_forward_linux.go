package httpproxy

import (
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"time"
	"unsafe"

	"switchyard/listeners/http1"
	"switchyard/listeners/l7"
	"switchyard/listeners/routing"
	"switchyard/upstream"
)

// worker is the per-goroutine scratch state: parsed heads, the outgoing
// head buffer and a body copy buffer, all reused across requests.
type worker struct {
	s        *FastServer
	req      http1.Request
	resp     http1.Response
	out      []byte
	copyBuf  []byte
	scanner  http1.ChunkedScanner
	headerFn func(string) string
	tried    []*upstream.Backend
	// stall bounds each wait for a slow client (the listener's idle
	// timeout); bodyStall each wait for request body bytes
	// (request_body_timeout); now is when the current request started.
	stall     time.Duration
	bodyStall time.Duration
	now       time.Time
	deadline  time.Time // the current try's route timeout
	// path is the request's normalised path (l7.NormalizePath): a view of
	// the request buffer or of pathBuf; pathBuf is its scratch space.
	path    []byte
	pathBuf []byte
	// Per request: the peer is a trusted proxy; the client asked for a
	// WebSocket upgrade, the only one passed on.
	policy    *l7.ForwardPolicy // the request's generation's
	trusted   bool
	websocket bool
	rec       Record
	rid       [32]byte // a generated X-Request-Id, hex
	// pending is the attempt whose upstream exchange is being relayed; it
	// ends as soon as the backend's part is complete, before the last
	// write to the client, so backend state is settled by the time the
	// client has the answer.
	pending        *upstream.Attempt
	pendingOutcome upstream.Outcome
	pendingLatency time.Duration
	// consumed is how many bytes at the start of the client buffer the
	// current request used (head and buffered body). The buffer is
	// compacted only after the exchange, because the parsed request points
	// into it until then.
	consumed int
}

func newWorker(s *FastServer) *worker {
	w := &worker{
		s:       s,
		out:     make([]byte, 0, 4096),
		copyBuf: make([]byte, 32*1024),
	}
	w.req.Headers = make([]http1.Header, 0, 32)
	w.resp.Headers = make([]http1.Header, 0, 32)
	w.headerFn = w.requestHeader
	return w
}

// b2s views bytes as a string without copying; only for values that do not
// outlive the buffer (matching, hashing, comparisons).
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func (w *worker) requestHeader(name string) string {
	for i := range w.req.Headers {
		h := &w.req.Headers[i]
		if http1.EqualFold(h.Name, name) {
			return b2s(h.Value)
		}
	}
	return ""
}

// serve handles requests on c until it has nothing buffered, then parks it.
func (w *worker) serve(c *conn) {
	s := w.s
	settings := s.settings.Load()
	limits := http1.Limits{MaxHeaderBytes: settings.MaxHeaderBytes, MaxHeaders: http1.DefaultLimits.MaxHeaders}
	needRead := true
	for {
		if c.buf == nil {
			c.buf = s.getBuf()
			c.n = 0
		}
		buf := *c.buf
		if needRead {
			n, err := readOnce(c.fd, buf[c.n:])
			if err == errWouldBlock {
				if c.n == 0 {
					c.releaseBuf()
				} else if c.headerStart == 0 {
					c.headerStart = nanotime()
				}
				if c.park() {
					return
				}
				continue // bytes arrived while we were deciding to park
			}
			if err != nil || n == 0 {
				c.close()
				return
			}
			c.n += n
		}
		var headLen int
		var err error
		if c.scanned > 0 && http1.HeadEnd(buf[:c.n], c.scanned) < 0 && c.n <= settings.MaxHeaderBytes {
			// Still no end of head in the new bytes: skip the full parse,
			// so a byte-at-a-time sender costs linear, not quadratic, time.
			err = http1.ErrNeedMore
		} else {
			headLen, err = http1.ParseRequest(buf[:c.n], &w.req, limits)
		}
		if err == http1.ErrNeedMore {
			c.scanned = c.n
			now := nanotime()
			if c.headerStart == 0 {
				c.headerStart = now
			} else if now-c.headerStart > int64(settings.ReadHeaderTimeout) {
				// A head trickling in (slowloris): the sweep only sees
				// connections at rest, so the reader enforces it too.
				_ = c.writeAll(requestTimeoutAnswer, time.Second)
				c.close()
				return
			}
			if c.n == len(buf) {
				if len(buf) >= settings.MaxHeaderBytes+1024 {
					w.writeError(c, 431, "request header fields too large", "", false)
					c.lingerClose(w.copyBuf)
					return
				}
				grown := make([]byte, min(2*len(buf), settings.MaxHeaderBytes+1024))
				copy(grown, buf[:c.n])
				s.putBuf(c.buf)
				c.buf = &grown
			}
			needRead = true
			continue
		}
		if err != nil {
			status := 400
			var pe *http1.ParseError
			if errors.As(err, &pe) {
				status = pe.Status
			}
			w.writeError(c, status, http.StatusText(status)+": "+err.Error(), "", false)
			c.lingerClose(w.copyBuf)
			return
		}
		c.headerStart = 0
		c.scanned = 0
		w.consumed = headLen
		keep, tunnel := w.handle(c, headLen)
		if tunnel {
			return // the conn now belongs to a tunnel
		}
		if w.consumed > c.n {
			w.consumed = c.n
		}
		buf = *c.buf
		copy(buf, buf[w.consumed:c.n])
		c.n -= w.consumed
		if !keep || s.closing.Load() {
			c.close()
			return
		}
		if c.n == 0 {
			c.releaseBuf()
			if c.park() {
				return
			}
			needRead = true
			continue
		}
		needRead = false // a pipelined request is already buffered
	}
}

var errWouldBlock = errors.New("would block")

// crlf ends a chunked body whose trailer section was withheld.
var crlf = []byte("\r\n")

// requestTimeoutAnswer is sent to a client that took too long for its head.
var requestTimeoutAnswer = []byte("HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")

func readOnce(fd int, p []byte) (int, error) {
	for {
		n, err := rawRead(fd, p)
		if err == nil {
			return n, nil
		}
		if err == errEINTR {
			continue
		}
		return 0, err
	}
}

// handle serves one parsed request. It returns whether the client
// connection may carry another request, and whether it became a tunnel.
func (w *worker) handle(c *conn, headLen int) (keep, tunnel bool) {
	s := w.s
	req := &w.req
	start := time.Now()
	opts := s.opts.Load()
	settings := s.settings.Load()
	w.stall = settings.IdleTimeout
	w.bodyStall = settings.RequestBodyTimeout
	w.now = start

	// The record and its strings are views into this worker's buffers,
	// valid while the observer runs (see Observer): no allocation.
	rec := &w.rec
	*rec = Record{Listener: opts.Listener}
	requestID := w.requestHeader("X-Request-Id")
	if requestID == "" || len(requestID) > 200 {
		requestID = w.newRequestID()
	}
	rec.RequestID = requestID
	rec.Method, rec.Host, rec.Path = b2s(req.Method), b2s(req.Host), b2s(req.Path)
	w.path = req.Path
	norm, changed, perr := l7.NormalizePath(w.pathBuf, req.Path)
	if changed {
		w.pathBuf, w.path = norm, norm
		rec.Path = b2s(norm)
	}
	w.policy = &opts.Forward
	w.trusted = len(opts.Forward.TrustedProxies) > 0 && opts.Forward.Trusts(c.clientIP)
	w.websocket = req.Upgrade && l7.IsWebSocketUpgrade(w.requestHeader("Upgrade"))
	defer func() {
		end := time.Now()
		rec.Duration = end.Sub(start)
		c.lastActive.Store(end.UnixNano())
		finishRequest(opts, rec, s.observer, s.log)
	}()

	keepAlive := req.KeepAlive && !s.closing.Load()
	if perr != nil {
		if !w.discardBody(c, headLen) {
			keepAlive = false
		}
		rec.Status = 400
		rec.Bytes = int64(w.writeError(c, 400, "bad request: "+perr.Error(), requestID, keepAlive))
		return keepAlive, false
	}
	route := opts.Table.Match(routing.Request{
		Method: b2s(req.Method),
		Host:   b2s(req.Host),
		Path:   b2s(w.path),
		Header: w.headerFn,
	})
	if route == nil {
		if !w.discardBody(c, headLen) {
			keepAlive = false
		}
		rec.Status = 404
		rec.Bytes = int64(w.writeError(c, 404, "no route matches "+string(req.Method)+" "+string(w.path), requestID, keepAlive))
		return keepAlive, false
	}
	target := route.Target
	rec.Route = target.Route
	if target.Respond != nil {
		if !w.discardBody(c, headLen) {
			keepAlive = false
		}
		rec.Status = target.Respond.Status
		rec.Bytes = int64(w.writeStatic(c, target, requestID, keepAlive))
		return keepAlive, false
	}
	rec.Upstream = target.Pool.Name()
	status, bytes, keep, tunnel, be := w.forward(c, headLen, target, requestID, keepAlive)
	rec.Status, rec.Bytes, rec.Backend, rec.Upgraded = status, bytes, be, tunnel
	return keep, tunnel
}

func idempotentMethod(m []byte) bool {
	switch b2s(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// exchangeError classifies a failed try for status, retry and breaker.
type exchangeError struct {
	status    int
	msg       string
	dial      bool // nothing reached the backend
	clientErr bool // the client side failed (not the backend's fault)
}

// forward proxies the request to target's pool with retries per SPEC §3.
func (w *worker) forward(c *conn, headLen int, target *Target, requestID string, keepAlive bool) (status int, bytes int64, keep, tunnel bool, backend string) {
	req := &w.req
	pool := target.Pool
	hasBody := req.ContentLength > 0 || req.Chunked
	idem := idempotentMethod(req.Method)
	upgrade := w.websocket
	bodyStarted := false // some body bytes have left the client buffer

	hashKey := ""
	switch kind, header := pool.HashOn(); kind {
	case upstream.HashClientIP:
		hashKey = c.clientIP
	case upstream.HashPath:
		hashKey = b2s(w.path)
	case upstream.HashHeader:
		hashKey = w.requestHeader(header)
	}

	w.tried = w.tried[:0]
	var last *exchangeError
	for try := 0; ; try++ {
		att, err := pool.Acquire(hashKey, w.tried)
		if err != nil {
			if last == nil {
				last = &exchangeError{status: 503, msg: "no available backend in upstream " + pool.Name()}
			}
			break
		}
		b := att.Backend()
		w.tried = append(w.tried, b)
		backend = b.Address()

		tryStart := w.now
		if try > 0 {
			tryStart = time.Now()
		}
		deadline := tryStart.Add(target.Timeout)
		w.deadline = deadline
		res := w.try(c, headLen, target, requestID, keepAlive, att, deadline, &bodyStarted)
		if res.err == nil {
			return res.status, res.bytes, res.keep, res.tunnel, backend
		}
		last = res.err
		if res.sentToClient {
			return res.err.status, res.bytes, false, false, backend
		}
		if res.err.clientErr {
			// The client broke its own request (bad body framing, gone
			// mid-upload): answer if it still listens, then close.
			n := w.writeError(c, res.err.status, res.err.msg, requestID, false)
			return res.err.status, int64(n), false, false, backend
		}
		if try >= target.Retries {
			break
		}
		canRetry := (res.err.dial && !bodyStarted) || (idem && !hasBody && !upgrade)
		if !canRetry {
			break
		}
	}
	if hasBody && !bodyStarted {
		if !w.discardBody(c, headLen) {
			keepAlive = false
		}
	} else if hasBody {
		keepAlive = false // the body is half consumed: the connection's framing is lost
	}
	n := w.writeError(c, last.status, last.msg, requestID, keepAlive)
	return last.status, int64(n), keepAlive, false, backend
}

// tryResult is the outcome of one try on one backend.
type tryResult struct {
	status       int
	bytes        int64
	keep         bool
	tunnel       bool
	err          *exchangeError
	sentToClient bool // response bytes reached the client: no retry possible
}

func (w *worker) try(c *conn, headLen int, target *Target, requestID string, keepAlive bool, att *upstream.Attempt, deadline time.Time, bodyStarted *bool) tryResult {
	s := w.s
	req := &w.req
	b := att.Backend()
	hasBody := req.ContentLength > 0 || req.Chunked
	idem := idempotentMethod(req.Method)
	replayable := idem && !hasBody
	isHEAD := b2s(req.Method) == "HEAD"
	connectTimeout := target.Pool.ConnectTimeout()

	for fresh := false; ; fresh = true {
		var uc *upstreamConn
		var reused bool
		var err error
		if fresh {
			uc, reused, err = s.upstream.dial(b.Address(), connectTimeout)
		} else {
			uc, reused, err = s.upstream.get(b.Address(), connectTimeout, !replayable, w.now)
		}
		if err != nil {
			att.Done(upstream.Unreachable, time.Since(deadline.Add(-target.Timeout)))
			return tryResult{err: &exchangeError{status: 502, msg: "bad gateway: cannot connect to a backend", dial: true}}
		}
		start := deadline.Add(-target.Timeout)
		uc.setDeadline(deadline, target.Timeout)

		// Request head and body.
		werr := w.writeRequest(c, uc, headLen, target, requestID, bodyStarted)
		if werr != nil {
			s.upstream.discard(uc)
			if werr.clientErr {
				att.Done(upstream.Canceled, time.Since(start))
				return tryResult{err: werr}
			}
			if reused && !*bodyStarted {
				continue // a pooled connection the backend had closed: once more, fresh
			}
			att.Done(upstream.Unreachable, time.Since(start))
			return tryResult{err: werr}
		}

		// Response head (skipping interim 1xx other than 101).
		headN, rerr := w.readResponseHead(uc, isHEAD)
		if rerr != nil {
			s.upstream.discard(uc)
			if reused && uc.w == 0 && isConnReset(rerr) && (replayable || !*bodyStarted) {
				continue
			}
			if isTimeout(rerr) {
				att.Done(upstream.Unreachable, time.Since(start))
				return tryResult{err: &exchangeError{status: 504, msg: "upstream timeout"}}
			}
			att.Done(upstream.Unreachable, time.Since(start))
			return tryResult{err: &exchangeError{status: 502, msg: "bad gateway: upstream protocol error"}}
		}
		latency := time.Since(start)
		resp := &w.resp
		outcome := upstream.Success
		if resp.Status >= 500 {
			outcome = upstream.Failure
		}

		if resp.Status == 101 {
			if w.websocket && l7.IsWebSocketUpgrade(responseHeader(resp, "Upgrade")) {
				return w.tunnel(c, uc, headN, headLen, target, requestID, att, latency)
			}
			// A switch nobody asked for (or to another protocol than
			// WebSocket): never relayed, it would open a tunnel past the
			// routes.
			s.upstream.discard(uc)
			att.Done(upstream.Failure, latency)
			return tryResult{err: &exchangeError{status: 502, msg: "bad gateway: the backend switched protocols unasked"}}
		}
		if replayable && !w.websocket && retryableStatus(resp.Status) && w.retriesLeft(target) {
			// Nothing has reached the client: drop this answer, try elsewhere.
			if w.skipResponseBody(uc, headN) {
				s.upstream.put(uc, w.now)
			} else {
				s.upstream.discard(uc)
			}
			att.Done(upstream.Failure, latency)
			return tryResult{err: &exchangeError{status: resp.Status, msg: "upstream answered " + strconv.Itoa(resp.Status)}}
		}

		keep := keepAlive && !resp.UntilClose
		w.pending, w.pendingOutcome, w.pendingLatency = att, outcome, latency
		n, upstreamOK, clientOK := w.relayResponse(c, uc, headN, target, requestID, keep, deadline)
		if upstreamOK && resp.KeepAlive && !resp.UntilClose {
			s.upstream.put(uc, w.now)
		} else {
			s.upstream.discard(uc)
		}
		w.finishAttempt(upstreamOK, clientOK)
		return tryResult{status: resp.Status, bytes: n, keep: keep && upstreamOK && clientOK, sentToClient: true}
	}
}

// newRequestID fills the worker's id buffer with 128 random bits in hex
// and returns a view of it, valid for the current request.
func (w *worker) newRequestID() string {
	const digits = "0123456789abcdef"
	for i := 0; i < 2; i++ {
		u := rand.Uint64()
		for j := 0; j < 16; j++ {
			w.rid[16*i+j] = digits[u&0xf]
			u >>= 4
		}
	}
	return b2s(w.rid[:])
}

// finishAttempt ends the pending attempt once; later calls do nothing.
func (w *worker) finishAttempt(upstreamOK, clientOK bool) {
	att := w.pending
	if att == nil {
		return
	}
	w.pending = nil
	switch {
	case !clientOK:
		att.Done(upstream.Canceled, w.pendingLatency) // not the backend's fault
	case !upstreamOK:
		att.Done(upstream.Unreachable, w.pendingLatency)
	default:
		att.Done(w.pendingOutcome, w.pendingLatency)
	}
}

// retriesLeft reports whether another try may follow the current one.
func (w *worker) retriesLeft(target *Target) bool {
	return len(w.tried) <= target.Retries
}

func isConnReset(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errUpstreamClosed) ||
		errors.Is(err, os.ErrClosed) || isErrno(err)
}

// writeRequest sends the rewritten head and streams the body.
func (w *worker) writeRequest(c *conn, uc *upstreamConn, headLen int, target *Target, requestID string, bodyStarted *bool) *exchangeError {
	req := &w.req
	buf := *c.buf
	out := w.appendRequestHead(w.out[:0], c, uc, target, requestID)

	// Body bytes already read with the head.
	avail := c.n - headLen
	var inBuf int    // body bytes of this request sitting in the client buffer
	var withheld int // of those, octets of a request trailer section
	bodyDone := true
	switch {
	case req.Chunked:
		w.scanner.Reset()
		n, done, err := w.scanner.Feed(buf[headLen:c.n])
		if err != nil {
			return &exchangeError{status: 400, msg: "malformed chunked body", clientErr: true}
		}
		inBuf, bodyDone = n, done
		withheld = w.scanner.TrailerBytes()
	case req.ContentLength > 0:
		inBuf = int(min(int64(avail), req.ContentLength))
		bodyDone = int64(inBuf) == req.ContentLength
	}
	if !bodyDone && req.Expect100 {
		// We answer the expectation ourselves; the body then follows.
		if err := c.writeAll([]byte("HTTP/1.1 100 Continue\r\n\r\n"), w.stall); err != nil {
			return &exchangeError{status: 400, msg: "client went away", clientErr: true}
		}
	}
	// Request trailers are not forwarded (README "HTTP behaviour"): they
	// arrive after the head was routed and would let a client smuggle
	// framing or routing fields past the proxy. The withheld octets are
	// the trailer section; a bare CRLF ends the body instead.
	fwd := buf[headLen : headLen+inBuf-withheld]
	if len(fwd) > 0 && len(out)+len(fwd) <= 64*1024 {
		out = append(out, fwd...)
		if bodyDone && req.Chunked {
			out = append(out, crlf...)
		}
		fwd = nil // sent together with the head
	}
	w.out = out[:0]
	if err := uc.write(out); err != nil {
		return &exchangeError{status: 502, msg: "bad gateway: cannot send the request"}
	}
	if inBuf > 0 {
		*bodyStarted = true
	}
	if len(fwd) > 0 {
		if err := uc.write(fwd); err != nil {
			return &exchangeError{status: 502, msg: "bad gateway: cannot send the request body"}
		}
		if bodyDone && req.Chunked {
			if err := uc.write(crlf); err != nil {
				return &exchangeError{status: 502, msg: "bad gateway: cannot send the request body"}
			}
		}
	}
	w.consumed = headLen + inBuf
	if bodyDone {
		return nil
	}
	*bodyStarted = true
	return w.streamRequestBody(c, uc, req.ContentLength-int64(inBuf))
}

// bodyWait is how long the next wait for request body bytes may last: the
// listener's request_body_timeout, cut to what is left of the route
// timeout, which covers the whole exchange (SPEC §2).
func (w *worker) bodyWait() time.Duration {
	wait := w.bodyStall
	if left := time.Until(w.deadline); left < wait {
		wait = max(left, 0)
	}
	return wait
}

// bodyReadError classifies a failed read of the client's body: the route
// timeout ran out (504), the client paused too long (408), or it broke off.
func (w *worker) bodyReadError(err error) *exchangeError {
	switch {
	case err == errTimeout && !time.Now().Before(w.deadline):
		return &exchangeError{status: 504, msg: "upstream timeout", clientErr: true}
	case err == errTimeout:
		return &exchangeError{status: 408, msg: "request body timeout", clientErr: true}
	}
	return &exchangeError{status: 400, msg: "client body read failed", clientErr: true}
}

// streamRequestBody copies the rest of the request body from the client:
// remaining bytes of a Content-Length body, or a chunked body to its end.
func (w *worker) streamRequestBody(c *conn, uc *upstreamConn, remaining int64) *exchangeError {
	req := &w.req
	for {
		p := w.copyBuf
		if !req.Chunked && int64(len(p)) > remaining {
			p = p[:remaining]
		}
		n, err := c.readSome(p, w.bodyWait())
		if err != nil {
			return w.bodyReadError(err)
		}
		chunk := p[:n]
		done := false
		if req.Chunked {
			trailerBefore := w.scanner.TrailerBytes()
			m, d, ferr := w.scanner.Feed(chunk)
			if ferr != nil {
				return &exchangeError{status: 400, msg: "malformed chunked body", clientErr: true}
			}
			if d {
				// Bytes past the body belong to the next request.
				if rest := chunk[m:]; len(rest) > 0 {
					w.stash(c, rest)
				}
				done = true
			}
			// Trailer octets are withheld (see writeRequest).
			chunk = chunk[:m-(w.scanner.TrailerBytes()-trailerBefore)]
			if d {
				chunk = append(chunk, crlf...)
			}
		} else {
			remaining -= int64(n)
			done = remaining == 0
		}
		if err := uc.write(chunk); err != nil {
			return &exchangeError{status: 502, msg: "bad gateway: cannot send the request body"}
		}
		if done {
			return nil
		}
	}
}

// stash puts bytes that follow the request back in the client buffer.
func (w *worker) stash(c *conn, rest []byte) {
	buf := *c.buf
	if c.n+len(rest) > len(buf) {
		// The old buffer is left to the GC, not the pool: the parsed
		// request still points into it.
		grown := make([]byte, c.n+len(rest))
		copy(grown, buf[:c.n])
		c.buf = &grown
		buf = grown
	}
	copy(buf[c.n:], rest)
	c.n += len(rest)
}

// appendRequestHead writes the request line and fields for the backend by
// the rules of package l7: the normalised path; client fields forwarded
// only as the listener's policy allows, and never those the client's
// Connection field nominates; framing (Content-Length or
// Transfer-Encoding), Host, X-Forwarded-* and X-Request-Id stated by the
// proxy from its own parse; the route's request_headers applied.
func (w *worker) appendRequestHead(out []byte, c *conn, uc *upstreamConn, target *Target, requestID string) []byte {
	req := &w.req
	policy := w.policy
	out = append(out, req.Method...)
	out = append(out, ' ')
	path := w.path
	if target.StripPrefix != "" && len(path) >= len(target.StripPrefix) && b2s(path[:len(target.StripPrefix)]) == target.StripPrefix {
		path = path[len(target.StripPrefix):]
	}
	if len(path) == 0 || path[0] != '/' {
		out = append(out, '/')
	}
	out = append(out, path...)
	if req.Query != nil {
		out = append(out, '?')
		out = append(out, req.Query...)
	}
	if req.Major == 1 && req.Minor == 0 {
		out = append(out, " HTTP/1.0\r\n"...)
	} else {
		out = append(out, " HTTP/1.1\r\n"...)
	}

	var forwardedHost, forwardedProto []byte
	for i := range req.Headers {
		h := &req.Headers[i]
		class := l7.ClassifyRequestField(h.Name)
		if w.trusted && class == l7.FieldForwarded {
			switch {
			case http1.EqualFold(h.Name, "X-Forwarded-Host"):
				forwardedHost = h.Value
				continue
			case http1.EqualFold(h.Name, "X-Forwarded-Proto"):
				forwardedProto = h.Value
				continue
			}
		}
		if !policy.ForwardsAsSent(class, w.trusted) || w.connectionListed(h.Name) ||
			http1.EqualFold(h.Name, "Expect") || overridden(h.Name, target.RequestHeaders) {
			continue
		}
		out = append(out, h.Name...)
		out = append(out, ": "...)
		out = append(out, h.Value...)
		out = append(out, "\r\n"...)
	}
	out = append(out, "Host: "...)
	if host, ok := routeHost(target); ok {
		out = append(out, host...) // request_headers may set the Host
	} else if len(req.Host) > 0 {
		out = append(out, req.Host...)
	} else {
		out = append(out, uc.addr...) // HTTP/1.0 without Host
	}
	out = append(out, "\r\n"...)
	switch {
	case req.Chunked:
		out = append(out, "Transfer-Encoding: chunked\r\n"...)
	case req.ContentLength >= 0:
		out = append(out, "Content-Length: "...)
		out = strconv.AppendInt(out, req.ContentLength, 10)
		out = append(out, "\r\n"...)
	}
	if w.websocket {
		out = append(out, "Connection: Upgrade\r\nUpgrade: websocket\r\n"...)
	}
	out = append(out, "X-Forwarded-For: "...)
	if w.trusted {
		out = append(out, l7.ForwardedFor(c.clientIP, true, w.headerValues("X-Forwarded-For"))...)
	} else {
		out = append(out, c.clientIP...)
	}
	out = append(out, "\r\nX-Forwarded-Host: "...)
	if forwardedHost != nil {
		out = append(out, forwardedHost...)
	} else {
		out = append(out, req.Host...)
	}
	out = append(out, "\r\nX-Forwarded-Proto: "...)
	if forwardedProto != nil {
		out = append(out, forwardedProto...)
	} else {
		out = append(out, "http"...)
	}
	out = append(out, "\r\nX-Request-Id: "...)
	out = append(out, requestID...)
	out = append(out, "\r\n"...)
	for _, kv := range target.RequestHeaders {
		if kv.Name == "Host" {
			continue // stated above
		}
		out = append(out, kv.Name...)
		out = append(out, ": "...)
		out = append(out, kv.Value...)
		out = append(out, "\r\n"...)
	}
	return append(out, "\r\n"...)
}

// routeHost is the Host a route's request_headers set, if any (names are
// canonical there).
func routeHost(target *Target) (string, bool) {
	for _, kv := range target.RequestHeaders {
		if kv.Name == "Host" {
			return kv.Value, true
		}
	}
	return "", false
}

// headerValues returns the values of every request field called name;
// only used on the rare trusted-proxy path, where it may allocate.
func (w *worker) headerValues(name string) []string {
	var vals []string
	for i := range w.req.Headers {
		if h := &w.req.Headers[i]; http1.EqualFold(h.Name, name) {
			vals = append(vals, string(h.Value))
		}
	}
	return vals
}

// responseHeader returns the first value of a response field, "" if none.
func responseHeader(resp *http1.Response, name string) []byte {
	for i := range resp.Headers {
		if h := &resp.Headers[i]; http1.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return nil
}

// connectionListed reports whether the client's Connection field names h
// (RFC 9110 §7.6.1: such fields are hop-by-hop too).
func (w *worker) connectionListed(name []byte) bool {
	for i := range w.req.Headers {
		h := &w.req.Headers[i]
		if http1.EqualFold(h.Name, "Connection") && http1.HasToken(h.Value, b2s(name)) {
			return true
		}
	}
	return false
}

func overridden(name []byte, set []routing.Header) bool {
	for _, kv := range set {
		if http1.EqualFold(name, kv.Name) {
			return true
		}
	}
	return false
}

// readResponseHead reads until a final (or 101) response head is parsed;
// it returns the head's length in uc.rbuf[uc.r:].
func (w *worker) readResponseHead(uc *upstreamConn, isHEAD bool) (int, error) {
	for {
		if uc.w > uc.r {
			n, err := http1.ParseResponse(uc.rbuf[uc.r:uc.w], &w.resp, isHEAD)
			if err == nil {
				if w.resp.Status >= 100 && w.resp.Status < 200 && w.resp.Status != 101 {
					uc.r += n // interim answer: we handled Expect ourselves
					continue
				}
				return n, nil
			}
			if err != http1.ErrNeedMore {
				return 0, err
			}
			if uc.w-uc.r > 256*1024 {
				return 0, errors.New("upstream response head too large")
			}
		}
		before := uc.w
		// Right after the request nothing can have come back yet: wait for
		// readiness first instead of a read that would say so.
		n, err := uc.fillAwait(uc.w == 0)
		if n == 0 && err != nil {
			if errors.Is(err, io.EOF) && before == 0 {
				return 0, errUpstreamClosed
			}
			return 0, err
		}
	}
}

// skipResponseBody discards a response body that will not be relayed; it
// reports whether the connection is still usable.
func (w *worker) skipResponseBody(uc *upstreamConn, headN int) bool {
	resp := &w.resp
	uc.r += headN
	switch {
	case resp.NoBody:
		return resp.KeepAlive
	case resp.Chunked:
		w.scanner.Reset()
		for {
			n, done, err := w.scanner.Feed(uc.rbuf[uc.r:uc.w])
			if err != nil {
				return false
			}
			uc.r += n
			if done {
				return resp.KeepAlive && uc.r == uc.w
			}
			if w.scanner.BodyBytes() > 64*1024 {
				return false
			}
			if _, err := uc.fill(); err != nil {
				return false
			}
		}
	case resp.ContentLength >= 0:
		if resp.ContentLength > 64*1024 {
			return false
		}
		for int64(uc.w-uc.r) < resp.ContentLength {
			if _, err := uc.fill(); err != nil {
				return false
			}
		}
		uc.r += int(resp.ContentLength)
		return resp.KeepAlive && uc.r == uc.w
	}
	return false
}

// relayResponse writes the rewritten head and streams the body to the
// client. It reports bytes of body written and whether each side is intact.
func (w *worker) relayResponse(c *conn, uc *upstreamConn, headN int, target *Target, requestID string, keep bool, deadline time.Time) (int64, bool, bool) {
	resp := &w.resp
	out := w.appendResponseHead(w.out[:0], target, requestID, keep)
	uc.r += headN
	var body int64

	switch {
	case resp.NoBody:
		w.out = out[:0]
		w.finishAttempt(true, true)
		return 0, true, c.writeAll(out, w.stall) == nil
	case resp.ContentLength >= 0:
		buffered := int64(uc.w - uc.r)
		if buffered >= resp.ContentLength && resp.ContentLength <= 32*1024 {
			// Small answer, all here: one write for head and body.
			out = append(out, uc.rbuf[uc.r:uc.r+int(resp.ContentLength)]...)
			uc.r += int(resp.ContentLength)
			w.out = out[:0]
			w.finishAttempt(true, true)
			return resp.ContentLength, uc.r == uc.w, c.writeAll(out, w.stall) == nil
		}
		w.out = out[:0]
		if c.writeAll(out, w.stall) != nil {
			return 0, false, false
		}
		remaining := resp.ContentLength
		for remaining > 0 {
			if uc.r == uc.w {
				if _, err := uc.fill(); err != nil && uc.r == uc.w {
					return body, false, true
				}
			}
			chunk := uc.rbuf[uc.r:min(uc.w, uc.r+int(min(remaining, int64(len(uc.rbuf)))))]
			if c.writeAll(chunk, w.stall) != nil {
				return body, false, false
			}
			uc.r += len(chunk)
			remaining -= int64(len(chunk))
			body += int64(len(chunk))
		}
		return body, uc.r == uc.w, true
	case resp.Chunked:
		w.out = out[:0]
		if c.writeAll(out, w.stall) != nil {
			return 0, false, false
		}
		w.scanner.Reset()
		for {
			if uc.r == uc.w {
				if _, err := uc.fill(); err != nil && uc.r == uc.w {
					return body, false, true
				}
			}
			n, done, err := w.scanner.Feed(uc.rbuf[uc.r:uc.w])
			if err != nil {
				return body, false, true
			}
			if n > 0 {
				if c.writeAll(uc.rbuf[uc.r:uc.r+n], w.stall) != nil {
					return body, false, false
				}
				uc.r += n
				body += int64(n)
			}
			if done {
				return body, uc.r == uc.w, true
			}
		}
	default: // until close
		w.out = out[:0]
		if c.writeAll(out, w.stall) != nil {
			return 0, false, false
		}
		for {
			if uc.r < uc.w {
				if c.writeAll(uc.rbuf[uc.r:uc.w], w.stall) != nil {
					return body, false, false
				}
				body += int64(uc.w - uc.r)
				uc.r = uc.w
			}
			if _, err := uc.fill(); err != nil {
				if errors.Is(err, io.EOF) {
					return body, false, true // delimited by close: done, not reusable
				}
				return body, false, true
			}
		}
	}
}

// appendResponseHead writes the status line and fields for the client.
func (w *worker) appendResponseHead(out []byte, target *Target, requestID string, keep bool) []byte {
	resp := &w.resp
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(resp.Status), 10)
	out = append(out, ' ')
	out = append(out, resp.Reason...)
	out = append(out, "\r\n"...)
	upgrade := resp.Status == 101
	for i := range resp.Headers {
		h := &resp.Headers[i]
		if upgrade && (http1.EqualFold(h.Name, "Upgrade") || http1.EqualFold(h.Name, "Connection")) {
			// The switch itself: pass through as sent.
		} else if http1.IsHopByHop(h.Name) || http1.EqualFold(h.Name, "X-Request-Id") || overridden(h.Name, target.ResponseHeaders) || responseConnectionListed(resp, h.Name) {
			continue
		}
		out = append(out, h.Name...)
		out = append(out, ": "...)
		out = append(out, h.Value...)
		out = append(out, "\r\n"...)
	}
	for _, kv := range target.ResponseHeaders {
		out = append(out, kv.Name...)
		out = append(out, ": "...)
		out = append(out, kv.Value...)
		out = append(out, "\r\n"...)
	}
	out = append(out, "X-Request-Id: "...)
	out = append(out, requestID...)
	out = append(out, "\r\n"...)
	if resp.Chunked {
		out = append(out, "Transfer-Encoding: chunked\r\n"...)
	}
	if !upgrade {
		out = w.appendConnection(out, keep)
	}
	return append(out, "\r\n"...)
}

// appendConnection states whether the client connection stays open: an
// HTTP/1.1 client assumes it does, an HTTP/1.0 client only when told
// (RFC 9112 §9.3; without it "ab -k" waits for a close that never comes).
func (w *worker) appendConnection(out []byte, keep bool) []byte {
	switch {
	case !keep:
		return append(out, "Connection: close\r\n"...)
	case w.req.Minor == 0:
		return append(out, "Connection: keep-alive\r\n"...)
	}
	return out
}

func responseConnectionListed(resp *http1.Response, name []byte) bool {
	for i := range resp.Headers {
		h := &resp.Headers[i]
		if http1.EqualFold(h.Name, "Connection") && http1.HasToken(h.Value, b2s(name)) {
			return true
		}
	}
	return false
}

// discardBody consumes the request body the client sent for an answer that
// does not need it (404, static, failed forward). It reports whether the
// connection's framing is intact; large bodies are not drained: the
// connection closes instead.
func (w *worker) discardBody(c *conn, headLen int) bool {
	req := &w.req
	buf := *c.buf
	switch {
	case req.Chunked:
		w.scanner.Reset()
		n, done, err := w.scanner.Feed(buf[headLen:c.n])
		if err != nil || !done {
			w.consumed = c.n
			return false
		}
		w.consumed = headLen + n
		return true
	case req.ContentLength > 0:
		if int64(c.n-headLen) >= req.ContentLength {
			w.consumed = headLen + int(req.ContentLength)
			return true
		}
		w.consumed = c.n
		if req.ContentLength > 256*1024 {
			return false
		}
		remaining := req.ContentLength - int64(c.n-headLen)
		for remaining > 0 {
			p := w.copyBuf[:min(int64(len(w.copyBuf)), remaining)]
			n, err := c.readSome(p, w.bodyStall)
			if err != nil {
				return false
			}
			remaining -= int64(n)
		}
		return true
	default:
		w.consumed = headLen
		return true
	}
}

// writeStatic answers a respond {} route.
func (w *worker) writeStatic(c *conn, target *Target, requestID string, keep bool) int {
	r := target.Respond
	out := w.out[:0]
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(r.Status), 10)
	out = append(out, ' ')
	out = append(out, http.StatusText(r.Status)...)
	out = append(out, "\r\n"...)
	hasType := false
	for _, kv := range r.Headers {
		if overridden([]byte(kv.Name), target.ResponseHeaders) {
			continue
		}
		hasType = hasType || kv.Name == "Content-Type"
		out = appendField(out, kv.Name, kv.Value)
	}
	for _, kv := range target.ResponseHeaders {
		hasType = hasType || kv.Name == "Content-Type"
		out = appendField(out, kv.Name, kv.Value)
	}
	if !hasType {
		out = append(out, "Content-Type: text/plain; charset=utf-8\r\n"...)
	}
	out = appendField(out, "X-Request-Id", requestID)
	out = append(out, "Content-Length: "...)
	out = strconv.AppendInt(out, int64(len(r.Body)), 10)
	out = append(out, "\r\n"...)
	out = w.appendConnection(out, keep)
	out = append(out, "\r\n"...)
	if b2s(w.req.Method) != "HEAD" {
		out = append(out, r.Body...)
	}
	w.out = out[:0]
	_ = c.writeAll(out, w.stall)
	return len(r.Body)
}

// writeError answers with the proxy's JSON error body.
func (w *worker) writeError(c *conn, status int, msg, requestID string, keep bool) int {
	body := appendJSONError(nil, msg)
	out := w.out[:0]
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(status), 10)
	out = append(out, ' ')
	out = append(out, http.StatusText(status)...)
	out = append(out, "\r\nContent-Type: application/json\r\n"...)
	if requestID != "" {
		out = appendField(out, "X-Request-Id", requestID)
	}
	out = append(out, "Content-Length: "...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, "\r\n"...)
	out = w.appendConnection(out, keep)
	out = append(out, "\r\n"...)
	out = append(out, body...)
	w.out = out[:0]
	_ = c.writeAll(out, w.stall)
	return len(body)
}

func appendField(out []byte, name, value string) []byte {
	out = append(out, name...)
	out = append(out, ": "...)
	out = append(out, value...)
	return append(out, "\r\n"...)
}

// appendJSONError renders {"error": msg}.
func appendJSONError(out []byte, msg string) []byte {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	out = append(out, b...)
	return append(out, '\n')
}
