package tcpproxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"switchyard/builtin/echo"
	"switchyard/upstream"
)

// sendAndVerify streams size bytes of payload (rotated by offset, so every
// connection sends different bytes) to an echo session while reading the
// echo concurrently, half-closes, and compares sha256 of both directions.
func sendAndVerify(c *net.TCPConn, payload []byte, offset int) error {
	sent := sha256.New()
	writeErr := make(chan error, 1)
	go func() {
		w := io.MultiWriter(c, sent)
		_, err := w.Write(payload[offset:])
		if err == nil {
			_, err = w.Write(payload[:offset])
		}
		if err == nil {
			err = c.CloseWrite()
		}
		writeErr <- err
	}()
	received := sha256.New()
	n, readErr := io.Copy(received, c)
	if err := <-writeErr; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if readErr != nil {
		return fmt.Errorf("read after %d bytes: %w", n, readErr)
	}
	if n != int64(len(payload)) {
		return fmt.Errorf("echoed %d bytes, want %d", n, len(payload))
	}
	if !bytes.Equal(sent.Sum(nil), received.Sum(nil)) {
		return fmt.Errorf("sha256 of the echo differs from what was sent")
	}
	return nil
}

func TestForwardsConcurrentStreamsIntact(t *testing.T) {
	const (
		conns = 200
		size  = 1 << 20
	)
	reg := testRegistry()
	var addrs []string
	var echoes []*echo.Server
	for range 3 {
		a, e := startEcho(t)
		addrs = append(addrs, a)
		echoes = append(echoes, e)
	}
	pool := newPool(t, reg, upstream.StrategyRoundRobin, addrs, nil)
	rec := &recorder{}
	p := startProxy(t, &Options{Listener: "tcp-in", Pool: pool, IdleTimeout: time.Minute}, conns, rec)

	payload := make([]byte, size)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range payload {
		payload[i] = byte(rnd.Uint32())
	}

	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", p.addr, ioDeadline)
			if err != nil {
				errs <- fmt.Errorf("conn %d: dial: %w", i, err)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			if err := sendAndVerify(c.(*net.TCPConn), payload, (i*4099)%size); err != nil {
				errs <- fmt.Errorf("conn %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	recs := rec.waitRecords(t, conns)
	for _, r := range recs {
		if !r.Connected || r.BytesIn != size || r.BytesOut != size || r.ConnectErrors != 0 {
			t.Errorf("record %+v: want connected, %d bytes each way, no connect errors", r, size)
		}
	}
	if got, want := p.BytesIn(), uint64(conns*size); got != want {
		t.Errorf("BytesIn = %d, want %d", got, want)
	}
	if got, want := p.BytesOut(), uint64(conns*size); got != want {
		t.Errorf("BytesOut = %d, want %d", got, want)
	}
	if got := p.TotalConnections(); got != conns {
		t.Errorf("TotalConnections = %d, want %d", got, conns)
	}
	waitFor(t, ioDeadline, "listener and backends idle", func() bool {
		if p.ActiveConnections() != 0 {
			return false
		}
		for _, m := range pool.Members() {
			if m.Backend.ActiveConnections() != 0 {
				return false
			}
		}
		return true
	})
	// Smooth round robin over three equal backends without failures deals
	// the 200 connections 67/67/66, whatever order they arrived in.
	perBackend := map[uint64]int{}
	for i, m := range pool.Members() {
		if got := m.Backend.Requests(); got != echoes[i].TotalConnections() {
			t.Errorf("backend %s: Requests = %d, echo server saw %d", m.Backend.Address(), got, echoes[i].TotalConnections())
		}
		perBackend[m.Backend.Requests()]++
	}
	if perBackend[67] != 2 || perBackend[66] != 1 {
		t.Errorf("connections per backend %v, want two with 67 and one with 66", perBackend)
	}
}

func TestRecordAndCounters(t *testing.T) {
	const reply = "0123456789abcdefghij" // differs in length from the request so in/out cannot be swapped
	backend := startBackend(t, func(c *net.TCPConn) {
		_, _ = io.Copy(io.Discard, c)
		_, _ = io.WriteString(c, reply)
	})
	pool := newPool(t, testRegistry(), upstream.StrategyRoundRobin, []string{backend}, nil)
	rec := &recorder{}
	p := startProxy(t, &Options{Listener: "db", Pool: pool, AccessLog: true}, 0, rec)

	c := dial(t, p.addr)
	request := bytes.Repeat([]byte("x"), 1000)
	if _, err := c.Write(request); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatalf("close write: %v", err)
	}
	if got := readAll(t, c); string(got) != reply {
		t.Fatalf("reply = %q, want %q", got, reply)
	}
	got := rec.waitRecords(t, 1)[0]
	want := Record{
		Listener:  "db",
		Upstream:  "up",
		Backend:   backend,
		Client:    c.LocalAddr().String(),
		BytesIn:   int64(len(request)),
		BytesOut:  int64(len(reply)),
		Duration:  got.Duration,
		Connected: true,
	}
	if got != want {
		t.Errorf("record = %+v\nwant     %+v", got, want)
	}
	if got.Duration <= 0 || got.Duration > ioDeadline {
		t.Errorf("duration = %v", got.Duration)
	}
	if p.BytesIn() != uint64(len(request)) || p.BytesOut() != uint64(len(reply)) {
		t.Errorf("server bytes in/out = %d/%d, want %d/%d", p.BytesIn(), p.BytesOut(), len(request), len(reply))
	}
	b := pool.Members()[0].Backend
	if b.Requests() != 1 || b.Failures() != 0 || b.LatencyEstimate() <= 0 {
		t.Errorf("backend requests/failures/latency = %d/%d/%v, want 1/0/>0", b.Requests(), b.Failures(), b.LatencyEstimate())
	}
	// The latency a TCP backend is scored by is its connect time, not the
	// session's length.
	if b.LatencyEstimate() > got.Duration {
		t.Errorf("latency estimate %v exceeds the whole session %v", b.LatencyEstimate(), got.Duration)
	}
}

func TestConsistentHashPinsClientIP(t *testing.T) {
	reg := testRegistry()
	var addrs []string
	echoes := map[string]*echo.Server{}
	for range 3 {
		a, e := startEcho(t)
		addrs = append(addrs, a)
		echoes[a] = e
	}
	pool := newPool(t, reg, upstream.StrategyConsistentHash, addrs, nil)
	rec := &recorder{}
	p := startProxy(t, &Options{Listener: "l", Pool: pool}, 0, rec)
	const conns = 12
	for i := range conns {
		c := dial(t, p.addr)
		roundTrip(t, c, fmt.Sprintf("hello %d", i))
		_ = c.Close()
	}
	recs := rec.waitRecords(t, conns)
	owner := recs[0].Backend
	for _, r := range recs {
		if r.Backend != owner {
			t.Fatalf("client 127.0.0.1 went to %s and %s; consistent_hash on client_ip must pin it", owner, r.Backend)
		}
	}
	if got := echoes[owner].TotalConnections(); got != conns {
		t.Errorf("owner %s served %d connections, want %d", owner, got, conns)
	}
}

// TestActiveSessionsDriveLoadAwareStrategies opens sessions one after another
// and keeps them open: least_conn and p2c must see the backends' active
// session counts and spread the sessions evenly.
func TestActiveSessionsDriveLoadAwareStrategies(t *testing.T) {
	for _, tc := range []struct {
		strategy string
		backends int
	}{
		{upstream.StrategyLeastConn, 3},
		// p2c with two backends always compares both, so it is exact too.
		{upstream.StrategyP2C, 2},
	} {
		t.Run(tc.strategy, func(t *testing.T) {
			var addrs []string
			for range tc.backends {
				a, _ := startEcho(t)
				addrs = append(addrs, a)
			}
			pool := newPool(t, testRegistry(), tc.strategy, addrs, nil)
			p := startProxy(t, &Options{Listener: "l", Pool: pool}, 0, nil)
			const perBackend = 3
			var open []*net.TCPConn
			for i := range perBackend * tc.backends {
				c := dial(t, p.addr)
				roundTrip(t, c, fmt.Sprintf("session %d", i))
				open = append(open, c)
			}
			for _, m := range pool.Members() {
				if got := m.Backend.ActiveConnections(); got != perBackend {
					t.Errorf("backend %s: %d active sessions, want %d", m.Backend.Address(), got, perBackend)
				}
			}
			if got := p.ActiveConnections(); got != int64(len(open)) {
				t.Errorf("listener ActiveConnections = %d, want %d", got, len(open))
			}
			for _, c := range open {
				_ = c.Close()
			}
			waitFor(t, ioDeadline, "every session to end", func() bool {
				for _, m := range pool.Members() {
					if m.Backend.ActiveConnections() != 0 {
						return false
					}
				}
				return p.ActiveConnections() == 0
			})
		})
	}
}

func TestFailsOverToNextBackendWhenOneRefuses(t *testing.T) {
	dead := closedAddr(t)
	live, _ := startEcho(t)
	pool := newPool(t, testRegistry(), upstream.StrategyRoundRobin, []string{dead, live}, nil)
	rec := &recorder{}
	p := startProxy(t, &Options{Listener: "l", Pool: pool}, 0, rec)
	const conns = 10
	for i := range conns {
		c := dial(t, p.addr)
		roundTrip(t, c, fmt.Sprintf("hello %d", i))
		_ = c.Close()
	}
	recs := rec.waitRecords(t, conns)
	connectErrors := 0
	for _, r := range recs {
		if !r.Connected || r.Backend != live {
			t.Errorf("record %+v: want connected to %s", r, live)
		}
		connectErrors += r.ConnectErrors
	}
	deadBackend := backendOf(t, pool, dead)
	// Passive health takes the refusing backend out after
	// DefaultPassiveFailures refusals in a row; none are tried after that.
	if got := deadBackend.Failures(); got != upstream.DefaultPassiveFailures || uint64(connectErrors) != got {
		t.Errorf("dead backend failures = %d, records counted %d connect errors; want %d for both",
			got, connectErrors, upstream.DefaultPassiveFailures)
	}
	if deadBackend.Healthy() {
		t.Errorf("refusing backend still healthy after %d failed connects", deadBackend.Failures())
	}
	if f := backendOf(t, pool, live).Failures(); f != 0 {
		t.Errorf("live backend failures = %d, want 0", f)
	}
}

func TestBreakerOpensOnRepeatedConnectFailures(t *testing.T) {
	dead := closedAddr(t)
	pool := newPool(t, testRegistry(), upstream.StrategyRoundRobin, []string{dead}, func(cfg *upstream.PoolConfig) {
		// Trip before passive health (3 in a row) would take it out.
		cfg.Breaker = upstream.BreakerConfig{ConsecutiveFailures: 2, OpenTimeout: time.Minute}
	})
	rec := &recorder{}
	p := startProxy(t, &Options{Listener: "l", Pool: pool}, 0, rec)
	b := pool.Members()[0].Backend

	for i := range 2 {
		c := dial(t, p.addr)
		expectClosed(t, c, 2*time.Second)
		if r := rec.waitRecords(t, i+1)[i]; r.Connected || r.ConnectErrors != 1 || r.Backend != "" {
			t.Errorf("attempt %d record %+v: want one connect error, not connected", i, r)
		}
	}
	if got := b.BreakerState(); got != "open" {
		t.Fatalf("breaker %q after 2 refused connects, want open", got)
	}
	if !b.Healthy() {
		t.Errorf("backend passively unhealthy after 2 failures; the breaker should have been first")
	}

	// With the breaker open the proxy does not even dial: the client is
	// closed at once.
	start := time.Now()
	c := dial(t, p.addr)
	expectClosed(t, c, 2*time.Second)
	if took := time.Since(start); took > time.Second {
		t.Errorf("no-backend close took %v", took)
	}
	if r := rec.waitRecords(t, 3)[2]; r.Connected || r.ConnectErrors != 0 {
		t.Errorf("record with breaker open %+v: want not connected, no dial", r)
	}
	if got := b.Failures(); got != 2 {
		t.Errorf("failures = %d, want 2 (no dial while open)", got)
	}
}

func TestNoBackendClosesClientPromptly(t *testing.T) {
	deadA, deadB := closedAddr(t), closedAddr(t)
	for deadB == deadA { // the kernel may hand the same free port out twice
		deadB = closedAddr(t)
	}
	pool := newPool(t, testRegistry(), upstream.StrategyRoundRobin, []string{deadA, deadB}, nil)
	rec := &recorder{}
	p := startProxy(t, &Options{Listener: "l", Pool: pool}, 0, rec)

	start := time.Now()
	c := dial(t, p.addr)
	expectClosed(t, c, 2*time.Second)
	if took := time.Since(start); took > time.Second {
		t.Errorf("closing the client took %v", took)
	}
	r := rec.waitRecords(t, 1)[0]
	// Both backends were tried once each, then the client was closed.
	if r.Connected || r.ConnectErrors != 2 {
		t.Errorf("record %+v: want 2 connect errors, not connected", r)
	}
	waitFor(t, ioDeadline, "listener slot released", func() bool { return p.ActiveConnections() == 0 })
}

func TestHalfCloseClientFirst(t *testing.T) {
	addr, _ := startEcho(t)
	pool := newPool(t, testRegistry(), upstream.StrategyRoundRobin, []string{addr}, nil)
	p := startProxy(t, &Options{Listener: "l", Pool: pool}, 0, nil)
	c := dial(t, p.addr)
	msg := bytes.Repeat([]byte("half-close "), 10000)
	if _, err := c.Write(msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	// After our FIN the echo must still come back in full, then EOF.
	if err := c.CloseWrite(); err != nil {
		t.Fatalf("close write: %v", err)
	}
	if got := readAll(t, c); !bytes.Equal(got, msg) {
		t.Fatalf("echo after half-close: %d bytes, want %d", len(got), len(msg))
	}
}

func TestHalfCloseBackendFirst(t *testing.T) {
	const greeting = "server says hi, then stops talking"
	upload := bytes.Repeat([]byte("u"), 256<<10)
	received := make(chan []byte, 1)
	backend := startBackend(t, func(c *net.TCPConn) {
		if _, err := io.WriteString(c, greeting); err != nil {
			received <- nil
			return
		}
		_ = c.CloseWrite()
		got, _ := io.ReadAll(c)
		received <- got
	})
	pool := newPool(t, testRegistry(), upstream.StrategyRoundRobin, []string{backend}, nil)
	p := startProxy(t, &Options{Listener: "l", Pool: pool}, 0, nil)
	c := dial(t, p.addr)
	// The backend's FIN reaches us as EOF while our direction is open...
	if got := readAll(t, c); string(got) != greeting {
		t.Fatalf("greeting = %q, want %q", got, greeting)
	}
	// ...and the client → backend direction keeps flowing after it.
	if _, err := c.Write(upload); err != nil {
		t.Fatalf("upload after backend's half-close: %v", err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatalf("close write: %v", err)
	}
	select {
	case got := <-received:
		if !bytes.Equal(got, upload) {
			t.Fatalf("backend received %d bytes, want %d", len(got), len(upload))
		}
	case <-time.After(ioDeadline):
		t.Fatal("backend did not receive the upload")
	}
}

// TestErrorOnOneSideClosesBoth resets the client mid-session: the proxy
// must close the backend side too, not leave it waiting.
func TestErrorOnOneSideClosesBoth(t *testing.T) {
	backendEnded := make(chan error, 1)
	backend := startBackend(t, func(c *net.TCPConn) {
		_, _ = io.WriteString(c, "ready")
		_, err := io.Copy(io.Discard, c)
		backendEnded <- err
	})
	pool := newPool(t, testRegistry(), upstream.StrategyRoundRobin, []string{backend}, nil)
	rec := &recorder{}
	p := startProxy(t, &Options{Listener: "l", Pool: pool}, 0, rec)
	c := dial(t, p.addr)
	var ready [5]byte
	if _, err := io.ReadFull(c, ready[:]); err != nil {
		t.Fatalf("read: %v", err)
	}
	_ = c.SetLinger(0) // close with RST
	_ = c.Close()
	select {
	case err := <-backendEnded:
		// EOF (nil) or reset, but it must end well before the backend's
		// own deadline.
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("backend side was never closed: %v", err)
		}
	case <-time.After(ioDeadline):
		t.Fatal("backend side still open after the client reset")
	}
	rec.waitRecords(t, 1)
	b := pool.Members()[0].Backend
	if b.Failures() != 0 || b.ActiveConnections() != 0 {
		t.Errorf("a client reset counted against the backend: failures %d, active %d", b.Failures(), b.ActiveConnections())
	}
}

func TestIdleTimeoutClosesQuietSession(t *testing.T) {
	const idle = 200 * time.Millisecond
	addr, _ := startEcho(t)
	pool := newPool(t, testRegistry(), upstream.StrategyRoundRobin, []string{addr}, nil)
	rec := &recorder{}
	p := startProxy(t, &Options{Listener: "l", Pool: pool, IdleTimeout: idle}, 0, rec)
	c := dial(t, p.addr)
	roundTrip(t, c, "ping")
	lastByte := time.Now()
	expectClosed(t, c, 5*idle)
	quiet := time.Since(lastByte)
	if quiet < idle {
		t.Errorf("closed after %v of silence, before the %v idle timeout", quiet, idle)
	}
	r := rec.waitRecords(t, 1)[0]
	if !r.Connected || r.BytesIn != 4 || r.BytesOut != 4 {
		t.Errorf("record %+v", r)
	}
	b := pool.Members()[0].Backend
	waitFor(t, ioDeadline, "backend session ended", func() bool { return b.ActiveConnections() == 0 })
	if b.Failures() != 0 {
		t.Errorf("an idle timeout counted as a backend failure")
	}
}

func TestIdleTimeoutSparesTrickle(t *testing.T) {
	const (
		idle   = 200 * time.Millisecond
		period = 40 * time.Millisecond
		// Five idle periods of trickling: a watch that ignored the bytes
		// would cut the session four times over.
		trickleFor = 5 * idle
	)
	t.Run("client sends", func(t *testing.T) {
		addr, _ := startEcho(t)
		pool := newPool(t, testRegistry(), upstream.StrategyRoundRobin, []string{addr}, nil)
		p := startProxy(t, &Options{Listener: "l", Pool: pool, IdleTimeout: idle}, 0, nil)
		c := dial(t, p.addr)
		for end := time.Now().Add(trickleFor); time.Now().Before(end); {
			roundTrip(t, c, "t")
			time.Sleep(period) // the trickle's pace, not a wait for state
		}
		roundTrip(t, c, "still here")
		expectClosed(t, c, 5*idle)
	})
	t.Run("backend sends", func(t *testing.T) {
		// Only the backend → client direction moves; the client never
		// writes. Idle means no bytes in either direction.
		done := make(chan struct{})
		backend := startBackend(t, func(c *net.TCPConn) {
			defer close(done)
			for end := time.Now().Add(trickleFor); time.Now().Before(end); {
				if _, err := c.Write([]byte("b")); err != nil {
					return
				}
				time.Sleep(period)
			}
			// Then go quiet until the proxy gives up on us.
			_, _ = io.Copy(io.Discard, c)
		})
		pool := newPool(t, testRegistry(), upstream.StrategyRoundRobin, []string{backend}, nil)
		p := startProxy(t, &Options{Listener: "l", Pool: pool, IdleTimeout: idle}, 0, nil)
		c := dial(t, p.addr)
		start := time.Now()
		got, err := io.ReadAll(c)
		lived := time.Since(start)
		if err != nil && !errors.Is(err, net.ErrClosed) {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("session never closed: %v", err)
			}
		}
		if lived < trickleFor {
			t.Errorf("session cut after %v while the backend was still trickling (%d bytes)", lived, len(got))
		}
		if len(got) < int(trickleFor/period)/2 {
			t.Errorf("received only %d trickled bytes", len(got))
		}
		select {
		case <-done:
		case <-time.After(ioDeadline):
			t.Fatal("backend side not closed after the idle timeout")
		}
	})
}

func TestMaxConnectionsBackpressure(t *testing.T) {
	addr, _ := startEcho(t)
	pool := newPool(t, testRegistry(), upstream.StrategyRoundRobin, []string{addr}, nil)
	opts := &Options{Listener: "l", Pool: pool}
	p := startProxy(t, opts, 2, nil)

	first, second := dial(t, p.addr), dial(t, p.addr)
	roundTrip(t, first, "one")
	roundTrip(t, second, "two")

	// The kernel completes the third handshake (backlog) but the proxy
	// does not accept it while two sessions are open.
	third := dial(t, p.addr)
	if _, err := io.WriteString(third, "three"); err != nil {
		t.Fatalf("write: %v", err)
	}
	expectSilent(t, third, 300*time.Millisecond)
	if a, tot := p.ActiveConnections(), p.TotalConnections(); a != 2 || tot != 2 {
		t.Errorf("active/total = %d/%d at the limit, want 2/2", a, tot)
	}

	_ = first.Close()
	got := make([]byte, len("three"))
	if _, err := io.ReadFull(third, got); err != nil || string(got) != "three" {
		t.Fatalf("third connection after one closed: %q, %v", got, err)
	}
	if tot := p.TotalConnections(); tot != 3 {
		t.Errorf("total = %d, want 3", tot)
	}

	// Raising the limit through Update lets a waiting connection in at once.
	fourth := dial(t, p.addr)
	if _, err := io.WriteString(fourth, "four"); err != nil {
		t.Fatalf("write: %v", err)
	}
	expectSilent(t, fourth, 100*time.Millisecond)
	p.Update(opts, 3)
	got = make([]byte, len("four"))
	if _, err := io.ReadFull(fourth, got); err != nil || string(got) != "four" {
		t.Fatalf("fourth connection after raising the limit: %q, %v", got, err)
	}
	if a := p.ActiveConnections(); a != 3 {
		t.Errorf("active = %d, want 3", a)
	}
}

func TestUpdateAppliesToNewConnections(t *testing.T) {
	oldAddr, _ := startEcho(t)
	newAddr, _ := startEcho(t)
	reg := testRegistry()
	oldPool := newPool(t, reg, upstream.StrategyRoundRobin, []string{oldAddr}, nil)
	rec := &recorder{}
	p := startProxy(t, &Options{Listener: "l", Pool: oldPool}, 0, rec)

	before := dial(t, p.addr)
	roundTrip(t, before, "old")

	cfg := upstream.PoolConfig{Name: "up2", Strategy: upstream.StrategyRoundRobin, Backends: []upstream.BackendConfig{{Address: newAddr}}}
	newPool, err := reg.NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	next := &Options{Listener: "l", Pool: newPool}
	p.Update(next, 0)
	if p.Options() != next {
		t.Fatalf("Options() does not return the new generation")
	}
	after := dial(t, p.addr)
	roundTrip(t, after, "new")
	// The session from before the update is untouched.
	roundTrip(t, before, "old again")
	_ = before.Close()
	_ = after.Close()

	recs := rec.waitRecords(t, 2)
	byUpstream := map[string]string{}
	for _, r := range recs {
		byUpstream[r.Upstream] = r.Backend
	}
	if byUpstream["up"] != oldAddr || byUpstream["up2"] != newAddr {
		t.Errorf("sessions by upstream %v, want up→%s, up2→%s", byUpstream, oldAddr, newAddr)
	}
}

func TestShutdownDrainsOpenSessions(t *testing.T) {
	addr, _ := startEcho(t)
	pool := newPool(t, testRegistry(), upstream.StrategyRoundRobin, []string{addr}, nil)
	p := startProxy(t, &Options{Listener: "l", Pool: pool}, 0, nil)
	c := dial(t, p.addr)
	roundTrip(t, c, "before")

	shutdownErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioDeadline)
		defer cancel()
		shutdownErr <- p.Shutdown(ctx)
	}()
	waitServe(t, p.serveErr)
	p.serveErr <- nil // for the cleanup's check
	if nc, err := net.DialTimeout("tcp", p.addr, time.Second); err == nil {
		_ = nc.Close()
		t.Errorf("listener still accepts after Shutdown began")
	}
	// The open session keeps working while Shutdown waits for it.
	roundTrip(t, c, "during drain")
	select {
	case err := <-shutdownErr:
		t.Fatalf("Shutdown returned %v with a session open", err)
	default:
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	readAll(t, c)
	select {
	case err := <-shutdownErr:
		if err != nil {
			t.Errorf("Shutdown after a clean drain = %v, want nil", err)
		}
	case <-time.After(ioDeadline):
		t.Fatal("Shutdown did not return after the last session ended")
	}
}

func TestShutdownForceClosesAtDeadline(t *testing.T) {
	const budget = 200 * time.Millisecond
	addr, _ := startEcho(t)
	pool := newPool(t, testRegistry(), upstream.StrategyRoundRobin, []string{addr}, nil)
	rec := &recorder{}
	p := startProxy(t, &Options{Listener: "l", Pool: pool}, 0, rec)
	c := dial(t, p.addr)
	roundTrip(t, c, "hello")

	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	start := time.Now()
	err := p.Shutdown(ctx)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want deadline exceeded", err)
	}
	if took < budget || took > budget+2*time.Second {
		t.Errorf("Shutdown took %v, want about %v", took, budget)
	}
	// By the time Shutdown returns the session is gone everywhere.
	expectClosed(t, c, time.Second)
	if r := rec.snapshot(); len(r) != 1 || !r[0].Connected || r[0].BytesIn != 5 {
		t.Errorf("records after Shutdown: %+v", r)
	}
	b := pool.Members()[0].Backend
	if b.ActiveConnections() != 0 || b.Failures() != 0 {
		t.Errorf("backend active/failures after forced close = %d/%d, want 0/0", b.ActiveConnections(), b.Failures())
	}
	if p.ActiveConnections() != 0 {
		t.Errorf("listener active = %d after Shutdown", p.ActiveConnections())
	}
}

