package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the switchyard binary built once for the tests that need a real
// process (signals, exit codes).
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "switchyard-cli")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "switchyard")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is where `switchyard validate` is run from, so fixture paths in
// diagnostics read the way the goldens spell them.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestValidateGoodFiles(t *testing.T) {
	root := repoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "testdata/config/valid/*.hcl"))
	files = append(files, filepath.Join(root, "proxy.hcl"))
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		t.Run(rel, func(t *testing.T) {
			cmd := exec.Command(binary, "validate", "-config", rel)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "DEPLOY_ENV=test")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("validate %s: %v\n%s", rel, err, stderr.String())
			}
			if got, want := stdout.String(), rel+": ok\n"; got != want {
				t.Errorf("stdout %q, want %q", got, want)
			}
		})
	}
}

// TestValidateBadFiles runs the real binary on every invalid fixture: exit 1
// and exactly the golden FILE:LINE,COL lines on stderr.
func TestValidateBadFiles(t *testing.T) {
	root := repoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "testdata/config/invalid/*.hcl"))
	if len(files) < 10 {
		t.Fatalf("only %d invalid fixtures found", len(files))
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		t.Run(filepath.Base(rel), func(t *testing.T) {
			golden, err := os.ReadFile(strings.TrimSuffix(f, ".hcl") + ".golden")
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(binary, "validate", "-config", rel)
			cmd.Dir = root
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v (want exit status 1)", err)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout should be empty, got %q", stdout.String())
			}
			if got, want := stderr.String(), string(golden); got != want {
				t.Errorf("stderr:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(binary, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "switchyard ") {
		t.Fatalf("version: %q %v", out, err)
	}
}

func TestRunInvalidConfigExits1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "proxy.hcl")
	os.WriteFile(path, []byte("listener \"x\" {\n  protocol = \"udp\"\n}\n"), 0o644)
	cmd := exec.Command(binary, "-config", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v", err)
	}
	if !strings.Contains(stderr.String(), path+":2,") {
		t.Errorf("stderr should carry FILE:LINE,COL diagnostics:\n%s", stderr.String())
	}
}

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(url string) (int, string) {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSignals runs the real binary: SIGHUP reloads, SIGTERM lets an in-flight
// request finish and exits 0.
func TestSignals(t *testing.T) {
	web, backend, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := func(body string) string {
		return fmt.Sprintf(`
shutdown_timeout = "5s"
admin {
  listen = %q
}
listener "web" {
  protocol = "http"
  listen   = %q
  route "slow" {
    path     = "/slow"
    upstream = "slow"
  }
  route "all" {
    respond {
      status = 200
      body   = %q
    }
  }
}
upstream "slow" {
  backend %q {}
}
builtin "slow" {
  handler = "http"
  listen  = %q
  latency = "700ms"
  body    = "slow done"
}
`, admin, web, body, backend, backend)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "proxy.hcl")
	os.WriteFile(path, []byte(cfg("one")), 0o644)
	cmd := exec.Command(binary, "run", "-config", path, "-log-level", "debug")
	logs := &lockedBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()
	waitFor(t, 10*time.Second, "proxy up", func() bool { code, _ := get("http://" + web + "/"); return code == 200 })

	// SIGHUP: a file change applied on demand. Rename the file away from the
	// watcher's eyes is not possible, so compare generations via the body.
	os.WriteFile(path, []byte(cfg("two")), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 3*time.Second, "reloaded config", func() bool { _, b := get("http://" + web + "/"); return b == "two" })

	// SIGTERM during a slow request: it completes, then the process exits 0.
	slow := make(chan string, 1)
	go func() { _, b := get("http://" + web + "/slow"); slow <- b }()
	waitFor(t, 3*time.Second, "slow request in flight", func() bool {
		_, body := get("http://" + admin + "/status")
		var st struct {
			Upstreams []struct {
				Backends []struct {
					Active int `json:"active_connections"`
				} `json:"backends"`
			} `json:"upstreams"`
		}
		return json.Unmarshal([]byte(body), &st) == nil && len(st.Upstreams) == 1 && st.Upstreams[0].Backends[0].Active == 1
	})
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case b := <-slow:
		if b != "slow done" {
			t.Errorf("in-flight request during SIGTERM got %q", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight request did not finish")
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("process did not exit after SIGTERM")
	}
	if !strings.Contains(logs.String(), "shutting down") {
		t.Errorf("no shutdown log line:\n%s", logs.String())
	}
}
