// Package config decodes and validates proxy.hcl into plain Go values.
//
// Decoding has no side effects: it never touches the network. Every problem in
// a file is reported at once as an hcl.Diagnostic whose Subject points at the
// offending attribute or block, so callers can print FILE:LINE,COL lines.
//
// Every attribute takes an HCL expression. Expressions may refer to
// local.NAME (attributes of locals blocks, which may refer to each other) and
// call env("NAME") ("" when unset), coalesce, format, join, lower, replace,
// split, trimspace and upper. An attribute set to null counts as unset, so a
// conditional can fall back to the default.
package config

import (
	"net/netip"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Defaults applied when an attribute is absent.
const (
	DefaultShutdownTimeout    = 15 * time.Second
	DefaultMaxConnections     = 10000
	DefaultIdleTimeout        = 60 * time.Second
	DefaultConnectTimeout     = 2 * time.Second
	DefaultRouteTimeout       = 60 * time.Second
	DefaultRetries            = 1
	DefaultStrategy           = "round_robin"
	DefaultHealthInterval     = 2 * time.Second
	DefaultHealthTimeout      = 1 * time.Second
	DefaultHealthyThreshold   = 2
	DefaultUnhealthyThresh    = 2
	DefaultBreakerFailures    = 5
	DefaultBreakerRatio       = 0.5
	DefaultBreakerMinReqs     = 20
	DefaultBreakerOpen        = 10 * time.Second
	DefaultBreakerHalfOpen    = 1
	DefaultRespondStatus      = 200
	DefaultBuiltinStatus      = 200
	DefaultMaxRooms           = 100
	DefaultMaxClientsPerRoom  = 50
	DefaultLogLevel           = "info"
	DefaultLogFormat          = "text"
	DefaultEngine             = "fast"
	DefaultRequestBodyTimeout = 30 * time.Second
)

// Allowed enumerated values, in the order error messages list them.
var (
	Protocols  = []string{"http", "tcp"}
	Strategies = []string{"round_robin", "least_conn", "random", "p2c", "consistent_hash", "least_latency"}
	Handlers   = []string{"http", "echo", "chat"}
	LogLevels  = []string{"trace", "debug", "info", "warn", "error"}
	LogFormats = []string{"text", "json"}
	// Engines are the HTTP forwarding engines: "fast" is switchyard's
	// event-loop HTTP/1.1 engine (Linux; elsewhere it falls back to "std"),
	// "std" is Go's net/http server and reverse proxy.
	Engines = []string{"fast", "std"}
	// HashOn lists the fixed hash_on values; "header:NAME" is also allowed.
	HashOn = []string{"client_ip", "header:NAME", "path"}
)

// Config is a fully decoded and validated proxy.hcl with defaults applied.
// Slices keep file order. Nothing mutates a Config after Parse or LoadFile
// returns it.
type Config struct {
	Path            string
	ShutdownTimeout time.Duration
	Admin           *Admin // nil when the file has no admin block
	Log             Log
	Listeners       []*Listener
	Upstreams       []*Upstream
	Builtins        []*Builtin
}

// Admin is the admin endpoint.
type Admin struct {
	Listen      string
	ListenRange hcl.Range
}

// Log configures logging.
type Log struct {
	Level  string
	Format string
	Access bool
}

// Listener is an http or tcp listener.
type Listener struct {
	Name           string
	DeclRange      hcl.Range
	Protocol       string // "http" or "tcp"
	Listen         string
	ListenRange    hcl.Range
	MaxConnections int
	IdleTimeout    time.Duration
	Routes         []*Route // http only, file order
	Upstream       string   // tcp only
	Engine         string   // http only: "fast" (default) or "std"
	// TrustedProxies are the peers whose X-Forwarded-* and Forwarded
	// fields are believed (http only; SPEC §3).
	TrustedProxies []netip.Prefix
	// UnderscoresInHeaders forwards client fields whose names contain "_"
	// (http only; dropped by default, as nginx does).
	UnderscoresInHeaders bool
	// RequestBodyTimeout bounds each wait for request body bytes (http
	// only); over it the client gets 408.
	RequestBodyTimeout time.Duration
	// UpstreamRange is where Upstream is written (DeclRange when unset).
	UpstreamRange hcl.Range
}

// Route is one routing rule of an http listener.
type Route struct {
	Name            string
	DeclRange       hcl.Range
	Host            string            // "" = any; exact or "*.example.com", lower-cased
	Path            string            // exact path; "" = unused
	PathPrefix      string            // "" = unused
	Methods         []string          // nil = any method
	Headers         map[string]string // names canonical (textproto), values exact
	Upstream        string            // "" when Respond is set
	StripPrefix     bool
	Timeout         time.Duration // defaults apply even on Respond routes, unused there
	Retries         int
	RequestHeaders  map[string]string // names canonical, as in Headers
	ResponseHeaders map[string]string // set on every answer, Respond ones included
	Respond         *Respond          // static answer instead of an upstream
	// UpstreamRange is where Upstream is written (DeclRange when unset).
	UpstreamRange hcl.Range
}

// Respond is a static answer.
type Respond struct {
	Status  int // 200-599
	Body    string
	Headers map[string]string // names canonical
}

// Upstream is a pool of backends.
type Upstream struct {
	Name           string
	DeclRange      hcl.Range
	Strategy       string
	HashOn         string // "" unless strategy is consistent_hash
	ConnectTimeout time.Duration
	Backends       []*Backend
	HealthCheck    *HealthCheck    // nil = passive health only
	CircuitBreaker *CircuitBreaker // never nil after Parse: defaults apply
}

// Backend is one member of an upstream pool.
type Backend struct {
	Address   string // as written: host:port, host an IP or a DNS name
	Weight    int
	DeclRange hcl.Range
}

// HealthCheck configures active health checks.
type HealthCheck struct {
	Interval           time.Duration
	Timeout            time.Duration
	Path               string // "" = TCP connect check
	HealthyThreshold   int
	UnhealthyThreshold int
}

// CircuitBreaker configures the per-backend breaker.
type CircuitBreaker struct {
	ConsecutiveFailures int
	FailureRatio        float64
	MinRequests         int
	OpenTimeout         time.Duration
	HalfOpenRequests    int
}

// Builtin is a built-in upstream server. The options of every handler carry
// their defaults whatever Handler is, but only those of Handler may be set.
type Builtin struct {
	Name        string
	DeclRange   hcl.Range
	Handler     string // "http", "echo" or "chat"
	Listen      string
	ListenRange hcl.Range

	// http handler
	Status    int
	Body      string
	Latency   time.Duration
	ErrorRate float64
	Healthy   bool

	// chat handler
	MaxRooms          int
	MaxClientsPerRoom int
}
