package httpproxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"

	"switchyard/listeners"
)

// Settings are the socket-level knobs of an HTTP listener.
type Settings struct {
	MaxConnections int
	IdleTimeout    time.Duration
	// ReadHeaderTimeout bounds how long a client may take to send request
	// headers (slowloris protection).
	ReadHeaderTimeout time.Duration
	// MaxHeaderBytes caps request headers; larger requests get 431.
	MaxHeaderBytes int
	// RequestBodyTimeout bounds each wait for the next bytes of a request
	// body (slow-body / R.U.D.Y. protection); over it the request gets 408
	// and the connection closes. Zero means DefaultRequestBodyTimeout.
	RequestBodyTimeout time.Duration
	// Engine is EngineFast (also for "") or EngineStd. A running listener
	// keeps the engine it started with.
	Engine string
}

// Defaults for Settings fields left zero.
const (
	DefaultReadHeaderTimeout  = 10 * time.Second
	DefaultMaxHeaderBytes     = 64 * 1024
	DefaultRequestBodyTimeout = 30 * time.Second
)

// Server is one running HTTP listener.
type Server struct {
	ln      *listeners.LimitListener
	srv     *http.Server
	handler *Handler
	log     hclog.Logger
}

// NewServer wraps an already bound socket. Nothing is accepted until Serve.
func NewServer(ln net.Listener, opts *Options, settings Settings, log hclog.Logger, observer Observer) *Server {
	if settings.ReadHeaderTimeout <= 0 {
		settings.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if settings.MaxHeaderBytes <= 0 {
		settings.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if settings.RequestBodyTimeout <= 0 {
		settings.RequestBodyTimeout = DefaultRequestBodyTimeout
	}
	h := NewHandler(opts, log, observer)
	h.bodyTimeout.Store(int64(settings.RequestBodyTimeout))
	s := &Server{
		ln:      listeners.NewLimitListener(ln, settings.MaxConnections),
		handler: h,
		log:     log,
	}
	s.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: settings.ReadHeaderTimeout,
		IdleTimeout:       settings.IdleTimeout,
		MaxHeaderBytes:    settings.MaxHeaderBytes,
		ErrorLog:          log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
	}
	return s
}

// Serve accepts until Shutdown; it returns nil after a Shutdown.
func (s *Server) Serve() error {
	err := s.srv.Serve(guardListener{Listener: s.ln, maxHeaderBytes: s.srv.MaxHeaderBytes})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Update swaps the routing generation and applies a new connection limit.
// The idle timeout of a running listener is fixed at creation.
func (s *Server) Update(opts *Options, settings Settings) {
	s.handler.Update(opts)
	if settings.RequestBodyTimeout <= 0 {
		settings.RequestBodyTimeout = DefaultRequestBodyTimeout
	}
	s.handler.bodyTimeout.Store(int64(settings.RequestBodyTimeout))
	s.ln.SetLimit(settings.MaxConnections)
}

// Tunnels reports upgraded connections still open.
func (s *Server) Tunnels() int { return s.handler.HijackedCount() }

// Handler returns the listener's handler.
func (s *Server) Handler() *Handler { return s.handler }

// ActiveConnections reports open client connections.
func (s *Server) ActiveConnections() int64 { return s.ln.Active() }

// TotalConnections reports client connections accepted so far.
func (s *Server) TotalConnections() uint64 { return s.ln.Total() }

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops accepting, lets in-flight requests and upgraded
// connections finish until ctx is done, then closes whatever is left. It
// returns ctx's error when the budget ran out.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	if werr := s.handler.tunnels.wait(ctx); werr != nil {
		s.handler.tunnels.closeAll()
		// Closing the client side ends every tunnel handler promptly (see
		// closeAll), so this wait is short; it keeps any of them from
		// outliving Shutdown.
		_ = s.handler.tunnels.wait(context.Background())
		if err == nil {
			err = werr
		}
	}
	return err
}
