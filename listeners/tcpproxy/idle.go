package tcpproxy

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
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

	// lastSeen is written by touch on every read of the fallback path, so it
	// is an atomic rather than under mu: the two copy directions would
	// otherwise contend on one lock per read.
	lastSeen atomic.Int64 // unix nanos of the last observed activity

	// mu is held for the whole of check, including onIdle, so that stop
	// returns only once no check is running: after stop the watch never
	// touches the session again.
	mu      sync.Mutex
	lastSum uint64
	stopped bool
	fired   bool
	timer   *time.Timer
}

func newIdleWatch(idle time.Duration, conns []net.Conn, onIdle func()) *idleWatch {
	w := &idleWatch{idle: idle, onIdle: onIdle}
	w.lastSeen.Store(time.Now().UnixNano())
	if sum, ok := progress(conns); ok {
		w.lastSum = sum
		w.probe = func() (uint64, bool) { return progress(conns) }
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer = time.AfterFunc(w.checkEvery(), w.check)
	return w
}

// checkEvery polls four times per period, so an idle session is closed
// between 1 and 1.25 idle periods after its last byte.
func (w *idleWatch) checkEvery() time.Duration { return max(w.idle/4, time.Millisecond) }

// usesProbe reports whether copies can skip touch.
func (w *idleWatch) usesProbe() bool { return w.probe != nil }

func (w *idleWatch) touch() { w.lastSeen.Store(time.Now().UnixNano()) }

func (w *idleWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	now := time.Now()
	if w.probe != nil {
		if sum, ok := w.probe(); ok && sum != w.lastSum {
			w.lastSum = sum
			w.lastSeen.Store(now.UnixNano())
		}
	}
	quiet := now.Sub(time.Unix(0, w.lastSeen.Load()))
	if quiet >= w.idle {
		w.stopped = true
		w.fired = true
		w.onIdle()
		return
	}
	w.timer.Reset(min(w.idle-quiet, w.checkEvery()))
}

// stop ends the watch and waits for a running check; it reports whether the
// watch had fired, i.e. whether the session ended by idle timeout.
func (w *idleWatch) stop() (fired bool) {
	w.timer.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	return w.fired
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
