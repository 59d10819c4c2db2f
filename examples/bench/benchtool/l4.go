package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Bounds that keep a mistyped flag from turning into an unbounded run.
const (
	maxRunDuration = 2 * time.Minute
	maxConns       = 20000
	maxBulkMiB     = 16 << 10
	dialTimeout    = 5 * time.Second
	// ioGrace is how long past the end of a run a blocked read or write may
	// take before the connection is given up as stuck (a backstop: the end
	// of the run expires deadlines itself).
	ioGrace = 5 * time.Second
)

// PingPongResult is what `benchtool pingpong` prints as JSON.
type PingPongResult struct {
	Conns      int     `json:"conns"`
	Size       int     `json:"size"`
	Seconds    float64 `json:"seconds"`
	RoundTrips int64   `json:"round_trips"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
}

func runPingPong(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pingpong", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "proxy address (host:port) in front of a TCP echo server")
	conns := fs.Int("conns", 64, "concurrent connections")
	size := fs.Int("size", 64, "bytes per request and per response")
	duration := fs.Duration("d", 5*time.Second, "how long to run")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := checkRun(*addr, *conns, *duration); err != nil || *size < 1 || *size > copyBufferSize {
		fmt.Fprintf(stderr, "pingpong: bad flags: %v (size 1..%d)\n", err, copyBufferSize)
		return 2
	}
	res := pingPong(ctx, *addr, *conns, *size, *duration)
	return printJSON(stdout, stderr, res, res.RoundTrips > 0)
}

// pingPong opens conns connections to addr, then on each sends size bytes
// and waits for them to come back, over and over until duration is up.
func pingPong(ctx context.Context, addr string, conns, size int, duration time.Duration) PingPongResult {
	res := PingPongResult{Conns: conns, Size: size}
	var errs errorTally
	open := make([]net.Conn, 0, conns)
	for range conns {
		c, err := net.DialTimeout("tcp", addr, dialTimeout)
		if err != nil {
			errs.add(fmt.Errorf("dial %s: %w", addr, err))
			continue
		}
		open = append(open, c)
	}
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()

	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	start := time.Now()
	end := start.Add(duration)
	counts := make([]int64, len(open))
	var wg sync.WaitGroup
	for i, c := range open {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[i] = pingPongConn(ctx, c, size, end, &errs)
		}()
	}
	// At the end (or on SIGINT) the round trips in flight are abandoned:
	// expiring the deadlines unblocks them at once.
	stopper := context.AfterFunc(ctx, func() {
		for _, c := range open {
			c.SetDeadline(time.Now())
		}
	})
	wg.Wait()
	stopper()
	res.Seconds = time.Since(start).Seconds()
	for _, n := range counts {
		res.RoundTrips += n
	}
	res.Errors, res.FirstError = errs.summary()
	return res
}

// pingPongConn runs round trips on c until ctx ends and returns how many
// completed with the right bytes.
func pingPongConn(ctx context.Context, c net.Conn, size int, end time.Time, errs *errorTally) int64 {
	req := bytes.Repeat([]byte{'p'}, size)
	resp := make([]byte, size)
	if err := c.SetDeadline(end.Add(ioGrace)); err != nil {
		errs.add(err)
		return 0
	}
	var n int64
	for ctx.Err() == nil {
		req[0] = byte(n) // so a stale or shifted answer does not pass
		if _, err := c.Write(req); err != nil {
			if ctx.Err() == nil {
				errs.add(fmt.Errorf("write: %w", err))
			}
			return n
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			if ctx.Err() == nil {
				errs.add(fmt.Errorf("read: %w", err))
			}
			return n
		}
		if !bytes.Equal(req, resp) {
			errs.add(errors.New("echo answered different bytes"))
			return n
		}
		n++
	}
	return n
}

// BulkResult is what `benchtool bulk` prints as JSON.
type BulkResult struct {
	Bytes      uint64  `json:"bytes"`
	Acked      uint64  `json:"acked"`
	Seconds    float64 `json:"seconds"`
	MiBPerSec  float64 `json:"mib_per_s"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
}

func runBulk(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bulk", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "proxy address (host:port) in front of a bulk sink")
	mib := fs.Int("mib", 1024, "MiB to push through one connection")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := checkRun(*addr, 1, *timeout); err != nil || *mib < 1 || *mib > maxBulkMiB {
		fmt.Fprintf(stderr, "bulk: bad flags: %v (mib 1..%d)\n", err, maxBulkMiB)
		return 2
	}
	res := bulk(ctx, *addr, uint64(*mib)<<20, *timeout)
	return printJSON(stdout, stderr, res, res.Errors == 0)
}

// bulk pushes n bytes through one connection to a sink and times the trip
// from the first byte to the sink's acknowledgement of the last.
func bulk(ctx context.Context, addr string, n uint64, timeout time.Duration) BulkResult {
	res := BulkResult{Bytes: n}
	fail := func(err error) BulkResult {
		res.Errors, res.FirstError = 1, err.Error()
		return res
	}
	c, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return fail(fmt.Errorf("dial %s: %w", addr, err))
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()

	start := time.Now()
	if err := c.SetDeadline(start.Add(timeout)); err != nil {
		return fail(err)
	}
	var hdr [sinkHeaderSize]byte
	binary.BigEndian.PutUint64(hdr[:], n)
	if _, err := c.Write(hdr[:]); err != nil {
		return fail(fmt.Errorf("write header: %w", err))
	}
	buf := bytes.Repeat([]byte("switchyard-bulk-"), copyBufferSize/16)
	for left := n; left > 0; {
		chunk := buf[:min(left, uint64(len(buf)))]
		if _, err := c.Write(chunk); err != nil {
			return fail(fmt.Errorf("write after %d bytes: %w", n-left, err))
		}
		left -= uint64(len(chunk))
	}
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return fail(fmt.Errorf("read acknowledgement: %w", err))
	}
	elapsed := time.Since(start)
	res.Acked = binary.BigEndian.Uint64(hdr[:])
	res.Seconds = elapsed.Seconds()
	res.MiBPerSec = float64(res.Acked) / (1 << 20) / res.Seconds
	if res.Acked != n {
		return fail(fmt.Errorf("sink acknowledged %d of %d bytes", res.Acked, n))
	}
	return res
}

// checkRun validates the flags every client shares.
func checkRun(addr string, conns int, duration time.Duration) error {
	if err := requireLoopback(addr); err != nil {
		return err
	}
	if conns < 1 || conns > maxConns {
		return fmt.Errorf("conns %d outside 1..%d", conns, maxConns)
	}
	if duration <= 0 || duration > maxRunDuration {
		return fmt.Errorf("duration %v outside (0, %v]", duration, maxRunDuration)
	}
	return nil
}

// printJSON writes v as one line of JSON; the exit code is 0 when ok.
func printJSON(stdout, stderr io.Writer, v any, ok bool) int {
	if err := json.NewEncoder(stdout).Encode(v); err != nil {
		fmt.Fprintf(stderr, "write result: %v\n", err)
		return 1
	}
	if !ok {
		return 1
	}
	return 0
}

// errorTally counts errors from many goroutines and keeps the first.
type errorTally struct {
	mu    sync.Mutex
	count int
	first error
}

func (t *errorTally) add(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.count++
	if t.first == nil {
		t.first = err
	}
}

func (t *errorTally) summary() (int, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.first == nil {
		return t.count, ""
	}
	return t.count, t.first.Error()
}
