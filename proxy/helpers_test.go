package proxy

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// syncBuffer is a goroutine-safe log sink for tests that read the log.
type syncBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

// freePort reserves a loopback port by binding :0 and releasing it. Builtins
// need fixed addresses because pools name them.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// writeFileAtomic saves like an editor that writes a temp file and renames it.
func writeFileAtomic(t testing.TB, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// writeFileInPlace truncates and rewrites, like `sed -i` less the rename.
func writeFileInPlace(t testing.TB, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// startRuntime writes cfg to a temp dir and starts a runtime on it.
func startRuntime(t testing.TB, cfg string) (*Runtime, string, *syncBuffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "proxy.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return startRuntimeAt(t, path)
}

func startRuntimeAt(t testing.TB, path string) (*Runtime, string, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	log := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace})
	rt := New(Options{ConfigPath: path, Logger: log, Version: "test"})
	if err := rt.Start(); err != nil {
		t.Fatalf("start: %v\nlogs:\n%s", err, logs)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("runtime log:\n%s", logs)
		}
	})
	return rt, path, logs
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// listenerAddr returns the bound address of a listener by name.
func listenerAddr(t testing.TB, rt *Runtime, name string) string {
	t.Helper()
	for _, l := range rt.Status().Listeners {
		if l.Name == name && l.Address != "" {
			return l.Address
		}
	}
	t.Fatalf("listener %q not running", name)
	return ""
}
