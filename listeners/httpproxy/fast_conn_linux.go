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

	mu         sync.Mutex // guards state, pendingIn, pendingOut, waitOut
	state      int
	pendingIn  bool          // a readable edge arrived while a worker owned the conn
	pendingOut bool          // a writable edge arrived while nobody waited for it
	waitOut    bool          // in stateWaiting: waiting to write (else to read)
	wake       chan struct{} // allocated on the first wait

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
// It returns false when bytes arrived meanwhile: the caller keeps the
// connection and reads again (edge-triggered epoll reports each arrival
// once, so it must not be dropped).
func (c *conn) park() bool {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return true
	}
	if c.pendingIn {
		c.pendingIn = false
		c.mu.Unlock()
		return false
	}
	c.state = stateIdle
	c.mu.Unlock()
	if c.srv.closing.Load() {
		c.srv.poke() // let the loop's sweep close it
	}
	return true
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
	_ = sysClose(c.fd)
	c.releaseBuf()
	if s.active.Add(-1) == 0 && s.closing.Load() {
		s.poke()
	}
	s.maybeResumeAccept()
}

// lingerClose closes after a refusal the client may still be sending
// into: it shuts down writing, then reads and drops input for a bounded
// time and amount (lingerTime, lingerBytes), so that unread input does not
// turn the close into a reset that destroys the answer before the client
// reads it (nginx's lingering close). scratch is any spare buffer.
func (c *conn) lingerClose(scratch []byte) {
	if unix.Shutdown(c.fd, unix.SHUT_WR) == nil {
		deadline := time.Now().Add(lingerTime)
		for total := 0; total < lingerBytes; {
			n, err := c.readSome(scratch, time.Until(deadline))
			if err != nil {
				break
			}
			total += n
		}
	}
	c.close()
}

func (c *conn) releaseBuf() {
	if c.buf != nil {
		c.srv.putBuf(c.buf)
		c.buf = nil
		c.n = 0
		c.scanned = 0
	}
}

// waitIO blocks until the loop reports the socket readable (or writable,
// with out) or the deadline passes. An edge that already arrived while the
// worker was busy returns at once.
func (c *conn) waitIO(out bool, deadline time.Time) error {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return io.ErrClosedPipe
	}
	if out && c.pendingOut {
		c.pendingOut = false
		c.mu.Unlock()
		return nil
	}
	if !out && c.pendingIn {
		c.pendingIn = false
		c.mu.Unlock()
		return nil
	}
	if c.wake == nil {
		c.wake = make(chan struct{}, 1)
	}
	c.state = stateWaiting
	c.waitOut = out
	c.mu.Unlock()
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

// readSome reads at least one byte, waiting at most stall for readiness.
// The clock is only read when the socket has nothing to give.
func (c *conn) readSome(p []byte, stall time.Duration) (int, error) {
	var deadline time.Time
	for {
		n, err := sysRead(c.fd, p)
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
		if deadline.IsZero() {
			deadline = time.Now().Add(stall)
		}
		if werr := c.waitIO(false, deadline); werr != nil {
			return 0, werr
		}
	}
}

// writeAll writes p, waiting at most stall each time the socket is full.
func (c *conn) writeAll(p []byte, stall time.Duration) error {
	for len(p) > 0 {
		n, err := sysWrite(c.fd, p)
		if n > 0 {
			p = p[n:]
			continue
		}
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			if werr := c.waitIO(true, time.Now().Add(stall)); werr != nil {
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

// Buffers: client read buffers are borrowed only while bytes are in flight.
const clientBufSize = 8 * 1024

// getBuf lends a client read buffer from the server's pool.
func (s *FastServer) getBuf() *[]byte { return s.bufs.Get().(*[]byte) }

// putBuf returns a buffer; grown ones go back at their full size.
func (s *FastServer) putBuf(b *[]byte) { *b = (*b)[:cap(*b)]; s.bufs.Put(b) }
