package httpproxy

import (
	"errors"
	"net"
	"sync"
	"time"

	"switchyard/listeners/http1"
)

// The net/http engine reads requests with net/http's own parser, which is
// lenient where a proxy must not be: it serves Content-Length together with
// Transfer-Encoding (believing the latter, as RFC 9112 §6.3 allows a server
// but not a proxy whose next hop may believe the former) and ignores
// Transfer-Encoding on HTTP/1.0. framingGuard puts switchyard's strict
// parser (package http1, the one the event-loop engine uses) in front of it:
// every request head is held back until it is complete and has passed
// http1.ParseRequest, and the body is framed by that parse, so net/http only
// ever sees heads both parsers read alike, at the boundaries ours found.
// A head ours refuses never reaches net/http: the guard returns an error
// that makes net/http answer 400 and close the connection.

// errFramingRejected is what net/http reads in place of a refused head; any
// error other than a timeout or EOF makes it answer 400 and close.
var errFramingRejected = errors.New("request refused by switchyard's HTTP/1.1 parser")

// guardListener wraps accepted connections in a framingGuard.
type guardListener struct {
	net.Listener
	maxHeaderBytes int
}

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newFramingGuard(c, l.maxHeaderBytes), nil
}

type guardState uint8

const (
	guardHead     guardState = iota // collecting a request head
	guardBodyCL                     // passing remaining Content-Length bytes
	guardChunked                    // passing a chunked body
	guardAwait                      // an upgrade was asked: wait for the answer's status
	guardTunnel                     // switched protocols: pass everything
	guardRejected                   // a head was refused: no more requests
)

// framingGuard is a net.Conn whose Read side lets through only request
// heads that http1.ParseRequest accepts. Read is called by one goroutine at
// a time (net/http's connection reader); Write may run concurrently.
type framingGuard struct {
	net.Conn
	limits http1.Limits
	// cap bounds a held head: past it the head is released to net/http,
	// whose own limit (MaxHeaderBytes plus its 4 KiB margin) answers 431.
	cap int

	// Read side, owned by the reading goroutine.
	state     guardState
	head      []byte // held bytes of the head being collected
	ready     []byte // bytes cleared for net/http, not yet returned
	remaining int64  // guardBodyCL: body bytes still to pass
	scanner   http1.ChunkedScanner
	req       http1.Request
	raw       []byte // read scratch

	mu       sync.Mutex    // guards decided, answered, switched
	decided  chan struct{} // closed by Write once the answer to an upgrade is known
	answered bool          // decided is closed
	switched bool          // the answer was 101

	linger bool // set when a head was refused: Close drains before closing
}

func newFramingGuard(c net.Conn, maxHeaderBytes int) *framingGuard {
	if maxHeaderBytes <= 0 {
		maxHeaderBytes = DefaultMaxHeaderBytes
	}
	return &framingGuard{
		Conn:   c,
		limits: http1.Limits{MaxHeaderBytes: maxHeaderBytes + 4096, MaxHeaders: http1.DefaultLimits.MaxHeaders},
		cap:    maxHeaderBytes + 4096,
	}
}

// Read returns bytes the guard has cleared, reading and checking more from
// the socket as needed.
func (g *framingGuard) Read(p []byte) (int, error) {
	for len(g.ready) == 0 {
		if g.state == guardRejected {
			return 0, errFramingRejected
		}
		if g.state == guardAwait {
			if err := g.awaitAnswer(); err != nil {
				return 0, err
			}
			continue
		}
		if g.raw == nil {
			g.raw = make([]byte, 4096)
		}
		n, err := g.Conn.Read(g.raw)
		if n > 0 {
			g.feed(g.raw[:n])
		}
		if len(g.ready) == 0 && err != nil {
			return 0, err
		}
	}
	n := copy(p, g.ready)
	g.ready = g.ready[n:]
	return n, nil
}

// feed runs the framing state machine over newly read bytes, moving what
// may pass into ready.
func (g *framingGuard) feed(b []byte) {
	for len(b) > 0 {
		switch g.state {
		case guardTunnel:
			g.ready = append(g.ready, b...)
			return
		case guardRejected:
			return
		case guardAwait:
			// Bytes sent before the answer to an upgrade: held until
			// Write tells whether they belong to a tunnel.
			g.head = append(g.head, b...)
			return
		case guardBodyCL:
			n := int(min(int64(len(b)), g.remaining))
			g.ready = append(g.ready, b[:n]...)
			g.remaining -= int64(n)
			b = b[n:]
			if g.remaining == 0 {
				g.state = guardHead
			}
		case guardChunked:
			n, done, err := g.scanner.Feed(b)
			if err != nil {
				// The body is malformed: pass what came before the bad
				// byte and cut the connection there; net/http's own
				// chunked reader then fails the request.
				g.ready = append(g.ready, b[:n]...)
				g.reject()
				return
			}
			g.ready = append(g.ready, b[:n]...)
			b = b[n:]
			if done {
				g.state = guardHead
			}
		case guardHead:
			g.head = append(g.head, b...)
			b = nil
			b = g.checkHead()
		}
	}
}

