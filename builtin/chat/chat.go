// Package chat is the built-in WebSocket chat server: clients join a room with
// GET /chat/{room}?name={name} and every text frame a client sends is relayed,
// as a JSON event, to every client of that room (sender included) in one order
// per room. GET /chat/{room} without an Upgrade header serves a small HTML page
// that joins the room from a browser.
//
// Wire format, server to client: one JSON object per text frame,
//
//	{"type":"join"|"leave"|"message","room":"lobby","name":"alice","text":"hi",
//	 "ts":"2025-01-02T15:04:05.123456789Z","clients":2}
//
// where ts is the server's clock when the event was sequenced, in RFC 3339
// with nanoseconds, UTC, and clients is the number of clients in the room
// after the event. text is empty for join and leave.
//
// Close codes the server sends: 1001 on shutdown, 1003 for a binary frame,
// 1007 for a text frame that is not UTF-8, 1008 when a client's send queue
// overflows (it reads too slowly), 1009 for a message over 4096 bytes.
//
// Each idle client costs one goroutine (its reader); the writer goroutine
// exists only while there is something to write, and pings come from a timer.
package chat

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"

	"switchyard/builtin"
)

// Protocol limits.
const (
	// MaxMessageSize is the largest text frame a client may send, in bytes.
	// A larger one gets close 1009.
	MaxMessageSize = 4096
	// MaxRoomLength and MaxNameLength bound room and client names (in
	// characters) so that events stay small and names fit on one line.
	MaxRoomLength = 64
	MaxNameLength = 32
)

// Event types, the "type" key of every Event.
const (
	EventJoin    = "join"
	EventLeave   = "leave"
	EventMessage = "message"
)

// Event is one server-to-client frame.
type Event struct {
	Type string `json:"type"`
	Room string `json:"room"`
	Name string `json:"name"`
	Text string `json:"text"`
	// TS is RFC 3339 with nanoseconds, UTC.
	TS string `json:"ts"`
	// Clients is the number of clients in the room after the event.
	Clients int `json:"clients"`
}

// Connection timing. The spec fixes the ping period at 30 s; the others follow
// from it.
const (
	// pongWait is how long a connection may stay without a pong before the
	// peer is considered gone. It is pingPeriod plus a ninth, the ratio the
	// gorilla chat example uses, so a pong may take up to ~3 s to come back.
	pongWait = 30 * time.Second * 10 / 9
	// pingPeriod must be shorter than pongWait, or the read deadline would
	// expire before the pong that extends it could arrive.
	pingPeriod = pongWait * 9 / 10
	// writeWait bounds one frame write: a peer whose TCP window stays shut
	// that long is not reading and is dropped.
	writeWait = 10 * time.Second
	// closeGrace is how long we wait for the peer's close frame after sending
	// ours (or, after a protocol error, for the peer to stop sending), so the
	// peer reads our close code instead of a TCP reset.
	closeGrace = 2 * time.Second
	// lingerLimit bounds what we read and discard after closing a connection
	// for breaking a rule (see client.linger): enough for the rest of a
	// message a little over MaxMessageSize, so its sender reads our close
	// frame rather than a reset, and no more, so that a frame header
	// declaring 2^40 bytes costs us next to nothing.
	lingerLimit = 64 << 10
	// defaultSendQueue is how many events may wait for one client's writer.
	// The kernel socket buffer absorbs bursts before this fills, so a full
	// queue means the client has stopped reading.
	defaultSendQueue = 256
)

// Buffer sizes: small, because an idle client must stay cheap. Reads bigger
// than readBufferSize bypass the buffer; writes take a buffer from a shared
// pool only while a message is being framed.
const (
	readBufferSize  = 512
	writeBufferSize = 4096
)

//go:embed page.html
var pageHTML []byte

// Options are the limits from the builtin block. A value <= 0 means no limit.
type Options struct {
	MaxRooms          int
	MaxClientsPerRoom int
}

// timing holds the connection timers. New fills it from the constants above;
// tests shorten it before Serve.
type timing struct {
	pingPeriod time.Duration
	pongWait   time.Duration
	writeWait  time.Duration
	closeGrace time.Duration
}

// Server is the chat server. The zero value is not usable; call New.
type Server struct {
	name     string
	log      hclog.Logger
	http     *http.Server
	upgrader websocket.Upgrader
	// timing and sendQueue are set before Serve and read-only afterwards.
	timing    timing
	sendQueue int

	// mu guards opts, rooms (including each room's size), clients and
	// shuttingDown. A WebSocket handler registers with handlers under mu
	// while shuttingDown is false, so every Add happens before Shutdown's
	// Wait. Lock order: mu before room.mu before client.mu.
	mu           sync.Mutex
	opts         Options
	rooms        map[string]*room
	clients      map[*client]struct{}
	shuttingDown bool
	handlers     sync.WaitGroup

	members  atomic.Int64
	messages atomic.Uint64
}

