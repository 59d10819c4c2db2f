package httpproxy

import (
	"bufio"
	"net"
	"net/http"
	"sync"
)

// recordingWriter captures status and body size for metrics and access logs,
// and registers hijacked connections so a draining listener can close them.
type recordingWriter struct {
	http.ResponseWriter
	handler *Handler
	status  int
	bytes   int64
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
func (w *recordingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	return w.handler.trackHijacked(conn), brw, nil
}

func (h *Handler) trackHijacked(c net.Conn) net.Conn {
	hc := &hijackedConn{Conn: c, h: h}
	h.hijackedMu.Lock()
	h.hijacked[hc] = struct{}{}
	h.hijackedMu.Unlock()
	h.hijackedWG.Add(1)
	return hc
}

type hijackedConn struct {
	net.Conn
	h    *Handler
	once sync.Once
}

func (c *hijackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.h.hijackedMu.Lock()
		delete(c.h.hijacked, c)
		c.h.hijackedMu.Unlock()
		c.h.hijackedWG.Done()
	})
	return err
}

// closeHijacked closes every upgraded connection still open.
func (h *Handler) closeHijacked() {
	h.hijackedMu.Lock()
	conns := make([]*hijackedConn, 0, len(h.hijacked))
	for c := range h.hijacked {
		conns = append(conns, c)
	}
	h.hijackedMu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// HijackedCount reports upgraded connections still open.
func (h *Handler) HijackedCount() int {
	h.hijackedMu.Lock()
	defer h.hijackedMu.Unlock()
	return len(h.hijacked)
}
