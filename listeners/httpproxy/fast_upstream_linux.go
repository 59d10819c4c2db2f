package httpproxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

const (
	upstreamBufSize = 16 * 1024
	// maxIdlePerBackend bounds idle keep-alive connections per backend.
	maxIdlePerBackend = 512
	// upstreamIdleTimeout drops pooled connections unused this long, below
	// the keep-alive timeout of common servers so we rarely race their close.
	upstreamIdleTimeout = 50 * time.Second
	// staleCheckAfter: a pooled connection idle longer than this is peeked
	// for a pending close before a non-replayable request is sent on it.
	staleCheckAfter = 500 * time.Millisecond
)

// errDial marks a failure to connect: nothing was sent.
type errDial struct{ err error }

func (e *errDial) Error() string { return "connect: " + e.err.Error() }
func (e *errDial) Unwrap() error { return e.err }

// errUpstreamTimeout is a read or write past the exchange's deadline.
type errUpstreamTimeout struct{}

func (errUpstreamTimeout) Error() string   { return "upstream i/o timeout" }
func (errUpstreamTimeout) Timeout() bool   { return true }
func (errUpstreamTimeout) Temporary() bool { return true }

var errUpstreamClosed = errors.New("upstream closed the connection before answering")

// upstreamConn is a connection to one backend: a raw non-blocking socket in
// the server's epoll set (like client sockets, so its syscalls skip the
// runtime's syscall bookkeeping and a response is awaited without a failed
// read first), with its read buffer.
type upstreamConn struct {
	fd       int
	addr     string
	rbuf     []byte
	r, w     int // unread bytes are rbuf[r:w]
	lastUsed time.Time
	deadline time.Time // the current exchange's deadline
	ready    readiness
}

// setDeadline bounds the exchange's reads and writes.
func (u *upstreamConn) setDeadline(want time.Time, _ time.Duration) { u.deadline = want }

// write sends all of p, waiting for room until the deadline.
func (u *upstreamConn) write(p []byte) error {
	for len(p) > 0 {
		n, err := sysWrite(u.fd, p)
		if n > 0 {
			p = p[n:]
			continue
		}
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if werr := u.ready.wait(true, u.deadline); werr != nil {
				return werr
			}
		case nil:
			return io.ErrShortWrite
		default:
			return os.NewSyscallError("write", err)
		}
	}
	return nil
}

// fill reads more bytes into rbuf, compacting or growing it as needed.
// With awaitFirst it waits for readiness before the first read, which
// saves a read that would only say "nothing yet" right after a request.
func (u *upstreamConn) fill() (int, error) { return u.fillAwait(false) }

func (u *upstreamConn) fillAwait(awaitFirst bool) (int, error) {
	if u.r > 0 && u.r == u.w {
		u.r, u.w = 0, 0
	}
	if u.w == len(u.rbuf) {
		if u.r > 0 {
			copy(u.rbuf, u.rbuf[u.r:u.w])
			u.w -= u.r
			u.r = 0
		} else {
			grown := make([]byte, 2*len(u.rbuf))
			copy(grown, u.rbuf[:u.w])
			u.rbuf = grown
		}
	}
	if awaitFirst {
		if err := u.ready.wait(false, u.deadline); err != nil {
			return 0, err
		}
	}
	for {
		n, err := sysRead(u.fd, u.rbuf[u.w:])
		switch {
		case n > 0:
			u.w += n
			return n, nil
		case err == nil:
			return 0, io.EOF
		case err == unix.EINTR:
			continue
		case err != unix.EAGAIN:
			return 0, os.NewSyscallError("read", err)
		}
		if werr := u.ready.wait(false, u.deadline); werr != nil {
			return 0, werr
		}
	}
}

