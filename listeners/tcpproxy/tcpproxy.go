// Package tcpproxy is switchyard's TCP (L4) listener: each accepted
// connection is forwarded whole to one backend of the listener's pool.
//
// Copying goes through io.Copy between *net.TCPConn values so Linux uses
// splice(2): bytes never enter user space.
package tcpproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"switchyard/listeners"
	"switchyard/upstream"
)

// Options is one generation of a TCP listener's configuration.
type Options struct {
	Listener    string
	Pool        *upstream.Pool
	IdleTimeout time.Duration // no bytes either way for this long closes both sides; 0 = never
	AccessLog   bool
}

// Observer receives one record per finished session; it may be nil.
type Observer interface {
	ObserveSession(rec *Record)
}

// Record describes a finished TCP session.
type Record struct {
	Listener      string
	Upstream      string
	Backend       string // "" when no backend could be reached
	Client        string
	BytesIn       int64 // client → backend
	BytesOut      int64 // backend → client
	Duration      time.Duration
	Connected     bool
	ConnectErrors int
}

// Server is one running TCP listener.
type Server struct {
	ln       *listeners.LimitListener
	opts     atomic.Pointer[Options]
	log      hclog.Logger
	observer Observer

	ctx    context.Context // canceled by Shutdown's hard stop
	cancel context.CancelFunc

	// mu guards sessions and shuttingDown. A session is registered (and
	// wg.Add called) under mu only while shuttingDown is false, so every Add
	// happens before Shutdown's Wait and no session escapes the force-close.
	mu           sync.Mutex
	sessions     map[*session]struct{}
	shuttingDown bool
	wg           sync.WaitGroup // one per session goroutine

	bytesIn, bytesOut atomic.Uint64
}

// NewServer wraps an already bound socket; nothing is accepted until Serve.
func NewServer(ln net.Listener, opts *Options, maxConnections int, log hclog.Logger, observer Observer) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		ln:       listeners.NewLimitListener(ln, maxConnections),
		log:      log,
		observer: observer,
		ctx:      ctx,
		cancel:   cancel,
		sessions: make(map[*session]struct{}),
	}
	s.opts.Store(opts)
	return s
}

// Update swaps the pool and settings for connections accepted from now on.
func (s *Server) Update(opts *Options, maxConnections int) {
	s.opts.Store(opts)
	s.ln.SetLimit(maxConnections)
}

// Options returns the current generation.
func (s *Server) Options() *Options { return s.opts.Load() }

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// ActiveConnections reports open client connections.
func (s *Server) ActiveConnections() int64 { return s.ln.Active() }

// TotalConnections reports client connections accepted so far.
func (s *Server) TotalConnections() uint64 { return s.ln.Total() }

// BytesIn reports bytes forwarded client → backend.
func (s *Server) BytesIn() uint64 { return s.bytesIn.Load() }

// BytesOut reports bytes forwarded backend → client.
func (s *Server) BytesOut() uint64 { return s.bytesOut.Load() }

// Serve accepts until Shutdown; it returns nil after a Shutdown.
func (s *Server) Serve() error {
	var backoff time.Duration
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// EMFILE and friends: back off instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "error", err, "backoff", backoff)
				select {
				case <-time.After(backoff):
					continue
				case <-s.ctx.Done():
					return nil
				}
			}
			return err
		}
		backoff = 0
		sess := &session{client: conn}
		if !s.track(sess) {
			// Accepted just as Shutdown began: it will not wait for us.
			_ = conn.Close()
			return nil
		}
		go s.serveSession(sess, s.opts.Load())
	}
}

// track registers a session unless Shutdown has begun.
func (s *Server) track(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown {
		return false
	}
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	return true
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// Shutdown stops accepting and lets open sessions finish until ctx is done,
// then closes them (cancelling dials in progress) and waits for their
// goroutines. It returns ctx's error, wrapped, when sessions had to be cut.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shuttingDown = true
	s.mu.Unlock()
	err := s.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil // a second Shutdown
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.cancel()
		return err
	case <-ctx.Done():
	}
	s.cancel()
	s.mu.Lock()
	cut := len(s.sessions)
	for sess := range s.sessions {
		sess.closeBoth()
	}
	s.mu.Unlock()
	<-done
	s.log.Info("shutdown deadline reached; closed open sessions", "sessions", cut)
	return errors.Join(err, fmt.Errorf("tcp listener %q: shutdown: %w", s.Options().Listener, ctx.Err()))
}

