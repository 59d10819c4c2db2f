package tcpproxy

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestIdleWatchFallbackTracksReads covers the path used where the kernel has
// no byte counters: copies read through activityReader, which keeps the
// session alive, and silence fires onIdle exactly once.
func TestIdleWatchFallbackTracksReads(t *testing.T) {
	const idle = 100 * time.Millisecond
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var fired atomic.Int32
	firedAt := make(chan time.Time, 1)
	w := newIdleWatch(idle, []net.Conn{a, b}, func() {
		if fired.Add(1) == 1 {
			firedAt <- time.Now()
		}
	})
	if w.usesProbe() {
		t.Fatal("net.Pipe has no TCP counters, yet the watch chose the probe")
	}
	reader := &activityReader{r: b, w: w}
	go func() {
		// Writes every idle/4 for 4 idle periods, then silence.
		for range 16 {
			if _, err := a.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(idle / 4)
		}
	}()
	start := time.Now()
	var buf [1]byte
	for range 16 {
		if _, err := reader.Read(buf[:]); err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	lastRead := time.Now()
	if fired.Load() != 0 {
		t.Fatalf("watch fired after %v while reads kept coming", lastRead.Sub(start))
	}
	select {
	case at := <-firedAt:
		if quiet := at.Sub(lastRead); quiet < idle-idle/10 {
			t.Errorf("fired after %v of quiet, want at least %v", quiet, idle)
		}
	case <-time.After(ioDeadline):
		t.Fatal("watch never fired")
	}
	if !w.stop() {
		t.Error("stop did not report that the watch fired")
	}
	if n := fired.Load(); n != 1 {
		t.Errorf("onIdle ran %d times", n)
	}
}

func TestIdleWatchStopPreventsFiring(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var fired atomic.Bool
	w := newIdleWatch(time.Millisecond, []net.Conn{a, b}, func() { fired.Store(true) })
	w.stop()
	// After stop returns no check may run any more; give a stray timer
	// many periods to misbehave.
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
		if fired.Load() {
			t.Fatal("onIdle ran after stop")
		}
		time.Sleep(time.Millisecond)
	}
}
