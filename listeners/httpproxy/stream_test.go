package httpproxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"testing"
	"time"

	"switchyard/listeners/routing"
	"switchyard/upstream"
)

// patternReader generates size bytes of a fixed pattern on the fly, hashing
// them, and calls sample every sampleEvery bytes.
type patternReader struct {
	size, done  int64
	sampleEvery int64
	sample      func()
	crc         uint32
	// table holds the pattern (byte i is i%251) long enough that any
	// chunk of up to maxChunk bytes is one copy from it.
	table []byte
}

const maxChunk = 64 << 10

func (r *patternReader) Read(p []byte) (int, error) {
	if r.done >= r.size {
		return 0, io.EOF
	}
	if r.table == nil {
		r.table = make([]byte, 251+maxChunk)
		for i := range r.table {
			r.table[i] = byte(i % 251)
		}
	}
	n := min(int64(len(p)), r.size-r.done, maxChunk)
	if next := (r.done/r.sampleEvery + 1) * r.sampleEvery; r.done+n > next {
		n = next - r.done // stop at the sample point
	}
	start := r.done % 251
	copy(p[:n], r.table[start:start+n])
	r.crc = crc32.Update(r.crc, crc32.IEEETable, p[:n])
	r.done += n
	if r.done%r.sampleEvery == 0 && r.sample != nil {
		r.sample()
	}
	return int(n), nil
}

// heapWatch records how far HeapInuse rises above a baseline.
type heapWatch struct {
	base, peak uint64
}

func newHeapWatch() *heapWatch {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &heapWatch{base: ms.HeapInuse, peak: ms.HeapInuse}
}

func (w *heapWatch) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w.peak = max(w.peak, ms.HeapInuse)
}

func (w *heapWatch) growth() uint64 { return w.peak - w.base }

func TestLargeBodiesStreamBothWays(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 128 MiB")
	}
	const size = 64 << 20
	const maxGrowth = 16 << 20
	backend := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upload":
			h := crc32.NewIEEE()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"size": n, "crc": h.Sum32()})
		case "/download":
			n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
			// No Content-Length: a chunked, open-ended stream.
			_, _ = io.Copy(w, &patternReader{size: n, sampleEvery: 1 << 20})
		}
	}))
	pool := newPool(t, "blob", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, backend)
	target := upstreamTarget(t, "blob", pool)
	target.Timeout = time.Minute
	srv := startProxy(t, options(route(routing.Matcher{}, target)), Settings{}, nil)
	c := newClient(t)

	t.Run("upload", func(t *testing.T) {
		watch := newHeapWatch()
		body := &patternReader{size: size, sampleEvery: 4 << 20, sample: watch.sample}
		req, err := http.NewRequest(http.MethodPost, proxyURL(srv)+"/upload", bufio.NewReaderSize(body, 32<<10))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = -1 // chunked: nothing may rely on knowing the size
		resp, answer := do(t, c, req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d (%q)", resp.StatusCode, answer)
		}
		var got struct {
			Size int64
			CRC  uint32
		}
		if err := json.Unmarshal([]byte(answer), &got); err != nil {
			t.Fatal(err)
		}
		if got.Size != size || got.CRC != body.crc {
			t.Fatalf("backend got %d bytes crc %08x, want %d crc %08x", got.Size, got.CRC, size, body.crc)
		}
		t.Logf("upload of %d MiB: heap grew by %.1f MiB", size>>20, float64(watch.growth())/(1<<20))
		if watch.growth() > maxGrowth {
			t.Fatalf("heap grew by %d bytes during a %d byte upload: the body is being buffered", watch.growth(), size)
		}
	})

	t.Run("download", func(t *testing.T) {
		watch := newHeapWatch()
		resp, err := c.Get(fmt.Sprintf("%s/download?n=%d", proxyURL(srv), size))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ContentLength != -1 {
			t.Fatalf("status %d, length %d: want a 200 stream", resp.StatusCode, resp.ContentLength)
		}
		h := crc32.NewIEEE()
		buf := make([]byte, 32<<10)
		var n, nextSample int64
		for {
			k, err := resp.Body.Read(buf)
			h.Write(buf[:k])
			n += int64(k)
			if n >= nextSample {
				watch.sample()
				nextSample += 4 << 20
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("after %d bytes: %v", n, err)
			}
		}
		want := &patternReader{size: size, sampleEvery: 1 << 20}
		_, _ = io.Copy(io.Discard, want)
		if n != size || h.Sum32() != want.crc {
			t.Fatalf("got %d bytes crc %08x, want %d crc %08x", n, h.Sum32(), size, want.crc)
		}
		t.Logf("download of %d MiB: heap grew by %.1f MiB", size>>20, float64(watch.growth())/(1<<20))
		if watch.growth() > maxGrowth {
			t.Fatalf("heap grew by %d bytes during a %d byte download: the body is being buffered", watch.growth(), size)
		}
	})
}

