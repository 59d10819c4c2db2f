package upstream

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// maxHealthBody bounds how much of a health response is read before closing.
const maxHealthBody = 64 << 10

// RunHealthChecks runs the pool's active health checks, one goroutine per
// backend, until ctx is done, and returns only after all of them exited. The
// first check runs at once. Without a health_check block it returns
// immediately: passive health needs no goroutine.
func (p *Pool) RunHealthChecks(ctx context.Context) {
	if p.health == nil {
		return
	}
	cfg := *p.health
	// A transport of our own without keep-alive: checks must open a fresh
	// connection each time (a pooled one could hide a dead listener) and
	// leave no idle connections behind when the pool is retired.
	transport := &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		DialContext:       (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport: transport,
		// A redirect is not a 2xx: judge the first answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	var wg sync.WaitGroup
	for _, m := range p.members {
		checker := &healthChecker{backend: m.Backend, cfg: cfg, client: client, url: "http://" + m.Backend.address + cfg.Path}
		wg.Go(func() { checker.run(ctx) })
	}
	wg.Wait()
}

type healthChecker struct {
	backend *Backend
	cfg     HealthCheckConfig
	client  *http.Client
	url     string // for HTTP checks; the Host header is the address
}

func (c *healthChecker) run(ctx context.Context) {
	ticker := time.NewTicker(c.cfg.Interval)
	defer ticker.Stop()
	for {
		err := c.check(ctx)
		if ctx.Err() != nil {
			return // the result of a check cut short by shutdown means nothing
		}
		if err != nil {
			c.backend.state.log.Debug("health check failed", "error", err)
		}
		c.backend.state.recordCheck(err, c.cfg)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// check probes the backend once within the configured timeout.
func (c *healthChecker) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if c.cfg.Path == "" {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.backend.address)
		if err != nil {
			return fmt.Errorf("tcp connect: %w", err)
		}
		return conn.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("User-Agent", "switchyard-health-check")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("http get: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxHealthBody))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("http get %s: status %d", c.cfg.Path, resp.StatusCode)
	}
	return nil
}
