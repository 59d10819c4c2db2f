package httpproxy

import (
	"errors"
	"net"
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

// upstreamConn is a connection to one backend with its read buffer.
type upstreamConn struct {
	nc       *net.TCPConn
	addr     string
	rbuf     []byte
	r, w     int // unread bytes are rbuf[r:w]
	lastUsed time.Time
	deadline time.Time // what the socket's deadline is set to
}

// setDeadline bounds the exchange by want. Moving a socket deadline costs a
// runtime timer update, so a deadline already set a little earlier than
// want (by less than an eighth of the timeout, at most 250ms) is kept: the
// exchange may then time out that much early, never late.
func (u *upstreamConn) setDeadline(want time.Time, timeout time.Duration) {
	slack := min(timeout/8, 250*time.Millisecond)
	if !u.deadline.After(want) && want.Sub(u.deadline) <= slack {
		return
	}
	u.deadline = want
	_ = u.nc.SetDeadline(want)
}

// fill reads more bytes into rbuf, compacting or growing it as needed.
func (u *upstreamConn) fill() (int, error) {
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
	n, err := u.nc.Read(u.rbuf[u.w:])
	u.w += n
	return n, err
}

// stale reports whether the backend already closed this pooled connection.
func (u *upstreamConn) stale() bool {
	raw, err := u.nc.SyscallConn()
	if err != nil {
		return true
	}
	dead := false
	var b [1]byte
	_ = raw.Read(func(fd uintptr) bool {
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		dead = n > 0 || (err == nil && n == 0) || (err != nil && err != unix.EAGAIN)
		return true
	})
	return dead
}

// upstreamPool keeps idle keep-alive connections per backend address and
// knows every connection in use, so Shutdown can cut exchanges short.
type upstreamPool struct {
	mu     sync.Mutex // guards idle, inUse, closed
	idle   map[string][]*upstreamConn
	inUse  map[*upstreamConn]struct{}
	closed bool
}

func newUpstreamPool() *upstreamPool {
	return &upstreamPool{idle: make(map[string][]*upstreamConn), inUse: make(map[*upstreamConn]struct{})}
}

// get returns a pooled connection to addr (most recently used first) or
// dials a new one. reused tells the caller the backend may have closed it.
func (p *upstreamPool) get(addr string, connectTimeout time.Duration, checkStale bool) (uc *upstreamConn, reused bool, err error) {
	now := time.Now()
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
			uc.nc.Close()
			uc = nil
			continue
		}
		p.inUse[uc] = struct{}{}
		p.mu.Unlock()
		if checkStale && now.Sub(uc.lastUsed) > staleCheckAfter && uc.stale() {
			p.discard(uc)
			p.mu.Lock()
			uc = nil
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

func (p *upstreamPool) dial(addr string, connectTimeout time.Duration) (*upstreamConn, bool, error) {
	nc, err := net.DialTimeout("tcp", addr, connectTimeout)
	if err != nil {
		return nil, false, &errDial{err: err}
	}
	tc := nc.(*net.TCPConn)
	uc := &upstreamConn{nc: tc, addr: addr, rbuf: make([]byte, upstreamBufSize)}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		tc.Close()
		return nil, false, &errDial{err: net.ErrClosed}
	}
	p.inUse[uc] = struct{}{}
	p.mu.Unlock()
	return uc, false, nil
}

// put returns a connection whose exchange ended cleanly.
func (p *upstreamPool) put(uc *upstreamConn) {
	uc.lastUsed = time.Now()
	uc.r, uc.w = 0, 0
	// The socket deadline stays: an idle pooled connection is never read,
	// and the next exchange moves it only if it must.
	p.mu.Lock()
	delete(p.inUse, uc)
	if p.closed || len(p.idle[uc.addr]) >= maxIdlePerBackend {
		p.mu.Unlock()
		uc.nc.Close()
		return
	}
	p.idle[uc.addr] = append(p.idle[uc.addr], uc)
	p.mu.Unlock()
}

// discard closes a connection that cannot be reused.
func (p *upstreamPool) discard(uc *upstreamConn) {
	p.mu.Lock()
	delete(p.inUse, uc)
	p.mu.Unlock()
	uc.nc.Close()
}

// closeAll closes idle and in-use connections; later gets fail.
func (p *upstreamPool) closeAll() {
	p.mu.Lock()
	p.closed = true
	var all []*upstreamConn
	for addr, list := range p.idle {
		all = append(all, list...)
		delete(p.idle, addr)
	}
	for uc := range p.inUse {
		all = append(all, uc)
	}
	p.mu.Unlock()
	for _, uc := range all {
		uc.nc.Close()
	}
}

var errUpstreamClosed = errors.New("upstream closed the connection before answering")
