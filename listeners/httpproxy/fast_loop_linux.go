package httpproxy

// The fast engine: switchyard's dedicated HTTP/1.1 forwarding path.
//
// It exists for two figures the net/http engine cannot reach: CPU per
// proxied request and memory per idle keep-alive connection. Client
// connections are raw non-blocking sockets in an epoll set of the engine's
// own; an idle connection is a small struct and a kernel socket, with no
// goroutine and no buffer. When a socket turns readable, a worker goroutine
// parses the request in place (listeners/http1), forwards it synchronously
// over a pooled upstream connection, writes the answer, re-arms the socket
// and goes back to the worker pool.
//
// The epoll descriptor itself is registered with Go's network poller, so
// the event loop parks like any goroutine waiting on a socket and never pins
// an OS thread or a P.
//
// Routing, pools, strategies, health and breakers are shared with the
// net/http engine: only the HTTP/1.1 byte handling differs, and both engines
// pass the same behaviour tests.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// FastServer is one HTTP listener served by the fast engine.
type FastServer struct {
	ln       *net.TCPListener
	lnFD     int
	epFD     int
	epFile   *os.File // epFD wrapped so Go's netpoller wakes the loop
	wakeFD   int      // eventfd: Shutdown and accept resumption poke the loop
	opts     atomic.Pointer[Options]
	settings atomic.Pointer[Settings]
	log      hclog.Logger
	observer Observer
	upstream *upstreamPool

	connsMu     sync.Mutex // guards conns and tunnelConns
	conns       map[int]*conn
	tunnelConns map[net.Conn]struct{}

	active    atomic.Int64
	total     atomic.Uint64
	accepting atomic.Bool // listener fd armed in epoll
	closing   atomic.Bool // Shutdown began: no new connections, no keep-alive
	stopLoop  atomic.Bool // drain budget spent: the loop exits now

	work        chan *conn    // idle workers wait here
	idleWorkers atomic.Int64  // workers waiting for a connection
	bufs        sync.Pool     // client read buffers, lent only while bytes are in flight
	quit        chan struct{} // closed by Shutdown: idle workers exit
	workers     sync.WaitGroup
	tunnels     sync.WaitGroup // upgraded connections

	loopDone chan struct{}
}

const (
	// evConn registers a client socket once, edge-triggered, for both
	// directions: no epoll_ctl per request. Edges that arrive while a
	// worker owns the connection are kept as pending flags on the conn.
	evConn = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET
	// evReadable are the events that mean "read now" (data, EOF, error).
	evReadable = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLHUP | unix.EPOLLERR
	evWritable = unix.EPOLLOUT | unix.EPOLLHUP | unix.EPOLLERR
	// maxEvents is the batch size of one epoll_wait.
	maxEvents = 256
	// sweepEvery is how often idle and slow-header connections are reaped.
	sweepEvery = 250 * time.Millisecond
	// minIdleWorkers idle workers are kept ready for the next burst.
	minIdleWorkers = 16
)

