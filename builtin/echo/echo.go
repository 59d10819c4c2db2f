// Package echo is the built-in TCP echo server: every byte a client sends is
// written back on the same connection, and a client's half-close (CloseWrite)
// is answered by finishing the echo and half-closing our side in turn.
package echo

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

	"switchyard/builtin"
)

// Accept backoff bounds for temporary accept errors (EMFILE and friends),
// the same shape net/http uses: retrying at once would spin the CPU, giving up
// would kill the server over a transient resource shortage.
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

// Server is an echo server. The zero value is not usable; call New.
type Server struct {
	name string
	log  hclog.Logger

	// mu guards listeners, conns and shuttingDown. Registering a connection
	// goroutine with handlers happens under mu while shuttingDown is false,
	// so every handlers.Add happens before Shutdown's handlers.Wait.
	mu           sync.Mutex
	listeners    map[net.Listener]struct{}
	conns        map[net.Conn]struct{}
	shuttingDown bool

	handlers sync.WaitGroup

	active atomic.Int64
	total  atomic.Uint64
}

var _ builtin.Server = (*Server)(nil)

// New returns an echo server named name (the name appears in its logs).
func New(name string, log hclog.Logger) *Server {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Server{
		name:      name,
		log:       log.With("builtin", name, "handler", "echo"),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[net.Conn]struct{}),
	}
}

// ActiveConnections is the number of connections being echoed right now.
func (s *Server) ActiveConnections() int64 { return s.active.Load() }

// TotalConnections is the number of connections accepted since New.
func (s *Server) TotalConnections() uint64 { return s.total.Load() }

// Serve accepts connections on ln until Shutdown is called, then returns nil.
// It returns an error only when accepting fails for another reason; ln is
// closed in every case.
func (s *Server) Serve(ln net.Listener) error {
	if !s.trackListener(ln) {
		ln.Close()
		return nil
	}
	defer s.untrackListener(ln)

	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.isShuttingDown() {
				return nil
			}
			if isTemporary(err) {
				backoff = nextBackoff(backoff)
				s.log.Warn("accept failed; retrying", "error", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			ln.Close()
			return fmt.Errorf("echo %q: accept on %s: %w", s.name, ln.Addr(), err)
		}
		backoff = 0
		if !s.trackConn(conn) {
			conn.Close()
			continue
		}
		go s.handle(conn)
	}
}

// Shutdown stops accepting, waits for open connections to end until ctx is
// done, then closes the remaining ones and waits for their goroutines. It
// returns ctx's error when connections had to be cut.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shuttingDown = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()

	drained := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(drained)
	}()

	select {
	case <-drained:
		return nil
	case <-ctx.Done():
	}

	s.mu.Lock()
	cut := len(s.conns)
	for conn := range s.conns {
		conn.Close()
	}
	s.mu.Unlock()
	// Closing a connection fails its pending read or write, so every handler
	// returns promptly and the waiter goroutine above exits.
	<-drained
	s.log.Info("shutdown deadline reached; closed open connections", "connections", cut)
	return fmt.Errorf("echo %q: shutdown: %w", s.name, ctx.Err())
}

// handle echoes one connection until the client half-closes or it fails.
func (s *Server) handle(conn net.Conn) {
	defer s.handlers.Done()
	defer s.untrackConn(conn)
	defer conn.Close()

	// io.Copy lets *net.TCPConn use splice(2) on Linux, so the bytes never
	// pass through user space.
	n, err := io.Copy(conn, conn)
	if err != nil {
		// Errors here are normal ends of a session seen from the other side
		// (reset, or our own close at shutdown), so they stay at debug level.
		s.log.Debug("echo ended with error", "remote", conn.RemoteAddr(), "bytes", n, "error", err)
		return
	}
	// io.Copy returned nil: the client half-closed and everything it sent has
	// been written back. Half-close our side so the client reads EOF after
	// the last echoed byte rather than a reset.
	if hc, ok := conn.(interface{ CloseWrite() error }); ok {
		if err := hc.CloseWrite(); err != nil {
			s.log.Debug("close write failed", "remote", conn.RemoteAddr(), "error", err)
		}
	}
	s.log.Trace("echo finished", "remote", conn.RemoteAddr(), "bytes", n)
}

func (s *Server) trackListener(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown {
		return false
	}
	s.listeners[ln] = struct{}{}
	return true
}

func (s *Server) untrackListener(ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.listeners, ln)
}

// trackConn registers conn and its handler goroutine; it reports false once
// Shutdown has begun, when conn must be refused instead.
func (s *Server) trackConn(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown {
		return false
	}
	s.conns[conn] = struct{}{}
	s.handlers.Add(1)
	s.active.Add(1)
	s.total.Add(1)
	return true
}

func (s *Server) untrackConn(conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, conn)
	s.active.Add(-1)
}

func (s *Server) isShuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shuttingDown
}

// isTemporary reports accept errors that mean "try again": running out of
// file descriptors, a connection aborted before accept, or a timeout.
// net.Error.Temporary is deprecated for general use, but for accept it is
// still the classification net/http relies on.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return minAcceptBackoff
	}
	return min(2*d, maxAcceptBackoff)
}
