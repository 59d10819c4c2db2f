package listeners

import (
	"errors"
	"net"
	"testing"
	"time"
)

const testDeadline = 10 * time.Second

func listen(t *testing.T, limit int) *LimitListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewLimitListener(ln, limit)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// acceptAsync runs one Accept in a goroutine; the result arrives on the
// returned channel, which the test must drain before it ends.
func acceptAsync(l *LimitListener) <-chan acceptResult {
	ch := make(chan acceptResult, 1)
	go func() {
		c, err := l.Accept()
		ch <- acceptResult{c, err}
	}()
	return ch
}

type acceptResult struct {
	conn net.Conn
	err  error
}

func dial(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", l.Addr().String(), testDeadline)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func receive(t *testing.T, ch <-chan acceptResult) acceptResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(testDeadline):
		t.Fatal("Accept did not return")
		return acceptResult{}
	}
}

// notYet asserts that ch stays silent for a short while.
func notYet(t *testing.T, ch <-chan acceptResult, why string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("Accept returned (%v, %v): %s", r.conn, r.err, why)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestLimitListenerWaitsForAFreeSlot(t *testing.T) {
	l := listen(t, 1)
	dial(t, l)
	first := receive(t, acceptAsync(l))
	if first.err != nil {
		t.Fatal(first.err)
	}
	if l.Active() != 1 || l.Total() != 1 {
		t.Fatalf("active %d total %d, want 1 1", l.Active(), l.Total())
	}

	dial(t, l) // completes in the kernel backlog
	second := acceptAsync(l)
	notYet(t, second, "the only slot is taken")

	if err := first.conn.Close(); err != nil {
		t.Fatal(err)
	}
	r := receive(t, second)
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.conn.Close()
	if l.Active() != 1 || l.Total() != 2 {
		t.Fatalf("active %d total %d, want 1 2", l.Active(), l.Total())
	}
}

func TestLimitListenerCloseIsIdempotentPerConn(t *testing.T) {
	l := listen(t, 2)
	dial(t, l)
	r := receive(t, acceptAsync(l))
	if r.err != nil {
		t.Fatal(r.err)
	}
	_ = r.conn.Close()
	_ = r.conn.Close()
	if l.Active() != 0 {
		t.Fatalf("active %d after closing one conn twice, want 0", l.Active())
	}
}

func TestLimitListenerRaisedLimitWakesAccept(t *testing.T) {
	l := listen(t, 1)
	dial(t, l)
	first := receive(t, acceptAsync(l))
	if first.err != nil {
		t.Fatal(first.err)
	}
	defer first.conn.Close()

	dial(t, l)
	second := acceptAsync(l)
	notYet(t, second, "the only slot is taken")
	l.SetLimit(2)
	r := receive(t, second)
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.conn.Close()
	if l.Active() != 2 {
		t.Fatalf("active %d, want 2", l.Active())
	}

	// Lowering the limit keeps open connections but holds new ones back
	// until enough have closed.
	l.SetLimit(1)
	dial(t, l)
	third := acceptAsync(l)
	_ = r.conn.Close()
	notYet(t, third, "still one open at limit 1")
	_ = first.conn.Close()
	r3 := receive(t, third)
	if r3.err != nil {
		t.Fatal(r3.err)
	}
	_ = r3.conn.Close()
}

func TestLimitListenerUnlimited(t *testing.T) {
	l := listen(t, 0)
	var conns []net.Conn
	for range 5 {
		dial(t, l)
		r := receive(t, acceptAsync(l))
		if r.err != nil {
			t.Fatal(r.err)
		}
		conns = append(conns, r.conn)
	}
	if l.Active() != 5 || l.Total() != 5 {
		t.Fatalf("active %d total %d, want 5 5", l.Active(), l.Total())
	}
	for _, c := range conns {
		_ = c.Close()
	}
	if l.Active() != 0 {
		t.Fatalf("active %d, want 0", l.Active())
	}
}

func TestLimitListenerCloseWakesWaitingAccept(t *testing.T) {
	l := listen(t, 1)
	dial(t, l)
	first := receive(t, acceptAsync(l))
	if first.err != nil {
		t.Fatal(first.err)
	}
	defer first.conn.Close()

	waiting := acceptAsync(l)
	notYet(t, waiting, "the only slot is taken")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if r := receive(t, waiting); !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("Accept after Close = %v, want net.ErrClosed", r.err)
	}
	// The pending accept's reservation was not leaked.
	if l.Active() != 1 {
		t.Fatalf("active %d, want 1", l.Active())
	}
}

func TestLimitListenerCloseWakesBlockedKernelAccept(t *testing.T) {
	l := listen(t, 1)
	waiting := acceptAsync(l) // blocked in the kernel accept, slot reserved
	notYet(t, waiting, "nobody connected")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if r := receive(t, waiting); r.err == nil {
		t.Fatal("Accept succeeded after Close")
	}
	if l.Active() != 0 {
		t.Fatalf("active %d after a failed accept, want 0 (slot released)", l.Active())
	}
}

func TestTrackedConnKeepsTCPConn(t *testing.T) {
	l := listen(t, 1)
	dial(t, l)
	r := receive(t, acceptAsync(l))
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.conn.Close()
	tc, ok := r.conn.(*TrackedTCPConn)
	if !ok {
		t.Fatalf("accepted %T, want *TrackedTCPConn", r.conn)
	}
	if tc.NetConn() == nil {
		t.Fatal("NetConn is nil")
	}
	if _, ok := r.conn.(interface{ CloseWrite() error }); !ok {
		t.Fatal("CloseWrite not reachable")
	}
}
