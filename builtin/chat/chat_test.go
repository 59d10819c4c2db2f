package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(memChildEnv); addr != "" {
		os.Exit(runMemChild(addr))
	}
	goleak.VerifyTestMain(m)
}

// ioTimeout bounds every single read or write a test does.
const ioTimeout = 5 * time.Second

// startServer runs a chat server on 127.0.0.1:0 and shuts it down at the end
// of the test. tune, when non-nil, adjusts the server before Serve.
func startServer(t *testing.T, opts Options, tune func(*Server)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return serveOn(t, ln, opts, tune)
}

// serveOn is startServer on a given listener.
func serveOn(t *testing.T, ln net.Listener, opts Options, tune func(*Server)) (*Server, string) {
	t.Helper()
	s := New("test-chat", opts, hclog.NewNullLogger())
	if tune != nil {
		tune(s)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(ioTimeout):
			t.Error("Serve did not return after Shutdown")
		}
	})
	return s, ln.Addr().String()
}

func roomURL(addr, room, name string) string {
	u := url.URL{Scheme: "ws", Host: addr, Path: "/chat/" + room}
	if name != "" {
		u.RawQuery = url.Values{"name": {name}}.Encode()
	}
	return u.String()
}

var testDialer = websocket.Dialer{HandshakeTimeout: ioTimeout}

// dialRoom joins room as name; it returns the handshake response on failure.
func dialRoom(addr, room, name string) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	return testDialer.DialContext(ctx, roomURL(addr, room, name), nil)
}

// peer is a test client. Its methods fail the test, so call them only from
// the test goroutine; concurrent code uses readEvent.
type peer struct {
	t    *testing.T
	name string
	conn *websocket.Conn
}

func join(t *testing.T, addr, room, name string) *peer {
	t.Helper()
	conn, resp, err := dialRoom(addr, room, name)
	if err != nil {
		t.Fatalf("join %s as %s: %v (%s)", room, name, err, describe(resp))
	}
	t.Cleanup(func() { conn.Close() })
	return &peer{t: t, name: name, conn: conn}
}

func describe(resp *http.Response) string {
	if resp == nil {
		return "no response"
	}
	body, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("HTTP %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
}

// readEvent reads one event, waiting at most ioTimeout.
func readEvent(conn *websocket.Conn) (Event, error) {
	conn.SetReadDeadline(time.Now().Add(ioTimeout))
	kind, data, err := conn.ReadMessage()
	if err != nil {
		return Event{}, err
	}
	if kind != websocket.TextMessage {
		return Event{}, fmt.Errorf("got frame type %d, want text", kind)
	}
	var ev Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return Event{}, fmt.Errorf("decode %s: %w", data, err)
	}
	return ev, nil
}

func (p *peer) next() Event {
	p.t.Helper()
	ev, err := readEvent(p.conn)
	if err != nil {
		p.t.Fatalf("%s: read event: %v", p.name, err)
	}
	return ev
}

// expect reads the next event and checks its type, name, text and count.
func (p *peer) expect(typ, name, text string, clients int) Event {
	p.t.Helper()
	ev := p.next()
	if ev.Type != typ || ev.Name != name || ev.Text != text || ev.Clients != clients {
		p.t.Fatalf("%s got %+v, want type=%s name=%s text=%q clients=%d", p.name, ev, typ, name, text, clients)
	}
	return ev
}

func (p *peer) send(text string) {
	p.t.Helper()
	p.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if err := p.conn.WriteMessage(websocket.TextMessage, []byte(text)); err != nil {
		p.t.Fatalf("%s: send: %v", p.name, err)
	}
}

// closeCode reads until the server closes the connection and returns the
// close code it sent.
func closeCode(conn *websocket.Conn, within time.Duration) (int, error) {
	conn.SetReadDeadline(time.Now().Add(within))
	for {
		_, _, err := conn.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, nil
		}
		if err != nil {
			return 0, fmt.Errorf("connection ended without a close frame: %w", err)
		}
	}
}