// stale reports whether the backend already closed this pooled connection
// (or sent something unasked).
func (u *upstreamConn) stale() bool {
	var b [1]byte
	n, _, err := unix.Recvfrom(u.fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return n > 0 || (err == nil && n == 0) || (err != nil && err != unix.EAGAIN)
}

// readiness is the hand-off between the event loop and the one worker that
// uses an upstream connection: edges that come while nobody waits are kept
// as flags, so none is lost with edge-triggered epoll.
type readiness struct {
	mu         sync.Mutex // guards every field
	waiting    bool
	waitOut    bool
	pendingIn  bool
	pendingOut bool
	wake       chan struct{}
	timer      *time.Timer
}

// signal is called by the loop with the events of one edge.
func (r *readiness) signal(events uint32) {
	readable := events&evReadable != 0
	writable := events&evWritable != 0
	r.mu.Lock()
	if r.waiting && ((r.waitOut && writable) || (!r.waitOut && readable)) {
		r.waiting = false
		r.pendingIn = r.pendingIn || (r.waitOut && readable)
		r.mu.Unlock()
		select {
		case r.wake <- struct{}{}:
		default:
		}
		return
	}
	r.pendingIn = r.pendingIn || readable
	r.pendingOut = r.pendingOut || writable
	r.mu.Unlock()
}

// interrupt wakes a waiter for good (shutdown): its next syscall fails.
func (r *readiness) interrupt() {
	r.signal(evReadable | evWritable)
}

// wait blocks until the wanted direction is ready or the deadline passes.
func (r *readiness) wait(out bool, deadline time.Time) error {
	r.mu.Lock()
	if out && r.pendingOut {
		r.pendingOut = false
		r.mu.Unlock()
		return nil
	}
	if !out && r.pendingIn {
		r.pendingIn = false
		r.mu.Unlock()
		return nil
	}
	if r.wake == nil {
		r.wake = make(chan struct{}, 1)
	}
	r.waiting, r.waitOut = true, out
	r.mu.Unlock()

	d := time.Until(deadline)
	if deadline.IsZero() {
		d = time.Hour
	}
	if r.timer == nil {
		r.timer = time.NewTimer(d)
	} else {
		r.timer.Reset(d)
	}
	select {
	case <-r.wake:
		r.timer.Stop()
		return nil
	case <-r.timer.C:
		r.mu.Lock()
		if r.waiting {
			r.waiting = false
			r.mu.Unlock()
			return errUpstreamTimeout{}
		}
		r.mu.Unlock()
		<-r.wake // the loop is delivering right now
		return nil
	}
}

// upstreamPool keeps idle keep-alive connections per backend address and
// knows every open connection (by fd, for the event loop).
type upstreamPool struct {
	srv    *FastServer
	mu     sync.Mutex // guards idle, byFD, closed
	idle   map[string][]*upstreamConn
	byFD   map[int]*upstreamConn
	closed bool
}

func newUpstreamPool(srv *FastServer) *upstreamPool {
	return &upstreamPool{srv: srv, idle: make(map[string][]*upstreamConn), byFD: make(map[int]*upstreamConn)}
}

// ready routes an epoll event to the upstream connection on fd, if any.
func (p *upstreamPool) ready(fd int, events uint32) bool {
	p.mu.Lock()
	uc := p.byFD[fd]
	p.mu.Unlock()
	if uc == nil {
		return false
	}
	uc.ready.signal(events)
	return true
}

// get returns a pooled connection to addr (most recently used first) or
// dials a new one. reused tells the caller the backend may have closed it.
func (p *upstreamPool) get(addr string, connectTimeout time.Duration, checkStale bool, now time.Time) (uc *upstreamConn, reused bool, err error) {
	p.mu.Lock()
	for {
		list := p.idle[addr]
		if len(list) == 0 {
			break
		}
		uc = list[len(list)-1]
		list[len(list)-1] = nil
		p.idle[addr] = list[:len(list)-1]
		if now.Sub(uc.lastUsed) > upstreamIdleTimeout {
			p.closeLocked(uc)
			continue
		}
		p.mu.Unlock()
		if checkStale && now.Sub(uc.lastUsed) > staleCheckAfter && uc.stale() {
			p.discard(uc)
			p.mu.Lock()
			continue
		}
		return uc, true, nil
	}
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, false, &errDial{err: net.ErrClosed}
	}
	return p.dial(addr, connectTimeout)
}