// NewServer takes over an already bound TCP listener.
func NewFastServer(ln net.Listener, opts *Options, settings Settings, log hclog.Logger, observer Observer) (*FastServer, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, fmt.Errorf("fastproxy: listener is %T, not TCP", ln)
	}
	settings = withDefaults(settings)
	s := &FastServer{
		ln:          tl,
		log:         log,
		observer:    observer,
		conns:       make(map[int]*conn),
		tunnelConns: make(map[net.Conn]struct{}),
		work:        make(chan *conn),
		quit:        make(chan struct{}),
		loopDone:    make(chan struct{}),
	}
	s.opts.Store(opts)
	s.settings.Store(&settings)
	s.upstream = newUpstreamPool(s)
	s.bufs.New = func() any { b := make([]byte, clientBufSize); return &b }

	raw, err := tl.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("fastproxy: listener fd: %w", err)
	}
	if err := raw.Control(func(fd uintptr) { s.lnFD = int(fd) }); err != nil {
		return nil, fmt.Errorf("fastproxy: listener fd: %w", err)
	}
	if s.epFD, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("fastproxy: epoll_create1: %w", err)
	}
	if s.wakeFD, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		unix.Close(s.epFD)
		return nil, fmt.Errorf("fastproxy: eventfd: %w", err)
	}
	if err := unix.SetNonblock(s.epFD, true); err != nil {
		s.closeFDs()
		return nil, fmt.Errorf("fastproxy: epoll nonblock: %w", err)
	}
	if err := s.ctl(unix.EPOLL_CTL_ADD, s.wakeFD, unix.EPOLLIN); err != nil {
		s.closeFDs()
		return nil, err
	}
	if err := s.ctl(unix.EPOLL_CTL_ADD, s.lnFD, unix.EPOLLIN); err != nil {
		s.closeFDs()
		return nil, err
	}
	s.accepting.Store(true)
	s.epFile = os.NewFile(uintptr(s.epFD), "fastproxy-epoll")
	return s, nil
}

func withDefaults(st Settings) Settings {
	if st.ReadHeaderTimeout <= 0 {
		st.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if st.MaxHeaderBytes <= 0 {
		st.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if st.IdleTimeout <= 0 {
		st.IdleTimeout = 60 * time.Second
	}
	if st.RequestBodyTimeout <= 0 {
		st.RequestBodyTimeout = DefaultRequestBodyTimeout
	}
	return st
}

func (s *FastServer) closeFDs() {
	if s.epFile != nil {
		s.epFile.Close()
	} else {
		unix.Close(s.epFD)
	}
	unix.Close(s.wakeFD)
}

func (s *FastServer) ctl(op, fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := sysEpollCtl(s.epFD, op, fd, &ev); err != nil {
		return fmt.Errorf("fastproxy: epoll_ctl(%d, fd %d): %w", op, fd, err)
	}
	return nil
}

// Update swaps the routing generation and settings for requests that start
// from now on.
func (s *FastServer) Update(opts *Options, settings Settings) {
	s.opts.Store(opts)
	settings = withDefaults(settings)
	s.settings.Store(&settings)
	s.maybeResumeAccept()
}

// Addr is the bound address.
func (s *FastServer) Addr() net.Addr { return s.ln.Addr() }

// Tunnels reports upgraded connections still open.
func (s *FastServer) Tunnels() int {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	return len(s.tunnelConns)
}

// ActiveConnections reports open client connections.
func (s *FastServer) ActiveConnections() int64 { return s.active.Load() }

// TotalConnections reports client connections accepted so far.
func (s *FastServer) TotalConnections() uint64 { return s.total.Load() }

// Serve runs the event loop until Shutdown.
func (s *FastServer) Serve() error {
	defer close(s.loopDone)
	raw, err := s.epFile.SyscallConn()
	if err != nil {
		return fmt.Errorf("fastproxy: epoll conn: %w", err)
	}
	events := make([]unix.EpollEvent, maxEvents)
	lastSweep := time.Now()
	for !s.stopLoop.Load() && !(s.closing.Load() && s.active.Load() == 0) {
		var n int
		var waitErr error
		_ = s.epFile.SetReadDeadline(time.Now().Add(sweepEvery))
		err := raw.Read(func(fd uintptr) bool {
			n, waitErr = sysEpollPoll(int(fd), events)
			if waitErr == unix.EINTR {
				n, waitErr = 0, nil
				return false
			}
			return n > 0 || waitErr != nil
		})
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("fastproxy: wait: %w", err)
		}
		if waitErr != nil {
			return fmt.Errorf("fastproxy: epoll_wait: %w", waitErr)
		}
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			switch fd {
			case s.lnFD:
				s.acceptReady()
			case s.wakeFD:
				var b [8]byte
				_, _ = unix.Read(s.wakeFD, b[:])
			default:
				s.connReady(fd, events[i].Events)
			}
		}
		if now := time.Now(); now.Sub(lastSweep) >= sweepEvery || s.closing.Load() {
			lastSweep = now
			s.sweep(now)
			s.retireIdleWorkers()
			s.maybeResumeAccept() // after a pause for lack of descriptors
		}
	}
	return nil
}