// TestShutdownWhileConnecting races Shutdown against a stream of new
// connections: every accepted session must be drained or cut, none leaked
// (goleak checks at the end), and the race detector watches the bookkeeping.
func TestShutdownWhileConnecting(t *testing.T) {
	addr, _ := startEcho(t)
	pool := newPool(t, testRegistry(), upstream.StrategyRoundRobin, []string{addr}, nil)
	p := startProxy(t, &Options{Listener: "l", Pool: pool}, 0, nil)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", p.addr, time.Second)
				if err != nil {
					continue // refused once the listener is closed
				}
				_ = c.SetDeadline(time.Now().Add(time.Second))
				_, _ = c.Write([]byte("x"))
				var b [1]byte
				_, _ = c.Read(b[:])
				_ = c.Close()
			}
		}()
	}
	waitFor(t, ioDeadline, "some sessions", func() bool { return p.TotalConnections() >= 20 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_ = p.Shutdown(ctx) // drained or cut; either is fine here
	close(stop)
	wg.Wait()
	if a := p.ActiveConnections(); a != 0 {
		t.Errorf("active = %d after Shutdown", a)
	}
	if a := pool.Members()[0].Backend.ActiveConnections(); a != 0 {
		t.Errorf("backend active = %d after Shutdown", a)
	}
}
