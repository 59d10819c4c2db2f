package proxy_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hashicorp/go-hclog"

	"switchyard/proxy"
)

// TestChatPageThroughProxyInBrowser opens the chat builtin's page through
// the proxy's HTTP listener (the fast engine) in headless Chromium, joins,
// sends a message and sees it come back over the WebSocket the page opened
// through the proxy, with no console errors.
func TestChatPageThroughProxyInBrowser(t *testing.T) {
	browser := admFindBrowser()
	if browser == "" {
		t.Skip("no Chromium or Chrome binary in PATH (install Debian's chromium package to run the chat browser test)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	chatAddr := ln.Addr().String()
	ln.Close()
	path := filepath.Join(t.TempDir(), "proxy.hcl")
	cfg := fmt.Sprintf(`
listener "web" {
  protocol = "http"
  listen   = "127.0.0.1:0"
  route "chat" {
    path_prefix = "/chat/"
    upstream    = "chat"
  }
}
upstream "chat" {
  backend %q {}
}
builtin "chat" {
  handler = "chat"
  listen  = %q
}
`, chatAddr, chatAddr)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	rt := proxy.New(proxy.Options{ConfigPath: path, Logger: hclog.NewNullLogger(), Version: "test"})
	if err := rt.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rt.Shutdown(ctx)
	})
	web := rt.Status().Listeners[0].Address

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browser),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()
	problems := &admPageProblems{}
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start %s: %v", browser, err)
	}
	if err := chromedp.Listen(tab, problems.listen); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tab,
		chromedp.Navigate("http://"+web+"/chat/lobby"),
		chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), "browser"),
		chromedp.Click(chromedp.CSS("#join button")),
	); err != nil {
		t.Fatalf("join through the proxy: %v", err)
	}
	admWaitJS(t, tab, 10*time.Second, "the page to connect through the proxy",
		`document.getElementById('status').textContent.includes('connected as browser')`)
	if err := chromedp.Do(tab,
		chromedp.WaitVisible(chromedp.CSS("#text")),
		chromedp.SendKeys(chromedp.CSS("#text"), "hello through switchyard"),
		chromedp.Click(chromedp.CSS("#send button")),
	); err != nil {
		t.Fatalf("send: %v", err)
	}
	admWaitJS(t, tab, 10*time.Second, "the message to come back",
		`document.getElementById('log').textContent.includes('hello through switchyard')`)
	problems.check(t)
}