func (p *peer) expectClose(code int) {
	p.t.Helper()
	got, err := closeCode(p.conn, ioTimeout)
	if err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
	if got != code {
		p.t.Fatalf("%s: close code %d, want %d", p.name, got, code)
	}
}

// leave closes the connection the way a well-behaved client does.
func (p *peer) leave() {
	p.t.Helper()
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := p.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(ioTimeout)); err != nil {
		p.t.Fatalf("%s: send close: %v", p.name, err)
	}
	if got, err := closeCode(p.conn, ioTimeout); err != nil || got != websocket.CloseNormalClosure {
		p.t.Fatalf("%s: close reply = %d, %v; want %d", p.name, got, err, websocket.CloseNormalClosure)
	}
	p.conn.Close()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestJoinAndLeaveEvents(t *testing.T) {
	s, addr := startServer(t, Options{MaxRooms: 10, MaxClientsPerRoom: 10}, nil)

	start := time.Now()
	alice := join(t, addr, "lobby", "alice")
	ev := alice.expect(EventJoin, "alice", "", 1)
	if ev.Room != "lobby" {
		t.Errorf("room = %q, want lobby", ev.Room)
	}
	ts, err := time.Parse(time.RFC3339Nano, ev.TS)
	if err != nil || !strings.HasSuffix(ev.TS, "Z") {
		t.Errorf("ts %q is not RFC 3339 UTC: %v", ev.TS, err)
	}
	if ts.Before(start.Add(-time.Second)) || ts.After(time.Now().Add(time.Second)) {
		t.Errorf("ts %v is not the time of the join (%v)", ts, start)
	}

	bob := join(t, addr, "lobby", "bob")
	alice.expect(EventJoin, "bob", "", 2)
	bob.expect(EventJoin, "bob", "", 2)
	if s.Clients() != 2 || s.Rooms() != 1 {
		t.Errorf("Clients, Rooms = %d, %d; want 2, 1", s.Clients(), s.Rooms())
	}

	bob.leave()
	alice.expect(EventLeave, "bob", "", 1)
	waitFor(t, "bob to be gone", ioTimeout, func() bool { return s.Clients() == 1 })

	alice.leave()
	waitFor(t, "the empty room to be removed", ioTimeout, func() bool { return s.Rooms() == 0 && s.Clients() == 0 })
}

func TestSenderReceivesOwnMessage(t *testing.T) {
	s, addr := startServer(t, Options{}, nil)
	alice := join(t, addr, "lobby", "alice")
	alice.expect(EventJoin, "alice", "", 1)
	bob := join(t, addr, "lobby", "bob")
	alice.expect(EventJoin, "bob", "", 2)
	bob.expect(EventJoin, "bob", "", 2)

	alice.send("hello, world ✓")
	alice.expect(EventMessage, "alice", "hello, world ✓", 2)
	bob.expect(EventMessage, "alice", "hello, world ✓", 2)

	exact := strings.Repeat("x", MaxMessageSize)
	bob.send(exact)
	bob.expect(EventMessage, "bob", exact, 2)
	alice.expect(EventMessage, "bob", exact, 2)
	if got := s.MessagesTotal(); got != 2 {
		t.Errorf("MessagesTotal = %d, want 2 (each message once)", got)
	}
}

