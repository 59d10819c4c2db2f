package proxy

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// LogWriter batches log output: under load (access logs on) a write(2) per
// line costs more than formatting it, so lines are buffered and flushed
// when the buffer fills, every FlushEvery, and on Close. A line is never
// split across flushes.
type LogWriter struct {
	mu   sync.Mutex // guards buf and closed
	buf  *bufio.Writer
	out  io.Writer
	stop chan struct{}
	done chan struct{}
	// closed makes writes after Close go straight through.
	closed bool
}

// FlushEvery bounds how long a log line may wait in the buffer.
const FlushEvery = 100 * time.Millisecond

// NewLogWriter starts a writer that flushes to out; Close stops it.
func NewLogWriter(out io.Writer) *LogWriter {
	w := &LogWriter{buf: bufio.NewWriterSize(out, 64*1024), out: out, stop: make(chan struct{}), done: make(chan struct{})}
	go w.flushLoop()
	return w
}

// Write buffers one formatted log line.
func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.out.Write(p)
	}
	if w.buf.Available() < len(p) {
		if err := w.buf.Flush(); err != nil {
			return 0, err
		}
	}
	return w.buf.Write(p)
}

// Flush writes out what is buffered.
func (w *LogWriter) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Flush()
}

func (w *LogWriter) flushLoop() {
	defer close(w.done)
	ticker := time.NewTicker(FlushEvery)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			_ = w.Flush()
		case <-w.stop:
			return
		}
	}
}

// Close flushes, stops the flusher and makes later writes unbuffered.
func (w *LogWriter) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	err := w.buf.Flush()
	w.mu.Unlock()
	close(w.stop)
	<-w.done
	return err
}