// acceptReady accepts until the backlog is empty or the limit is reached.
func (s *FastServer) acceptReady() {
	settings := s.settings.Load()
	for {
		if limit := settings.MaxConnections; limit > 0 && s.active.Load() >= int64(limit) {
			// At the limit: stop watching the listener; clients wait in the
			// kernel backlog until a connection closes.
			if s.accepting.CompareAndSwap(true, false) {
				_ = s.ctl(unix.EPOLL_CTL_MOD, s.lnFD, 0)
			}
			return
		}
		nfd, clientIP, err := sysAccept4(s.lnFD)
		if err != nil {
			if err == unix.EAGAIN || err == unix.EINTR || err == unix.ECONNABORTED {
				return
			}
			if err == unix.EMFILE || err == unix.ENFILE {
				// The listener stays readable while we cannot take the
				// connection: stop watching it for a moment instead of
				// spinning; the sweep resumes accepting.
				s.log.Warn("accept: out of file descriptors; pausing accept", "error", err)
				if s.accepting.CompareAndSwap(true, false) {
					_ = s.ctl(unix.EPOLL_CTL_MOD, s.lnFD, 0)
				}
				return
			}
			s.log.Warn("accept failed", "error", err)
			return
		}
		sysSetNoDelay(nfd)
		c := &conn{fd: nfd, srv: s, clientIP: clientIP}
		c.lastActive.Store(nanotime())
		s.connsMu.Lock()
		s.conns[nfd] = c
		s.connsMu.Unlock()
		s.active.Add(1)
		s.total.Add(1)
		if err := s.ctl(unix.EPOLL_CTL_ADD, nfd, evConn); err != nil {
			s.log.Warn("register connection", "error", err)
			c.close()
		}
	}
}

// maybeResumeAccept re-arms the listener once there is room again.
func (s *FastServer) maybeResumeAccept() {
	if s.closing.Load() || s.accepting.Load() {
		return
	}
	limit := s.settings.Load().MaxConnections
	if limit > 0 && s.active.Load() >= int64(limit) {
		return
	}
	if s.accepting.CompareAndSwap(false, true) {
		_ = s.ctl(unix.EPOLL_CTL_MOD, s.lnFD, unix.EPOLLIN)
	}
}

// connReady dispatches a readiness event: to the worker waiting on the
// connection, or to a free worker if the connection was idle.
func (s *FastServer) connReady(fd int, events uint32) {
	s.connsMu.Lock()
	c := s.conns[fd]
	s.connsMu.Unlock()
	if c == nil {
		s.upstream.ready(fd, events)
		return
	}
	readable := events&evReadable != 0
	writable := events&evWritable != 0
	c.mu.Lock()
	switch c.state {
	case stateIdle:
		if !readable {
			// A writability edge (e.g. right after registration) on a
			// connection with nothing to say: remember it, wake nobody.
			c.pendingOut = true
			c.mu.Unlock()
			return
		}
		c.state = stateBusy
		c.mu.Unlock()
		s.dispatch(c)
		return
	case stateWaiting:
		if (c.waitOut && writable) || (!c.waitOut && readable) {
			c.state = stateBusy
			c.pendingIn = c.pendingIn || (c.waitOut && readable)
			c.mu.Unlock()
			select {
			case c.wake <- struct{}{}:
			default:
			}
			return
		}
	}
	// The worker is busy (or waits for the other direction): keep the edge.
	c.pendingIn = c.pendingIn || readable
	c.pendingOut = c.pendingOut || writable
	c.mu.Unlock()
}

// dispatch hands c to an idle worker, or starts one.
func (s *FastServer) dispatch(c *conn) {
	select {
	case s.work <- c:
	default:
		s.workers.Add(1)
		go s.worker(c)
	}
}