// TestRoomOrderingAndIsolation has several clients per room send at once and
// checks that every client of a room sees the same sequence, that each
// sender's messages keep their order, and that nothing crosses rooms.
func TestRoomOrderingAndIsolation(t *testing.T) {
	const rooms, perRoom, perSender = 3, 4, 50
	_, addr := startServer(t, Options{}, nil)

	peers := make([][]*peer, rooms)
	for r := range rooms {
		for i := range perRoom {
			p := join(t, addr, fmt.Sprintf("room%d", r), fmt.Sprintf("r%d-c%d", r, i))
			// Its own join confirms it is in; only then does the next dial.
			p.expect(EventJoin, p.name, "", i+1)
			peers[r] = append(peers[r], p)
		}
	}
	// Everyone has seen the room fill up once it has read the last join.
	for r := range rooms {
		for i, p := range peers[r] {
			for n := i + 2; n <= perRoom; n++ {
				p.expect(EventJoin, fmt.Sprintf("r%d-c%d", r, n-1), "", n)
			}
		}
	}

	type result struct {
		texts []string
		err   error
	}
	results := make([][]result, rooms)
	var wg sync.WaitGroup
	for r := range rooms {
		results[r] = make([]result, perRoom)
		for i, p := range peers[r] {
			wg.Add(2)
			go func() {
				defer wg.Done()
				for k := range perSender {
					p.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
					if err := p.conn.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf("%s#%d", p.name, k))); err != nil {
						results[r][i].err = fmt.Errorf("%s: send: %w", p.name, err)
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				var texts []string
				for len(texts) < perRoom*perSender {
					ev, err := readEvent(p.conn)
					if err != nil {
						results[r][i].err = fmt.Errorf("%s after %d messages: %w", p.name, len(texts), err)
						return
					}
					if ev.Type != EventMessage || ev.Room != fmt.Sprintf("room%d", r) {
						results[r][i].err = fmt.Errorf("%s in room%d got %+v", p.name, r, ev)
						return
					}
					texts = append(texts, ev.Text)
				}
				results[r][i].texts = texts
			}()
		}
	}
	wg.Wait()

	for r := range rooms {
		prefix := fmt.Sprintf("r%d-", r)
		for i, res := range results[r] {
			if res.err != nil {
				t.Fatal(res.err)
			}
			next := map[string]int{}
			for _, text := range res.texts {
				if !strings.HasPrefix(text, prefix) {
					t.Fatalf("room%d client %d got %q from another room", r, i, text)
				}
				sender, seq, _ := strings.Cut(text, "#")
				if want := fmt.Sprint(next[sender]); seq != want {
					t.Fatalf("room%d client %d: %s's message %s arrived when #%s was due", r, i, sender, seq, want)
				}
				next[sender]++
			}
			if i > 0 && strings.Join(res.texts, "\n") != strings.Join(results[r][0].texts, "\n") {
				t.Fatalf("room%d: client %d saw a different order than client 0", r, i)
			}
		}
	}
}

func TestRoomAndClientLimits(t *testing.T) {
	s, addr := startServer(t, Options{MaxRooms: 2, MaxClientsPerRoom: 2}, nil)
	join(t, addr, "a", "a1")
	join(t, addr, "a", "a2")
	b1 := join(t, addr, "b", "b1")

	expect503 := func(room, name, wantErr string) {
		t.Helper()
		conn, resp, err := dialRoom(addr, room, name)
		if err == nil {
			conn.Close()
			t.Fatalf("join %s as %s succeeded, want 503", room, name)
		}
		if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("join %s as %s: %v (%s), want 503", room, name, err, describe(resp))
		}
		var body struct{ Error string }
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || !strings.Contains(body.Error, wantErr) {
			t.Fatalf("503 body error = %q (%v), want it to mention %q", body.Error, err, wantErr)
		}
	}
	expect503("c", "c1", "max_rooms")
	expect503("a", "a3", "max_clients_per_room")

	b1.leave()
	waitFor(t, "room b to be removed", ioTimeout, func() bool { return s.Rooms() == 1 })
	c1 := join(t, addr, "c", "c1")
	c1.expect(EventJoin, "c1", "", 1)
	if s.Rooms() != 2 || s.Clients() != 3 {
		t.Errorf("Rooms, Clients = %d, %d; want 2, 3", s.Rooms(), s.Clients())
	}
}

