// Command simple_client sends N GET requests over keep-alive connections and
// shows, for each, the status, the X-Backend that answered and the latency,
// then how many answers came from each backend.
//
// Usage:
//
//	go run ./examples/simple_client -url http://127.0.0.1:8080/ -n 10
//	go run ./examples/simple_client -url http://127.0.0.1:8080/api/ -host api.localhost -n 20
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"time"
)

// noBackend labels answers that carry no X-Backend header (for example the
// proxy's own 404 or 503).
const noBackend = "(none)"

type config struct {
	url     string
	host    string
	n       int
	timeout time.Duration
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit code: 0 when every request
// got an answer, 1 when some failed, 2 for bad flags.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "simple_client:", err)
		}
		return 2
	}

	client := &http.Client{
		Timeout: cfg.timeout,
		// One idle connection is all a sequential client needs; it is reused
		// for every request unless the server closes it. No HTTP_PROXY: the
		// point is to talk to switchyard directly.
		Transport: &http.Transport{MaxIdleConnsPerHost: 1},
	}
	defer client.CloseIdleConnections()

	perBackend := make(map[string]int)
	failed := 0
	for i := 1; i <= cfg.n && ctx.Err() == nil; i++ {
		status, backend, took, err := fetch(ctx, client, cfg)
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "%4d  error  %v\n", i, err)
			continue
		}
		perBackend[backend]++
		fmt.Fprintf(stdout, "%4d  %d  %-16s %9s\n", i, status, backend, formatLatency(took))
	}

	answered := 0
	for _, n := range perBackend {
		answered += n
	}
	fmt.Fprintf(stdout, "\n%d answered, %d failed\n", answered, failed)
	backends := make([]string, 0, len(perBackend))
	for b := range perBackend {
		backends = append(backends, b)
	}
	slices.Sort(backends)
	for _, b := range backends {
		fmt.Fprintf(stdout, "  %-16s %d\n", b, perBackend[b])
	}
	if failed > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("simple_client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.StringVar(&cfg.url, "url", "http://127.0.0.1:8080/", "URL to GET")
	fs.StringVar(&cfg.host, "host", "", "Host header to send instead of the URL's host")
	fs.IntVar(&cfg.n, "n", 10, "number of requests")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "timeout per request")
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
	if cfg.n < 1 {
		return config{}, fmt.Errorf("-n %d: want at least 1", cfg.n)
	}
	if cfg.timeout <= 0 {
		return config{}, fmt.Errorf("-timeout %v: want a positive duration", cfg.timeout)
	}
	return cfg, nil
}

// fetch sends one GET and reads the whole body, so the connection goes back
// to the pool and the latency includes the body.
func fetch(ctx context.Context, client *http.Client, cfg config) (status int, backend string, took time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.url, nil)
	if err != nil {
		return 0, "", 0, fmt.Errorf("build request: %w", err)
	}
	if cfg.host != "" {
		req.Host = cfg.host
	}
	began := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, "", 0, fmt.Errorf("read body: %w", err)
	}
	took = time.Since(began)
	backend = resp.Header.Get("X-Backend")
	if backend == "" {
		backend = noBackend
	}
	return resp.StatusCode, backend, took, nil
}

func formatLatency(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
