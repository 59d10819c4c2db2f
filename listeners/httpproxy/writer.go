package httpproxy

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
)

// recordingWriter captures status and body size for metrics and access logs,
// and registers a hijacked connection so a draining listener can wait for
// it and close it.
type recordingWriter struct {
	http.ResponseWriter
	handler *Handler
	status  int
	bytes   int64
	// tunnel is set once the exchange is registered with handler.tunnels;
	// the handler unregisters it when it returns.
	tunnel   bool
	hijacked bool
}

func (w *recordingWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (w *recordingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush forwards streaming flushes.
func (w *recordingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack hands the connection over for an upgrade and keeps track of it.
// The exchange is registered before the hijack: from the hijack on,
// http.Server.Shutdown no longer sees the connection, so without that a
// drain could finish in between and miss it.
func (w *recordingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	tunnels := &w.handler.tunnels
	if err := tunnels.begin(w); err != nil {
		return nil, nil, err
	}
	w.tunnel = true
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	tunnels.established(w, conn)
	return conn, brw, nil
}

// errShuttingDown refuses upgrades once a drain has given up on tunnels.
var errShuttingDown = errors.New("listener is shutting down")

// tunnelSet tracks upgraded exchanges from just before the hijack until the
// handler returns. http.Server.Shutdown does not wait for hijacked
// connections, so Server.Shutdown waits here, and closes what is left when
// the drain budget runs out.
type tunnelSet struct {
	mu      sync.Mutex                    // guards the fields below
	open    map[*recordingWriter]net.Conn // conn is nil until the hijack is done
	closing bool                          // closeAll ran: refuse and close newcomers
	emptied chan struct{}                 // closed when open empties; nil while nobody waits
}

func (s *tunnelSet) begin(w *recordingWriter) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return errShuttingDown
	}
	if s.open == nil {
		s.open = make(map[*recordingWriter]net.Conn)
	}
	s.open[w] = nil
	return nil
}

func (s *tunnelSet) established(w *recordingWriter, conn net.Conn) {
	s.mu.Lock()
	closing := s.closing
	if !closing {
		s.open[w] = conn
	}
	s.mu.Unlock()
	if closing {
		_ = conn.Close()
	}
}

// end unregisters an exchange once its handler has returned.
func (s *tunnelSet) end(w *recordingWriter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.open, w)
	if len(s.open) == 0 && s.emptied != nil {
		close(s.emptied)
		s.emptied = nil
	}
}

// wait returns nil once no tunnel is open, or ctx's error.
func (s *tunnelSet) wait(ctx context.Context) error {
	s.mu.Lock()
	if len(s.open) == 0 {
		s.mu.Unlock()
		return nil
	}
	if s.emptied == nil {
		s.emptied = make(chan struct{})
	}
	emptied := s.emptied
	s.mu.Unlock()
	select {
	case <-emptied:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// closeAll closes every tunnel's client connection and refuses new ones.
// Each handler then ends promptly: its client-side copy fails, and the
// reverse proxy closes the backend side when it returns.
func (s *tunnelSet) closeAll() {
	s.mu.Lock()
	s.closing = true
	conns := make([]net.Conn, 0, len(s.open))
	for _, c := range s.open {
		if c != nil {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

func (s *tunnelSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// HijackedCount reports upgraded connections whose exchange is still open.
func (h *Handler) HijackedCount() int { return h.tunnels.count() }