func TestUpdateChangesLimits(t *testing.T) {
	s, addr := startServer(t, Options{MaxRooms: 5, MaxClientsPerRoom: 1}, nil)
	join(t, addr, "lobby", "alice")
	if conn, resp, err := dialRoom(addr, "lobby", "bob"); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		if conn != nil {
			conn.Close()
		}
		t.Fatalf("second join with max_clients_per_room=1: %v (%s), want 503", err, describe(resp))
	}

	s.Update(Options{MaxRooms: 1, MaxClientsPerRoom: 2})
	bob := join(t, addr, "lobby", "bob")
	bob.expect(EventJoin, "bob", "", 2)
	if conn, resp, err := dialRoom(addr, "other", "carol"); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		if conn != nil {
			conn.Close()
		}
		t.Fatalf("new room with max_rooms=1: %v (%s), want 503", err, describe(resp))
	}
}

func TestBadJoinsRejectedBeforeUpgrade(t *testing.T) {
	s, addr := startServer(t, Options{}, nil)
	cases := []struct{ room, name string }{
		{"lobby", ""},
		{"lobby", " alice"},
		{"lobby", "<script>"},
		{"lobby", strings.Repeat("n", MaxNameLength+1)},
		{"-lobby", "alice"},
		{"lob%20by", "alice"},
		{strings.Repeat("r", MaxRoomLength+1), "alice"},
	}
	for _, tc := range cases {
		conn, resp, err := dialRoom(addr, tc.room, tc.name)
		if err == nil {
			conn.Close()
			t.Errorf("join %q as %q succeeded, want 400", tc.room, tc.name)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("join %q as %q: %v (%s), want 400", tc.room, tc.name, err, describe(resp))
		}
	}
	// Valid names in other scripts are fine.
	join(t, addr, "lobby", "Zoë Ωmega-2").expect(EventJoin, "Zoë Ωmega-2", "", 1)
	join(t, addr, "lobby", "नमस्ते").expect(EventJoin, "नमस्ते", "", 2) // combining marks
	if s.Rooms() != 1 {
		t.Errorf("Rooms = %d after rejected joins, want 1", s.Rooms())
	}
}

func TestOversizeMessageClosed1009(t *testing.T) {
	_, addr := startServer(t, Options{}, nil)
	alice := join(t, addr, "lobby", "alice")
	alice.expect(EventJoin, "alice", "", 1)
	bob := join(t, addr, "lobby", "bob")
	alice.expect(EventJoin, "bob", "", 2)
	bob.expect(EventJoin, "bob", "", 2)

	// Big enough that the server stops reading mid-frame with data unread.
	bob.send(strings.Repeat("y", 64<<10))
	bob.expectClose(websocket.CloseMessageTooBig)
	alice.expect(EventLeave, "bob", "", 1)
	bob.conn.Close()
	// The room is not disturbed.
	alice.send("still here")
	alice.expect(EventMessage, "alice", "still here", 1)
}

func TestBinaryAndInvalidTextClosed(t *testing.T) {
	_, addr := startServer(t, Options{}, nil)
	for i, tc := range []struct {
		kind int
		data []byte
		code int
	}{
		{websocket.BinaryMessage, []byte("hi"), websocket.CloseUnsupportedData},
		{websocket.TextMessage, []byte{0xff, 0xfe}, websocket.CloseInvalidFramePayloadData},
	} {
		p := join(t, addr, fmt.Sprintf("room%d", i), "mallory")
		p.expect(EventJoin, "mallory", "", 1)
		p.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
		if err := p.conn.WriteMessage(tc.kind, tc.data); err != nil {
			t.Fatal(err)
		}
		p.expectClose(tc.code)
	}
}

