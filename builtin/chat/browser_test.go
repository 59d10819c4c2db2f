//go:build linux

package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestPageChatsThroughReverseProxy loads the HTML page in headless Chromium
// through a reverse proxy on another port, joins, receives and sends: the
// page must build its WebSocket URL from where it was loaded. The browser is
// driven over the DevTools protocol with a few lines of our own.
func TestPageChatsThroughReverseProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if path, err := exec.LookPath(name); err == nil {
			browser = path
			break
		}
	}
	if browser == "" {
		t.Skip("no Chromium or Chrome on PATH")
	}

	_, addr := startServer(t, Options{}, nil)
	proxyAddr := startReverseProxy(t, &url.URL{Scheme: "http", Host: addr})

	dave := join(t, addr, "lobby", "dave")
	dave.expect(EventJoin, "dave", "", 1)

	page := openBrowserPage(t, browser)
	if _, err := page.call("Page.navigate", map[string]any{"url": "http://" + proxyAddr + "/chat/lobby"}); err != nil {
		t.Fatal(err)
	}
	page.waitTrue(`document.readyState === "complete" && document.getElementById("name") !== null`)
	page.eval(`document.getElementById("name").value = "carol"; document.getElementById("join").requestSubmit(); true`)
	dave.expect(EventJoin, "carol", "", 2)
	page.waitTrue(`document.getElementById("log").textContent.includes("carol joined (2 in room)")`)

	dave.send("hello carol")
	page.waitTrue(`document.getElementById("log").textContent.includes("<dave>hello carol")`)

	page.eval(`document.getElementById("text").value = "hi dave"; document.getElementById("send").requestSubmit(); true`)
	dave.expect(EventMessage, "dave", "hello carol", 2)
	dave.expect(EventMessage, "carol", "hi dave", 2)
}

// startReverseProxy forwards everything, WebSocket upgrades included, from a
// new 127.0.0.1 port to backend, the way switchyard's HTTP listener does.
func startReverseProxy(t *testing.T, backend *url.URL) string {
	t.Helper()
	proxy := &http.Server{Handler: &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(backend)
		r.SetXForwarded()
	}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- proxy.Serve(ln) }()
	t.Cleanup(func() {
		proxy.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("proxy: %v", err)
		}
	})
	return ln.Addr().String()
}

// devtoolsPage is a DevTools protocol session with one browser tab.
type devtoolsPage struct {
	t      *testing.T
	conn   *websocket.Conn
	nextID int
}

// openBrowserPage starts headless Chromium with a fresh profile and connects
// to its first tab. The browser is closed, or its process group killed, at
// cleanup.
func openBrowserPage(t *testing.T, browser string) *devtoolsPage {
	t.Helper()
	profile := t.TempDir()
	cmd := exec.Command(browser,
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update",
		"--disable-default-apps", "--disable-extensions", "--disable-sync",
		"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
		"--user-data-dir="+profile, "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", browser, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		// The page's Browser.close (sent below, once connected) lets
		// Chromium end its helper processes itself; killing the group is
		// the fallback.
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})

	// Chromium writes the port it picked into the profile.
	var port string
	waitFor(t, "the browser's DevTools port", 20*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort"))
		port, _, _ = strings.Cut(string(b), "\n")
		return err == nil && port != ""
	})
	var debuggerURL string
	client := &http.Client{Timeout: ioTimeout}
	waitFor(t, "a browser tab", 10*time.Second, func() bool {
		resp, err := client.Get("http://127.0.0.1:" + port + "/json/list")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var targets []struct{ Type, WebSocketDebuggerURL string }
		if json.NewDecoder(resp.Body).Decode(&targets) != nil {
			return false
		}
		for _, target := range targets {
			if target.Type == "page" {
				debuggerURL = target.WebSocketDebuggerURL
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	conn, _, err := websocket.DefaultDialer.DialContext(ctx, debuggerURL, nil)
	if err != nil {
		t.Fatalf("connect to the tab: %v", err)
	}
	page := &devtoolsPage{t: t, conn: conn}
	t.Cleanup(func() {
		page.call("Browser.close", nil)
		conn.Close()
	})
	return page
}

// call sends one DevTools command and returns its result, skipping events.
func (p *devtoolsPage) call(method string, params any) (json.RawMessage, error) {
	p.nextID++
	id := p.nextID
	p.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if err := p.conn.WriteJSON(map[string]any{"id": id, "method": method, "params": params}); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	p.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	for {
		var msg struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct{ Message string }
		}
		if err := p.conn.ReadJSON(&msg); err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		if msg.ID != id {
			continue // an event
		}
		if msg.Error != nil {
			return nil, fmt.Errorf("%s: %s", method, msg.Error.Message)
		}
		return msg.Result, nil
	}
}

// eval runs a JavaScript expression in the page and returns its value.
func (p *devtoolsPage) eval(expr string) json.RawMessage {
	p.t.Helper()
	raw, err := p.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
	if err != nil {
		p.t.Fatal(err)
	}
	var res struct {
		Result           struct{ Value json.RawMessage }
		ExceptionDetails *struct{ Text string }
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	if res.ExceptionDetails != nil {
		p.t.Fatalf("evaluate %s: %s", expr, res.ExceptionDetails.Text)
	}
	return res.Result.Value
}

// waitTrue polls a JavaScript condition until it is true.
func (p *devtoolsPage) waitTrue(cond string) {
	p.t.Helper()
	waitFor(p.t, cond, ioTimeout, func() bool { return string(p.eval(cond)) == "true" })
}
