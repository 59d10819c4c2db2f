// Package routing matches HTTP requests to routes. It knows nothing about the
// HTTP engine: a request is described by its method, host, path and a header
// lookup function, so the forwarding engine can change without touching the
// matching rules or their tests.
package routing

import (
	"net"
	"strings"
)

// Matcher is the request side of a route: every non-empty field must match.
type Matcher struct {
	// Host is an exact host name or "*.example.com" (exactly one label).
	// Matching ignores case, any port and a trailing dot.
	Host string
	// Path matches the whole path exactly.
	Path string
	// PathPrefix matches paths starting with it.
	PathPrefix string
	// Methods lists allowed methods (upper case); empty allows every method.
	Methods []string
	// Headers must all be present with exactly these values.
	Headers []Header
}

// Header is one name/value pair.
type Header struct {
	Name  string // canonical MIME header name
	Value string
}

// Route is a compiled route: a matcher plus whatever the forwarding engine
// attaches to it (kept opaque here so this package stays engine-independent).
type Route[T any] struct {
	Name    string
	Matcher Matcher
	Target  T
}

// Table is an immutable, ordered route table: the first match wins.
type Table[T any] struct {
	routes []*Route[T]
	// hosts[i] is routes[i]'s host pattern, normalised once so matching
	// does not redo it per request.
	hosts []hostPattern
}

// hostPattern is a normalised Matcher.Host.
type hostPattern struct {
	exact string // "" when the route does not match on host or is a wildcard
	// wildcardSuffix is ".example.com" for "*.example.com", "" otherwise.
	wildcardSuffix string
}

func (p hostPattern) empty() bool { return p.exact == "" && p.wildcardSuffix == "" }

// NewTable builds a table; routes keep their order. The routes are not
// modified, and must not be modified afterwards.
func NewTable[T any](routes []*Route[T]) *Table[T] {
	t := &Table[T]{routes: routes, hosts: make([]hostPattern, len(routes))}
	for i, r := range routes {
		h := normalizeHost(r.Matcher.Host)
		if suffix, ok := strings.CutPrefix(h, "*"); ok && strings.HasPrefix(suffix, ".") {
			t.hosts[i] = hostPattern{wildcardSuffix: suffix}
		} else {
			t.hosts[i] = hostPattern{exact: h}
		}
	}
	return t
}

// Routes returns the routes in match order.
func (t *Table[T]) Routes() []*Route[T] { return t.routes }

// Request describes what routing looks at.
type Request struct {
	Method string
	Host   string // as received, may carry a port
	Path   string
	// Header returns the first value of a header (canonical name), "" if absent.
	Header func(name string) string
}

// Match returns the first route that matches req, or nil. A nil table
// matches nothing.
func (t *Table[T]) Match(req Request) *Route[T] {
	if t == nil {
		return nil
	}
	host := ""
	hostDone := false
	for i, r := range t.routes {
		m := &r.Matcher
		if m.Path != "" && req.Path != m.Path {
			continue
		}
		if m.PathPrefix != "" && !strings.HasPrefix(req.Path, m.PathPrefix) {
			continue
		}
		if len(m.Methods) > 0 && !containsString(m.Methods, req.Method) {
			continue
		}
		if p := t.hosts[i]; !p.empty() {
			if !hostDone {
				host = normalizeHost(req.Host)
				hostDone = true
			}
			if !p.matches(host) {
				continue
			}
		}
		if !headersMatch(m.Headers, req.Header) {
			continue
		}
		return r
	}
	return nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func headersMatch(want []Header, get func(string) string) bool {
	for _, h := range want {
		if get == nil || get(h.Name) != h.Value {
			return false
		}
	}
	return true
}

// matches compares the pattern against a normalised host. A wildcard
// matches exactly one extra label: "*.example.com" matches "a.example.com"
// but neither "example.com" nor "a.b.example.com".
func (p hostPattern) matches(host string) bool {
	if p.wildcardSuffix == "" {
		return host == p.exact
	}
	label, ok := strings.CutSuffix(host, p.wildcardSuffix)
	return ok && label != "" && !strings.Contains(label, ".")
}

// normalizeHost strips a port, IPv6 brackets and a trailing dot and
// lower-cases the host, so "API.example.com.:8080" and "api.example.com"
// compare equal. Allocation-free when the host is already lower case.
func normalizeHost(h string) string {
	if h == "" {
		return h
	}
	if strings.LastIndexByte(h, ':') > strings.LastIndexByte(h, ']') {
		if host, _, err := net.SplitHostPort(h); err == nil {
			h = host
		}
	}
	if len(h) >= 2 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}