// TestSlowConsumerDisconnected floods a room that has one client that never
// reads. That client must be dropped with 1008 while the others keep up.
func TestSlowConsumerDisconnected(t *testing.T) {
	// The sender keeps at most window messages unechoed, so the queues of
	// clients that read stay well below queue while the silent one's grows.
	const queue, window = 32, 4
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, addr := serveOn(t, smallSendBufferListener{ln}, Options{}, func(s *Server) { s.sendQueue = queue })

	slow := join(t, addr, "lobby", "slow")
	slow.expect(EventJoin, "slow", "", 1)
	watcher := join(t, addr, "lobby", "watcher")
	watcher.expect(EventJoin, "watcher", "", 2)
	sender := join(t, addr, "lobby", "sender")
	watcher.expect(EventJoin, "sender", "", 3)
	sender.expect(EventJoin, "sender", "", 3)

	echoes := make(chan struct{}, 1<<16)
	var senderErr error
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		for {
			ev, err := readEvent(sender.conn)
			if err != nil {
				senderErr = err
				return
			}
			if ev.Type != EventMessage {
				continue
			}
			if ev.Text == "final" {
				return
			}
			echoes <- struct{}{}
		}
	}()

	// The watcher checks it gets every message in order and reports when it
	// sees the slow client leave.
	kicked := make(chan struct{})
	finalAt := make(chan time.Time, 1)
	var watcherErr error
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		want := 0
		for {
			ev, err := readEvent(watcher.conn)
			if err != nil {
				watcherErr = err
				return
			}
			switch {
			case ev.Type == EventLeave && ev.Name == "slow":
				close(kicked)
			case ev.Type == EventMessage && ev.Text == "final":
				finalAt <- time.Now()
				return
			case ev.Type == EventMessage:
				if got, _, _ := strings.Cut(ev.Text, " "); got != fmt.Sprint(want) {
					watcherErr = fmt.Errorf("watcher got message %s, want %d", got, want)
					return
				}
				want++
			default:
				watcherErr = fmt.Errorf("watcher got unexpected %+v", ev)
				return
			}
		}
	}()

	padding := strings.Repeat("p", 3000)
	deadline := time.After(20 * time.Second)
	sent, echoed := 0, 0
flood:
	for {
		select {
		case <-kicked:
			break flood
		case <-watcherDone:
			t.Fatalf("watcher stopped during the flood: %v", watcherErr)
		case <-senderDone:
			t.Fatalf("sender stopped during the flood: %v", senderErr)
		case <-deadline:
			t.Fatalf("slow client not disconnected after %d messages", sent)
		case <-echoes:
			echoed++
		default:
			if sent-echoed >= window {
				select {
				case <-echoes:
					echoed++
				case <-time.After(ioTimeout):
					t.Fatalf("sender got no echo of message %d", echoed)
				}
			}
			sender.send(fmt.Sprintf("%d %s", sent, padding))
			sent++
		}
	}
	sentFinal := time.Now()
	sender.send("final")
	select {
	case at := <-finalAt:
		if lag := at.Sub(sentFinal); lag > 2*time.Second {
			t.Errorf("watcher got the last message %v after it was sent", lag)
		}
	case <-time.After(ioTimeout):
		t.Fatal("watcher did not get the last message")
	}
	<-watcherDone
	<-senderDone
	if watcherErr != nil || senderErr != nil {
		t.Fatalf("watcher: %v; sender: %v", watcherErr, senderErr)
	}
	if s.Clients() != 2 {
		t.Errorf("Clients = %d after the slow client was dropped, want 2", s.Clients())
	}
	t.Logf("slow client dropped after %d messages", sent)

	// Now the slow client reads: what was in flight, then close 1008.
	code, err := closeCode(slow.conn, 10*time.Second)
	if err != nil || code != websocket.ClosePolicyViolation {
		t.Fatalf("slow client: close %d, %v; want %d", code, err, websocket.ClosePolicyViolation)
	}
}

// smallSendBufferListener shrinks the kernel send buffer of the server's
// connections, so that a client that stops reading fills it (and then its
// queue) after a few hundred kilobytes rather than megabytes. Shrinking the
// client's receive buffer instead would make it drain at a crawl afterwards.
type smallSendBufferListener struct{ net.Listener }