type session struct {
	client  net.Conn
	backend net.Conn
	mu      sync.Mutex // guards backend assignment against closeBoth
	closed  bool
}

func (sess *session) setBackend(c net.Conn) bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.closed {
		return false
	}
	sess.backend = c
	return true
}

func (sess *session) closeBoth() {
	sess.mu.Lock()
	sess.closed = true
	b := sess.backend
	sess.mu.Unlock()
	_ = sess.client.Close()
	if b != nil {
		_ = b.Close()
	}
}

func (s *Server) serveSession(sess *session, opts *Options) {
	defer func() {
		sess.closeBoth()
		s.mu.Lock()
		delete(s.sessions, sess)
		s.mu.Unlock()
		s.wg.Done()
	}()
	start := time.Now()
	rec := Record{Listener: opts.Listener, Upstream: opts.Pool.Name(), Client: sess.client.RemoteAddr().String()}
	defer func() {
		rec.Duration = time.Since(start)
		if s.observer != nil {
			s.observer.ObserveSession(&rec)
		}
		if opts.AccessLog {
			s.log.Info("access", "listener", rec.Listener, "client", rec.Client, "upstream", rec.Upstream,
				"backend", rec.Backend, "bytes_in", rec.BytesIn, "bytes_out", rec.BytesOut,
				"duration", rec.Duration.String(), "connected", rec.Connected, "connect_errors", rec.ConnectErrors)
		}
	}()

	clientIP := ""
	if tcp, ok := sess.client.RemoteAddr().(*net.TCPAddr); ok {
		clientIP = tcp.IP.String()
	}
	att, backendConn, dialTime := s.connect(opts, clientIP, &rec)
	if backendConn == nil {
		return // no backend: closing the client is the answer (SPEC §2)
	}
	if !sess.setBackend(backendConn) {
		_ = backendConn.Close()
		att.Done(upstream.Canceled, 0)
		return
	}
	rec.Connected = true
	rec.Backend = att.Backend().Address()
	// A TCP backend is judged by its connect: that settles the breaker (a
	// half-open probe is decided now, not held for the whole session) and
	// the latency estimate (a session's length is the client's business;
	// feeding it to the peak-EWMA would make least_latency shun backends
	// with long sessions). The session still counts as active until it ends.
	att.Settle(upstream.Success, dialTime)

	in, out, _ := s.pipe(sess.client, backendConn, opts.IdleTimeout)
	rec.BytesIn, rec.BytesOut = in, out
	s.bytesIn.Add(uint64(in))
	s.bytesOut.Add(uint64(out))
	att.Done(upstream.Success, dialTime)
}

// connect dials backends in strategy order until one answers, counting every
// failed dial against that backend's breaker and passive health. Each backend
// is tried at most once, so it gives up after at most the pool's size. It
// returns the attempt, the connection and how long the successful dial took,
// or a nil connection when no backend could be reached.
func (s *Server) connect(opts *Options, clientIP string, rec *Record) (*upstream.Attempt, net.Conn, time.Duration) {
	pool := opts.Pool
	var tried []*upstream.Backend
	dialer := net.Dialer{Timeout: pool.ConnectTimeout()}
	for {
		att, err := pool.Acquire(clientIP, tried)
		if err != nil {
			if len(tried) == 0 {
				s.log.Warn("no available backend; closing client", "listener", opts.Listener, "upstream", pool.Name())
			} else {
				s.log.Warn("every backend tried failed to connect; closing client", "listener", opts.Listener,
					"upstream", pool.Name(), "tried", len(tried))
			}
			return nil, nil, 0
		}
		b := att.Backend()
		tried = append(tried, b)
		start := time.Now()
		conn, err := dialer.DialContext(s.ctx, "tcp", b.Address())
		took := time.Since(start)
		if err != nil {
			if s.ctx.Err() != nil {
				// Our own shutdown, not the backend's fault.
				att.Done(upstream.Canceled, 0)
				return nil, nil, 0
			}
			rec.ConnectErrors++
			att.Done(upstream.Unreachable, took)
			s.log.Debug("backend connect failed", "upstream", pool.Name(), "backend", b.Address(), "error", err)
			continue
		}
		return att, conn, took
	}
}

