package httpproxy

import (
	"context"
	"errors"
	"net"

	"github.com/hashicorp/go-hclog"
)

// Engines that serve an HTTP listener.
const (
	// EngineFast is the event-loop HTTP/1.1 engine (fast_*.go): less CPU
	// per request, and idle keep-alive connections cost no goroutine and
	// no buffer. Linux only; elsewhere New falls back to EngineStd.
	EngineFast = "fast"
	// EngineStd is net/http's server with httputil.ReverseProxy.
	EngineStd = "std"
)

// ErrFastUnsupported means this platform has no fast engine.
var ErrFastUnsupported = errors.New("httpproxy: the fast engine is not supported on this platform")

// Listener is a running HTTP listener, whichever engine serves it.
type Listener interface {
	// Serve accepts until Shutdown; it returns nil after a Shutdown.
	Serve() error
	// Update swaps in a new routing generation and settings for requests
	// that start from now on.
	Update(*Options, Settings)
	// Shutdown stops accepting, lets requests in flight and upgraded
	// connections finish until ctx is done, then closes what is left.
	Shutdown(context.Context) error
	Addr() net.Addr
	ActiveConnections() int64
	TotalConnections() uint64
	// Tunnels reports upgraded (e.g. WebSocket) connections still open.
	Tunnels() int
}

var (
	_ Listener = (*Server)(nil)
	_ Listener = (*FastServer)(nil)
)

// New serves an already bound socket with the engine settings.Engine names
// ("" means EngineFast). If the fast engine is unavailable here it falls
// back to EngineStd and says so in the log.
func New(ln net.Listener, opts *Options, settings Settings, log hclog.Logger, observer Observer) (Listener, error) {
	if settings.Engine != EngineStd {
		fast, err := NewFastServer(ln, opts, settings, log, observer)
		if err == nil {
			return fast, nil
		}
		if !errors.Is(err, ErrFastUnsupported) {
			return nil, err
		}
		log.Debug("fast HTTP engine unavailable here; using net/http", "error", err)
	}
	return NewServer(ln, opts, settings, log, observer), nil
}
