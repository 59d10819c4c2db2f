package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"switchyard/builtin"
	"switchyard/builtin/chat"
	"switchyard/builtin/echo"
	"switchyard/builtin/responder"
	"switchyard/listeners/httpproxy"
	"switchyard/listeners/tcpproxy"
	"switchyard/proxy/config"
)

// endpointKind names what runs on a socket.
type endpointKind string

const (
	kindHTTPListener endpointKind = "listener:http"
	kindTCPListener  endpointKind = "listener:tcp"
	kindAdmin        endpointKind = "admin"
	kindBuiltin      endpointKind = "builtin:" // + handler
)

// endpointSpec is one socket the config asks for.
type endpointSpec struct {
	kind        endpointKind
	name        string
	listen      string
	listenRange hcl.Range
	listener    *config.Listener // listeners only
	builtin     *config.Builtin  // builtins only
}

// key identifies a socket across generations. The same kind on the same
// address keeps its socket; builtins also need the same name (it appears in
// their answers). Port 0 asks the kernel for a fresh port, so there the name
// is what ties generations together.
func (s endpointSpec) key() string {
	k := string(s.kind) + "|" + normalizeAddr(s.listen)
	if s.kind == kindHTTPListener {
		// A running listener keeps its engine: a change means a new server.
		k += "|" + s.listener.Engine
	}
	if s.kind != kindHTTPListener && s.kind != kindTCPListener && s.kind != kindAdmin || isAnyPort(s.listen) {
		k += "|" + s.name
	}
	return k
}

func normalizeAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if strings.EqualFold(host, "localhost") {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func isAnyPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}

// specsOf lists every socket of a config in a stable order: builtins first
// (they are the backends listeners and health checks reach), then
// listeners, then admin.
func specsOf(cfg *config.Config) []endpointSpec {
	var specs []endpointSpec
	for _, b := range cfg.Builtins {
		specs = append(specs, endpointSpec{kind: kindBuiltin + endpointKind(b.Handler), name: b.Name, listen: b.Listen, listenRange: b.ListenRange, builtin: b})
	}
	for _, l := range cfg.Listeners {
		kind := kindHTTPListener
		if l.Protocol == "tcp" {
			kind = kindTCPListener
		}
		specs = append(specs, endpointSpec{kind: kind, name: l.Name, listen: l.Listen, listenRange: l.ListenRange, listener: l})
	}
	if cfg.Admin != nil {
		specs = append(specs, endpointSpec{kind: kindAdmin, name: "admin", listen: cfg.Admin.Listen, listenRange: cfg.Admin.ListenRange})
	}
	return specs
}

// endpoint is a running socket and the server on it.
type endpoint struct {
	spec endpointSpec
	ln   net.Listener

	httpServer  httpproxy.Listener
	tcpServer   *tcpproxy.Server
	builtin     builtin.Server
	echo        *echo.Server
	responder   *responder.Server
	chat        *chat.Server
	adminServer *http.Server

	serveDone chan struct{}
}

// addr is the bound address (differs from the configured one for port 0).
func (e *endpoint) addr() string { return e.ln.Addr().String() }

// bindError is a diagnostic-worthy failure to bind a configured address.
type bindError struct {
	spec endpointSpec
	err  error
}

func (e *bindError) Error() string { return fmt.Sprintf("listen on %q: %v", e.spec.listen, e.err) }
func (e *bindError) Unwrap() error { return e.err }

func (e *bindError) diagnostic() *hcl.Diagnostic {
	r := e.spec.listenRange
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("cannot listen on %q", e.spec.listen),
		Detail:   fmt.Sprintf("%s %q: %v", strings.SplitN(string(e.spec.kind), ":", 2)[0], e.spec.name, errors.Unwrap(e.err)),
		Subject:  &r,
	}
}

func bind(spec endpointSpec) (net.Listener, error) {
	ln, err := net.Listen("tcp", spec.listen)
	if err != nil {
		return nil, &bindError{spec: spec, err: err}
	}
	return ln, nil
}

