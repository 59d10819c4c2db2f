package httpproxy

import (
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"switchyard/upstream"
)

// tunnel completes a protocol switch (101, e.g. WebSocket): the answer goes
// to the client, then bytes flow both ways until either side closes. The
// client socket leaves the event loop and becomes an ordinary net.Conn.
func (w *worker) tunnel(c *conn, uc *upstreamConn, headN, headLen int, target *Target, requestID string, att *upstream.Attempt, latency time.Duration) tryResult {
	s := w.s
	out := w.appendResponseHead(w.out[:0], target, requestID, true)
	uc.r += headN
	out = append(out, uc.rbuf[uc.r:uc.w]...) // early frames from the backend
	uc.r = uc.w
	w.out = out[:0]
	if err := c.writeAll(out, w.stall); err != nil {
		s.upstream.discard(uc)
		att.Done(upstream.Canceled, latency)
		return tryResult{status: 101, sentToClient: true, err: &exchangeError{status: 101, clientErr: true}}
	}
	buf := *c.buf
	if early := buf[headLen:c.n]; len(early) > 0 {
		// Frames the client sent right behind its handshake.
		if err := uc.write(early); err != nil {
			s.upstream.discard(uc)
			att.Done(upstream.Unreachable, latency)
			return tryResult{status: 101, sentToClient: true, err: &exchangeError{status: 101}}
		}
	}
	backendConn, err := s.upstream.detach(uc)
	if err != nil {
		att.Done(upstream.Unreachable, latency)
		return tryResult{status: 101, sentToClient: true, err: &exchangeError{status: 101}}
	}
	client, err := c.detach()
	if err != nil {
		backendConn.Close()
		att.Done(upstream.Canceled, latency)
		return tryResult{status: 101, sentToClient: true, err: &exchangeError{status: 101, clientErr: true}}
	}
	s.tunnels.Add(1)
	go func() {
		defer s.tunnels.Done()
		pipeBoth(client, backendConn)
		s.connsMu.Lock()
		delete(s.tunnelConns, client)
		s.connsMu.Unlock()
		client.Close()
		backendConn.Close()
		att.Done(upstream.Success, latency)
		if s.active.Add(-1) == 0 && s.closing.Load() {
			s.poke()
		}
		s.maybeResumeAccept()
	}()
	return tryResult{status: 101, tunnel: true, sentToClient: true}
}

// detach takes the socket out of the event loop and wraps it in a
// net.Conn. The connection stays counted as active until its tunnel ends.
func (c *conn) detach() (net.Conn, error) {
	s := c.srv
	c.mu.Lock()
	c.state = stateClosed
	c.mu.Unlock()
	_ = s.ctl(unix.EPOLL_CTL_DEL, c.fd, 0)
	f := os.NewFile(uintptr(c.fd), "client")
	nc, err := net.FileConn(f) // dups the descriptor into Go's poller
	f.Close()
	s.connsMu.Lock()
	delete(s.conns, c.fd)
	if err == nil {
		s.tunnelConns[nc] = struct{}{}
	}
	s.connsMu.Unlock()
	c.releaseBuf()
	if err != nil {
		if s.active.Add(-1) == 0 && s.closing.Load() {
			s.poke()
		}
		s.maybeResumeAccept()
		return nil, err
	}
	return nc, nil
}

// pipeBoth copies both directions, passing half-closes on, until both end.
func pipeBoth(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		copyThenCloseWrite(b, a)
	}()
	copyThenCloseWrite(a, b)
	wg.Wait()
}

func copyThenCloseWrite(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if err != nil {
		dst.Close()
		src.Close()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}
