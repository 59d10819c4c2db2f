package httpproxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"testing"
	"time"

	"switchyard/listeners/http1"
)

// FuzzProxyFraming is the differential smuggling fuzzer of the security
// issue: random framing fields (Content-Length, Transfer-Encoding,
// Connection nominations, duplicates) and bodies (chunk extensions,
// trailers, a second request hidden in the body) go through a real
// listener of each engine to a backend that parses with net/http, as a
// typical backend does. The backend must never see a request the proxy's
// own parser did not frame, nor body bytes other than the ones it framed.
func FuzzProxyFraming(f *testing.F) {
	seeds := []struct {
		fields string
		body   string
	}{
		{"Content-Length: 5\r\n", "hello"},
		{"Connection: Content-Length\r\nContent-Length: 5\r\n", "hello"},
		{"Content-Length: 5\r\nContent-Length: 5\r\n", "hello"},
		{"Content-Length: 5, 5\r\n", "hello"},
		{"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"},
		{"Transfer-Encoding: chunked\r\n", "5;ext=1\r\nhello\r\n0\r\nContent-Length: 99\r\n\r\n"},
		{"Transfer-Encoding: chunked\r\nConnection: Transfer-Encoding\r\n", "5\r\nhello\r\n0\r\n\r\n"},
		{"Transfer-Encoding: gzip, chunked\r\n", "5\r\nhello\r\n0\r\n\r\n"},
		{"Transfer-Encoding: chunked\r\n", "5\nhello\n0\n\n"},
		{"Content-Length: 0\r\n", ""},
		{"Connection: keep-alive, Host\r\nContent-Length: 2\r\n", "ab"},
	}
	for _, s := range seeds {
		f.Add(s.fields, []byte(s.body))
	}
	backend := startRecordingBackend(f)
	proxies := map[string]Listener{}
	for _, e := range engines {
		proxies[e] = securityProxy(f, e, backend, Settings{ReadHeaderTimeout: time.Second, RequestBodyTimeout: time.Second}, nil)
	}
	f.Fuzz(func(t *testing.T, fields string, body []byte) {
		smuggled := "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
		raw := append([]byte("POST /fuzz HTTP/1.1\r\nHost: x\r\n"+fields+"\r\n"), body...)
		raw = append(raw, smuggled...)
		want := frameRequests(raw, 3)
		for _, e := range engines {
			backend.reset()
			sendAndDrain(t, proxies[e], raw, len(want))
			time.Sleep(5 * time.Millisecond)
			got := backend.requests()
			if len(got) > len(want) {
				t.Fatalf("%s: backend saw %d requests, the proxy's parser frames %d: got %+v want %+v", e, len(got), len(want), got, want)
			}
			for i, r := range got {
				if r.Target != want[i].target || r.Body != want[i].body {
					t.Fatalf("%s: request %d reached the backend as %s %q body %q; framed as %q body %q",
						e, i, r.Method, r.Target, r.Body, want[i].target, want[i].body)
				}
			}
		}
	})
}

type framedRequest struct{ target, body string }

// frameRequests reads up to max requests from raw the way the proxy's
// parser frames them, stopping at the first one it refuses or that is
// incomplete.
func frameRequests(raw []byte, max int) []framedRequest {
	var out []framedRequest
	var req http1.Request
	for len(out) < max && len(raw) > 0 {
		n, err := http1.ParseRequest(raw, &req, http1.DefaultLimits)
		if err != nil {
			return out
		}
		target := string(req.Target)
		rest := raw[n:]
		var body []byte
		switch {
		case req.Chunked:
			var sc http1.ChunkedScanner
			m, done, err := sc.Feed(rest)
			if err != nil || !done {
				return out
			}
			decoded, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(rest[:m])))
			if err != nil {
				return out
			}
			body, rest = decoded, rest[m:]
		case req.ContentLength > 0:
			if int64(len(rest)) < req.ContentLength {
				return out
			}
			body, rest = rest[:req.ContentLength], rest[req.ContentLength:]
		}
		out = append(out, framedRequest{target: target, body: string(body)})
		if !req.KeepAlive || req.Upgrade {
			return out
		}
		raw = rest
	}
	return out
}

// sendAndDrain writes raw on a new connection and reads up to answers
// responses (at least one: a refusal is an answer too), stopping early when
// the proxy closes. A request the backend should not have seen arrives on
// the upstream connection right behind a framed one, so the caller waits
// a moment before it compares.
func sendAndDrain(t *testing.T, srv Listener, raw []byte, answers int) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", srv.Addr().String(), testDeadline)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Write(raw); err != nil {
		return
	}
	br := bufio.NewReader(conn)
	for i := 0; i < max(answers, 1); i++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.Close {
			return
		}
	}
}

func (b *recordingBackend) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reqs = nil
}
