// Package tcpproxy is switchyard's TCP (L4) listener: each accepted
// connection is forwarded whole to one backend of the listener's pool.
//
// Copying goes through io.Copy between *net.TCPConn values so Linux uses
// splice(2): bytes never enter user space.
package tcpproxy

import (
	"context"
	"errors"
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

	mu       sync.Mutex // guards sessions
	sessions map[*session]struct{}
	wg       sync.WaitGroup // one per session goroutine

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
		s.mu.Lock()
		s.sessions[sess] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveSession(sess, s.opts.Load())
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// Shutdown stops accepting and lets open sessions finish until ctx is done,
// then closes them.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.ln.Close()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.cancel()
		s.mu.Lock()
		for sess := range s.sessions {
			sess.closeBoth()
		}
		s.mu.Unlock()
		<-done
	}
	s.cancel()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
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
				"duration", rec.Duration.String(), "connected", rec.Connected)
		}
	}()

	clientIP := ""
	if tcp, ok := sess.client.RemoteAddr().(*net.TCPAddr); ok {
		clientIP = tcp.IP.String()
	}
	att, backendConn := s.connect(opts, clientIP, &rec)
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

	connectedAt := time.Now()
	in, out, failed := s.pipe(sess.client, backendConn, opts.IdleTimeout)
	rec.BytesIn, rec.BytesOut = in, out
	s.bytesIn.Add(uint64(in))
	s.bytesOut.Add(uint64(out))
	outcome := upstream.Success
	if failed {
		// A reset mid-session says little about the backend's health; do
		// not feed it to the breaker.
		outcome = upstream.Canceled
	}
	att.Done(outcome, time.Since(connectedAt))
}

// connect dials backends in strategy order until one answers, counting every
// refused dial against that backend's breaker and passive health.
func (s *Server) connect(opts *Options, clientIP string, rec *Record) (*upstream.Attempt, net.Conn) {
	pool := opts.Pool
	var tried []*upstream.Backend
	dialer := net.Dialer{Timeout: pool.ConnectTimeout()}
	for {
		att, err := pool.Acquire(clientIP, tried)
		if err != nil {
			if len(tried) == 0 {
				s.log.Warn("no available backend; closing client", "listener", opts.Listener, "upstream", pool.Name())
			}
			return nil, nil
		}
		b := att.Backend()
		tried = append(tried, b)
		start := time.Now()
		conn, err := dialer.DialContext(s.ctx, "tcp", b.Address())
		if err != nil {
			rec.ConnectErrors++
			if s.ctx.Err() != nil {
				att.Done(upstream.Canceled, time.Since(start))
				return nil, nil
			}
			att.Done(upstream.Failure, time.Since(start))
			s.log.Debug("backend connect failed", "upstream", pool.Name(), "backend", b.Address(), "error", err)
			continue
		}
		return att, conn
	}
}

// pipe copies both directions until both are done. A clean EOF on one side is
// passed on as a half-close so the other direction keeps flowing; an error on
// either side closes both.
func (s *Server) pipe(client, backend net.Conn, idle time.Duration) (in, out int64, failed bool) {
	var activity *idleWatch
	if idle > 0 {
		activity = newIdleWatch(idle, []net.Conn{unwrapTCP(client), unwrapTCP(backend)}, func() { _ = client.Close(); _ = backend.Close() })
		defer activity.stop()
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
	return in, out, inErr != nil || outErr != nil
}

// copyHalf copies src → dst, then half-closes dst. It is a plain io.Copy
// between TCP conns (splice on Linux) unless the idle watch needs the copy to
// report activity.
func copyHalf(dst, src net.Conn, activity *idleWatch) (int64, error) {
	var n int64
	var err error
	if activity == nil || activity.usesProbe() {
		n, err = io.Copy(unwrapTCP(dst), unwrapTCP(src))
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

// unwrapTCP returns the *net.TCPConn under a tracked connection so that
// io.Copy sees two TCP conns and can splice.
func unwrapTCP(c net.Conn) net.Conn {
	if t, ok := c.(*listeners.TrackedTCPConn); ok {
		return t.TCPConn
	}
	return c
}
