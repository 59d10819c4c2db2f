package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func startServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	s, err := listenTCP("127.0.0.1:0", handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s.Addr()
}

func TestPingPongCountsRoundTripsThroughEcho(t *testing.T) {
	addr := startServer(t, serveEcho)
	res := pingPong(context.Background(), addr, 4, 64, 200*time.Millisecond)
	if res.Errors != 0 || res.RoundTrips == 0 {
		t.Fatalf("result %+v, want round trips and no errors", res)
	}
	if res.Seconds < 0.2 || res.Seconds > 5 {
		t.Errorf("ran %.3fs, want about 0.2s", res.Seconds)
	}
}

func TestPingPongDetectsWrongAnswers(t *testing.T) {
	// A server that answers with the same number of wrong bytes.
	addr := startServer(t, func(c net.Conn) {
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(bytes.Repeat([]byte{'x'}, len(buf))); err != nil {
				return
			}
		}
	})
	res := pingPong(context.Background(), addr, 2, 64, 200*time.Millisecond)
	if res.RoundTrips != 0 || res.Errors != 2 || !strings.Contains(res.FirstError, "different bytes") {
		t.Fatalf("result %+v, want 2 errors about different bytes and no round trip", res)
	}
}

func TestPingPongCountsRefusedConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	res := pingPong(context.Background(), addr, 3, 64, 50*time.Millisecond)
	if res.Errors != 3 || res.RoundTrips != 0 || !strings.Contains(res.FirstError, "dial") {
		t.Fatalf("result %+v, want 3 dial errors", res)
	}
}

func TestBulkIsAcknowledgedBySink(t *testing.T) {
	addr := startServer(t, serveSink)
	const n = 3<<20 + 12345 // not a multiple of the chunk size
	res := bulk(context.Background(), addr, n, 10*time.Second)
	if res.Errors != 0 || res.Acked != n || res.MiBPerSec <= 0 {
		t.Fatalf("result %+v, want %d bytes acknowledged", res, n)
	}
}

func TestBulkFailsWhenSinkStopsEarly(t *testing.T) {
	addr := startServer(t, func(c net.Conn) {
		var hdr [sinkHeaderSize]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		got, _ := discardN(c, 1000, make([]byte, 512))
		binary.BigEndian.PutUint64(hdr[:], got) // acknowledges only 1000 bytes
		c.Write(hdr[:])
	})
	res := bulk(context.Background(), addr, 1<<20, 10*time.Second)
	if res.Errors != 1 || res.FirstError == "" {
		t.Fatalf("result %+v, want a failure", res)
	}
}

func TestEchoAnswersHalfCloseWithItsOwn(t *testing.T) {
	addr := startServer(t, serveEcho)
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	closeWrite(c)
	got, err := io.ReadAll(c) // ends only if the server closes its side
	if err != nil || string(got) != "last words" {
		t.Fatalf("read %q, %v; want the echo then EOF", got, err)
	}
}

func TestIdleOpensKeepAliveConnectionsAndReadsRSS(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	}))
	defer srv.Close()
	res, err := idle(context.Background(), idleConfig{
		addr: srv.Listener.Addr().String(), conns: 25, parallel: 4, pid: os.Getpid(),
		settle: time.Millisecond, timeout: 10 * time.Second, procDir: "/proc",
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Opened != 25 || res.Errors != 0 {
		t.Fatalf("result %+v, want 25 connections opened", res)
	}
	if res.RSSBefore == 0 || res.RSSAfter == 0 || len(res.PIDs) == 0 || res.PIDs[0] != os.Getpid() {
		t.Errorf("result %+v, want RSS readings of this process", res)
	}
	srv.CloseClientConnections()
}

func TestIdleRejectsConnectionsTheServerCloses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		fmt.Fprint(w, "bye")
	}))
	defer srv.Close()
	res, err := idle(context.Background(), idleConfig{
		addr: srv.Listener.Addr().String(), conns: 5, parallel: 2, pid: os.Getpid(),
		settle: 0, timeout: 10 * time.Second, procDir: "/proc",
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Opened != 0 || res.Errors != 5 || !strings.Contains(res.FirstError, "keep-alive") {
		t.Fatalf("result %+v, want 5 errors about keep-alive", res)
	}
}

func TestClientsRefuseNonLoopbackAddresses(t *testing.T) {
	var stderr bytes.Buffer
	for _, args := range [][]string{
		{"pingpong", "-addr", "10.1.2.3:80", "-d", "1s"},
		{"bulk", "-addr", "example.com:80"},
		{"idle", "-addr", "192.168.0.1:80", "-pid", "1"},
		{"serve", "-echo", "0.0.0.0:0"},
	} {
		stderr.Reset()
		if code := run(context.Background(), args, io.Discard, &stderr); code == 0 {
			t.Errorf("%v: exit 0, want a refusal", args)
		}
		if !strings.Contains(stderr.String(), "loopback") {
			t.Errorf("%v: stderr %q does not say why", args, stderr.String())
		}
	}
}

func TestRunRejectsUnknownCommands(t *testing.T) {
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"frobnicate"}, io.Discard, &stderr); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if code := run(context.Background(), nil, io.Discard, &stderr); code != 2 {
		t.Errorf("no command: exit %d, want 2", code)
	}
}