var _ builtin.Server = (*Server)(nil)

// New returns a chat server named name (the name appears in its logs) with
// the given limits.
func New(name string, opts Options, log hclog.Logger) *Server {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s := &Server{
		name: name,
		log:  log.With("builtin", name, "handler", "chat"),
		timing: timing{
			pingPeriod: pingPeriod,
			pongWait:   pongWait,
			writeWait:  writeWait,
			closeGrace: closeGrace,
		},
		sendQueue: defaultSendQueue,
		opts:      opts,
		rooms:     make(map[string]*room),
		clients:   make(map[*client]struct{}),
	}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: writeWait,
		ReadBufferSize:   readBufferSize,
		WriteBufferSize:  writeBufferSize,
		WriteBufferPool:  &sync.Pool{},
		// Any origin may connect: the chat uses no cookies or other ambient
		// credentials, so a cross-site page gains nothing it could not get by
		// connecting directly, and behind a reverse proxy the browser's
		// Origin names the proxy, not the Host we see.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			writeJSONError(w, status, reason.Error())
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /chat/{room}", s.serveRoom)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, "no such page; join a room at /chat/{room}")
	})
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          s.log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
	}
	return s
}

// Update replaces the limits. They apply to joins from now on; rooms and
// clients already over a lowered limit stay.
func (s *Server) Update(opts Options) {
	s.mu.Lock()
	s.opts = opts
	s.mu.Unlock()
}

// Clients is the number of clients currently in a room.
func (s *Server) Clients() int { return int(s.members.Load()) }

// Rooms is the number of rooms that exist (that have at least one client or
// a client joining).
func (s *Server) Rooms() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rooms)
}

// MessagesTotal is the number of chat messages clients have sent since New,
// each counted once however many clients it was delivered to.
func (s *Server) MessagesTotal() uint64 { return s.messages.Load() }

// Serve accepts connections on ln until Shutdown is called, then returns nil.
// It returns an error only when accepting fails for another reason; ln is
// closed in every case.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("chat %q: serve on %s: %w", s.name, ln.Addr(), err)
}

// Shutdown stops accepting, sends every client close 1001 and waits for the
// close handshakes (and any page requests) to finish until ctx is done; then
// it closes the remaining connections and waits for their goroutines. It
// returns ctx's error when connections had to be cut.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shuttingDown = true
	clients := make([]*client, 0, len(s.clients))
	for c := range s.clients {
		clients = append(clients, c)
	}
	s.mu.Unlock()

	// http.Server.Shutdown closes the listeners and waits for plain requests;
	// it neither sees nor waits for hijacked (WebSocket) connections, which
	// is what s.handlers is for.
	httpDone := make(chan error, 1)
	go func() { httpDone <- s.http.Shutdown(ctx) }()

	for _, c := range clients {
		c.requestClose(websocket.CloseGoingAway, "server shutting down")
	}

	handlersDone := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(handlersDone)
	}()

	var cutErr error
	select {
	case <-handlersDone:
	case <-ctx.Done():
		s.mu.Lock()
		cut := len(s.clients)
		for c := range s.clients {
			c.conn.Close()
		}
		s.mu.Unlock()
		// A closed connection fails its pending read and write at once, so
		// the handlers return promptly.
		<-handlersDone
		s.log.Info("shutdown deadline reached; closed open chat connections", "connections", cut)
		cutErr = fmt.Errorf("chat %q: shutdown: %w", s.name, ctx.Err())
	}

	if err := <-httpDone; err != nil {
		// The deadline passed with page requests in flight: cut them too.
		s.http.Close()
		if cutErr == nil {
			cutErr = fmt.Errorf("chat %q: shutdown: %w", s.name, err)
		}
	}
	return cutErr
}

// serveRoom answers GET /chat/{room}: the HTML page, or a WebSocket join.
func (s *Server) serveRoom(w http.ResponseWriter, r *http.Request) {
	roomName := r.PathValue("room")
	if err := validateRoom(roomName); err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		servePage(w)
		return
	}
	name := r.URL.Query().Get("name")
	if err := validateName(name); err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}

	rm, err := s.admit(roomName)
	if err != nil {
		writeJSONError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has already answered the request.
		s.log.Debug("websocket upgrade failed", "room", roomName, "remote", r.RemoteAddr, "error", err)
		s.release(rm)
		return
	}
	c := newClient(s, rm, name, conn)
	// The connection gets a goroutine of its own and this handler returns,
	// so that net/http's per-connection state (request, buffers, a stack
	// grown while parsing) is freed rather than kept for the connection's
	// lifetime. The goroutine inherits the s.handlers registration.
	go s.serveClient(c)
}

