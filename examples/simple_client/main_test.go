package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// backendsByTurn answers with X-Backend alternating between two names, and
// records which connections and Host headers it saw.
type backendsByTurn struct {
	mu      sync.Mutex // guards the fields below
	turn    int
	remotes map[string]bool
	hosts   map[string]bool
}

func (b *backendsByTurn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.turn++
	name := []string{"hello-1", "hello-2"}[b.turn%2]
	b.remotes[r.RemoteAddr] = true
	b.hosts[r.Host] = true
	b.mu.Unlock()
	if r.URL.Path == "/anon" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("X-Backend", name)
	w.Write([]byte("hi"))
}

func newBackends(t *testing.T) (*backendsByTurn, string) {
	t.Helper()
	b := &backendsByTurn{remotes: map[string]bool{}, hosts: map[string]bool{}}
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	return b, srv.URL
}

func TestReportsEveryRequestAndSummary(t *testing.T) {
	b, url := newBackends(t)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-url", url + "/", "-n", "6", "-host", "api.localhost"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, errOut.String())
	}
	lines := regexp.MustCompile(`(?m)^\s+\d+  200  hello-[12]\s+\d+\.\d\dms$`).FindAllString(out.String(), -1)
	if len(lines) != 6 {
		t.Errorf("found %d request lines, want 6:\n%s", len(lines), out.String())
	}
	for _, want := range []string{"6 answered, 0 failed", "hello-1          3", "hello-2          3"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.remotes) != 1 {
		t.Errorf("requests came over %d connections, want 1 (keep-alive)", len(b.remotes))
	}
	if !b.hosts["api.localhost"] || len(b.hosts) != 1 {
		t.Errorf("Host headers = %v, want only api.localhost", b.hosts)
	}
}

func TestAnswerWithoutBackendHeader(t *testing.T) {
	_, url := newBackends(t)
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-url", url + "/anon", "-n", "2"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "404  "+noBackend) || !strings.Contains(out.String(), noBackend+"           2") {
		t.Errorf("output does not label missing X-Backend:\n%s", out.String())
	}
}

func TestConnectionErrorsAreCountedAndExitNonZero(t *testing.T) {
	// A port that was just free: nothing listens there any more.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()

	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-url", "http://" + addr + "/", "-n", "3"}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if strings.Count(out.String(), "error") != 3 || !strings.Contains(out.String(), "0 answered, 3 failed") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-n", "0"},
		{"-url", "ftp://127.0.0.1/"},
		{"-url", "127.0.0.1:8080"},
		{"-timeout", "0s"},
		{"extra"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q; want 2 with a message", args, code, errOut.String())
		}
		if out.Len() != 0 {
			t.Errorf("%q: sent requests despite bad flags:\n%s", args, out.String())
		}
	}
}
