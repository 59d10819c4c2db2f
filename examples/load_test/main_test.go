package main

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestHistogramPercentilesWithinPrecision(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var h histogram
	samples := make([]time.Duration, 50000)
	for i := range samples {
		// Log-uniform from 1µs to about 1s, like real latency spreads.
		samples[i] = time.Duration(float64(time.Microsecond) * float64(uint64(1)<<rng.IntN(20)) * (1 + rng.Float64()))
		h.record(samples[i])
	}
	slices.Sort(samples)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		want := samples[max(int(q*float64(len(samples)))-1, 0)]
		got := h.percentile(q)
		if rel := float64(got-want) / float64(want); rel > 1.0/64 || rel < -1.0/64 {
			t.Errorf("p%v = %v, exact %v (off by %.2f%%)", q*100, got, want, rel*100)
		}
	}
	if h.max != samples[len(samples)-1] {
		t.Errorf("max = %v, want %v", h.max, samples[len(samples)-1])
	}
}

func TestHistogramBucketsCoverEveryValue(t *testing.T) {
	prev := -1
	check := func(v uint64) {
		b := bucketOf(v)
		if b < prev || b >= histogramBuckets {
			t.Fatalf("bucketOf(%d) = %d after %d (of %d buckets)", v, b, prev, histogramBuckets)
		}
		prev = b
		mid := bucketMidpoint(b)
		if diff := float64(mid) - float64(v); diff > float64(v)/64+1 || -diff > float64(v)/64+1 {
			t.Fatalf("bucket %d reports %d for value %d", b, mid, v)
		}
	}
	for v := uint64(0); v < 4096; v++ {
		check(v)
	}
	for shift := 12; shift < 64; shift++ {
		for _, v := range []uint64{1<<shift - 1, 1 << shift, 1<<shift + 1} {
			check(v)
		}
	}
	check(1<<64 - 1)
}

func TestHistogramEmptyAndMerge(t *testing.T) {
	var a, b histogram
	if a.percentile(0.5) != 0 {
		t.Fatalf("empty percentile = %v, want 0", a.percentile(0.5))
	}
	for range 90 {
		a.record(time.Millisecond)
	}
	for range 10 {
		b.record(100 * time.Millisecond)
	}
	a.merge(&b)
	if a.total != 100 || a.percentile(0.9) > 2*time.Millisecond || a.percentile(0.91) < 90*time.Millisecond || a.max != 100*time.Millisecond {
		t.Fatalf("merged: total %d p90 %v p91 %v max %v", a.total, a.percentile(0.9), a.percentile(0.91), a.max)
	}
}

func TestLoopbackRules(t *testing.T) {
	hosts := map[string]bool{
		"127.0.0.1": true, "127.8.9.10": true, "::1": true, "localhost": true,
		"LOCALHOST.": true, "api.localhost": true,
		"10.0.0.1": false, "example.com": false, "localhost.example.com": false, "": false,
	}
	for host, want := range hosts {
		if got := isLoopbackHost(host); got != want {
			t.Errorf("isLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
	for addr, wantOK := range map[string]bool{
		"127.0.0.1:80": true, "[::1]:8080": true, "192.0.2.1:80": false, "[2001:db8::1]:80": false,
	} {
		err := dialLoopbackOnly("tcp", addr, nil)
		if (err == nil) != wantOK {
			t.Errorf("dialLoopbackOnly(%q) = %v, want ok=%v", addr, err, wantOK)
		}
	}
}

func TestClientRefusesToDialOffHost(t *testing.T) {
	// 192.0.2.1 is TEST-NET-1; the Control hook refuses it before connect(2),
	// so nothing is sent.
	client := newClient(config{timeout: 2 * time.Second, clients: 1})
	defer client.CloseIdleConnections()
	_, err := client.Get("http://192.0.2.1:9/")
	if !errors.Is(err, errNotLoopback) {
		t.Fatalf("GET off-host = %v, want errNotLoopback", err)
	}
	if got := classify(err); got != "non-loopback address refused" {
		t.Errorf("classify = %q", got)
	}
}

func TestFlagValidation(t *testing.T) {
	bad := [][]string{
		{"-url", "http://example.com/"},
		{"-url", "http://10.1.2.3:8080/"},
		{"-d", "6m"},
		{"-d", "0s"},
		{"-c", "0"},
		{"-c", "5000"},
		{"-timeout", "-1s"},
		{"-url", "127.0.0.1:8080"},
	}
	for _, args := range bad {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 || errOut.Len() == 0 || out.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2, a message and no run", args, code, out.String(), errOut.String())
		}
	}
	cfg, err := parseFlags([]string{"-url", "http://example.com/", "-allow-remote", "-c", "3", "-d", "5m"}, &bytes.Buffer{})
	if err != nil || cfg.clients != 3 || cfg.duration != 5*time.Minute || !cfg.allowRemote {
		t.Errorf("-allow-remote: %+v, %v", cfg, err)
	}
}

// countingServer answers 200 or 503 in turn and counts the connections used.
type countingServer struct {
	mu    sync.Mutex // guards the fields below
	n     int
	conns map[string]bool
}

func (c *countingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.n++
	n := c.n
	c.conns[r.RemoteAddr] = true
	c.mu.Unlock()
	w.Header().Set("X-Backend", "b"+strconv.Itoa(n%2))
	if n%4 == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	w.Write([]byte("hello"))
}

func TestRunReportsLoad(t *testing.T) {
	cs := &countingServer{conns: map[string]bool{}}
	srv := httptest.NewServer(cs)
	t.Cleanup(srv.Close)

	var out, errOut bytes.Buffer
	began := time.Now()
	code := run(context.Background(), []string{"-url", srv.URL + "/", "-c", "4", "-d", "300ms"}, &out, &errOut)
	took := time.Since(began)
	if code != 0 {
		t.Fatalf("exit %d; stderr %s", code, errOut.String())
	}
	if took < 300*time.Millisecond || took > 5*time.Second {
		t.Errorf("run took %v for -d 300ms", took)
	}
	text := out.String()
	m := regexp.MustCompile(`requests  (\d+) in 0\.[0-9]{2}s = [0-9.]+ req/s`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no requests line:\n%s", text)
	}
	n, _ := strconv.Atoi(m[1])
	cs.mu.Lock()
	served, conns := cs.n, len(cs.conns)
	cs.mu.Unlock()
	// The server may have answered a few requests the run then cut off.
	if n == 0 || n > served || served-n > 4 {
		t.Errorf("reported %d requests, server answered %d", n, served)
	}
	// net/http may dial a spare connection when a request races an idle
	// one coming back; what matters is that connections are reused.
	if conns > 8 || conns*4 > served {
		t.Errorf("used %d connections for 4 keep-alive clients over %d requests", conns, served)
	}
	for _, pattern := range []string{
		`latency   p50 [0-9.]+ms  p90 [0-9.]+ms  p99 [0-9.]+ms  max [0-9.]+ms`,
		`status    200=\d+ 503=\d+`,
		`backends  b0=\d+ b1=\d+`,
		`errors    0\n`,
	} {
		if !regexp.MustCompile(pattern).MatchString(text) {
			t.Errorf("output lacks %s:\n%s", pattern, text)
		}
	}
}

func TestRunCountsConnectionErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-url", "http://" + addr + "/", "-c", "2", "-d", "100ms"}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1 when nothing answered:\n%s", code, out.String())
	}
	if !regexp.MustCompile(`× connection refused`).MatchString(out.String()) || strings.Contains(out.String(), "errors    0\n") {
		t.Errorf("output does not report refused connections:\n%s", out.String())
	}
}
