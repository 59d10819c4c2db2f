package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"switchyard/builtin/chat"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testTimeout = 5 * time.Second

// startChat runs the built-in chat server on 127.0.0.1:0 for one test.
func startChat(t *testing.T) string {
	t.Helper()
	srv := chat.New("test-chat", chat.Options{MaxRooms: 10, MaxClientsPerRoom: 10}, hclog.NewNullLogger())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// lockedBuffer is an io.Writer the client's goroutines and the test share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitForOutput polls out until it contains want.
func waitForOutput(t *testing.T, out *lockedBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output never contained %q; got:\n%s", want, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// observer joins the room with a plain WebSocket and returns a function
// that waits for the next event of the given type.
func observer(t *testing.T, addr, room, name string) func(typ string) chat.Event {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/chat/"+room+"?name="+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return func(typ string) chat.Event {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(testTimeout))
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				t.Fatalf("observer: %v", err)
			}
			var ev chat.Event
			if err := json.Unmarshal(data, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Type == typ {
				return ev
			}
		}
	}
}

type session struct {
	stdin  *io.PipeWriter
	stdout *lockedBuffer
	stderr *lockedBuffer
	cancel context.CancelFunc
	result chan error
}

func startClient(t *testing.T, args ...string) *session {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdinR, stdinW := io.Pipe()
	s := &session{stdin: stdinW, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, cancel: cancel, result: make(chan error, 1)}
	go func() { s.result <- run(ctx, args, stdinR, s.stdout, s.stderr) }()
	t.Cleanup(func() {
		cancel()
		stdinW.Close() // ends the line reader, which stdin blocks
	})
	return s
}

func (s *session) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.result:
		return err
	case <-time.After(testTimeout):
		t.Fatal("client did not exit")
		return nil
	}
}

func TestChatSessionEndsOnEOF(t *testing.T) {
	addr := startChat(t)
	next := observer(t, addr, "lobby", "bob")
	next(chat.EventJoin)

	alice := startClient(t, "-url", "ws://"+addr+"/chat/lobby", "-name", "alice")
	if ev := next(chat.EventJoin); ev.Name != "alice" {
		t.Fatalf("join event for %q, want alice", ev.Name)
	}
	waitForOutput(t, alice.stdout, "] alice joined (2 in room)\n")

	io.WriteString(alice.stdin, "hi there\n")
	if ev := next(chat.EventMessage); ev.Name != "alice" || ev.Text != "hi there" {
		t.Fatalf("bob got %+v, want alice's message", ev)
	}
	waitForOutput(t, alice.stdout, "] <alice> hi there\n")

	io.WriteString(alice.stdin, strings.Repeat("x", chat.MaxMessageSize+1)+"\n")
	waitForOutput(t, alice.stderr, "message not sent")

	alice.stdin.Close()
	if err := alice.wait(t); err != nil {
		t.Fatalf("run after EOF: %v", err)
	}
	if ev := next(chat.EventLeave); ev.Name != "alice" || ev.Clients != 1 {
		t.Fatalf("bob got %+v, want alice's leave", ev)
	}
}

func TestChatSessionEndsOnInterrupt(t *testing.T) {
	addr := startChat(t)
	next := observer(t, addr, "den", "bob")
	next(chat.EventJoin)

	alice := startClient(t, "-addr", addr, "-room", "den", "-name", "alice")
	next(chat.EventJoin)
	alice.cancel() // what Ctrl-C does
	if err := alice.wait(t); err != nil {
		t.Fatalf("run after interrupt: %v", err)
	}
	if ev := next(chat.EventLeave); ev.Name != "alice" {
		t.Fatalf("bob got %+v, want alice's leave", ev)
	}
}

func TestRefusedJoinIsExplained(t *testing.T) {
	addr := startChat(t)
	s := startClient(t, "-addr", addr, "-room", "lobby", "-name", "<bad>")
	err := s.wait(t)
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "name may contain only") {
		t.Fatalf("run = %v, want the server's 400 explanation", err)
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    string
		wantErr string
	}{
		{[]string{"-name", "alice"}, "ws://127.0.0.1:8080/chat/lobby?name=alice", ""},
		{[]string{"-addr", "h:1", "-room", "r", "-name", "a b"}, "ws://h:1/chat/r?name=a+b", ""},
		{[]string{"-url", "wss://example.test/chat/x", "-name", "al"}, "wss://example.test/chat/x?name=al", ""},
		{[]string{"-url", "http://h:2/chat/x", "-name", "al"}, "ws://h:2/chat/x?name=al", ""},
		{[]string{"-url", "ftp://h/chat/x", "-name", "al"}, "", "want a ws://"},
		{[]string{"-url", "ws://h/chat/x", "-room", "y", "-name", "al"}, "", "without -addr and -room"},
		{[]string{"-room", "x"}, "", "-name is required"},
	} {
		got, err := parseFlags(tc.args, io.Discard)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseFlags(%q) = %q, %v; want error containing %q", tc.args, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseFlags(%q) = %q, %v; want %q", tc.args, got, err, tc.want)
		}
	}
}

func TestFormatEvent(t *testing.T) {
	ts := time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC)
	clockText := ts.Local().Format(time.TimeOnly)
	for _, tc := range []struct {
		ev   chat.Event
		want string
	}{
		{chat.Event{Type: chat.EventJoin, Name: "alice", Clients: 2}, "alice joined (2 in room)"},
		{chat.Event{Type: chat.EventLeave, Name: "bob", Clients: 1}, "bob left (1 in room)"},
		{chat.Event{Type: chat.EventMessage, Name: "bob", Text: "hi"}, "<bob> hi"},
	} {
		tc.ev.TS = ts.Format(time.RFC3339Nano)
		if got, want := formatEvent(tc.ev), "["+clockText+"] "+tc.want; got != want {
			t.Errorf("formatEvent(%+v) = %q, want %q", tc.ev, got, want)
		}
	}
}
