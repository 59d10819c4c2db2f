package httpproxy

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Connection states. Only the holder of a busy connection touches its
// socket; the loop moves idle→busy when it dispatches and waiting→busy when
// it wakes the worker.
const (
	stateIdle    = iota // armed in epoll, no worker: costs no goroutine
	stateBusy           // a worker owns it
	stateWaiting        // a worker owns it and waits for readiness
	stateClosed
)

// errTimeout is returned by conn reads and writes whose deadline passed.
var errTimeout = errors.New("fastproxy: client i/o timeout")

// conn is one client connection. While idle it holds no buffer.
type conn struct {
	fd       int
	srv      *FastServer
	clientIP string

	mu    sync.Mutex // guards state (and arming the fd in epoll)
	state int
	wake  chan struct{} // allocated on the first wait

	// Owned by the worker holding the conn (or the sweeper that claimed it).
	buf         *[]byte // unparsed bytes; nil while idle with nothing pending
	n           int     // bytes used in buf
	headerStart int64   // unix nanos when a partial head arrived; 0 = none
	scanned     int     // bytes of a partial head already searched for its end
	lastActive  atomic.Int64
}

// expiredLocked reports whether an idle conn should be reaped. c.mu held.
func (c *conn) expiredLocked(nowNS int64, st *Settings, closing bool) bool {
	if c.headerStart != 0 {
		return nowNS-c.headerStart > int64(st.ReadHeaderTimeout)
	}
	return closing || nowNS-c.lastActive.Load() > int64(st.IdleTimeout)
}

// park hands the connection back to the event loop until it is readable.
func (c *conn) park() {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return
	}
	c.state = stateIdle
	err := c.srv.ctl(unix.EPOLL_CTL_MOD, c.fd, evRead)
	c.mu.Unlock()
	if err != nil {
		c.mu.Lock()
		c.state = stateBusy
		c.mu.Unlock()
		c.close()
		return
	}
	if c.srv.closing.Load() {
		c.srv.poke() // let the loop's sweep close it
	}
}

// close releases the socket. The caller owns the conn (busy).
func (c *conn) close() {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return
	}
	c.state = stateClosed
	c.mu.Unlock()
	s := c.srv
	s.connsMu.Lock()
	delete(s.conns, c.fd)
	s.connsMu.Unlock()
	// Closing the fd removes it from the epoll set; no stale events can
	// follow for it because a busy conn is not armed.
	_ = unix.Close(c.fd)
	c.releaseBuf()
	if s.active.Add(-1) == 0 && s.closing.Load() {
		s.poke()
	}
	s.maybeResumeAccept()
}

func (c *conn) releaseBuf() {
	if c.buf != nil {
		putBuf(c.buf)
		c.buf = nil
		c.n = 0
		c.scanned = 0
	}
}

// waitIO arms the fd for events and blocks until the loop reports
// readiness or the deadline passes.
func (c *conn) waitIO(events uint32, deadline time.Time) error {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return io.ErrClosedPipe
	}
	if c.wake == nil {
		c.wake = make(chan struct{}, 1)
	}
	c.state = stateWaiting
	err := c.srv.ctl(unix.EPOLL_CTL_MOD, c.fd, events)
	c.mu.Unlock()
	if err != nil {
		c.mu.Lock()
		c.state = stateBusy
		c.mu.Unlock()
		return err
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-c.wake:
		return nil
	case <-timer.C:
		c.mu.Lock()
		if c.state == stateWaiting {
			c.state = stateBusy
			c.mu.Unlock()
			return errTimeout
		}
		c.mu.Unlock()
		<-c.wake // the loop won the race and is delivering
		return nil
	}
}

// readSome reads at least one byte, waiting for readiness until deadline.
func (c *conn) readSome(p []byte, deadline time.Time) (int, error) {
	for {
		n, err := unix.Read(c.fd, p)
		switch {
		case n > 0:
			return n, nil
		case err == nil:
			return 0, io.EOF
		case err == unix.EINTR:
			continue
		case err != unix.EAGAIN:
			return 0, os.NewSyscallError("read", err)
		}
		if werr := c.waitIO(evRead, deadline); werr != nil {
			return 0, werr
		}
	}
}

// writeAll writes p, waiting for writability until deadline.
func (c *conn) writeAll(p []byte, deadline time.Time) error {
	for len(p) > 0 {
		n, err := unix.Write(c.fd, p)
		if n > 0 {
			p = p[n:]
			continue
		}
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			if werr := c.waitIO(evWrite, deadline); werr != nil {
				return werr
			}
		case err != nil:
			return os.NewSyscallError("write", err)
		default:
			return io.ErrShortWrite
		}
	}
	return nil
}

// connReader adapts a conn to io.Reader for body copies.
type connReader struct {
	c        *conn
	deadline time.Time
}

func (r connReader) Read(p []byte) (int, error) { return r.c.readSome(p, r.deadline) }

// connWriter adapts a conn to io.Writer for body copies.
type connWriter struct {
	c        *conn
	deadline time.Time
}

func (w connWriter) Write(p []byte) (int, error) {
	if err := w.c.writeAll(p, w.deadline); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Buffers: client read buffers are borrowed only while bytes are in flight.
const clientBufSize = 8 * 1024

type bufPool struct{ pool sync.Pool }

// bufs is the package's buffer pool. A sync.Pool is safe to share and holds
// no state anyone reads.
var bufs = bufPool{pool: sync.Pool{New: func() any { b := make([]byte, clientBufSize); return &b }}}

func getBuf() *[]byte  { return bufs.pool.Get().(*[]byte) }
func putBuf(b *[]byte) { *b = (*b)[:cap(*b)]; bufs.pool.Put(b) }