// start creates the server for a freshly bound endpoint and begins serving.
func (r *Runtime) start(e *endpoint, snap *Snapshot) {
	spec := e.spec
	log := r.log.Named(string(spec.kind[:strings.IndexByte(string(spec.kind)+":", ':')])).With("name", spec.name)
	e.serveDone = make(chan struct{})
	var serve func() error
	switch spec.kind {
	case kindHTTPListener:
		srv, err := r.newHTTPListener(e.ln, snap.HTTP[spec.name], spec.listener, log)
		if err != nil {
			// The socket is bound and ours; serve it with net/http rather
			// than refuse traffic.
			log.Error("fast HTTP engine failed to start; using net/http", "error", err)
			settings := httpSettings(spec.listener)
			settings.Engine = httpproxy.EngineStd
			srv, _ = httpproxy.New(e.ln, snap.HTTP[spec.name], settings, log, r.metrics)
		}
		e.httpServer = srv
		serve = e.httpServer.Serve
	case kindTCPListener:
		e.tcpServer = tcpproxy.NewServer(e.ln, snap.TCP[spec.name], spec.listener.MaxConnections, log, r.metrics)
		serve = e.tcpServer.Serve
	case kindAdmin:
		e.adminServer = &http.Server{
			Handler:           r.adminHandler(spec.listen),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
		}
		serve = func() error {
			if err := e.adminServer.Serve(e.ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		}
	default:
		b := spec.builtin
		switch b.Handler {
		case "echo":
			e.echo = echo.New(b.Name, log)
			e.builtin = e.echo
		case "http":
			e.responder = responder.New(b.Name, responderOptions(b), log)
			e.builtin = e.responder
		case "chat":
			e.chat = chat.New(b.Name, chatOptions(b), log)
			e.builtin = e.chat
		}
		ln := e.ln
		serve = func() error { return e.builtin.Serve(ln) }
	}
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		defer close(e.serveDone)
		if err := serve(); err != nil {
			log.Error("server stopped", "listen", spec.listen, "error", err)
		}
	}()
	log.Info("started", "listen", e.addr())
}

// update hands a kept endpoint its new generation.
func (e *endpoint) update(spec endpointSpec, snap *Snapshot) {
	e.spec = spec
	switch spec.kind {
	case kindHTTPListener:
		e.httpServer.Update(snap.HTTP[spec.name], httpSettings(spec.listener))
	case kindTCPListener:
		e.tcpServer.Update(snap.TCP[spec.name], spec.listener.MaxConnections)
	case kindAdmin:
	default:
		switch {
		case e.responder != nil:
			e.responder.Update(responderOptions(spec.builtin))
		case e.chat != nil:
			e.chat.Update(chatOptions(spec.builtin))
		}
	}
}

// stop shuts the endpoint down, draining until ctx is done, and waits for its
// serve goroutine.
func (e *endpoint) stop(ctx context.Context) error {
	var err error
	switch {
	case e.httpServer != nil:
		err = e.httpServer.Shutdown(ctx)
	case e.tcpServer != nil:
		err = e.tcpServer.Shutdown(ctx)
	case e.adminServer != nil:
		err = e.adminServer.Shutdown(ctx)
		if err != nil {
			_ = e.adminServer.Close()
		}
	case e.builtin != nil:
		err = e.builtin.Shutdown(ctx)
	default:
		err = e.ln.Close()
	}
	if e.serveDone != nil {
		<-e.serveDone
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = nil // drain budget spent; what was left has been closed
	}
	return err
}

// newHTTPListener serves an HTTP listener with the engine its config asks
// for (the fast engine by default; net/http where the platform lacks it).
func (r *Runtime) newHTTPListener(ln net.Listener, opts *httpproxy.Options, l *config.Listener, log hclog.Logger) (httpproxy.Listener, error) {
	return httpproxy.New(ln, opts, httpSettings(l), log, r.metrics)
}

func httpSettings(l *config.Listener) httpproxy.Settings {
	return httpproxy.Settings{MaxConnections: l.MaxConnections, IdleTimeout: l.IdleTimeout, RequestBodyTimeout: l.RequestBodyTimeout, Engine: l.Engine}
}

func responderOptions(b *config.Builtin) responder.Options {
	return responder.Options{Status: b.Status, Body: b.Body, Latency: b.Latency, ErrorRate: b.ErrorRate, Healthy: b.Healthy}
}

func chatOptions(b *config.Builtin) chat.Options {
	return chat.Options{MaxRooms: b.MaxRooms, MaxClientsPerRoom: b.MaxClientsPerRoom}
}
