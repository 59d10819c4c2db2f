// Command load_test runs C concurrent keep-alive clients against one URL for
// a fixed duration and reports throughput, latency percentiles, status codes
// and errors. It only talks to loopback addresses unless -allow-remote is set.
//
// Usage:
//
//	go run ./examples/load_test -url http://127.0.0.1:8080/ -c 32 -d 10s
//	go run ./examples/load_test -url http://127.0.0.1:8080/api/ -host api.localhost -c 8 -d 30s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Limits that keep an accidental invocation from becoming a flood.
const (
	maxDuration = 5 * time.Minute
	maxClients  = 1024
)

// errorPause is how long a client waits after a failed request, so a server
// that is down is not hammered by a CPU-bound loop of instant failures.
const errorPause = 10 * time.Millisecond

var errNotLoopback = errors.New("refusing a non-loopback address (pass -allow-remote to allow it)")

type config struct {
	url         string
	host        string
	clients     int
	duration    time.Duration
	timeout     time.Duration
	allowRemote bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit code: 0 after a run (even
// one with failed requests: they are part of the report), 1 when no request
// completed at all, 2 for bad flags.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "load_test:", err)
		}
		return 2
	}
	fmt.Fprintf(stdout, "GET %s with %d clients for %v\n", cfg.url, cfg.clients, cfg.duration)
	res := load(ctx, cfg)
	res.print(stdout)
	if res.completed() == 0 {
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("load_test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.StringVar(&cfg.url, "url", "http://127.0.0.1:8080/", "URL to GET")
	fs.StringVar(&cfg.host, "host", "", "Host header to send instead of the URL's host")
	fs.IntVar(&cfg.clients, "c", 32, "concurrent clients (at most "+strconv.Itoa(maxClients)+")")
	fs.DurationVar(&cfg.duration, "d", 10*time.Second, "test duration (at most "+maxDuration.String()+")")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "timeout per request")
	fs.BoolVar(&cfg.allowRemote, "allow-remote", false, "allow hosts other than loopback")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	u, err := url.Parse(cfg.url)
	if err != nil {
		return config{}, fmt.Errorf("-url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return config{}, fmt.Errorf("-url %q: want http://HOST[:PORT]/PATH", cfg.url)
	}
	if !cfg.allowRemote && !isLoopbackHost(u.Hostname()) {
		return config{}, fmt.Errorf("-url host %q: %w", u.Hostname(), errNotLoopback)
	}
	if cfg.clients < 1 || cfg.clients > maxClients {
		return config{}, fmt.Errorf("-c %d: want 1..%d", cfg.clients, maxClients)
	}
	if cfg.duration <= 0 || cfg.duration > maxDuration {
		return config{}, fmt.Errorf("-d %v: want more than 0 and at most %v", cfg.duration, maxDuration)
	}
	if cfg.timeout <= 0 {
		return config{}, fmt.Errorf("-timeout %v: want a positive duration", cfg.timeout)
	}
	return cfg, nil
}

// isLoopbackHost accepts loopback IP literals, "localhost" and names under
// ".localhost" (RFC 6761 reserves them for loopback). Other names are
// refused up front; dialLoopbackOnly enforces the rule again on the address
// actually dialled.
func isLoopbackHost(host string) bool {
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// dialLoopbackOnly is a net.Dialer Control hook: it runs after name
// resolution, just before connect, so neither DNS nor a redirect can take the
// test off this machine.
func dialLoopbackOnly(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: %w", address, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("dial %s %s: %w", network, address, errNotLoopback)
	}
	return nil
}

func newClient(cfg config) *http.Client {
	dialer := &net.Dialer{Timeout: cfg.timeout, KeepAlive: 30 * time.Second}
	if !cfg.allowRemote {
		dialer.Control = dialLoopbackOnly
	}
	return &http.Client{
		Timeout: cfg.timeout,
		Transport: &http.Transport{
			DialContext:         dialer.DialContext,
			MaxIdleConnsPerHost: cfg.clients, // one kept-alive connection per client
			IdleConnTimeout:     90 * time.Second,
		},
		// Redirects are answers too: count them rather than follow them.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// result is what one client saw; results of all clients merge into one.
type result struct {
	latency  histogram
	statuses map[int]uint64
	backends map[string]uint64
	errors   map[string]uint64
	elapsed  time.Duration
}

func newResult() *result {
	return &result{
		statuses: make(map[int]uint64),
		backends: make(map[string]uint64),
		errors:   make(map[string]uint64),
	}
}

func (r *result) merge(o *result) {
	r.latency.merge(&o.latency)
	for k, v := range o.statuses {
		r.statuses[k] += v
	}
	for k, v := range o.backends {
		r.backends[k] += v
	}
	for k, v := range o.errors {
		r.errors[k] += v
	}
}

func (r *result) completed() uint64 { return r.latency.total }

// load runs the clients until cfg.duration passes or ctx is cancelled.
// Requests cut short by the end of the run count neither as answers nor as
// errors.
func load(ctx context.Context, cfg config) *result {
	ctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	client := newClient(cfg)
	defer client.CloseIdleConnections()

	perClient := make([]*result, cfg.clients)
	var wg sync.WaitGroup
	began := time.Now()
	for i := range perClient {
		perClient[i] = newResult()
		wg.Go(func() { hammer(ctx, client, cfg, perClient[i]) })
	}
	wg.Wait()

	total := newResult()
	total.elapsed = time.Since(began)
	for _, r := range perClient {
		total.merge(r)
	}
	return total
}

// hammer sends requests one after another until ctx is done.
func hammer(ctx context.Context, client *http.Client, cfg config, res *result) {
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.url, nil)
		if err != nil {
			res.errors["build request: "+err.Error()]++
			return
		}
		if cfg.host != "" {
			req.Host = cfg.host
		}
		began := time.Now()
		resp, err := client.Do(req)
		if err == nil {
			// Reading the body to the end returns the connection to the pool.
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		took := time.Since(began)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			res.errors[classify(err)]++
			select {
			case <-ctx.Done():
			case <-time.After(errorPause):
			}
			continue
		}
		res.latency.record(took)
		res.statuses[resp.StatusCode]++
		res.backends[resp.Header.Get("X-Backend")]++
	}
}

// classify turns an error into a short stable label, so thousands of
// failures print as a few lines instead of thousands of addresses.
func classify(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, errNotLoopback):
		return "non-loopback address refused"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed mid-exchange"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err.Error()
	}
	return err.Error()
}

