package tcpproxy

import (
	"io"
	"net"
	"sync"
	"time"
)

// idleWatch fires onIdle once no byte has moved in either direction for the
// idle period.
//
// Where the kernel reports per-socket byte counters (TCP_INFO on Linux) the
// watch polls them a few times per period, so the copy itself stays a plain
// io.Copy between TCP conns and keeps splice(2). Elsewhere the copies report
// activity through activityReader, which costs splice.
type idleWatch struct {
	idle   time.Duration
	probe  func() (uint64, bool) // nil when the copies must call touch
	onIdle func()

	mu       sync.Mutex // guards lastSeen, lastSum, stopped and timer resets
	lastSeen time.Time
	lastSum  uint64
	stopped  bool
	timer    *time.Timer
}

func newIdleWatch(idle time.Duration, conns []net.Conn, onIdle func()) *idleWatch {
	w := &idleWatch{idle: idle, onIdle: onIdle, lastSeen: time.Now()}
	if sum, ok := progress(conns); ok {
		w.lastSum = sum
		w.probe = func() (uint64, bool) { return progress(conns) }
	}
	w.timer = time.AfterFunc(w.checkEvery(), w.check)
	return w
}

// checkEvery polls four times per period, so an idle session is closed
// between 1 and 1.25 idle periods after its last byte.
func (w *idleWatch) checkEvery() time.Duration { return max(w.idle/4, time.Millisecond) }

// usesProbe reports whether copies can skip touch.
func (w *idleWatch) usesProbe() bool { return w.probe != nil }

func (w *idleWatch) touch() {
	w.mu.Lock()
	w.lastSeen = time.Now()
	w.mu.Unlock()
}

func (w *idleWatch) check() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	now := time.Now()
	if w.probe != nil {
		if sum, ok := w.probe(); ok && sum != w.lastSum {
			w.lastSum = sum
			w.lastSeen = now
		}
	}
	quiet := now.Sub(w.lastSeen)
	if quiet >= w.idle {
		w.stopped = true
		w.mu.Unlock()
		w.onIdle()
		return
	}
	w.timer.Reset(min(w.idle-quiet, w.checkEvery()))
	w.mu.Unlock()
}

func (w *idleWatch) stop() {
	w.mu.Lock()
	w.stopped = true
	w.timer.Stop()
	w.mu.Unlock()
}

// activityReader marks the watch on every successful read. It hides the
// source's WriteTo, so the copy runs through a user-space buffer.
type activityReader struct {
	r io.Reader
	w *idleWatch
}

func (a *activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.w.touch()
	}
	return n, err
}

// progress sums the bytes the kernel has moved on every conn.
func progress(conns []net.Conn) (uint64, bool) {
	var sum uint64
	for _, c := range conns {
		n, ok := socketProgress(c)
		if !ok {
			return 0, false
		}
		sum += n
	}
	return sum, true
}