func (l smallSendBufferListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.SetWriteBuffer(16 << 10)
	}
	return conn, err
}

func TestShutdownSendsGoingAway(t *testing.T) {
	before := goleak.IgnoreCurrent()
	s := New("test-chat", Options{}, hclog.NewNullLogger())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	addr := ln.Addr().String()

	var peers []*peer
	for i, room := range []string{"a", "a", "b"} {
		p := join(t, addr, room, fmt.Sprintf("p%d", i))
		peers = append(peers, p)
	}
	waitFor(t, "three clients", ioTimeout, func() bool { return s.Clients() == 3 })

	codes := make([]int, len(peers))
	errs := make([]error, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], errs[i] = closeCode(p.conn, ioTimeout)
			p.conn.Close()
		}()
	}

	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if took := time.Since(start); took > closeGrace {
		t.Errorf("shutdown took %v although every client answered the close", took)
	}
	wg.Wait()
	for i := range peers {
		if errs[i] != nil || codes[i] != websocket.CloseGoingAway {
			t.Errorf("client %d: close %d, %v; want %d", i, codes[i], errs[i], websocket.CloseGoingAway)
		}
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
	if s.Clients() != 0 || s.Rooms() != 0 {
		t.Errorf("Clients, Rooms = %d, %d after shutdown; want 0, 0", s.Clients(), s.Rooms())
	}
	if _, resp, err := dialRoom(addr, "a", "late"); err == nil {
		t.Errorf("join after shutdown succeeded (%s)", describe(resp))
	}
	// Serve after Shutdown returns at once and releases the listener.
	late, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(late); err != nil {
		t.Errorf("Serve after Shutdown = %v, want nil", err)
	}
	if _, err := late.Accept(); err == nil {
		t.Error("Serve after Shutdown left its listener open")
	}
	goleak.VerifyNone(t, before)
}

