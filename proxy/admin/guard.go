package admin

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Option adjusts the admin endpoint's handler.
type Option func(*guard)

// AllowHost admits requests whose Host names host (any port), on top of the
// names admitted anyway: localhost, loopback addresses and the address the
// client connected to. Use it for the host of a configured listen address
// that is a DNS name, or the name a reverse proxy in front of the endpoint
// forwards unchanged.
func AllowHost(host string) Option {
	return func(g *guard) {
		if h := normalHost(host); h != "" {
			g.hosts[h] = true
		}
	}
}

// guard is the admin endpoint's browser-facing defence, in front of every
// route:
//
//   - Host check (DNS rebinding): a page on an attacker's domain whose name
//     is re-pointed at the admin address talks to the endpoint as "same
//     origin", but its requests carry the attacker's name in Host. Only
//     names that cannot be rebound are admitted: localhost, IP literals of
//     the loopback or of the address the client connected to (so wildcard
//     binds work), and names given with AllowHost. GET /healthz is exempt:
//     orchestrator probes send whatever Host they like, and it reveals
//     nothing.
//   - Cross-site check (CSRF): a state-changing request (anything but GET,
//     HEAD, OPTIONS) from a browser must come from the endpoint's own origin.
//     Sec-Fetch-Site, when present, decides (same-origin or none pass);
//     else Origin, when present, must be http(s) with the request's Host.
//     Requests with neither header (curl, scripts) pass.
//
// Refusals are 403 with a JSON {"error"} body. Every answer carries
// X-Content-Type-Options: nosniff.
type guard struct {
	next  http.Handler
	hosts map[string]bool // extra admitted host names, normalised
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	healthProbe := r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead)
	if !healthProbe && !g.hostAllowed(r) {
		writeJSON(w, http.StatusForbidden, map[string]string{
			"error": "Host " + quote(r.Host) + " is not an address of this admin endpoint (use localhost or its IP address)",
		})
		return
	}
	if !sameOriginOrNonBrowser(r) {
		writeJSON(w, http.StatusForbidden, map[string]string{
			"error": "cross-origin request refused",
		})
		return
	}
	g.next.ServeHTTP(w, r)
}

// hostAllowed reports whether r's Host names this endpoint in a way DNS
// rebinding cannot forge.
func (g *guard) hostAllowed(r *http.Request) bool {
	if r.Host == "" {
		// HTTP/1.0 without Host: no browser sends that.
		return true
	}
	host := normalHost(r.Host)
	if host == "" {
		return false
	}
	if host == "localhost" || g.hosts[host] {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap().WithZone("")
	if ip.IsLoopback() {
		return true
	}
	if local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(local.String()); err == nil && ap.Addr().Unmap().WithZone("") == ip {
			return true
		}
	}
	return false
}

// sameOriginOrNonBrowser reports whether r is safe to act on: a safe
// method, a browser request from the endpoint's own origin, or a request
// carrying neither Sec-Fetch-Site nor Origin (not from a browser).
func sameOriginOrNonBrowser(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	if site := r.Header.Values("Sec-Fetch-Site"); len(site) > 0 {
		if len(site) != 1 {
			return false
		}
		v := strings.ToLower(strings.TrimSpace(site[0]))
		return v == "same-origin" || v == "none"
	}
	origins := r.Header.Values("Origin")
	if len(origins) == 0 {
		return true
	}
	if len(origins) != 1 {
		return false
	}
	u, err := url.Parse(strings.TrimSpace(origins[0]))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false // includes "null" (sandboxed frames, file: pages)
	}
	return strings.EqualFold(u.Host, r.Host)
}

// normalHost returns the host part of a Host value (port and IPv6 brackets
// removed), lower-cased and without a trailing dot; "" when it has none.
func normalHost(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// quote renders s for an error message; the JSON encoder escapes it.
func quote(s string) string {
	const limit = 256
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return `"` + s + `"`
}
