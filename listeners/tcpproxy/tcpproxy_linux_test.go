package tcpproxy

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"switchyard/upstream"
)

// processReadBytes is rchar from /proc/self/io: bytes this process moved
// through read(2)-style calls. splice(2) does not count there, so a proxy
// that keeps its copies in the kernel adds nothing to it.
func processReadBytes(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "rchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("parse rchar %q: %v", v, err)
			}
			return n
		}
	}
	t.Skipf("no rchar in /proc/self/io")
	return 0
}

// TestCopiesStayInKernel checks that forwarding really uses splice, with the
// idle watch running (it must not force a user-space copy on Linux). The
// same echo transfer is made directly and through the proxy: the client's
// own reads count the same in both, so any difference is bytes the proxy read
// into user space. A user-space proxy would add twice the payload (both
// directions); the splice path adds only its few control reads.
func TestCopiesStayInKernel(t *testing.T) {
	const size = 16 << 20
	addr, _ := startEcho(t)
	pool := newPool(t, testRegistry(), upstream.StrategyRoundRobin, []string{addr}, nil)
	p := startProxy(t, &Options{Listener: "l", Pool: pool, IdleTimeout: time.Minute}, 0, nil)

	payload := make([]byte, size)
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := range payload {
		payload[i] = byte(rnd.Uint32())
	}
	transfer := func(to string) int64 {
		c := dial(t, to)
		before := processReadBytes(t)
		if err := sendAndVerify(c, payload, 0); err != nil {
			t.Fatalf("transfer via %s: %v", to, err)
		}
		return processReadBytes(t) - before
	}
	direct := transfer(addr)
	proxied := transfer(p.addr)
	t.Logf("bytes read into user space for %d MiB echoed: direct %d, through the proxy %d", size>>20, direct, proxied)
	if extra := proxied - direct; extra > size/8 {
		t.Errorf("the proxy read %d bytes into user space for a %d-byte echo: its copies do not splice", extra, size)
	}
}

func TestIdleWatchUsesKernelCountersOnTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client := dial(t, ln.Addr().String())
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	before, ok := socketProgress(client)
	if !ok {
		t.Fatal("TCP_INFO byte counters unavailable on a TCP conn")
	}
	if _, err := client.Write([]byte("12345")); err != nil {
		t.Fatal(err)
	}
	var buf [5]byte
	if _, err := server.Read(buf[:]); err != nil {
		t.Fatal(err)
	}
	// Bytes sent count once acknowledged; on loopback that is immediate,
	// but poll rather than assume.
	waitFor(t, ioDeadline, "bytes_acked to move", func() bool {
		after, ok := socketProgress(client)
		return ok && after-before == 5
	})

	w := newIdleWatch(time.Minute, []net.Conn{client, server}, func() {})
	defer w.stop()
	if !w.usesProbe() {
		t.Error("idle watch on TCP conns falls back to per-read tracking, which loses splice")
	}
}

// blackholeAddr returns the address of a listener whose accept queue is
// full, so the kernel drops further SYNs and a dial hangs until its timeout:
// the loopback stand-in for a backend that does not answer.
func blackholeAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the queue (never accepted) until a dial times out.
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	t.Skip("could not fill the accept queue of a backlog-0 listener")
	return ""
}

func TestConnectTimeoutThenNextBackend(t *testing.T) {
	const connectTimeout = 150 * time.Millisecond
	hole := blackholeAddr(t)
	live, _ := startEcho(t)
	pool := newPool(t, testRegistry(), upstream.StrategyRoundRobin, []string{hole, live}, func(cfg *upstream.PoolConfig) {
		cfg.ConnectTimeout = connectTimeout
	})
	rec := &recorder{}
	p := startProxy(t, &Options{Listener: "l", Pool: pool}, 0, rec)

	// Smooth round robin over equal weights starts with the first member.
	start := time.Now()
	c := dial(t, p.addr)
	roundTrip(t, c, "through the second backend")
	took := time.Since(start)
	_ = c.Close()
	if took < connectTimeout {
		t.Errorf("session answered after %v: the blackhole was not tried first", took)
	}
	if took > connectTimeout+time.Second {
		t.Errorf("session answered after %v; connect_timeout is %v", took, connectTimeout)
	}
	r := rec.waitRecords(t, 1)[0]
	if !r.Connected || r.Backend != live || r.ConnectErrors != 1 {
		t.Errorf("record %+v: want connected to %s after one connect error", r, live)
	}
	hb := backendOf(t, pool, hole)
	if hb.Failures() != 1 {
		t.Errorf("blackhole failures = %d, want 1", hb.Failures())
	}
	if est := hb.LatencyEstimate(); est < connectTimeout/2 {
		t.Errorf("blackhole latency estimate %v; a timed-out dial should raise it", est)
	}
}

// TestSocketProgressRejectsNonTCP guards the fallback: only real TCP sockets
// report counters.
func TestSocketProgressRejectsNonTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, ok := socketProgress(a); ok {
		t.Error("net.Pipe reported TCP counters")
	}
	if _, ok := progress([]net.Conn{a, b}); ok {
		t.Error("progress over pipes reported counters")
	}
}
