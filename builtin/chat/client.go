package chat

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// client is one WebSocket connection in a room. The goroutine that
// Server.serveClient runs on owns it: it reads (run) and waits for the
// writer before returning. The writer goroutine runs only while there is
// something to send (events, a ping or a close frame), so an idle client
// costs one goroutine; pings are due by a timer, not a ticker loop.
type client struct {
	srv  *Server
	room *room
	name string
	conn *websocket.Conn

	// mu guards the fields below.
	mu sync.Mutex
	// queue holds encoded events not yet written, oldest first, at most
	// srv.sendQueue of them.
	queue   [][]byte
	pingDue bool
	// closeCode, when non-zero, is the close frame the writer sends next,
	// ahead of anything queued.
	closeCode int
	closeText string
	// closing is set once a close frame is on its way (from either side) or
	// the connection failed: no more events are queued and pongs no longer
	// extend the read deadline.
	closing bool
	// writing is true while a writer goroutine runs; done is set when the
	// owner tears down, after which no writer starts.
	writing bool
	done    bool
	pinger  *time.Timer
	// writers counts writer goroutines. Add happens under mu while done is
	// false, so every Add happens before the owner's Wait.
	writers sync.WaitGroup
}

// newClient wraps a freshly upgraded connection. It sets the read limit,
// deadline and pong handler here, before Shutdown can see the client and ask
// for a close (whose shorter read deadline must not be overwritten).
func newClient(srv *Server, rm *room, name string, conn *websocket.Conn) *client {
	c := &client{srv: srv, room: rm, name: name, conn: conn}
	conn.SetReadLimit(MaxMessageSize)
	conn.SetReadDeadline(time.Now().Add(srv.timing.pongWait))
	conn.SetPongHandler(c.handlePong)
	return c
}

// run serves the connection until it ends: it joins the room, reads frames
// until the peer leaves or breaks a rule, then leaves the room, finishes the
// close handshake and waits for the writer.
func (c *client) run() {
	c.srv.log.Debug("client joined", "room", c.room.name, "name", c.name, "remote", c.conn.RemoteAddr())
	defer c.srv.log.Debug("client left", "room", c.room.name, "name", c.name, "remote", c.conn.RemoteAddr())
	c.room.join(c)
	c.mu.Lock()
	c.pinger = time.AfterFunc(c.srv.timing.pingPeriod, c.pingTick)
	c.mu.Unlock()

	mustLinger := c.readLoop()

	// Leave first: the room need not wait for the close handshake.
	c.room.leave(c)
	c.mu.Lock()
	c.done = true
	c.closing = true
	c.queue = nil
	c.pinger.Stop()
	c.mu.Unlock()
	if mustLinger {
		c.linger()
	}
	// Closing fails a write still blocked on a peer that stopped reading, so
	// the writer returns at once.
	c.conn.Close()
	c.writers.Wait()
}

// readLoop relays the peer's text frames to the room until the connection
// ends. It reports whether we closed it for breaking a rule, in which case
// the peer may still be sending and the caller must linger before closing.
func (c *client) readLoop() (mustLinger bool) {
	for {
		kind, data, err := c.conn.ReadMessage()
		if err != nil {
			var closeErr *websocket.CloseError
			switch {
			case errors.As(err, &closeErr):
				// The peer closed, or answered our close; gorilla has sent
				// the reply if one was due.
				return false
			case errors.Is(err, websocket.ErrReadLimit):
				// gorilla refuses the frame from its header, without reading
				// the payload, and has usually sent close 1009 already; not
				// when the declared length overflows int64 (alone or added
				// to the earlier fragments), so send it here. A second close
				// frame is never written: gorilla answers ErrCloseSent.
				c.sendClose(websocket.CloseMessageTooBig, "message too big")
				c.srv.log.Debug("message too big; closed", "room", c.room.name, "name", c.name)
				// The rest of the declared payload may still be coming;
				// linger discards only a little of it.
				return true
			default:
				c.srv.log.Debug("connection ended", "room", c.room.name, "name", c.name, "error", err)
				return false
			}
		}
		if c.isClosing() {
			// We sent a close frame; the peer's remaining frames are moot.
			continue
		}
		switch {
		case kind != websocket.TextMessage:
			return c.sendClose(websocket.CloseUnsupportedData, "binary frames are not supported")
		case !utf8.Valid(data):
			return c.sendClose(websocket.CloseInvalidFramePayloadData, "text frame is not valid UTF-8")
		}
		c.room.say(c, string(data))
	}
}

// sendClose sends a close frame from the reading side, after stopping the
// writer from sending more events. It reports whether the frame went out.
func (c *client) sendClose(code int, text string) bool {
	c.markClosing()
	deadline := time.Now().Add(c.srv.timing.writeWait)
	return c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), deadline) == nil
}

// closeNow closes a connection that never joined: close frame, linger,
// close.
func (c *client) closeNow(code int, text string) {
	if c.sendClose(code, text) {
		c.linger()
	}
	c.conn.Close()
}