// TestShutdownCutsUnresponsiveClients: a client that never answers the close
// is cut when ctx expires, and Shutdown still leaves no goroutine behind.
func TestShutdownCutsUnresponsiveClients(t *testing.T) {
	before := goleak.IgnoreCurrent()
	s := New("test-chat", Options{}, hclog.NewNullLogger())
	s.timing.closeGrace = time.Minute
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	mute := join(t, ln.Addr().String(), "lobby", "mute")
	waitFor(t, "the client", ioTimeout, func() bool { return s.Clients() == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("shutdown = %v, want deadline exceeded", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("shutdown took %v with a 200ms budget", took)
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
	mute.conn.Close()
	goleak.VerifyNone(t, before)
}

func TestPingKeepsLiveClientsAndDropsSilentOnes(t *testing.T) {
	s, addr := startServer(t, Options{}, func(s *Server) {
		s.timing.pongWait = 150 * time.Millisecond
		s.timing.pingPeriod = s.timing.pongWait * 9 / 10
	})
	live := join(t, addr, "lobby", "live")
	var pings atomic.Int32
	live.conn.SetPingHandler(func(data string) error {
		pings.Add(1)
		return live.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(ioTimeout))
	})
	liveDone := make(chan error, 1)
	go func() {
		for {
			ev, err := readEvent(live.conn)
			if err != nil {
				liveDone <- err
				return
			}
			if ev.Type == EventLeave && ev.Name == "silent" {
				liveDone <- nil
				return
			}
		}
	}()
	// Four pings take longer than three pong deadlines: answering them is
	// what keeps the live client in.
	waitFor(t, "four pings", ioTimeout, func() bool { return pings.Load() >= 4 })
	if s.Clients() != 1 {
		t.Fatalf("Clients = %d, want the live client", s.Clients())
	}

	// silent never reads, so it never answers a ping.
	join(t, addr, "lobby", "silent")
	select {
	case err := <-liveDone:
		if err != nil {
			t.Fatalf("live client: %v", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("silent client was not dropped")
	}
	if s.Clients() != 1 {
		t.Errorf("Clients = %d, want the live one only", s.Clients())
	}
}

func TestPageServedWithoutUpgrade(t *testing.T) {
	_, addr := startServer(t, Options{}, nil)
	client := &http.Client{Timeout: ioTimeout}

	resp, err := client.Get("http://" + addr + "/chat/lobby")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	page := string(body)
	for _, want := range []string{"new WebSocket(", "location.host", "location.pathname", "encodeURIComponent(name)"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, external := range []string{"<script src", "<link rel=\"stylesheet\"", "http://", "https://"} {
		if strings.Contains(page, external) {
			t.Errorf("page refers to something external (%q)", external)
		}
	}
	// The only link is an inline (empty) icon, so browsers do not ask the
	// server, or a proxy in front of it, for /favicon.ico.
	if n, inline := strings.Count(page, "<link"), strings.Count(page, `<link rel="icon" href="data:,">`); n != inline {
		t.Errorf("page has %d <link> elements, %d of them the inline icon", n, inline)
	}

	resp, err = client.Get("http://" + addr + "/chat/bad%20room")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET page for a bad room: %d, want 400", resp.StatusCode)
	}
}

// TestThousandClients fills 20 rooms of 50, has everyone talk at once and
// checks each room's members agree on what they saw.
func TestThousandClients(t *testing.T) {
	const rooms, perRoom = 20, 50
	s, addr := startServer(t, Options{MaxRooms: rooms, MaxClientsPerRoom: perRoom}, nil)
	start := time.Now()

	conns := make([]*websocket.Conn, rooms*perRoom)
	dialErrs := make(chan error, len(conns))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64) // dial at most this many at a time
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			conn, resp, err := dialRoom(addr, fmt.Sprintf("r%d", i%rooms), fmt.Sprintf("c%d", i))
			if err != nil {
				dialErrs <- fmt.Errorf("client %d: %w (%s)", i, err, describe(resp))
				return
			}
			conns[i] = conn
		}()
	}
	wg.Wait()
	close(dialErrs)
	for _, c := range conns {
		if c != nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	if err := <-dialErrs; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every client to join", ioTimeout, func() bool { return s.Clients() == len(conns) })

	// One deadline for the whole exchange rather than one per read: under
	// the race detector on a busy machine a single client can wait a while
	// for its turn, which is not what this test is about.
	deadline := time.Now().Add(30 * time.Second)
	seen := make([][]string, len(conns))
	errs := make([]error, len(conns))
	for i, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn.SetWriteDeadline(deadline)
			conn.SetReadDeadline(deadline)
			if err := conn.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf("from c%d", i))); err != nil {
				errs[i] = err
				return
			}
			for len(seen[i]) < perRoom {
				var ev Event
				err := conn.ReadJSON(&ev)
				if err != nil {
					errs[i] = fmt.Errorf("client %d after %d messages: %w", i, len(seen[i]), err)
					return
				}
				if ev.Room != fmt.Sprintf("r%d", i%rooms) {
					errs[i] = fmt.Errorf("client %d got an event of room %s", i, ev.Room)
					return
				}
				if ev.Type == EventMessage {
					seen[i] = append(seen[i], ev.Text)
				}
			}
		}()
	}
	wg.Wait()
	for i := range conns {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		first := seen[i%rooms]
		if strings.Join(seen[i], ",") != strings.Join(first, ",") {
			t.Fatalf("client %d saw another order than client %d of room r%d", i, i%rooms, i%rooms)
		}
	}
	if got := s.MessagesTotal(); got != uint64(len(conns)) {
		t.Errorf("MessagesTotal = %d, want %d", got, len(conns))
	}
	t.Logf("%d clients joined and exchanged %d messages in %v", len(conns), len(conns), time.Since(start))
}
