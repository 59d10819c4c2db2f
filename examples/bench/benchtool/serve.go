package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
)

// sinkHeaderSize is the size of the big-endian byte count that starts every
// bulk transfer and of the sink's acknowledgement.
const sinkHeaderSize = 8

// copyBufferSize is large so that the backends and clients on the load core
// spend their time in the proxy's bytes, not in their own syscalls.
const copyBufferSize = 256 << 10

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	echoAddrs := fs.String("echo", "", "comma-separated addresses for TCP echo servers")
	sinkAddrs := fs.String("sink", "", "comma-separated addresses for bulk sinks")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var servers []*tcpServer
	closeAll := func() {
		for _, s := range servers {
			s.Close()
		}
	}
	for _, spec := range []struct {
		addrs  string
		handle func(net.Conn)
	}{{*echoAddrs, serveEcho}, {*sinkAddrs, serveSink}} {
		for _, addr := range splitList(spec.addrs) {
			s, err := listenTCP(addr, spec.handle)
			if err != nil {
				fmt.Fprintf(stderr, "serve: %v\n", err)
				closeAll()
				return 1
			}
			servers = append(servers, s)
		}
	}
	if len(servers) == 0 {
		fmt.Fprintln(stderr, "serve: give -echo and/or -sink addresses")
		return 2
	}
	fmt.Fprintf(stdout, "serving %d listeners\n", len(servers))
	<-ctx.Done()
	closeAll()
	return 0
}

// tcpServer accepts connections on one listener and runs handle on each; it
// owns the accept loop and every connection goroutine.
type tcpServer struct {
	ln     net.Listener
	handle func(net.Conn)
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

func listenTCP(addr string, handle func(net.Conn)) (*tcpServer, error) {
	if err := requireLoopback(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	s := &tcpServer{ln: ln, handle: handle, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr is the address the server listens on.
func (s *tcpServer) Addr() string { return s.ln.Addr().String() }

func (s *tcpServer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed; a benchmark backend has no use for retrying EMFILE
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// Close stops accepting, closes every open connection and waits for all
// goroutines of the server.
func (s *tcpServer) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// serveEcho writes back every byte it reads and answers the client's
// half-close with its own.
func serveEcho(c net.Conn) {
	buf := make([]byte, copyBufferSize)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				closeWrite(c)
			}
			return
		}
	}
}

// serveSink handles bulk transfers: each is an 8-byte big-endian length and
// that many bytes, acknowledged with the count of bytes received.
func serveSink(c net.Conn) {
	buf := make([]byte, copyBufferSize)
	var hdr [sinkHeaderSize]byte
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		want := binary.BigEndian.Uint64(hdr[:])
		got, err := discardN(c, want, buf)
		binary.BigEndian.PutUint64(hdr[:], got)
		if _, werr := c.Write(hdr[:]); werr != nil || err != nil {
			return
		}
	}
}

// discardN reads and drops n bytes from r, returning how many it read.
func discardN(r io.Reader, n uint64, buf []byte) (uint64, error) {
	var got uint64
	for got < n {
		chunk := buf
		if left := n - got; left < uint64(len(chunk)) {
			chunk = chunk[:left]
		}
		k, err := r.Read(chunk)
		got += uint64(k)
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

func closeWrite(c net.Conn) {
	if hc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
	}
}

// requireLoopback rejects any host:port whose host is not a loopback IP or
// "localhost".
func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q: only loopback addresses are allowed", addr)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