// linger half-closes our side and discards what the peer still sends until
// it closes too, closeGrace passes or lingerLimit bytes have been discarded.
// Closing a socket with unread data makes the kernel send a reset, which can
// destroy our close frame before the peer reads it; the FIN tells a peer
// waiting for the server to close (as RFC 6455 asks clients to) that it may.
// The byte limit is what keeps a peer that declared a huge frame (or keeps
// sending after our close) from having us read its stream for closeGrace:
// past it the peer is not winding down, and we close at once.
func (c *client) linger() {
	nc := c.conn.NetConn()
	nc.SetReadDeadline(time.Now().Add(c.srv.timing.closeGrace))
	if hc, ok := nc.(interface{ CloseWrite() error }); ok {
		hc.CloseWrite()
	}
	io.CopyN(io.Discard, nc, lingerLimit)
}

// markClosing stops event delivery because a close frame is on its way.
func (c *client) markClosing() {
	c.mu.Lock()
	c.closing = true
	c.queue = nil
	c.mu.Unlock()
}

func (c *client) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// requestClose has the writer send close code next, dropping queued events.
func (c *client) requestClose(code int, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requestCloseLocked(code, text)
}

func (c *client) requestCloseLocked(code int, text string) {
	if c.closing {
		return
	}
	c.closing = true
	c.queue = nil
	c.closeCode, c.closeText = code, text
	c.startWriterLocked()
}

// enqueue puts one encoded event on c's queue without blocking. It reports
// false when the queue was full; c is then being closed with 1008.
func (c *client) enqueue(frame []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return true // on its way out; its leave comes from its owner
	}
	if len(c.queue) >= c.srv.sendQueue {
		c.requestCloseLocked(websocket.ClosePolicyViolation, "too slow: send queue full")
		return false
	}
	c.queue = append(c.queue, frame)
	c.startWriterLocked()
	return true
}

// pingTick runs on the ping timer's goroutine: it asks the writer for a ping
// and schedules the next one.
func (c *client) pingTick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done || c.closing {
		return
	}
	c.pingDue = true
	c.startWriterLocked()
	c.pinger.Reset(c.srv.timing.pingPeriod)
}

// handlePong extends the read deadline, unless we are closing: then the
// deadline set after our close frame must stand.
func (c *client) handlePong(string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return nil
	}
	return c.conn.SetReadDeadline(time.Now().Add(c.srv.timing.pongWait))
}

// startWriterLocked starts the writer goroutine unless it runs already or
// the owner has torn down (and may be waiting on writers).
func (c *client) startWriterLocked() {
	if c.writing || c.done {
		return
	}
	c.writing = true
	c.writers.Add(1)
	go c.writeLoop()
}

// writeLoop writes what is pending, one frame at a time so that a close
// request overtakes queued events, and exits when nothing is left.
func (c *client) writeLoop() {
	defer c.writers.Done()
	writeWait := c.srv.timing.writeWait
	for {
		c.mu.Lock()
		switch {
		case c.closeCode != 0:
			code, text := c.closeCode, c.closeText
			c.closeCode, c.closeText = 0, ""
			c.mu.Unlock()
			c.writeClose(code, text)
			c.stopWriting()
			return
		case len(c.queue) > 0:
			frame := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			if len(c.queue) == 0 {
				c.queue = nil // let an idle client hold no backing array
			}
			c.mu.Unlock()
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.TextMessage, frame); err != nil {
				c.writeFailed(err)
				return
			}
		case c.pingDue:
			c.pingDue = false
			c.mu.Unlock()
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				c.writeFailed(err)
				return
			}
		default:
			c.writing = false
			c.mu.Unlock()
			return
		}
	}
}

// writeClose sends a close frame and gives the peer closeGrace to answer
// before the read side gives up.
func (c *client) writeClose(code int, text string) {
	t := c.srv.timing
	err := c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(t.writeWait))
	if err != nil {
		if !errors.Is(err, websocket.ErrCloseSent) {
			c.conn.Close()
		}
		return
	}
	// closing is already set, so handlePong will not move this deadline.
	c.conn.SetReadDeadline(time.Now().Add(t.closeGrace))
}

// writeFailed ends the connection after a failed write. ErrCloseSent means
// the reading side is already closing it; anything else means the peer is
// gone or stuck, and closing the socket unblocks the reader.
func (c *client) writeFailed(err error) {
	c.mu.Lock()
	c.closing = true
	c.queue = nil
	c.mu.Unlock()
	if !errors.Is(err, websocket.ErrCloseSent) {
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			c.srv.log.Debug("write timed out; closing", "room", c.room.name, "name", c.name)
		}
		c.conn.Close()
	}
	c.stopWriting()
}

func (c *client) stopWriting() {
	c.mu.Lock()
	c.writing = false
	c.mu.Unlock()
}
