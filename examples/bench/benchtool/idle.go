package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// IdleResult is what `benchtool idle` prints as JSON.
type IdleResult struct {
	Requested   int     `json:"requested"`
	Opened      int     `json:"opened"`
	OpenSeconds float64 `json:"open_seconds"`
	PIDs        []int   `json:"pids"`
	RSSBefore   uint64  `json:"rss_before_kib"`
	RSSOpen     uint64  `json:"rss_open_kib"`  // right after the last response
	RSSAfter    uint64  `json:"rss_after_kib"` // after the settle pause: the one reported
	KiBPerConn  float64 `json:"kib_per_conn"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
}

func runIdle(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "HTTP proxy address (host:port)")
	conns := fs.Int("conns", 10000, "keep-alive connections to open and leave idle")
	parallel := fs.Int("parallel", 64, "connections being opened at once")
	pid := fs.Int("pid", 0, "proxy process (tree root) whose RSS is measured")
	settle := fs.Duration("settle", time.Second, "pause between the last response and the RSS reading")
	timeout := fs.Duration("timeout", time.Minute, "give up opening connections after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := checkRun(*addr, *conns, *timeout); err != nil || *parallel < 1 || *settle < 0 || *settle > maxRunDuration {
		fmt.Fprintf(stderr, "idle: bad flags: %v\n", err)
		return 2
	}
	res, err := idle(ctx, idleConfig{
		addr: *addr, conns: *conns, parallel: *parallel, pid: *pid,
		settle: *settle, timeout: *timeout, procDir: "/proc",
	})
	if err != nil {
		fmt.Fprintf(stderr, "idle: %v\n", err)
		return 1
	}
	return printJSON(stdout, stderr, res, res.Opened == res.Requested)
}

type idleConfig struct {
	addr     string
	conns    int
	parallel int
	pid      int
	settle   time.Duration
	timeout  time.Duration
	procDir  string
}

// idle reads the proxy's RSS, opens cfg.conns connections that each make one
// keep-alive request, reads the RSS again once all are idle, and closes them.
func idle(ctx context.Context, cfg idleConfig) (IdleResult, error) {
	res := IdleResult{Requested: cfg.conns}
	before, err := treeUsage(cfg.procDir, cfg.pid)
	if err != nil {
		return res, fmt.Errorf("rss before: %w", err)
	}
	res.RSSBefore = before.RSSKiB

	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	var (
		errs errorTally
		mu   sync.Mutex
		open = make([]net.Conn, 0, cfg.conns)
		wg   sync.WaitGroup
		next = make(chan struct{})
	)
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	start := time.Now()
	for range cfg.parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				c, err := openIdle(ctx, cfg.addr)
				if err != nil {
					errs.add(err)
					continue
				}
				mu.Lock()
				open = append(open, c)
				mu.Unlock()
			}
		}()
	}
feed:
	for range cfg.conns {
		select {
		case next <- struct{}{}:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	res.OpenSeconds = time.Since(start).Seconds()
	res.Opened = len(open)
	res.Errors, res.FirstError = errs.summary()
	if res.Requested > res.Opened && res.Errors == 0 {
		res.Errors = res.Requested - res.Opened // cut short by the timeout
		res.FirstError = "timed out opening connections"
	}

	atOpen, err := treeUsage(cfg.procDir, cfg.pid)
	if err != nil {
		return res, fmt.Errorf("rss with connections open: %w", err)
	}
	res.RSSOpen = atOpen.RSSKiB
	select {
	case <-time.After(cfg.settle):
	case <-ctx.Done():
	}
	after, err := treeUsage(cfg.procDir, cfg.pid)
	if err != nil {
		return res, fmt.Errorf("rss after settling: %w", err)
	}
	res.PIDs = after.PIDs
	res.RSSAfter = after.RSSKiB
	if res.Opened > 0 {
		res.KiBPerConn = (float64(res.RSSAfter) - float64(res.RSSBefore)) / float64(res.Opened)
	}
	return res, nil
}

// openIdle dials addr, makes one GET and reads the whole answer, leaving the
// connection open and idle.
func openIdle(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	deadline, _ := ctx.Deadline()
	if err := c.SetDeadline(deadline); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: benchtool-idle\r\n\r\n", addr); err != nil {
		c.Close()
		return nil, fmt.Errorf("write request: %w", err)
	}
	// A small reader: the client's memory is not what is measured, but
	// 10,000 default-sized ones would crowd the load core.
	br := bufio.NewReaderSize(c, 1024)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("read response: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK || resp.Close {
		c.Close()
		return nil, fmt.Errorf("answer %d (close=%v), want a keep-alive 200", resp.StatusCode, resp.Close)
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