// checkHead parses the held head. It returns the bytes that follow a
// complete, accepted head (to be framed as its body and what comes next).
func (g *framingGuard) checkHead() []byte {
	n, err := http1.ParseRequest(g.head, &g.req, g.limits)
	switch {
	case err == http1.ErrNeedMore:
		if len(g.head) > g.cap {
			g.release()
		}
		return nil
	case err != nil:
		var pe *http1.ParseError
		if errors.As(err, &pe) && (pe.Status == 431 || pe.Status == 414 || pe.Status == 501) {
			// net/http refuses these by itself, with the right status.
			g.release()
			return nil
		}
		g.reject()
		return nil
	}
	g.ready = append(g.ready, g.head[:n]...)
	rest := append([]byte(nil), g.head[n:]...)
	g.head = g.head[:0]
	switch {
	case g.req.Chunked:
		g.scanner.Reset()
		g.state = guardChunked
	case g.req.ContentLength > 0:
		g.remaining = g.req.ContentLength
		g.state = guardBodyCL
	case g.req.Upgrade:
		g.mu.Lock()
		g.decided = make(chan struct{})
		g.answered, g.switched = false, false
		g.mu.Unlock()
		g.state = guardAwait
	}
	return rest
}

// release hands the held bytes to net/http unchecked and refuses anything
// after them: it is only used for heads net/http refuses by itself.
func (g *framingGuard) release() {
	g.ready = append(g.ready, g.head...)
	g.head = nil
	g.state = guardRejected
	g.linger = true
}

func (g *framingGuard) reject() {
	g.head = nil
	g.state = guardRejected
	g.linger = true
}

// awaitAnswer waits until the answer to an upgrade request is written. On
// 101 the held bytes and everything after them pass as a tunnel; otherwise
// they are parsed as the next request. Until then it keeps reading (and
// holding) what the client sends, so that net/http's background read and
// its deadlines behave as on a plain connection; a read error is returned
// as it is and changes nothing.
func (g *framingGuard) awaitAnswer() error {
	g.mu.Lock()
	answered, switched := g.answered, g.switched
	g.mu.Unlock()
	if !answered {
		if g.raw == nil {
			g.raw = make([]byte, 4096)
		}
		if len(g.head) == 0 {
			n, err := g.Conn.Read(g.raw)
			g.head = append(g.head, g.raw[:n]...)
			if n == 0 {
				return err
			}
			return nil
		}
		// Early bytes are held: wait for the answer before reading more,
		// so a client cannot make the guard hold without bound.
		<-g.decided
		g.mu.Lock()
		switched = g.switched
		g.mu.Unlock()
	}
	held := g.head
	g.head = nil
	if switched {
		g.state = guardTunnel
	} else {
		g.state = guardHead
	}
	g.feed(held)
	return nil
}

// Write passes p on and, while an upgrade waits for its answer, reads the
// status of the response it starts.
func (g *framingGuard) Write(p []byte) (int, error) {
	g.mu.Lock()
	if g.decided != nil && !g.answered {
		if status, ok := responseStatus(p); ok && (status == 101 || status >= 200) {
			g.switched = status == 101
			g.answered = true
			close(g.decided)
		}
	}
	g.mu.Unlock()
	return g.Conn.Write(p)
}

// responseStatus reads the status code of a response head starting p.
func responseStatus(p []byte) (int, bool) {
	if len(p) < 12 || string(p[:7]) != "HTTP/1." || p[8] != ' ' {
		return 0, false
	}
	code := 0
	for _, c := range p[9:12] {
		if c < '0' || c > '9' {
			return 0, false
		}
		code = code*10 + int(c-'0')
	}
	return code, true
}

// CloseWrite half-closes the connection, as net/http does before closing
// after an answer it gave early.
func (g *framingGuard) CloseWrite() error {
	if cw, ok := g.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes the connection; after a refused head it first shuts down
// writing and drains what the client still sends for a moment, so the
// refusal is not destroyed by a reset (a lingering close, as nginx does).
func (g *framingGuard) Close() error {
	// A reader waiting for the answer to an upgrade must not outlive the
	// connection: release it as if a plain answer had been written.
	g.mu.Lock()
	if g.decided != nil && !g.answered {
		g.answered = true
		close(g.decided)
	}
	g.mu.Unlock()
	if g.linger {
		lingerClose(g.Conn)
	}
	return g.Conn.Close()
}

// Lingering-close bounds: how long and how much a refused client may still
// send before the socket is closed regardless.
const (
	lingerTime  = time.Second
	lingerBytes = 256 * 1024
)

// lingerClose shuts down writing and reads until EOF or a bound, so unread
// input does not turn the close into a reset that discards the answer.
func lingerClose(c net.Conn) {
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(lingerTime))
	buf := make([]byte, 4096)
	for total := 0; total < lingerBytes; {
		n, err := c.Read(buf)
		total += n
		if err != nil {
			return
		}
	}
}
