// Package listeners holds what every switchyard listener shares: accepting
// with a connection limit that applies backpressure instead of refusing, and
// the per-listener connection counters that /status and /metrics read.
// The protocol-specific forwarding lives in the subpackages httpproxy and
// tcpproxy; route matching lives in routing.
package listeners

import (
	"net"
	"sync"
	"sync/atomic"
)

// LimitListener wraps a net.Listener so that at most Limit connections are
// open at once. At the limit Accept waits for a connection to close before it
// takes the next one from the kernel, so excess clients queue in the kernel
// backlog (backpressure) rather than being accepted and dropped.
type LimitListener struct {
	net.Listener

	mu    sync.Mutex // guards limit, active, accepting, closed; cond waits on it
	cond  *sync.Cond
	limit int
	// active counts accepted connections not yet closed. accepting counts
	// Accept calls that hold a slot while they wait in the kernel: they take
	// part in the limit but are not connections, so Active leaves them out.
	active    int
	accepting int
	closed    bool

	total atomic.Uint64
}

// NewLimitListener wraps ln with a limit of maxConns (< 1 means unlimited).
func NewLimitListener(ln net.Listener, maxConns int) *LimitListener {
	l := &LimitListener{Listener: ln, limit: maxConns}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// SetLimit changes the limit for connections accepted from now on; a raised
// limit wakes a waiting Accept at once.
func (l *LimitListener) SetLimit(maxConns int) {
	l.mu.Lock()
	l.limit = maxConns
	l.mu.Unlock()
	l.cond.Broadcast()
}

// Active reports the connections currently open.
func (l *LimitListener) Active() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(l.active)
}

// Total reports the connections accepted since the listener was created.
func (l *LimitListener) Total() uint64 { return l.total.Load() }

// Accept waits for a free slot, then accepts.
func (l *LimitListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	for !l.closed && l.limit > 0 && l.active+l.accepting >= l.limit {
		l.cond.Wait()
	}
	if l.closed {
		l.mu.Unlock()
		return nil, net.ErrClosed
	}
	l.accepting++
	l.mu.Unlock()

	c, err := l.Listener.Accept()
	l.mu.Lock()
	l.accepting--
	if err == nil {
		l.active++
	}
	l.mu.Unlock()
	if err != nil {
		l.cond.Signal()
		return nil, err
	}
	l.total.Add(1)
	return newTrackedConn(c, l), nil
}

// Close stops accepting and wakes a waiting Accept.
func (l *LimitListener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cond.Broadcast()
	return l.Listener.Close()
}

func (l *LimitListener) release() {
	l.mu.Lock()
	l.active--
	l.mu.Unlock()
	l.cond.Signal()
}

// newTrackedConn keeps the concrete *net.TCPConn reachable (via Unwrap and
// the TCPConn wrapper) so that io.Copy can still use splice on Linux.
func newTrackedConn(c net.Conn, l *LimitListener) net.Conn {
	if tc, ok := c.(*net.TCPConn); ok {
		return &TrackedTCPConn{TCPConn: tc, owner: l}
	}
	return &trackedConn{Conn: c, owner: l}
}

// TrackedTCPConn is a TCP connection that frees its LimitListener slot when
// closed. It embeds *net.TCPConn so CloseWrite, ReadFrom and WriteTo (splice)
// keep working.
type TrackedTCPConn struct {
	*net.TCPConn
	owner  *LimitListener
	closed atomic.Bool
}

// Close closes the connection and frees the slot exactly once.
func (c *TrackedTCPConn) Close() error {
	err := c.TCPConn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.owner.release()
	}
	return err
}

// NetConn returns the underlying TCP connection.
func (c *TrackedTCPConn) NetConn() *net.TCPConn { return c.TCPConn }

type trackedConn struct {
	net.Conn
	owner  *LimitListener
	closed atomic.Bool
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.owner.release()
	}
	return err
}
