package proxy_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// admDashboardScreenshot is where the test leaves a picture of the
// dashboard with a tripped breaker and a failed reload, for humans to judge.
const admDashboardScreenshot = "/tmp/dashboard.png"

// admFindBrowser returns a Chromium or Chrome binary, or "".
func admFindBrowser() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	return ""
}

// admPageProblems collects what the page reports as going wrong: console
// errors, uncaught exceptions and browser log errors (failed loads).
type admPageProblems struct {
	mu sync.Mutex
	// expectNetworkErrors is set once the test stops the proxy on purpose:
	// from then on failed requests are the point, not a problem.
	expectNetworkErrors bool
	problems            []string
}

func (p *admPageProblems) listen(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		var args []string
		for _, a := range ev.Args {
			args = append(args, strings.TrimSpace(string(a.Value)+" "+a.Description))
		}
		p.problems = append(p.problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil {
			text += " " + d.Exception.Description
		}
		p.problems = append(p.problems, fmt.Sprintf("exception at %s:%d:%d: %s", d.URL, d.LineNumber+1, d.ColumnNumber+1, text))
	case *log.EventEntryAdded:
		e := ev.Entry
		if e.Level != log.EntryLevelError || (p.expectNetworkErrors && e.Source == log.EntrySourceNetwork) {
			return
		}
		p.problems = append(p.problems, fmt.Sprintf("browser log (%s): %s %s", e.Source, e.Text, e.URL))
	}
}

func (p *admPageProblems) expectNetworkFailures() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expectNetworkErrors = true
}

func (p *admPageProblems) check(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, problem := range p.problems {
		t.Errorf("dashboard: %s", problem)
	}
}

// admWaitJS polls a JavaScript predicate in the page until it is truthy.
func admWaitJS(t *testing.T, ctx context.Context, within time.Duration, what, predicate string) {
	t.Helper()
	start := time.Now()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(within))); err != nil {
		t.Fatalf("waiting for %s (after %v): %v", what, time.Since(start).Round(time.Millisecond), err)
	}
}

// admJS evaluates a JavaScript expression in the page.
func admJS[T any](t *testing.T, ctx context.Context, expression string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expression))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expression, err)
	}
	return v
}

// admRowJS is a JavaScript expression for a backend's row in the dashboard.
func admRowJS(upstream, backend string) string {
	return fmt.Sprintf("document.querySelector('tr[data-upstream=%q][data-backend=%q]')", upstream, backend)
}

