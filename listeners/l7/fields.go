package l7

import (
	"net/netip"
	"strings"
)

// FieldClass says what becomes of a header field a client sent when the
// request is forwarded (SPEC §3, README "HTTP behaviour").
type FieldClass uint8

// Field classes, from "forwarded as sent" to the ones the proxy owns.
const (
	// FieldEndToEnd is forwarded as sent (unless Connection nominates it).
	FieldEndToEnd FieldClass = iota
	// FieldHopByHop describes the client's connection and is never
	// forwarded (RFC 9110 §7.6.1); Upgrade is re-stated for a WebSocket.
	FieldHopByHop
	// FieldFraming is Content-Length, Transfer-Encoding or Host: the proxy
	// decides the message's framing and target from its own parse and
	// states them itself, so no client field, and no Connection nomination,
	// can remove or change them on the way (RFC 9112 §6, §11.2).
	FieldFraming
	// FieldProxyOwned is a field the proxy always writes itself
	// (X-Forwarded-For, X-Request-Id): the client's value is read, never
	// copied.
	FieldProxyOwned
	// FieldForwarded claims something about the client or earlier hops
	// (Forwarded, X-Forwarded-Host/Proto/Port/Prefix/…, X-Real-Ip,
	// Client-Ip, True-Client-Ip): kept only from a trusted proxy.
	FieldForwarded
	// FieldUnderscore has "_" in its name. Many backends (CGI, WSGI, Rack,
	// PHP) map "-" and "_" to the same variable, so X_Forwarded_For would
	// pose as X-Forwarded-For: dropped unless the listener allows them, as
	// nginx does.
	FieldUnderscore
)

// ClassifyRequestField classifies a client's request field by name.
func ClassifyRequestField[T text](name T) FieldClass {
	switch len(name) {
	case 2:
		if equalFold(name, "te") {
			return FieldHopByHop
		}
	case 4:
		if equalFold(name, "host") {
			return FieldFraming
		}
	case 7:
		if equalFold(name, "trailer") || equalFold(name, "upgrade") {
			return FieldHopByHop
		}
	case 9:
		if equalFold(name, "forwarded") || equalFold(name, "client-ip") || equalFold(name, "x-real-ip") {
			return FieldForwarded
		}
	case 10:
		if equalFold(name, "connection") || equalFold(name, "keep-alive") {
			return FieldHopByHop
		}
	case 12:
		if equalFold(name, "x-request-id") {
			return FieldProxyOwned
		}
	case 14:
		if equalFold(name, "content-length") {
			return FieldFraming
		}
		if equalFold(name, "true-client-ip") {
			return FieldForwarded
		}
	case 15:
		if equalFold(name, "x-forwarded-for") {
			return FieldProxyOwned
		}
	case 16:
		if equalFold(name, "proxy-connection") {
			return FieldHopByHop
		}
	case 17:
		if equalFold(name, "transfer-encoding") {
			return FieldFraming
		}
	case 18:
		if equalFold(name, "proxy-authenticate") {
			return FieldHopByHop
		}
	case 19:
		if equalFold(name, "proxy-authorization") {
			return FieldHopByHop
		}
	}
	if hasPrefixFold(name, "x-forwarded-") {
		return FieldForwarded
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '_' {
			return FieldUnderscore
		}
	}
	return FieldEndToEnd
}

// Trailer fields that must never travel in a trailer section: they decide
// framing, routing or authentication, which a trailer arrives too late to
// change (RFC 9110 §6.5.1). A proxy drops them.
func ForbiddenTrailer[T text](name T) bool {
	switch ClassifyRequestField(name) {
	case FieldFraming, FieldHopByHop:
		return true
	}
	return equalFold(name, "authorization") || equalFold(name, "content-type") ||
		equalFold(name, "content-encoding") || equalFold(name, "content-range") ||
		equalFold(name, "expect") || equalFold(name, "cookie")
}

// ForwardPolicy is a listener's forwarding policy for client fields, built
// once per config generation and read-only afterwards.
type ForwardPolicy struct {
	// TrustedProxies are the peers whose X-Forwarded-* and Forwarded
	// fields are believed (SPEC §3 trusted_proxies); empty: nobody.
	TrustedProxies []netip.Prefix
	// AllowUnderscores forwards field names containing "_".
	AllowUnderscores bool
}

// Trusts reports whether the peer at ip (the TCP peer, as text) is a
// trusted proxy.
func (p *ForwardPolicy) Trusts(peerIP string) bool {
	if p == nil || len(p.TrustedProxies) == 0 {
		return false
	}
	ip, err := netip.ParseAddr(peerIP)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, pfx := range p.TrustedProxies {
		if pfx.Contains(ip) {
			return true
		}
	}
	return false
}

// ForwardsAsSent reports whether a client field of this class is copied to
// the backend unchanged. Everything else is dropped or re-stated by the
// proxy. A field nominated by Connection is dropped as well, whatever this
// says, unless it is one the proxy re-states.
func (p *ForwardPolicy) ForwardsAsSent(class FieldClass, trustedPeer bool) bool {
	switch class {
	case FieldEndToEnd:
		return true
	case FieldForwarded:
		return trustedPeer
	case FieldUnderscore:
		return p != nil && p.AllowUnderscores
	}
	return false
}

// ForwardedFor is the X-Forwarded-For value to send: the peer address, or,
// from a trusted proxy, the chain it sent with the peer appended (SPEC §3).
// prior holds the values of the client's X-Forwarded-For fields in order.
func ForwardedFor(peerIP string, trustedPeer bool, prior []string) string {
	if !trustedPeer || len(prior) == 0 {
		return peerIP
	}
	return strings.Join(prior, ", ") + ", " + peerIP
}

// IsWebSocketUpgrade reports whether an Upgrade field value asks for
// WebSocket, the only protocol switch switchyard passes to a backend: any
// other (h2c above all) would let a client tunnel past the routes, so such
// requests are forwarded as ordinary requests without their Upgrade, and a
// 101 answer to them is a 502.
func IsWebSocketUpgrade[T text](upgrade T) bool { return HasToken(upgrade, "websocket") }

// HasToken reports whether the comma-separated list value contains token
// (lower-case), compared case-insensitively, whitespace around elements
// ignored.
func HasToken[T text](value T, token string) bool {
	for len(value) > 0 {
		i := 0
		for i < len(value) && value[i] != ',' {
			i++
		}
		elem := value[:i]
		for len(elem) > 0 && (elem[0] == ' ' || elem[0] == '\t') {
			elem = elem[1:]
		}
		for len(elem) > 0 && (elem[len(elem)-1] == ' ' || elem[len(elem)-1] == '\t') {
			elem = elem[:len(elem)-1]
		}
		if equalFold(elem, token) {
			return true
		}
		if i == len(value) {
			break
		}
		value = value[i+1:]
	}
	return false
}
