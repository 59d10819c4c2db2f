package config

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

var listenerSchema = blockSchema{
	attributes: []string{"protocol", "listen", "max_connections", "idle_timeout", "upstream", "engine",
		"trusted_proxies", "underscores_in_headers", "request_body_timeout"},
	blocks: []string{"route"},
}

func (d *decoder) decodeListener(blk *hclsyntax.Block) *Listener {
	l := &Listener{Name: blk.Labels[0], DeclRange: blk.DefRange()}
	b := d.decodeBody(blk.Body, fmt.Sprintf("listener %q", l.Name), l.DeclRange, listenerSchema)
	if b.require("protocol", `"http" or "tcp"`) {
		l.Protocol, _ = b.enum("protocol", "protocol", "", Protocols)
	}
	l.Listen, l.ListenRange = b.listenAddress()
	l.MaxConnections = b.int("max_connections", DefaultMaxConnections, 1)
	l.IdleTimeout = b.duration("idle_timeout", DefaultIdleTimeout, false)
	l.Upstream, l.UpstreamRange = b.upstreamName()
	l.Engine, _ = b.enum("engine", "engine", DefaultEngine, Engines)
	l.TrustedProxies = b.cidrList("trusted_proxies")
	l.UnderscoresInHeaders = b.bool("underscores_in_headers", false)
	l.RequestBodyTimeout = b.duration("request_body_timeout", DefaultRequestBodyTimeout, false)

	switch l.Protocol {
	case "tcp":
		b.require("upstream", "the name of the upstream block every connection is forwarded to")
		if b.present("engine") {
			d.errorf(b.attrRange("engine"), "Engine in tcp listener", "engine is only valid in http listeners; tcp listener %q always forwards with splice", l.Name)
		}
		for _, name := range []string{"trusted_proxies", "underscores_in_headers", "request_body_timeout"} {
			if b.present(name) {
				d.errorf(b.attrRange(name), "HTTP attribute in tcp listener", "%s is only valid in http listeners; tcp listener %q forwards bytes without reading HTTP", name, l.Name)
			}
		}
		for _, route := range b.blocks {
			d.errorf(route.DefRange(), "Route in tcp listener", "route blocks are only valid in http listeners; tcp listener %q forwards every connection to its upstream", l.Name)
		}
	case "http":
		if b.present("upstream") {
			d.errorf(b.attrRange("upstream"), "Upstream in http listener", "upstream is only valid in tcp listeners; http listener %q picks an upstream in each route block", l.Name)
			l.Upstream = ""
		}
		fallthrough
	default:
		// With an unknown protocol the routes are still checked, so one run
		// reports as much as possible.
		routes := newNameSet("route")
		for _, blk := range b.blocks {
			if d.checkLabels(blk, []string{"NAME"}) && d.declare(routes, blk) {
				l.Routes = append(l.Routes, d.decodeRoute(l.Name, blk))
			}
		}
		if l.Protocol != "http" {
			l.Routes = nil
		}
		d.checkReachable(l)
	}
	return l
}

var routeSchema = blockSchema{
	attributes: []string{"host", "path", "path_prefix", "methods", "headers", "upstream", "strip_prefix", "timeout", "retries", "request_headers", "response_headers"},
	blocks:     []string{"respond"},
}

// forwardingAttributes only make sense when a route forwards to an upstream.
var forwardingAttributes = []string{"upstream", "strip_prefix", "timeout", "retries", "request_headers"}

func (d *decoder) decodeRoute(listener string, blk *hclsyntax.Block) *Route {
	r := &Route{Name: blk.Labels[0], DeclRange: blk.DefRange()}
	what := fmt.Sprintf("route %q of listener %q", r.Name, listener)
	b := d.decodeBody(blk.Body, what, r.DeclRange, routeSchema)

	if host := b.string("host", ""); host != "" {
		if err := checkHostPattern(host); err != nil {
			d.errorf(b.exprRange("host"), "Invalid host", "%v", err)
		}
		r.Host = strings.ToLower(host)
	}
	r.Path = b.path("path")
	r.PathPrefix = b.path("path_prefix")
	if b.present("path") && b.present("path_prefix") {
		d.errorf(b.attrRange("path_prefix"), "Conflicting path attributes", "%s sets both path and path_prefix; use path for an exact match or path_prefix for a prefix, not both", what)
	}
	if b.present("methods") {
		r.Methods = b.stringList("methods", `["GET", "POST"]`)
		if r.Methods != nil && len(r.Methods) == 0 {
			d.errorf(b.exprRange("methods"), "Empty methods", "methods must list at least one method; leave it out to match every method")
		}
		for _, m := range r.Methods {
			if !methodPattern.MatchString(m) {
				d.errorf(b.exprRange("methods"), "Invalid method", "method %q must be an upper-case token, such as GET, POST or M-SEARCH", m)
			}
		}
	}
	r.Headers = b.headerMap("headers")
	r.Upstream, r.UpstreamRange = b.upstreamName()
	r.StripPrefix = b.bool("strip_prefix", false)
	r.Timeout = b.duration("timeout", DefaultRouteTimeout, false)
	r.Retries = b.int("retries", DefaultRetries, 0)
	r.RequestHeaders = b.headerMap("request_headers")
	r.ResponseHeaders = b.headerMap("response_headers")

	var respondAt hcl.Range
	seen := map[string]hcl.Range{}
	for _, nested := range b.blocks {
		if d.checkLabels(nested, nil) && d.firstOfKind(seen, nested) {
			r.Respond = d.decodeRespond(what, nested)
			respondAt = nested.DefRange()
		}
	}

	switch {
	case r.Respond != nil:
		for _, name := range forwardingAttributes {
			if b.present(name) {
				d.errorf(b.attrRange(name), "Conflicting route attributes", "%s cannot be combined with the respond block at %s; a route either forwards to an upstream or answers by itself", name, formatPos(respondAt))
			}
		}
		r.Upstream = ""
	case !b.present("upstream") && len(b.blocks) == 0:
		d.errorf(r.DeclRange, "Route without target", "%s needs either upstream = \"NAME\" or a respond { ... } block", what)
	}
	if r.StripPrefix && r.Respond == nil && !b.present("path_prefix") {
		d.errorf(b.attrRange("strip_prefix"), "strip_prefix without path_prefix", "strip_prefix removes the path_prefix before forwarding, but %s has no path_prefix", what)
	}
	return r
}

