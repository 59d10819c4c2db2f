package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// reloadPorts are the fixed addresses one reload scenario uses.
type reloadPorts struct {
	a, b, echo, chat, side1, side2 string
}

func newReloadPorts(t *testing.T) reloadPorts {
	return reloadPorts{a: freePort(t), b: freePort(t), echo: freePort(t), chat: freePort(t), side1: freePort(t), side2: freePort(t)}
}

// reloadConfig renders one generation of the scenario's config.
//   - mainBackend: which builtin the "main" pool uses ("a" or "b")
//   - extraRoute: adds GET /extra answered statically with its value
//   - sideAddr: where the "side" listener listens
func reloadConfig(p reloadPorts, mainBackend, extraRoute, sideAddr string) string {
	backend := p.a
	if mainBackend == "b" {
		backend = p.b
	}
	extra := ""
	if extraRoute != "" {
		extra = fmt.Sprintf(`
  route "extra" {
    path = "/extra"
    respond {
      status = 200
      body   = %q
    }
  }`, extraRoute)
	}
	return fmt.Sprintf(`
shutdown_timeout = "5s"
log { level = "debug" }

listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:0"
  route "chat" {
    path_prefix = "/chat/"
    upstream    = "chat"
  }%s
  route "main" {
    path_prefix = "/"
    upstream    = "main"
    retries     = 2
  }
}

listener "tcp" {
  protocol = "tcp"
  listen   = "127.0.0.1:0"
  upstream = "echo"
}

listener "side" {
  protocol = "http"
  listen   = %q
  route "all" {
    respond {
      status = 200
      body   = "side"
    }
  }
}

upstream "main" {
  backend %q {}
}
upstream "chat" {
  backend %q {}
}
upstream "echo" {
  backend %q {}
}

builtin "a" {
  handler = "http"
  listen  = %q
}
builtin "b" {
  handler = "http"
  listen  = %q
}
builtin "echo" {
  handler = "echo"
  listen  = %q
}
builtin "chat" {
  handler = "chat"
  listen  = %q
}
`, extra, sideAddr, backend, p.chat, p.echo, p.a, p.b, p.echo, p.chat)
}

// k8sLayout lays out dir the way the kubelet mounts a ConfigMap:
// proxy.hcl -> ..data/proxy.hcl, ..data -> ..<version>/.
type k8sLayout struct {
	dir     string
	version int
}

func newK8sLayout(t *testing.T, content string) *k8sLayout {
	l := &k8sLayout{dir: t.TempDir()}
	l.swap(t, content)
	if err := os.Symlink(filepath.Join("..data", "proxy.hcl"), l.path()); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *k8sLayout) path() string { return filepath.Join(l.dir, "proxy.hcl") }