// serveClient runs c until its connection ends, then gives back its place.
func (s *Server) serveClient(c *client) {
	defer s.release(c.room)
	if !s.register(c) {
		c.closeNow(websocket.CloseGoingAway, "server shutting down")
		return
	}
	defer s.unregister(c)
	c.run()
}

// errShuttingDown refuses joins once Shutdown has begun.
var errShuttingDown = errors.New("server shutting down")

// admit reserves a place in room roomName, creating the room if needed, and
// registers the caller with s.handlers. The caller must call release when
// the connection ends.
func (s *Server) admit(roomName string) (*room, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown {
		return nil, errShuttingDown
	}
	rm := s.rooms[roomName]
	if rm == nil {
		if s.opts.MaxRooms > 0 && len(s.rooms) >= s.opts.MaxRooms {
			return nil, fmt.Errorf("too many rooms (max_rooms = %d)", s.opts.MaxRooms)
		}
		rm = newRoom(s, roomName)
		s.rooms[roomName] = rm
	}
	if s.opts.MaxClientsPerRoom > 0 && rm.size >= s.opts.MaxClientsPerRoom {
		return nil, fmt.Errorf("room %q is full (max_clients_per_room = %d)", roomName, s.opts.MaxClientsPerRoom)
	}
	rm.size++
	s.handlers.Add(1)
	return rm, nil
}

// release gives back the place admit reserved, removes the room once the
// last place is gone, and ends the s.handlers registration.
func (s *Server) release(rm *room) {
	s.mu.Lock()
	rm.size--
	if rm.size == 0 {
		delete(s.rooms, rm.name)
	}
	s.mu.Unlock()
	s.handlers.Done()
}

// register records c so that Shutdown can reach it. It reports false once
// Shutdown has begun, which then no longer looks at new clients.
func (s *Server) register(c *client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shuttingDown {
		return false
	}
	s.clients[c] = struct{}{}
	return true
}

func (s *Server) unregister(c *client) {
	s.mu.Lock()
	delete(s.clients, c)
	s.mu.Unlock()
}

func servePage(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(pageHTML)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	body, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// validateRoom accepts 1 to MaxRoomLength ASCII letters, digits, '-', '_' and
// '.', starting with a letter or digit: safe in a URL path and in a log line.
func validateRoom(room string) error {
	if room == "" {
		return errors.New("room name is empty")
	}
	if len(room) > MaxRoomLength {
		return fmt.Errorf("room name is longer than %d characters", MaxRoomLength)
	}
	for i := 0; i < len(room); i++ {
		b := room[i]
		alnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		if i == 0 && !alnum {
			return errors.New("room name must start with a letter or digit")
		}
		if !alnum && b != '-' && b != '_' && b != '.' {
			return fmt.Errorf("room name may contain only letters, digits, '-', '_' and '.', not %q", b)
		}
	}
	return nil
}

// validateName accepts 1 to MaxNameLength letters (any script, with their
// combining marks), digits, spaces, '-', '_' and '.', without leading or
// trailing space.
func validateName(name string) error {
	if name == "" {
		return errors.New("missing name: join with ?name=YOUR_NAME")
	}
	if !utf8.ValidString(name) {
		return errors.New("name is not valid UTF-8")
	}
	if utf8.RuneCountInString(name) > MaxNameLength {
		return fmt.Errorf("name is longer than %d characters", MaxNameLength)
	}
	if strings.TrimSpace(name) != name {
		return errors.New("name must not start or end with a space")
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsMark(r) && !unicode.IsDigit(r) && r != ' ' && r != '-' && r != '_' && r != '.' {
			return fmt.Errorf("name may contain only letters, digits, spaces, '-', '_' and '.', not %q", r)
		}
	}
	return nil
}

// encodeEvent renders ev as one frame payload.
func encodeEvent(ev Event) []byte {
	b, err := json.Marshal(ev)
	if err != nil {
		// Event holds only strings and an int; Marshal cannot fail on it.
		panic(fmt.Sprintf("chat: encode event: %v", err))
	}
	return b
}

// timestamp formats t the way Event.TS documents.
func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