func (s *FastServer) worker(c *conn) {
	defer s.workers.Done()
	w := newWorker(s)
	w.serve(c)
	for {
		s.idleWorkers.Add(1)
		select {
		case c := <-s.work:
			s.idleWorkers.Add(-1)
			if c == nil {
				return // retired by the sweep
			}
			w.serve(c)
		case <-s.quit:
			s.idleWorkers.Add(-1)
			return
		}
	}
}

// retireIdleWorkers lets go of half the idle workers above a small reserve,
// so a burst's goroutines and buffers are returned within a few sweeps
// without a timer reset on every request.
func (s *FastServer) retireIdleWorkers() {
	for excess := (s.idleWorkers.Load() - minIdleWorkers) / 2; excess > 0; excess-- {
		select {
		case s.work <- nil:
		default:
			return
		}
	}
}

// sweep closes idle keep-alive connections past idle_timeout, connections
// that have not finished their request head within ReadHeaderTimeout
// (slowloris), and every idle connection once the server is closing.
func (s *FastServer) sweep(now time.Time) {
	settings := s.settings.Load()
	nowNS := now.UnixNano()
	closing := s.closing.Load()
	var expired []*conn
	s.connsMu.Lock()
	for _, c := range s.conns {
		c.mu.Lock()
		if c.state == stateIdle && c.expiredLocked(nowNS, settings, closing) {
			c.state = stateBusy // claimed: no worker will get it now
			expired = append(expired, c)
		}
		c.mu.Unlock()
	}
	s.connsMu.Unlock()
	for _, c := range expired {
		if c.headerStart != 0 {
			// A slow or stalled request head: tell the client why.
			_, _ = sysWrite(c.fd, requestTimeoutAnswer)
		}
		c.close()
	}
}

// Shutdown stops accepting, closes idle connections, lets requests in
// flight finish until ctx is done, then closes everything.
func (s *FastServer) Shutdown(ctx context.Context) error {
	if !s.closing.CompareAndSwap(false, true) {
		return nil
	}
	if s.accepting.Swap(false) {
		_ = s.ctl(unix.EPOLL_CTL_DEL, s.lnFD, 0)
	}
	lnErr := s.ln.Close()
	s.poke() // the loop sweeps idle conns and exits once none is left

	var err error
	select {
	case <-s.loopDone:
	case <-ctx.Done():
		err = ctx.Err()
		s.stopLoop.Store(true)
		s.forceCloseAll()
		s.poke()
		<-s.loopDone
	}
	close(s.quit)
	s.tunnels.Wait()
	s.workers.Wait()
	s.upstream.closeAll()
	s.closeFDs()
	if errors.Is(lnErr, net.ErrClosed) {
		lnErr = nil
	}
	return errors.Join(err, lnErr)
}

// forceCloseAll ends every exchange: client sockets are shut down, waiting
// workers woken, upstream connections in use closed, idle conns closed.
func (s *FastServer) forceCloseAll() {
	var idle []*conn
	s.connsMu.Lock()
	for _, c := range s.conns {
		_ = unix.Shutdown(c.fd, unix.SHUT_RDWR)
		c.mu.Lock()
		switch c.state {
		case stateWaiting:
			c.state = stateBusy // handed back to its worker, which now fails fast
			select {
			case c.wake <- struct{}{}:
			default:
			}
		case stateIdle:
			c.state = stateBusy
			idle = append(idle, c)
		}
		c.mu.Unlock()
	}
	for nc := range s.tunnelConns {
		nc.Close()
	}
	s.connsMu.Unlock()
	for _, c := range idle {
		c.close()
	}
	s.upstream.closeAll()
}

func (s *FastServer) poke() {
	one := [8]byte{1}
	_, _ = unix.Write(s.wakeFD, one[:])
}

// nanotime is wall-clock nanoseconds; only differences matter.
func nanotime() int64 { return time.Now().UnixNano() }

var _ syscall.Conn = (*net.TCPConn)(nil)
