package httpproxy

import (
	"io"
	"net/http"
	"testing"

	"switchyard/listeners/routing"
	"switchyard/upstream"
)

// BenchmarkProxyExchange measures one proxied GET end to end over loopback
// keep-alive connections: client → proxy → backend and back, all in this
// process (so allocs/op include the client and the backend).
func BenchmarkProxyExchange(b *testing.B) {
	payload := []byte("hello from the backend\n")
	backend := startBackend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(payload)
	}))
	pool := newPool(b, "app", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, backend)
	srv := startProxy(b, options(route(routing.Matcher{PathPrefix: "/"}, upstreamTarget(b, "all", pool))), Settings{}, nil)
	c := newClient(b)
	req, err := http.NewRequest(http.MethodGet, proxyURL(srv)+"/bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 256)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.ReadFull(resp.Body, buf[:len(payload)])
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n != len(payload) {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
	}
}

// BenchmarkDirectExchange is the same exchange without the proxy, the
// baseline BenchmarkProxyExchange is read against.
func BenchmarkDirectExchange(b *testing.B) {
	payload := []byte("hello from the backend\n")
	backend := startBackend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(payload)
	}))
	c := newClient(b)
	req, err := http.NewRequest(http.MethodGet, "http://"+backend+"/bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
