// Command chat_client is an interactive terminal client for switchyard's
// built-in WebSocket chat:
//
//	go run ./examples/chat_client -url ws://127.0.0.1:8080/chat/lobby -name alice
//	go run ./examples/chat_client -addr 127.0.0.1:8080 -room lobby -name bob
//
// Every line typed is sent to the room; events print as
// "[15:04:05] alice joined (2 in room)" and "[15:04:05] <bob> hi". End of
// input (Ctrl-D) or Ctrl-C leaves with a normal close (1000).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"switchyard/builtin/chat"
)

const (
	// ioTimeout bounds the handshake and every write; a chat server that
	// takes longer is not coming back.
	ioTimeout = 10 * time.Second
	// closeWait is how long we wait for the server to answer our close.
	closeWait = 2 * time.Second
	// maxLine bounds what the line reader accepts; longer lines are refused
	// with a message rather than split.
	maxLine = 64 << 10
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "chat_client:", err)
		}
		os.Exit(1)
	}
}

// run is the whole client: it joins, then sends stdin's lines and prints
// the room's events until stdin ends, ctx is cancelled (Ctrl-C) or the
// server closes the connection.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	target, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}

	dialCtx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	conn, resp, err := websocket.DefaultDialer.DialContext(dialCtx, target, nil)
	if err != nil {
		return fmt.Errorf("join %s: %w", target, describeRefusal(err, resp))
	}

	var out sync.Mutex // serialises writes to stdout and stderr
	say := func(w io.Writer, format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(w, format, args...)
	}

	// The reader owns the connection's read side. It ends when the
	// connection closes, which the deferred Close brings about on every
	// return path, and run waits for it.
	readErr := make(chan error, 1)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		readErr <- printEvents(conn, func(line string) { say(stdout, "%s\n", line) })
	}()
	defer func() {
		conn.Close()
		<-readerDone
	}()

	// The line reader blocks in stdin's Read, which nothing can interrupt:
	// when we return first, it ends with its next line, at EOF or with the
	// process. done keeps it from blocking on a send nobody takes.
	done := make(chan struct{})
	defer close(done)
	lines := make(chan string)
	go readLines(stdin, lines, done, func(err error) { say(stderr, "chat_client: %v\n", err) })

	for {
		select {
		case <-ctx.Done():
			return leave(conn, readErr)
		case line, ok := <-lines:
			if !ok {
				return leave(conn, readErr)
			}
			if line == "" {
				continue
			}
			if len(line) > chat.MaxMessageSize {
				say(stderr, "chat_client: message not sent: %d bytes, the limit is %d\n", len(line), chat.MaxMessageSize)
				continue
			}
			conn.SetWriteDeadline(time.Now().Add(ioTimeout))
			if err := conn.WriteMessage(websocket.TextMessage, []byte(line)); err != nil {
				return fmt.Errorf("send: %w", err)
			}
		case err := <-readErr:
			return serverClosed(err)
		}
	}
}

