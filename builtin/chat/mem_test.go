package chat

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The memory measurement is opt-in: it opens thousands of connections.
const (
	memEnv        = "SWITCHYARD_CHAT_MEM"         // "1" runs TestIdleClientMemory
	memClientsEnv = "SWITCHYARD_CHAT_MEM_CLIENTS" // how many clients (default 4000)
	memChildEnv   = "SWITCHYARD_CHAT_MEM_CHILD"   // set in the child: server address
	memRoomSize   = 50
	// memBudget is the design target for one idle client, server side.
	memBudget = 20 << 10
)

// TestIdleClientMemory measures the server-side cost of an idle client. The
// clients run in a child process (this test binary, re-executed), so the
// figure holds only the server's structures and each process stays within
// its own file descriptor limit: 10,000 clients take 10,000 descriptors on
// each side.
//
//	SWITCHYARD_CHAT_MEM=1 SWITCHYARD_CHAT_MEM_CLIENTS=10000 go test -run IdleClientMemory -v ./builtin/chat
func TestIdleClientMemory(t *testing.T) {
	if os.Getenv(memEnv) != "1" {
		t.Skipf("set %s=1 to measure the memory of idle clients", memEnv)
	}
	if raceEnabled {
		t.Skip("the race detector inflates memory; run without -race")
	}
	n := 4000
	if v := os.Getenv(memClientsEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive count", memClientsEnv, v)
		}
	}
	s, addr := startServer(t, Options{MaxClientsPerRoom: memRoomSize}, nil)
	// Let the server's own goroutines settle before the baseline.
	baseGoroutines := runtime.NumGoroutine()
	baseHeap, baseStack := settledMemory()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), memChildEnv+"="+addr, memClientsEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	childDone := make(chan error, 1)
	go func() {
		// The child reports once, then stays silent until its stdin closes.
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("child said %q", line)
		}
		io.Copy(io.Discard, stdout)
		childDone <- err
	}()
	defer func() {
		stdin.Close()
		select {
		case <-childDone:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-childDone
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("child: %v", err)
		}
	}()

	waitFor(t, fmt.Sprintf("%d clients", n), 2*time.Minute, func() bool { return s.Clients() == n })
	// Idle means no writer goroutine left: one goroutine per client, plus
	// the one reading the child's stdout.
	waitFor(t, "the writers to finish", 30*time.Second, func() bool {
		return runtime.NumGoroutine() <= baseGoroutines+n+1
	})
	heap, stack := settledMemory()
	perHeap := (float64(heap) - float64(baseHeap)) / float64(n)
	perStack := (float64(stack) - float64(baseStack)) / float64(n)
	t.Logf("%d idle clients: %.0f B heap + %.0f B stack = %.2f KiB per client (goroutines: %d over baseline)",
		n, perHeap, perStack, (perHeap+perStack)/1024, runtime.NumGoroutine()-baseGoroutines-1)
	if perHeap+perStack > memBudget {
		t.Errorf("%.0f bytes per idle client, over the %d-byte budget", perHeap+perStack, memBudget)
	}

	stdin.Close()
	waitFor(t, "the clients to leave", time.Minute, func() bool { return s.Clients() == 0 && s.Rooms() == 0 })
}

// settledMemory returns in-use heap and stack bytes after garbage collection.
// Several cycles, because each one shrinks an oversized goroutine stack by
// half at most.
func settledMemory() (heap, stack uint64) {
	var m runtime.MemStats
	for range 4 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.HeapInuse, m.StackInuse
}

// runMemChild is the client side of TestIdleClientMemory: it joins n idle
// clients to the server at addr, answering pings, says "ready" on stdout and
// leaves when stdin closes. It returns the exit status.
func runMemChild(addr string) int {
	n, err := strconv.Atoi(os.Getenv(memClientsEnv))
	if err != nil {
		fmt.Fprintf(os.Stderr, "mem child: %s: %v\n", memClientsEnv, err)
		return 2
	}
	dialer := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 512, WriteBufferSize: 512}
	conns := make([]*websocket.Conn, n)
	var readers sync.WaitGroup
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		readers.Wait()
	}()

	var dialers sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := range conns {
		sem <- struct{}{}
		dialers.Add(1)
		go func() {
			defer dialers.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, _, err := dialer.DialContext(ctx, roomURL(addr, fmt.Sprintf("r%d", i/memRoomSize), fmt.Sprintf("c%d", i)), nil)
			if err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
				return
			}
			conns[i] = c
		}()
	}
	dialers.Wait()
	close(errs)
	if err := <-errs; err != nil {
		fmt.Fprintf(os.Stderr, "mem child: %v\n", err)
		return 1
	}
	for _, c := range conns {
		readers.Add(1)
		go func() {
			defer readers.Done()
			// Reading answers pings; the events themselves do not matter.
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return 0
}