// swap publishes new content atomically: new versioned dir, then a rename of
// a fresh symlink over ..data, then removal of the old version.
func (l *k8sLayout) swap(t *testing.T, content string) {
	t.Helper()
	old := fmt.Sprintf("..v%d", l.version)
	l.version++
	ver := fmt.Sprintf("..v%d", l.version)
	if err := os.Mkdir(filepath.Join(l.dir, ver), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.dir, ver, "proxy.hcl"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(l.dir, "..data_tmp")
	if err := os.Symlink(ver, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(l.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if l.version > 1 {
		if err := os.RemoveAll(filepath.Join(l.dir, old)); err != nil {
			t.Fatal(err)
		}
	}
}

// loadGenerator keeps N keep-alive clients busy and counts every failure.
type loadGenerator struct {
	url      string
	ok, fail atomic.Int64
	firstErr atomic.Pointer[string]
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startLoad(url string, clients int) *loadGenerator {
	g := &loadGenerator{url: url, stop: make(chan struct{})}
	for range clients {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			for {
				select {
				case <-g.stop:
					return
				default:
				}
				resp, err := client.Get(g.url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					g.fail.Add(1)
					msg := err.Error()
					g.firstErr.CompareAndSwap(nil, &msg)
					continue
				}
				g.ok.Add(1)
			}
		}()
	}
	return g
}

func (g *loadGenerator) finish() {
	close(g.stop)
	g.wg.Wait()
}

func getBody(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestReloadUnderLoad is SPEC §6 end to end: under steady keep-alive load,
// an in-place write, an editor-style rename, a Kubernetes symlink swap, an
// invalid save and a listener address change fail zero requests, each change
// is live within a second, and a WebSocket and a TCP session opened before
// the reloads still carry data after them.
func TestReloadUnderLoad(t *testing.T) {
	p := newReloadPorts(t)
	layout := newK8sLayout(t, reloadConfig(p, "a", "", p.side1))
	rt, path, logs := startRuntimeAt(t, layout.path())
	ctx, cancel := context.WithCancel(context.Background())
	watchDone := make(chan error, 1)
	go func() { watchDone <- rt.Watch(ctx, 50*time.Millisecond) }()
	defer func() {
		cancel()
		if err := <-watchDone; err != nil {
			t.Errorf("watch: %v", err)
		}
	}()

	web := "http://" + listenerAddr(t, rt, "web")
	tcpAddr := listenerAddr(t, rt, "tcp")
	// Wait until the first generation is serving through backend a.
	eventually(t, 5*time.Second, "web serves via a", func() bool {
		code, _, h := getBody(t, web+"/")
		return code == 200 && h.Get("X-Backend") == "a"
	})

	// Long-lived sessions opened before any reload.
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+listenerAddr(t, rt, "web")+"/chat/lobby?name=early", nil)
	if err != nil {
		t.Fatalf("websocket through the proxy: %v", err)
	}
	defer ws.Close()
	readWSType(t, ws, "join")
	tcpConn, err := net.Dial("tcp", tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer tcpConn.Close()
	tcpReader := bufio.NewReader(tcpConn)
	echoLine(t, tcpConn, tcpReader, "before")

	load := startLoad(web+"/", 32)
	time.Sleep(300 * time.Millisecond) // some load before the first change (not a settle wait)

	observe := func(what string, cond func() bool) {
		t.Helper()
		start := time.Now()
		eventually(t, 3*time.Second, what, cond)
		// SPEC §6: live within 1 s. The test machine may be busy with other
		// packages' tests under -race, so only a clear miss fails.
		switch d := time.Since(start); {
		case d > 2*time.Second:
			t.Errorf("%s took %v; SPEC §6 wants it within 1s", what, d)
		case d > time.Second:
			t.Logf("%s took %v (over 1s; the machine is busy?)", what, d)
		}
	}

	// 1. In-place write through the symlink to the target file.
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFileInPlace(t, resolved, reloadConfig(p, "b", "", p.side1))
	observe("in-place write: main pool switched to b", func() bool {
		_, _, h := getBody(t, web+"/")
		return h.Get("X-Backend") == "b"
	})

	// 2. Editor save: write a temp file in the target dir and rename it over.
	writeFileAtomic(t, resolved, reloadConfig(p, "b", "v2", p.side1))
	observe("rename save: /extra answers v2", func() bool {
		code, body, _ := getBody(t, web+"/extra")
		return code == 200 && body == "v2"
	})

	// 3. Kubernetes ConfigMap update: ..data symlink swap.
	layout.swap(t, reloadConfig(p, "a", "v3", p.side1))
	observe("symlink swap: /extra answers v3 and main is back on a", func() bool {
		code, body, _ := getBody(t, web+"/extra")
		_, _, h := getBody(t, web+"/")
		return code == 200 && body == "v3" && h.Get("X-Backend") == "a"
	})
	genBeforeInvalid := rt.Status().Config.Generation

	// 4. An invalid save is rejected; the old config keeps serving.
	layout.swap(t, reloadConfig(p, "a", "v3", p.side1)+"\nlistener \"broken\" {\n  protocol = \"udp\"\n}\n")
	observe("invalid save reported in /status", func() bool {
		lr := rt.Status().Config.LastReload
		return lr != nil && !lr.OK
	})
	st := rt.Status()
	if st.Config.Generation != genBeforeInvalid {
		t.Errorf("generation moved on an invalid save: %d -> %d", genBeforeInvalid, st.Config.Generation)
	}
	if !strings.Contains(st.Config.LastReload.Error, "proxy.hcl:") || st.Config.Hash == st.Config.FileHash {
		t.Errorf("last_reload should name file:line and hash should differ from file_hash: %+v", st.Config)
	}
	if !strings.Contains(logs.String(), "config rejected") {
		t.Error("the rejected save was not logged")
	}
	if code, body, _ := getBody(t, web+"/extra"); code != 200 || body != "v3" {
		t.Errorf("old config stopped serving after an invalid save: %d %q", code, body)
	}

	// 5. A listener moves: the new address is bound, the old one released.
	layout.swap(t, reloadConfig(p, "a", "v5", p.side2))
	observe("side listener moved", func() bool {
		code, body, _ := getBody(t, "http://"+p.side2+"/")
		return code == 200 && body == "side"
	})
	eventually(t, 6*time.Second, "old side address released", func() bool {
		c, err := net.DialTimeout("tcp", p.side1, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	})

	time.Sleep(200 * time.Millisecond) // keep the load running across the last swap
	load.finish()
	if n := load.fail.Load(); n != 0 {
		t.Errorf("%d of %d requests failed across reloads; first: %s", n, n+load.ok.Load(), *load.firstErr.Load())
	}
	if load.ok.Load() < 100 {
		t.Errorf("only %d requests completed: the load did not run", load.ok.Load())
	}
	t.Logf("%d requests, 0 failures, across 5 changes", load.ok.Load())

	// The long-lived sessions survived every reload.
	if err := ws.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
		t.Fatalf("websocket write after reloads: %v", err)
	}
	msg := readWSType(t, ws, "message")
	if !strings.Contains(msg, "still here") {
		t.Errorf("websocket message after reloads: %s", msg)
	}
	echoLine(t, tcpConn, tcpReader, "after")
}

func readWSType(t *testing.T, ws *websocket.Conn, typ string) string {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("websocket read (waiting for %q): %v", typ, err)
		}
		if strings.Contains(string(data), `"type":"`+typ+`"`) {
			return string(data)
		}
	}
}

func echoLine(t *testing.T, c net.Conn, r *bufio.Reader, line string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
		t.Fatalf("tcp write: %v", err)
	}
	got, err := r.ReadString('\n')
	if err != nil || got != line+"\n" {
		t.Fatalf("tcp echo: got %q, %v; want %q", got, err, line)
	}
}
