package proxy

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

func staticConfig(body string) string {
	return fmt.Sprintf(`
shutdown_timeout = "2s"
listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:0"
  route "all" {
    respond {
      status = 200
      body   = %q
    }
  }
}
`, body)
}

func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd here")
	}
	return len(entries)
}

// TestRapidSavesCoalesce: 100 saves in quick succession end in the last
// file's config, bursts coalesce into few generations, and nothing leaks.
func TestRapidSavesCoalesce(t *testing.T) {
	rt, path, _ := startRuntime(t, staticConfig("v0"))
	ctx, cancel := context.WithCancel(context.Background())
	watchDone := make(chan error, 1)
	go func() { watchDone <- rt.Watch(ctx, 50*time.Millisecond) }()
	web := "http://" + listenerAddr(t, rt, "web")
	eventually(t, 5*time.Second, "v0 served", func() bool { _, b, _ := getBody(t, web); return b == "v0" })

	// Baselines after the runtime and watcher are up.
	time.Sleep(100 * time.Millisecond) // let the watcher goroutine register its watch
	goroutinesBefore := runtime.NumGoroutine()
	fdsBefore := openFDs(t)

	for i := 1; i <= 100; i++ {
		if i%2 == 0 {
			writeFileAtomic(t, path, staticConfig(fmt.Sprintf("v%d", i)))
		} else {
			writeFileInPlace(t, path, staticConfig(fmt.Sprintf("v%d", i)))
		}
	}
	eventually(t, 5*time.Second, "last save served", func() bool { _, b, _ := getBody(t, web); return b == "v100" })
	gen := rt.Status().Config.Generation
	// Each save is a burst of events (truncate, write; or create, rename):
	// even on a busy machine the 100 saves must not make 100 generations.
	if gen < 2 || gen >= 100 {
		t.Errorf("100 rapid saves made generation %d; expected them to coalesce", gen)
	}
	// Settle: no further reloads pending (the file is unchanged from here on).
	eventually(t, 3*time.Second, "no leaked goroutines", func() bool {
		return runtime.NumGoroutine() <= goroutinesBefore+2
	})
	eventually(t, 3*time.Second, "no leaked file descriptors", func() bool {
		return openFDs(t) <= fdsBefore+2
	})
	cancel()
	if err := <-watchDone; err != nil {
		t.Fatal(err)
	}
}

// TestSameBytesIsNoop: a save that changes nothing makes no generation.
func TestSameBytesIsNoop(t *testing.T) {
	rt, path, _ := startRuntime(t, staticConfig("same"))
	before := rt.Status().Config
	writeFileInPlace(t, path, staticConfig("same"))
	res := rt.Reload("test")
	if !res.OK || res.Changed {
		t.Fatalf("reload of identical bytes: %+v", res)
	}
	after := rt.Status().Config
	if after.Generation != before.Generation || after.LoadedAt != before.LoadedAt {
		t.Errorf("no-op reload changed generation %d -> %d", before.Generation, after.Generation)
	}
}

// TestFailedBindKeepsOldConfig: a new address that cannot be bound rejects the
// whole reload with a diagnostic at the listen attribute, closes the sockets
// it had already bound, and keeps the old config serving.
func TestFailedBindKeepsOldConfig(t *testing.T) {
	rt, path, _ := startRuntime(t, staticConfig("old"))
	web := "http://" + listenerAddr(t, rt, "web")

	occupied, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer occupied.Close()
	freeAddr := freePort(t)
	cfg := staticConfig("new") + fmt.Sprintf(`
listener "fresh" {
  protocol = "http"
  listen   = %q
  route "r" {
    respond {
      status = 200
      body   = "fresh"
    }
  }
}
listener "clash" {
  protocol = "http"
  listen   = %q
  route "r" {
    respond {
      status = 200
      body   = "clash"
    }
  }
}
`, freeAddr, occupied.Addr().String())
	writeFileInPlace(t, path, cfg)
	res := rt.Reload("test")
	if res.OK {
		t.Fatal("reload with an occupied address succeeded")
	}
	if len(res.Diagnostics) != 1 || !strings.Contains(res.Diagnostics[0], "proxy.hcl:") || !strings.Contains(res.Diagnostics[0], "cannot listen") {
		t.Fatalf("diagnostics: %q", res.Diagnostics)
	}
	// The line named is the clash listener's listen attribute.
	wantLine := 0
	for i, line := range strings.Split(cfg, "\n") {
		if strings.Contains(line, occupied.Addr().String()) {
			wantLine = i + 1
		}
	}
	if !strings.Contains(res.Diagnostics[0], fmt.Sprintf("proxy.hcl:%d,", wantLine)) {
		t.Errorf("diagnostic %q should point at line %d", res.Diagnostics[0], wantLine)
	}
	if _, body, _ := getBody(t, web); body != "old" {
		t.Errorf("old config not serving after failed reload: %q", body)
	}
	// The address bound during preparation was released again.
	ln, err := net.Listen("tcp", freeAddr)
	if err != nil {
		t.Fatalf("rolled-back reload kept %s bound: %v", freeAddr, err)
	}
	ln.Close()
	if lr := rt.Status().Config.LastReload; lr == nil || lr.OK {
		t.Errorf("last_reload: %+v", lr)
	}
}