// upstreamName decodes the upstream attribute, a reference to an upstream
// block that checkReferences resolves once all blocks are known.
func (b *body) upstreamName() (string, hcl.Range) {
	name := b.string("upstream", "")
	if _, ok := b.values["upstream"]; ok && name == "" {
		b.d.errorf(b.exprRange("upstream"), "Empty upstream", "upstream must name an upstream block")
		b.invalidate("upstream")
	}
	return name, b.exprRange("upstream")
}

// cidrList decodes a list of CIDR prefixes ("10.0.0.0/8"); a bare address
// is taken as a single host (/32 or /128).
func (b *body) cidrList(name string) []netip.Prefix {
	if !b.present(name) {
		return nil
	}
	var out []netip.Prefix
	for _, v := range b.stringList(name, `["10.0.0.0/8", "192.168.1.7"]`) {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			addr, aerr := netip.ParseAddr(v)
			if aerr != nil {
				b.d.errorf(b.exprRange(name), "Invalid CIDR", "%s: %q is neither a CIDR prefix such as \"10.0.0.0/8\" nor an IP address", name, v)
				continue
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out
}

// path decodes path or path_prefix.
func (b *body) path(name string) string {
	p := b.string(name, "")
	if _, ok := b.values[name]; !ok {
		return ""
	}
	if err := checkPath(name, p); err != nil {
		b.d.errorf(b.exprRange(name), "Invalid "+name, "%v", err)
	}
	return p
}

// headerMap decodes a map of header names to values, storing names in
// canonical form. Names differing only in case would silently collapse, so
// they are reported.
func (b *body) headerMap(name string) map[string]string {
	keys, raw := b.stringMap(name)
	if raw == nil {
		return nil
	}
	out := make(map[string]string, len(raw))
	firstSpelling := map[string]string{}
	for _, k := range keys {
		v := raw[k]
		switch canon := canonicalHeader(k); {
		case !isToken(k):
			b.d.errorf(b.mapKeyRange(name, k), "Invalid header name", "%s: %q is not a valid header name; use letters, digits and !#$%%&'*+-.^_`|~", name, k)
		case !validHeaderValue(v):
			b.d.errorf(b.mapKeyRange(name, k), "Invalid header value", "%s: the value of %q must not contain line breaks or other control characters", name, k)
		case firstSpelling[canon] != "":
			b.d.errorf(b.mapKeyRange(name, k), "Duplicate header name", "%s sets both %q and %q, which are the same header; header names are case-insensitive", name, firstSpelling[canon], k)
		default:
			firstSpelling[canon] = k
			out[canon] = v
		}
	}
	return out
}

var respondSchema = blockSchema{attributes: []string{"status", "body", "headers"}}

func (d *decoder) decodeRespond(route string, blk *hclsyntax.Block) *Respond {
	b := d.decodeBody(blk.Body, "respond in "+route, blk.DefRange(), respondSchema)
	r := &Respond{
		Status:  b.status("status", DefaultRespondStatus),
		Body:    b.string("body", ""),
		Headers: b.headerMap("headers"),
	}
	b.checkBodyAllowed(r.Status, r.Body)
	return r
}

// status decodes a final HTTP status code. 1xx codes are informational in
// HTTP and cannot end an exchange, so they are not accepted.
func (b *body) status(name string, def int) int {
	if _, ok := b.values[name]; !ok {
		return def
	}
	code, ok := b.number(name, -maxInt, maxInt)
	if !ok {
		return def
	}
	if code < 200 || code > 599 {
		b.d.errorf(b.exprRange(name), "Invalid status code", "%s %d is not a final HTTP status; allowed: 200 to 599", name, code)
		return def
	}
	return code
}

// checkBodyAllowed rejects a body on statuses that HTTP says have none;
// the server would otherwise drop it silently.
func (b *body) checkBodyAllowed(status int, text string) {
	if text != "" && (status == http.StatusNoContent || status == http.StatusNotModified) {
		b.d.errorf(b.exprRange("body"), "Body not allowed", "a %d response has no body; remove body or use another status", status)
	}
}

// checkReachable warns about routes after one that matches every request:
// routes are tried in file order, so they can never be chosen.
func (d *decoder) checkReachable(l *Listener) {
	var catchAll *Route
	for _, r := range l.Routes {
		if catchAll != nil {
			d.warnf(r.DeclRange, "Unreachable route", "route %q can never match: route %q at %s comes first and matches every request", r.Name, catchAll.Name, formatPos(catchAll.DeclRange))
			continue
		}
		if r.Host == "" && r.Path == "" && (r.PathPrefix == "" || r.PathPrefix == "/") && r.Methods == nil && len(r.Headers) == 0 {
			catchAll = r
		}
	}
}