// dial connects a new non-blocking socket, waiting in the event loop.
func (p *upstreamPool) dial(addr string, connectTimeout time.Duration) (*upstreamConn, bool, error) {
	tcpAddr, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, false, &errDial{err: err}
	}
	family, sa := unix.AF_INET, unix.Sockaddr(nil)
	if ip4 := tcpAddr.IP.To4(); ip4 != nil {
		sa4 := &unix.SockaddrInet4{Port: tcpAddr.Port}
		copy(sa4.Addr[:], ip4)
		sa = sa4
	} else {
		family = unix.AF_INET6
		sa6 := &unix.SockaddrInet6{Port: tcpAddr.Port}
		copy(sa6.Addr[:], tcpAddr.IP.To16())
		sa = sa6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, false, &errDial{err: os.NewSyscallError("socket", err)}
	}
	sysSetNoDelay(fd)
	uc := &upstreamConn{fd: fd, addr: addr, rbuf: make([]byte, upstreamBufSize)}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = sysClose(fd)
		return nil, false, &errDial{err: net.ErrClosed}
	}
	p.byFD[fd] = uc
	p.mu.Unlock()
	if err := p.srv.ctl(unix.EPOLL_CTL_ADD, fd, evConn); err != nil {
		p.discard(uc)
		return nil, false, &errDial{err: err}
	}
	err = unix.Connect(fd, sa)
	if err == unix.EINPROGRESS {
		if werr := uc.ready.wait(true, time.Now().Add(connectTimeout)); werr != nil {
			p.discard(uc)
			return nil, false, &errDial{err: fmt.Errorf("dial %s: %w", addr, werr)}
		}
		soErr, gerr := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if gerr != nil {
			err = gerr
		} else if soErr != 0 {
			err = unix.Errno(soErr)
		} else {
			err = nil
		}
	}
	if err != nil {
		p.discard(uc)
		return nil, false, &errDial{err: &net.OpError{Op: "dial", Net: "tcp", Addr: tcpAddr, Err: os.NewSyscallError("connect", err)}}
	}
	return uc, false, nil
}

// put returns a connection whose exchange ended cleanly; now is about when
// it was last used (the request's start is close enough and free).
func (p *upstreamPool) put(uc *upstreamConn, now time.Time) {
	uc.lastUsed = now
	uc.r, uc.w = 0, 0
	p.mu.Lock()
	if p.closed || len(p.idle[uc.addr]) >= maxIdlePerBackend {
		p.closeLocked(uc)
		p.mu.Unlock()
		return
	}
	p.idle[uc.addr] = append(p.idle[uc.addr], uc)
	p.mu.Unlock()
}

// discard closes a connection that cannot be reused.
func (p *upstreamPool) discard(uc *upstreamConn) {
	p.mu.Lock()
	p.closeLocked(uc)
	p.mu.Unlock()
}

func (p *upstreamPool) closeLocked(uc *upstreamConn) {
	if uc.fd < 0 {
		return
	}
	delete(p.byFD, uc.fd)
	_ = sysClose(uc.fd) // also leaves the epoll set
	uc.fd = -1
}

// detach hands the socket over as a net.Conn (for a tunnel): it leaves the
// event loop and the pool.
func (p *upstreamPool) detach(uc *upstreamConn) (net.Conn, error) {
	p.mu.Lock()
	delete(p.byFD, uc.fd)
	p.mu.Unlock()
	_ = p.srv.ctl(unix.EPOLL_CTL_DEL, uc.fd, 0)
	f := os.NewFile(uintptr(uc.fd), "upstream")
	nc, err := net.FileConn(f) // dups the descriptor into Go's poller
	f.Close()
	uc.fd = -1
	return nc, err
}

// closeAll closes idle connections, cuts those in use short (their workers
// wake and fail), and makes later gets fail.
func (p *upstreamPool) closeAll() {
	p.mu.Lock()
	p.closed = true
	for addr, list := range p.idle {
		for _, uc := range list {
			p.closeLocked(uc)
		}
		delete(p.idle, addr)
	}
	var inUse []*upstreamConn
	for _, uc := range p.byFD {
		inUse = append(inUse, uc)
	}
	p.mu.Unlock()
	for _, uc := range inUse {
		_ = unix.Shutdown(uc.fd, unix.SHUT_RDWR)
		uc.ready.interrupt()
	}
}