// pipeEnd says how a session's copying ended.
type pipeEnd int

const (
	endClean pipeEnd = iota // both directions reached EOF
	endIdle                 // the idle timeout closed both sides
	endError                // a read or write failed, or a side was closed under us
)

// pipe copies both directions until both are done. A clean EOF on one side is
// passed on as a half-close so the other direction keeps flowing; an error on
// either side closes both.
func (s *Server) pipe(client, backend net.Conn, idle time.Duration) (in, out int64, end pipeEnd) {
	var activity *idleWatch
	if idle > 0 {
		activity = newIdleWatch(idle, []net.Conn{unwrapTCP(client), unwrapTCP(backend)}, func() { _ = client.Close(); _ = backend.Close() })
		defer func() {
			if activity.stop() {
				end = endIdle
			}
		}()
	}
	var wg sync.WaitGroup
	var inErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		in, inErr = copyHalf(backend, client, activity)
		if inErr != nil {
			_ = client.Close()
			_ = backend.Close()
		}
	}()
	var outErr error
	out, outErr = copyHalf(client, backend, activity)
	if outErr != nil {
		_ = client.Close()
		_ = backend.Close()
	}
	wg.Wait()
	if inErr != nil || outErr != nil {
		return in, out, endError
	}
	return in, out, endClean
}

// copyHalf copies src → dst, then half-closes dst. It is a plain io.Copy
// between TCP conns (splice on Linux) unless the idle watch needs the copy to
// report activity.
func copyHalf(dst, src net.Conn, activity *idleWatch) (int64, error) {
	var n int64
	var err error
	if activity == nil || activity.usesProbe() {
		n, err = adaptiveCopy(unwrapTCP(dst), unwrapTCP(src))
	} else {
		n, err = io.Copy(unwrapTCP(dst), &activityReader{r: unwrapTCP(src), w: activity})
	}
	if err != nil {
		return n, err
	}
	if cw, ok := unwrapTCP(dst).(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	return n, nil
}

// adaptiveCopy copies src to dst. Small messages (request/response
// protocols) go through one read and one write each, which is cheaper than
// splice's two pipe hops; once reads keep filling the buffer the stream is
// bulk, and the rest moves by io.Copy, which splices between TCP conns.
func adaptiveCopy(dst, src net.Conn) (int64, error) {
	buf := make([]byte, adaptiveBuf)
	read := src.Read
	write := func(p []byte) error { _, err := dst.Write(p); return err }
	if rp, ok := newRawPipe(dst, src, buf); ok {
		read = func([]byte) (int, error) { return rp.read() }
		write = rp.write
	}
	var total int64
	full := 0
	for full < bulkAfter {
		n, err := read(buf)
		if n > 0 {
			if werr := write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
			if n == len(buf) {
				full++
			} else {
				full = 0
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
	n, err := io.Copy(dst, src)
	return total + n, err
}

const (
	// adaptiveBuf is the user-space copy buffer for message-sized traffic.
	adaptiveBuf = 16 * 1024
	// bulkAfter full reads in a row switch a direction to splice.
	bulkAfter = 4
)

// unwrapTCP returns the *net.TCPConn under a tracked connection so that
// io.Copy sees two TCP conns and can splice.
func unwrapTCP(c net.Conn) net.Conn {
	if t, ok := c.(*listeners.TrackedTCPConn); ok {
		return t.TCPConn
	}
	return c
}