// TestDashboardInBrowser loads the dashboard in headless Chromium against a
// running proxy: it must render every backend without console errors, show
// a breaker tripped by real traffic within seconds, show a failed reload
// with its position, compute rates, fit a phone screen, and say so plainly
// when the proxy goes away.
func TestDashboardInBrowser(t *testing.T) {
	browser := admFindBrowser()
	if browser == "" {
		t.Skip("no Chromium or Chrome binary in PATH (install Debian's chromium package to run the dashboard browser test)")
	}
	s := admStartScenario(t)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
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
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 900),
	)
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()

	problems := &admPageProblems{}
	if err := chromedp.Do(tab); err != nil { // starts the browser
		t.Fatalf("start %s: %v", browser, err)
	}
	if err := chromedp.Listen(tab, problems.listen); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tab, chromedp.Navigate(s.adminURL+"/")); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}

	// Every backend renders; the unhealthy one is marked at once.
	admWaitJS(t, tab, 10*time.Second, "the four backend rows", `document.querySelectorAll('tr[data-backend]').length === 4`)
	sick := admRowJS("sick", s.sick.addr())
	admWaitJS(t, tab, 5*time.Second, "the unhealthy backend marked",
		sick+`.classList.contains('row-bad') && `+sick+`.textContent.includes('UNHEALTHY')`)
	flaky := admRowJS("flaky", s.flaky.addr())
	if got := admJS[string](t, tab, flaky+`.getAttribute('data-breaker') + ' ' + `+flaky+`.className`); got != "closed " {
		t.Fatalf("flaky backend before any traffic: breaker and row class %q, want closed and unmarked", got)
	}
	for what, js := range map[string]string{
		"generation 1":         `document.getElementById('generation').textContent === '1'`,
		"last reload OK":       `document.getElementById('reload-result').textContent === 'OK'`,
		"both listeners":       `document.querySelectorAll('[data-listener]').length === 2`,
		"the web routes":       `['good','flaky','sick'].every(r => document.querySelector('[data-listener="web"] tr[data-route="' + r + '"]'))`,
		"the chat builtin":     `document.querySelector('tr[data-builtin="chat"]') !== null`,
		"the connection state": `document.getElementById('conn-text').textContent === 'live'`,
		"the problem banner":   `!document.getElementById('alerts').hidden && document.getElementById('alerts').textContent.includes('unhealthy')`,
	} {
		if !admJS[bool](t, tab, js) {
			t.Errorf("dashboard does not show %s (%s)", what, js)
		}
	}

	// Trip the breaker with real traffic after the page loaded.
	tripped := time.Now()
	admTripBreaker(t, s)
	admWaitJS(t, tab, 5*time.Second, "the tripped breaker to show OPEN",
		flaky+`.classList.contains('row-bad') && `+flaky+`.querySelector('.badge.bad') && `+
			flaky+`.textContent.includes('OPEN') && document.getElementById('alerts').textContent.includes('breaker OPEN')`)
	t.Logf("the dashboard showed the open breaker %v after the trip", time.Since(tripped).Round(10*time.Millisecond))

	// Rates are computed from counter deltas between polls.
	good := admRowJS("good", s.good.addr())
	rateShown := good + `.querySelector('td[data-label="Req/s"]').textContent`
	deadline := time.Now().Add(10 * time.Second)
	for {
		for range 5 {
			admDo(t, s.client, http.MethodGet, s.webURL+"/good", nil)
		}
		if admJS[bool](t, tab, `parseFloat(`+rateShown+`) > 0`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("good backend's req/s still %q after 10 s of traffic", admJS[string](t, tab, rateShown))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A rejected reload shows its error text with the file position.
	broken := strings.Replace(admConfig(s, ""), `    path_prefix = "/good"`, `    path_prefix = "/good"
    bogus       = 1`, 1)
	admWriteFile(t, s.path, broken)
	wantPos := fmt.Sprintf("proxy.hcl:%d,5", admLineOf(t, broken, "bogus"))
	if code, body := admDo(t, s.client, http.MethodPost, s.adminURL+"/reload", nil); code != http.StatusUnprocessableEntity {
		t.Fatalf("POST /reload with a broken file = %d %q", code, body)
	}
	admWaitJS(t, tab, 5*time.Second, "the failed reload with "+wantPos,
		`!document.getElementById('reload-error').hidden && document.getElementById('reload-result').textContent === 'FAILED' && `+
			`document.getElementById('reload-error-text').textContent.includes('`+wantPos+`')`)

	shot, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(admDashboardScreenshot, shot, 0o644); err != nil {
		t.Fatalf("write screenshot: %v", err)
	}

	// A phone-sized screen: nothing overflows sideways, the state still reads.
	if err := chromedp.Do(tab, chromedp.EmulateViewport(375, 812)); err != nil {
		t.Fatal(err)
	}
	admWaitJS(t, tab, 5*time.Second, "the page to fit 375 px without horizontal scrolling",
		`document.documentElement.scrollWidth <= window.innerWidth && getComputedStyle(document.querySelector('table.cards-sm thead')).display === 'none'`)
	if !admJS[bool](t, tab, flaky+`.getBoundingClientRect().width <= window.innerWidth && `+flaky+`.innerText.includes('OPEN')`) {
		t.Error("the open breaker's row does not fit or read on a narrow screen")
	}
	problems.check(t)

	// The proxy goes away: the page must say so rather than show stale data.
	problems.expectNetworkFailures()
	s.client.CloseIdleConnections()
	shutdownCtx, cancelShutdown := context.WithTimeout(ctx, 10*time.Second)
	defer cancelShutdown()
	if err := s.rt.Shutdown(shutdownCtx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	admWaitJS(t, tab, 10*time.Second, "the disconnected state",
		`document.getElementById('conn-text').textContent === 'disconnected' && !document.getElementById('disconnected').hidden && `+
			`document.body.classList.contains('stale')`)
	problems.check(t)
}