// parseFlags turns the command line into the room's WebSocket URL, with the
// name in its query.
func parseFlags(args []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet("chat_client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rawURL := fs.String("url", "", "room URL, e.g. ws://127.0.0.1:8080/chat/lobby (instead of -addr and -room)")
	addr := fs.String("addr", "127.0.0.1:8080", "host:port of switchyard (or of the chat builtin itself)")
	room := fs.String("room", "lobby", "room to join")
	name := fs.String("name", "", "your name in the room (required)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: chat_client -url ws://HOST:PORT/chat/ROOM -name NAME")
		fmt.Fprintln(stderr, "       chat_client [-addr HOST:PORT] [-room ROOM] -name NAME")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *name == "" {
		return "", errors.New("-name is required")
	}

	var u *url.URL
	if *rawURL != "" {
		var both bool
		fs.Visit(func(f *flag.Flag) { both = both || f.Name == "addr" || f.Name == "room" })
		if both {
			return "", errors.New("-url names the room already; use it without -addr and -room")
		}
		var err error
		if u, err = url.Parse(*rawURL); err != nil {
			return "", fmt.Errorf("-url: %w", err)
		}
		switch u.Scheme {
		case "ws", "wss":
		case "http":
			u.Scheme = "ws" // the page's address works too
		case "https":
			u.Scheme = "wss"
		default:
			return "", fmt.Errorf("-url %q: want a ws:// or wss:// URL", *rawURL)
		}
	} else {
		u = &url.URL{Scheme: "ws", Host: *addr, Path: "/chat/" + *room}
	}
	q := u.Query()
	q.Set("name", *name)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// describeRefusal explains a failed join, using the server's JSON error
// (a full room, a bad name) when there is one.
func describeRefusal(err error, resp *http.Response) error {
	if resp == nil {
		return err
	}
	var body struct {
		Error string `json:"error"`
	}
	if json.NewDecoder(resp.Body).Decode(&body) == nil && body.Error != "" {
		return fmt.Errorf("%s: %s", resp.Status, body.Error)
	}
	return fmt.Errorf("%s: %w", resp.Status, err)
}

// printEvents prints every event until the connection ends and returns why
// it ended.
func printEvents(conn *websocket.Conn, emit func(string)) error {
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		var ev chat.Event
		if err := json.Unmarshal(data, &ev); err != nil {
			emit(fmt.Sprintf("[%s] (unreadable event %q)", clock(""), data))
			continue
		}
		emit(formatEvent(ev))
	}
}

// formatEvent renders one event as a terminal line.
func formatEvent(ev chat.Event) string {
	at := clock(ev.TS)
	switch ev.Type {
	case chat.EventJoin:
		return fmt.Sprintf("[%s] %s joined (%d in room)", at, ev.Name, ev.Clients)
	case chat.EventLeave:
		return fmt.Sprintf("[%s] %s left (%d in room)", at, ev.Name, ev.Clients)
	case chat.EventMessage:
		return fmt.Sprintf("[%s] <%s> %s", at, ev.Name, ev.Text)
	default:
		return fmt.Sprintf("[%s] (%s event from %s)", at, ev.Type, ev.Name)
	}
}

// clock shows an event's timestamp as local wall-clock time, or now when the
// timestamp is missing or unreadable.
func clock(ts string) string {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		t = time.Now()
	}
	return t.Local().Format(time.TimeOnly)
}

// readLines sends stdin's lines on lines and closes it at end of input. It
// stops early once done is closed.
func readLines(stdin io.Reader, lines chan<- string, done <-chan struct{}, warn func(error)) {
	defer close(lines)
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 4096), maxLine)
	for sc.Scan() {
		select {
		case lines <- strings.TrimRight(sc.Text(), "\r"):
		case <-done:
			return
		}
	}
	if err := sc.Err(); err != nil {
		warn(fmt.Errorf("reading input: %w", err))
	}
}

// leave closes the connection normally: close 1000, then wait for the
// server's answer (the reader sees it) for at most closeWait.
func leave(conn *websocket.Conn, readErr <-chan error) error {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeWait)); err != nil {
		return nil // the connection is gone already; nothing left to close
	}
	select {
	case <-readErr:
	case <-time.After(closeWait):
	}
	return nil
}

// serverClosed explains why the server ended the session.
func serverClosed(err error) error {
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		return fmt.Errorf("connection lost: %w", err)
	}
	reasons := map[int]string{
		websocket.CloseGoingAway:       "the server is shutting down",
		websocket.ClosePolicyViolation: "we did not keep up with the room",
		websocket.CloseMessageTooBig:   "a message was too big",
	}
	why := ce.Text
	if r, ok := reasons[ce.Code]; ok {
		why = r
	}
	return fmt.Errorf("server closed the connection (%d): %s", ce.Code, why)
}