func TestStreamedResponseIsFlushed(t *testing.T) {
	// A chunked answer reaches the client piece by piece, not at the end.
	next := make(chan struct{})
	backend := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 3 {
			fmt.Fprintf(w, "event %d\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	pool := newPool(t, "sse", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, backend)
	srv := startProxy(t, options(route(routing.Matcher{}, upstreamTarget(t, "sse", pool))), Settings{}, nil)
	resp, err := newClient(t).Get(proxyURL(srv) + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("event %d\n", i) {
			t.Fatalf("line %d: %q, %v", i, line, err)
		}
		next <- struct{}{}
	}
}

func TestRecordWrittenWhenResponseAborted(t *testing.T) {
	const sent = 1000
	backend := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Promise a megabyte, deliver a kilobyte, hang up.
		w.Header().Set("Content-Length", strconv.Itoa(1<<20))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(make([]byte, sent))
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	pool := newPool(t, "app", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, backend)
	rec := &recorder{}
	srv := startProxy(t, options(route(routing.Matcher{}, upstreamTarget(t, "broken", pool))), Settings{}, rec)

	// The client sees an error: at the latest when the body ends early, or
	// at once when the aborted answer was still in the server's buffer.
	if resp, err := newClient(t).Get(proxyURL(srv) + "/"); err == nil {
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatalf("client read %d bytes without error from a truncated response", n)
		}
	}
	r := rec.waitRecords(t, 1)[0]
	if r.Status != http.StatusOK || r.Bytes != sent || r.Route != "broken" || r.Backend != backend {
		t.Fatalf("record %+v: want status 200, %d bytes, route broken, backend %s", r, sent, backend)
	}
	b := backendOf(t, pool, backend)
	eventually(t, "the attempt to end", func() bool { return b.ActiveConnections() == 0 })
	if f := b.Failures(); f != 1 {
		t.Fatalf("backend failures %d, want 1: breaking off an answer is a failure", f)
	}
}

func TestClientLeavingMidBodyIsNotABackendFailure(t *testing.T) {
	backend := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// An endless stream until the proxy hangs up.
		buf := make([]byte, 16<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			if r.Context().Err() != nil {
				return
			}
		}
	}))
	pool := newPool(t, "app", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, backend)
	srv := startProxy(t, options(route(routing.Matcher{}, upstreamTarget(t, "stream", pool))), Settings{}, nil)

	resp, err := newClient(t).Get(proxyURL(srv) + "/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	b := backendOf(t, pool, backend)
	eventually(t, "the attempt to end", func() bool { return b.ActiveConnections() == 0 })
	if f := b.Failures(); f != 0 {
		t.Fatalf("backend failures %d after the client left, want 0", f)
	}
}

func TestBrokenUploadIsNotABackendFailure(t *testing.T) {
	tests := []struct {
		name    string
		request string
		// wantStatus is the answer the client gets; 0 when it has gone.
		wantStatus int
	}{
		{
			name:    "malformed chunked body",
			request: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
			// The client is still there and gets told.
			wantStatus: http.StatusBadRequest,
		},
		{
			name:    "client stops sending mid-body",
			request: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			backend := startBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
			}))
			pool := newPool(t, "app", upstream.StrategyRoundRobin, upstream.BreakerConfig{}, backend)
			srv := startProxy(t, options(route(routing.Matcher{}, upstreamTarget(t, "up", pool))), Settings{}, nil)

			conn := dial(t, srv)
			if _, err := io.WriteString(conn, tc.request); err != nil {
				t.Fatal(err)
			}
			if tc.wantStatus != 0 {
				resp, body := readResponse(t, conn, bufio.NewReader(conn))
				if resp.StatusCode != tc.wantStatus {
					t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tc.wantStatus)
				}
				jsonError(t, resp, body)
			} else if err := conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			b := backendOf(t, pool, backend)
			eventually(t, "the backend to be tried", func() bool { return b.Requests() == 1 })
			eventually(t, "the attempt to end", func() bool { return b.ActiveConnections() == 0 })
			if f := b.Failures(); f != 0 {
				t.Fatalf("backend failures %d after a broken upload, want 0", f)
			}
		})
	}
}