// TestBackendStateSurvivesReload: an open breaker and its counters carry
// over a reload that keeps the (upstream, address), and a new upstream with
// the same address starts fresh.
func TestBackendStateSurvivesReload(t *testing.T) {
	hello := freePort(t)
	cfg := func(extra string) string {
		return fmt.Sprintf(`
listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:0"
  route "all" {
    upstream = "api"
    retries  = 0
  }
}
upstream "api" {
  backend %q {}
  circuit_breaker {
    consecutive_failures = 3
    open_timeout         = "1m"
  }
}
builtin "hello" {
  handler    = "http"
  listen     = %q
  error_rate = 1.0
}
%s`, hello, hello, extra)
	}
	rt, path, _ := startRuntime(t, cfg(""))
	web := "http://" + listenerAddr(t, rt, "web")
	for range 3 {
		getBody(t, web)
	}
	backendOf := func(upstreamName string) BackendStatus {
		for _, u := range rt.Status().Upstreams {
			if u.Name == upstreamName {
				return u.Backends[0]
			}
		}
		t.Fatalf("no upstream %q", upstreamName)
		return BackendStatus{}
	}
	if b := backendOf("api"); b.Breaker != "open" || b.Requests != 3 || b.Failures != 3 {
		t.Fatalf("before reload: %+v", b)
	}
	writeFileInPlace(t, path, cfg(fmt.Sprintf(`upstream "other" {
  backend %q {}
}`, hello)))
	if res := rt.Reload("test"); !res.OK || !res.Changed {
		t.Fatalf("reload: %+v", res)
	}
	if b := backendOf("api"); b.Breaker != "open" || b.Requests != 3 || b.Failures != 3 {
		t.Errorf("state lost across reload: %+v", b)
	}
	if b := backendOf("other"); b.Breaker != "closed" || b.Requests != 0 {
		t.Errorf("a new upstream inherited state: %+v", b)
	}
	if code, _, _ := getBody(t, web); code != 503 {
		t.Errorf("open breaker after reload should give 503, got %d", code)
	}
}

// TestRemovedPoolStopsHealthChecks: health checkers of removed pools exit.
func TestRemovedPoolStopsHealthChecks(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	withPools := func(n int) string {
		s := staticConfig("x")
		for i := range n {
			s += fmt.Sprintf(`
upstream "p%d" {
  backend %q {}
  health_check {
    interval = "20ms"
    timeout  = "10ms"
  }
}`, i, target.Addr().String())
		}
		return s
	}
	rt, path, _ := startRuntime(t, withPools(0))
	base := runtime.NumGoroutine()
	writeFileInPlace(t, path, withPools(20))
	if res := rt.Reload("test"); !res.OK {
		t.Fatal(res.Error)
	}
	// Other goroutines of the start (a watcher's first event, a log
	// flush) may end meanwhile, so wait for the count rather than read it once.
	eventually(t, 3*time.Second, "20 health checkers running", func() bool {
		return runtime.NumGoroutine() >= base+20-2
	})
	writeFileInPlace(t, path, withPools(0))
	if res := rt.Reload("test"); !res.OK {
		t.Fatal(res.Error)
	}
	eventually(t, 3*time.Second, "health checkers of removed pools exit", func() bool {
		return runtime.NumGoroutine() <= base+2
	})
}

// TestRevertAfterFailedSaveClearsError: saving a broken file and then the
// original bytes again is no new generation, but /status no longer shows
// the error.
func TestRevertAfterFailedSaveClearsError(t *testing.T) {
	rt, path, _ := startRuntime(t, staticConfig("good"))
	gen := rt.Status().Config.Generation
	writeFileInPlace(t, path, staticConfig("good")+"\nbroken {")
	if res := rt.Reload("test"); res.OK {
		t.Fatal("broken file accepted")
	}
	if lr := rt.Status().Config.LastReload; lr == nil || lr.OK {
		t.Fatalf("last_reload after a broken save: %+v", lr)
	}
	writeFileInPlace(t, path, staticConfig("good"))
	if res := rt.Reload("test"); !res.OK || res.Changed {
		t.Fatalf("revert: %+v", res)
	}
	st := rt.Status().Config
	if st.LastReload == nil || !st.LastReload.OK || st.Generation != gen || st.Hash != st.FileHash {
		t.Errorf("after the revert: generation %d (want %d), last_reload %+v, hash %s file_hash %s", st.Generation, gen, st.LastReload, st.Hash, st.FileHash)
	}
}