const wrkWithLatency = `Running 6s test @ http://127.0.0.1:18100/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.06ms  612.15us  14.87ms   85.40%
    Req/Sec    31.29k     1.49k   33.80k    80.00%
  Latency Distribution
     50%  612.00us
     75%    2.05ms
     90%    2.58ms
     99%    1.02s
  186812 requests in 6.00s, 26.19MB read
  Socket errors: connect 0, read 3, write 1, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:  31130.53
Transfer/sec:      4.36MB
`

func TestParseWrk(t *testing.T) {
	w, err := parseWrk(wrkWithLatency)
	if err != nil {
		t.Fatal(err)
	}
	if w.Requests != 186812 || w.Seconds != 6 || w.ReqPerSec != 31130.53 {
		t.Errorf("counts %+v", w)
	}
	if w.SocketErrors != 6 || w.Non2xx != 7 || w.Errors() != 13 {
		t.Errorf("errors %d socket + %d non-2xx, want 6 + 7", w.SocketErrors, w.Non2xx)
	}
	want := map[int]float64{50: 612, 75: 2050, 90: 2580, 99: 1.02e6}
	for p, us := range want {
		if got := w.LatencyUS[p]; got < us*0.999 || got > us*1.001 {
			t.Errorf("p%d = %vµs, want %vµs", p, got, us)
		}
	}
}

func TestParseWrkWithoutLatencyOrErrors(t *testing.T) {
	out := "Running 1m test @ http://127.0.0.1:1/\n  1 threads and 1 connections\n" +
		"  5450 requests in 1.00m, 766.41KB read\nRequests/sec:     90.83\n"
	w, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if w.Requests != 5450 || w.Seconds != 60 || w.Errors() != 0 || len(w.LatencyUS) != 0 {
		t.Errorf("parsed %+v", w)
	}
}

func TestParseWrkRejectsOtherOutput(t *testing.T) {
	for _, out := range []string{"", "unable to connect to 127.0.0.1:1 Connection refused\n"} {
		if _, err := parseWrk(out); err == nil {
			t.Errorf("parseWrk(%q) succeeded", out)
		}
	}
}

func TestStatFieldsSurvivesOddCommandNames(t *testing.T) {
	stat := []byte("42 (nginx: a (b) c) S 7 42 42 0 -1 4194560 100 0 0 0 250 125 0 0 20 0 1 0 99 1000 50\n")
	f, err := statFields(stat)
	if err != nil {
		t.Fatal(err)
	}
	if f[0] != "S" || f[1] != "7" || f[11] != "250" || f[12] != "125" {
		t.Errorf("fields %q: want state S, ppid 7, utime 250, stime 125", f)
	}
	if _, err := statFields([]byte("42 nginx S")); err == nil {
		t.Error("accepted a stat line without a command name")
	}
}

