package chat

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// countingListener counts the bytes the server reads from its connections,
// across all of them.
type countingListener struct {
	net.Listener
	read *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, read: l.read}, nil
}

type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// CloseWrite keeps the half-close the server relies on reachable through the
// wrapper.
func (c *countingConn) CloseWrite() error {
	if hc, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return hc.CloseWrite()
	}
	return c.Conn.Close()
}

// rawHandshake opens a TCP connection to addr and upgrades it by hand to a
// WebSocket in room as name. The returned reader holds whatever the server
// sent after the 101 response.
func rawHandshake(t *testing.T, addr, room, name string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	var key [16]byte
	rand.Read(key[:])
	req := fmt.Sprintf("GET /chat/%s?name=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		room, name, addr, base64.StdEncoding.EncodeToString(key[:]))
	nc.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatalf("write handshake: %v", err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read handshake response: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: HTTP %d, want 101", resp.StatusCode)
	}
	nc.SetDeadline(time.Time{})
	return nc, br
}

// clientFrameHeader is the header of a masked client frame: FIN bit fin,
// opcode op, declared payload length n (any 64-bit value, also ones RFC 6455
// forbids) and a zero masking key.
func clientFrameHeader(fin bool, op byte, n uint64) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	h := []byte{b0}
	switch {
	case n < 126:
		h = append(h, 0x80|byte(n))
	case n < 1<<16:
		h = append(h, 0x80|126)
		h = binary.BigEndian.AppendUint16(h, uint16(n))
	default:
		h = append(h, 0x80|127)
		h = binary.BigEndian.AppendUint64(h, n)
	}
	return append(h, 0, 0, 0, 0) // masking key 0: the payload goes as is
}

// serverFrames reads the server's (unmasked) frames from br until the
// connection ends. It reports the close code of the first close frame (0 if
// none came), when it came, and when the connection ended.
func serverFrames(br *bufio.Reader) (code int, closeAt, endAt time.Time, endErr error) {
	for {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return code, closeAt, time.Now(), err
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(br, b[:]); err != nil {
				return code, closeAt, time.Now(), err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(br, b[:]); err != nil {
				return code, closeAt, time.Now(), err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		if h[1]&0x80 != 0 || n > 1<<20 {
			return code, closeAt, time.Now(), fmt.Errorf("bad server frame header % x, length %d", h, n)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			return code, closeAt, time.Now(), err
		}
		if h[0]&0x0f == websocket.CloseMessage && code == 0 {
			code = websocket.CloseNoStatusReceived
			if n >= 2 {
				code = int(binary.BigEndian.Uint16(payload))
			}
			closeAt = time.Now()
		}
	}
}

// TestOversizeFrameRefusedFromHeader sends a frame header declaring far more
// than MaxMessageSize and then keeps streaming payload. The server must
// answer close 1009 and close the connection at once, without reading the
// declared payload: before, it discarded whatever the peer sent for the whole
// close grace period (tens of MiB on loopback), so a 2^40-byte header bought
// the sender two seconds of the server's bandwidth.
func TestOversizeFrameRefusedFromHeader(t *testing.T) {
	const (
		// written caps what the test sends after the header.
		written = 64 << 20
		// maxRead bounds what the server may read from the connection in
		// all: the handshake, the header, a read buffer of payload and what
		// linger discards.
		maxRead = lingerLimit + 16<<10
		// maxWritten bounds what the test manages to write; beyond maxRead it
		// allows for the kernel's socket buffers on both sides (the test's
		// send buffer is fixed, so that its autotuning does not count).
		maxWritten = 1 << 20
		// within bounds the close frame and the end of the connection.
		within = 2 * time.Second
	)
	small := []byte("hello")
	for _, tc := range []struct {
		name   string
		frames [][]byte
	}{
		{"single frame 2^40", [][]byte{clientFrameHeader(true, websocket.TextMessage, 1<<40)}},
		{"continuation 2^40", [][]byte{
			clientFrameHeader(false, websocket.TextMessage, uint64(len(small))), small,
			clientFrameHeader(true, 0, 1<<40),
		}},
		// The message length overflows int64 inside gorilla, which then
		// reports ErrReadLimit without sending a close frame of its own.
		{"continuation overflowing int64", [][]byte{
			clientFrameHeader(false, websocket.TextMessage, uint64(len(small))), small,
			clientFrameHeader(true, 0, 1<<63-1),
		}},
		// A length with the top bit set (forbidden by RFC 6455): gorilla
		// reports ErrReadLimit without a close frame here too.
		{"length with top bit set", [][]byte{clientFrameHeader(true, websocket.TextMessage, 1<<63|1<<40)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var read atomic.Int64
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s, addr := serveOn(t, countingListener{ln, &read}, Options{}, nil)
			nc, br := rawHandshake(t, addr, "lobby", "mallory")
			waitFor(t, "the client to join", ioTimeout, func() bool { return s.Clients() == 1 })
			nc.(*net.TCPConn).SetWriteBuffer(64 << 10)
			nc.SetDeadline(time.Now().Add(ioTimeout))

			start := time.Now()
			for _, f := range tc.frames {
				if _, err := nc.Write(f); err != nil {
					t.Fatalf("write frame: %v", err)
				}
			}
			// Stream the declared payload until the server stops taking it: a
			// write fails once the server has closed its socket.
			var sent atomic.Int64
			var writeEnd time.Time
			var writeErr error
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				chunk := make([]byte, 64<<10)
				for sent.Load() < written && writeErr == nil {
					var n int
					n, writeErr = nc.Write(chunk)
					sent.Add(int64(n))
				}
				writeEnd = time.Now()
			}()

			// The server's FIN ends this; its close frame comes before.
			code, closeAt, endAt, endErr := serverFrames(br)
			wg.Wait()
			t.Logf("server read %d bytes, client wrote %d bytes after the header; close %d after %v, server's FIN after %v (%v), writes failed after %v (%v)",
				read.Load(), sent.Load(), code, closeAt.Sub(start), endAt.Sub(start), endErr, writeEnd.Sub(start), writeErr)

			if code != websocket.CloseMessageTooBig {
				t.Errorf("close code %d, want %d", code, websocket.CloseMessageTooBig)
			} else if d := closeAt.Sub(start); d > within {
				t.Errorf("close frame came after %v, want within %v", d, within)
			}
			if !errors.Is(endErr, io.EOF) && !errors.Is(endErr, syscall.ECONNRESET) {
				t.Errorf("reading from the server ended with %v, want EOF", endErr)
			} else if d := endAt.Sub(start); d > within {
				t.Errorf("the server's FIN came after %v, want within %v", d, within)
			}
			if writeErr == nil {
				t.Errorf("the server took all %d bytes of payload without closing", sent.Load())
			} else if d := writeEnd.Sub(start); d > within {
				t.Errorf("the server closed after %v, want within %v", d, within)
			}
			if n := read.Load(); n > maxRead {
				t.Errorf("server read %d bytes, want at most %d", n, maxRead)
			}
			if n := sent.Load(); n > maxWritten {
				t.Errorf("client could write %d bytes of payload, want at most %d", n, maxWritten)
			}
			waitFor(t, "the client to leave", ioTimeout, func() bool { return s.Clients() == 0 })
		})
	}
}