func (r *result) print(w io.Writer) {
	n := r.completed()
	rate := 0.0
	if r.elapsed > 0 {
		rate = float64(n) / r.elapsed.Seconds()
	}
	fmt.Fprintf(w, "requests  %d in %.2fs = %.1f req/s\n", n, r.elapsed.Seconds(), rate)
	if n > 0 {
		fmt.Fprintf(w, "latency   p50 %s  p90 %s  p99 %s  max %s\n",
			ms(r.latency.percentile(0.50)), ms(r.latency.percentile(0.90)),
			ms(r.latency.percentile(0.99)), ms(r.latency.max))
	}

	codes := make([]int, 0, len(r.statuses))
	for c := range r.statuses {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	fmt.Fprint(w, "status   ")
	for _, c := range codes {
		fmt.Fprintf(w, " %d=%d", c, r.statuses[c])
	}
	fmt.Fprintln(w)

	backends := make([]string, 0, len(r.backends))
	for b := range r.backends {
		backends = append(backends, b)
	}
	slices.Sort(backends)
	fmt.Fprint(w, "backends ")
	for _, b := range backends {
		label := b
		if label == "" {
			label = "(no X-Backend)"
		}
		fmt.Fprintf(w, " %s=%d", label, r.backends[b])
	}
	fmt.Fprintln(w)

	var failed uint64
	kinds := make([]string, 0, len(r.errors))
	for k, v := range r.errors {
		failed += v
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	fmt.Fprintf(w, "errors    %d\n", failed)
	for _, k := range kinds {
		fmt.Fprintf(w, "          %d × %s\n", r.errors[k], k)
	}
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