// writeProc fakes /proc/PID/{stat,status} for one process.
func writeProc(t *testing.T, dir string, pid, ppid int, utime, stime, rssKiB uint64) {
	t.Helper()
	p := filepath.Join(dir, fmt.Sprint(pid))
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	stat := fmt.Sprintf("%d (proc %d) S %d 1 1 0 -1 0 0 0 0 0 %d %d 0 0 20 0 1 0 1 1 1\n", pid, pid, ppid, utime, stime)
	status := fmt.Sprintf("Name:\tproc\nVmPeak:\t 999 kB\nVmRSS:\t %d kB\nThreads:\t1\n", rssKiB)
	if err := os.WriteFile(filepath.Join(p, "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "status"), []byte(status), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTreeUsageSumsDescendantsOnly(t *testing.T) {
	dir := t.TempDir()
	writeProc(t, dir, 10, 1, 100, 50, 2000)   // master
	writeProc(t, dir, 11, 10, 400, 300, 5000) // worker
	writeProc(t, dir, 12, 11, 1, 1, 100)      // grandchild
	writeProc(t, dir, 20, 1, 999, 999, 9999)  // unrelated
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte("cpu 1 2 3\n"), 0o644); err != nil {
		t.Fatal(err) // a non-pid entry, as in the real /proc
	}
	u, err := treeUsage(dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	if u.CPUTicks != 852 || u.RSSKiB != 7100 || len(u.PIDs) != 3 {
		t.Errorf("usage %+v, want 852 ticks, 7100 KiB, 3 processes", u)
	}
	if _, err := treeUsage(dir, 30); err == nil {
		t.Error("a missing root process was not an error")
	}
}

func TestCoreBusyTicks(t *testing.T) {
	stat := []byte("cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 1 2 3 1000 5 6 7 8 0 0\ncpu1 10 20 30 4000 50 60 70 80 0 0\nintr 1\n")
	busy, err := coreBusyTicks(stat, 1)
	if err != nil {
		t.Fatal(err)
	}
	if busy != 10+20+30+60+70+80 {
		t.Errorf("busy %d, want user+nice+system+irq+softirq+steal = 270", busy)
	}
	if _, err := coreBusyTicks(stat, 2); err == nil {
		t.Error("cpu2 is absent but no error")
	}
}

func TestFormatting(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 2.414: "2.41", 18.26: "18.3", 512.4: "512", 41230.4: "41,230", 1234567: "1,234,567", -1500: "-1,500",
	} {
		if got := formatNumber(v); got != want {
			t.Errorf("formatNumber(%v) = %q, want %q", v, got, want)
		}
	}
	if got := formatCell([]float64{3, 1, 2}, 0, false); got != "2.00 (1.00–3.00)" {
		t.Errorf("median cell %q", got)
	}
	if got := formatCell([]float64{3, 1}, 1, true); got != "4 [1 round(s) failed]" {
		t.Errorf("sum cell %q", got)
	}
	if got := formatCell(nil, 0, false); got != "n/a" {
		t.Errorf("empty cell %q", got)
	}
	if got := formatCell(nil, 2, false); got != "failed" {
		t.Errorf("failed cell %q", got)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func wrkOutput(requests int, seconds float64, p50, p99 string) string {
	return fmt.Sprintf("  Latency Distribution\n     50%%  %s\n     99%%  %s\n  %d requests in %.2fs, 1MB read\nRequests/sec: %.2f\n",
		p50, p99, requests, seconds, float64(requests)/seconds)
}

func TestBuildReportAggregatesRounds(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "meta.env"), "# test\nrounds=3\nproxies=switchyard caddy nginx\nhz=100\nidle_conns=9000\ndescription=test run\n")
	raw := func(round int, proxy, test, ext string) string {
		return filepath.Join(dir, "raw", fmt.Sprintf("r%d-%s-%s.%s", round, proxy, test, ext))
	}
	for round := 1; round <= 3; round++ {
		for _, proxy := range []string{"switchyard", "caddy"} {
			// switchyard burns 100, 200, 300 ticks (1, 2, 3 s) on 100,000
			// requests: 10, 20, 30 µs per request. Caddy: ten times that.
			ticks := 100 * round
			if proxy == "caddy" {
				ticks *= 10
			}
			cpu := fmt.Sprintf("before=1000\nafter=%d\ncore_before=0\ncore_after=%d\n", 1000+ticks, ticks+500)
			for _, test := range []string{testHTTPKeepAlive, testHTTPClose, testHTTPLatency} {
				writeFile(t, raw(round, proxy, test, "out"), wrkOutput(100000, 5, "100.00us", fmt.Sprintf("%d.00ms", round)))
				writeFile(t, raw(round, proxy, test, "cpu"), cpu)
			}
			writeFile(t, raw(round, proxy, testIdle, "out"), `{"requested":9000,"opened":9000,"kib_per_conn":1.5,"errors":0}`)
			if proxy == "caddy" {
				continue // no L4
			}
			writeFile(t, raw(round, proxy, testPingPong, "out"), `{"conns":64,"size":64,"seconds":5,"round_trips":50000,"errors":1}`)
			writeFile(t, raw(round, proxy, testPingPong, "cpu"), cpu)
			bulkOut := `{"bytes":1,"acked":1,"seconds":1,"mib_per_s":800,"errors":0}`
			if round == 2 {
				bulkOut = `{"bytes":2,"acked":1,"seconds":1,"mib_per_s":0,"errors":1,"first_error":"short"}`
			}
			writeFile(t, raw(round, proxy, testBulk, "out"), bulkOut)
		}
	}
	table, problems, err := buildReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| | switchyard | Caddy | nginx |",
		"| HTTP keep-alive, wrk -t1 -c64: proxy CPU per request (µs) | 20.0 (10.0–30.0) | 200 (100–300) |",
		"| HTTP keep-alive req/s (c64) | 20,000 (20,000–20,000) | 20,000 (20,000–20,000) |",
		"| HTTP keep-alive (c64): other work on the proxy core (%) | 100 (100–100) | 100 (100–100) |",
		"| L4 ping-pong (64 conns, 64 B): proxy CPU per round trip (µs) | 40.0 (20.0–60.0) | n/a |",
		"| L4 bulk, one connection (MiB/s) | 800 (800–800) [1 round(s) failed] | n/a | not run |",
		"| 9,000 idle keep-alive connections: RSS per connection (KiB) | 1.50 (1.50–1.50) | 1.50 (1.50–1.50) |",
		"| c1 latency p99 (µs) | 2,000 (1,000–3,000) | 2,000 (1,000–3,000) |",
		"| L4 / idle client errors (all rounds) | 4 | 0 | not run |",
		"test run; cells: median (min–max) over 3 round(s)",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "short") {
		t.Errorf("problems %q, want the failed bulk round", problems)
	}
}

func TestBuildReportNeedsMeta(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := buildReport(dir); err == nil {
		t.Error("no meta.env but no error")
	}
	writeFile(t, filepath.Join(dir, "meta.env"), "rounds=x\nproxies=a\nhz=100\n")
	if _, _, err := buildReport(dir); err == nil {
		t.Error("bad rounds but no error")
	}
}
