package http1

import "bytes"

// EqualFold reports whether b and s are equal under ASCII case folding, the
// comparison HTTP uses for field names, methods' cousins (codings, tokens)
// and most enumerated values. Non-ASCII octets must match exactly.
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if b[i] != s[i] && lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

// equalFoldBytes is EqualFold for two byte slices.
func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if a[i] != b[i] && lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// HasToken reports whether the comma-separated list value contains token,
// compared case-insensitively with optional whitespace trimmed around each
// element ("Connection: keep-alive, Upgrade" has "upgrade").
func HasToken(value []byte, token string) bool {
	if token == "" {
		return false
	}
	for len(value) > 0 {
		var elem []byte
		elem, value = nextListElement(value)
		if EqualFold(elem, token) {
			return true
		}
	}
	return false
}

// IsHopByHop reports whether name is a hop-by-hop field that a proxy must
// not forward (RFC 9110 §7.6.1, plus the Keep-Alive and Proxy-Connection
// fields older agents still send). Fields nominated by Connection are
// hop-by-hop too: check them with ConnectionListed.
func IsHopByHop(name []byte) bool {
	switch len(name) {
	case 2:
		return EqualFold(name, "te")
	case 7:
		return EqualFold(name, "trailer") || EqualFold(name, "upgrade")
	case 10:
		return EqualFold(name, "connection") || EqualFold(name, "keep-alive")
	case 16:
		return EqualFold(name, "proxy-connection")
	case 17:
		return EqualFold(name, "transfer-encoding")
	case 18:
		return EqualFold(name, "proxy-authenticate")
	case 19:
		return EqualFold(name, "proxy-authorization")
	}
	return false
}

// ConnectionTokens calls fn with each token listed in the Connection fields
// of headers, in order. The tokens point into the header values.
func ConnectionTokens(headers []Header, fn func(token []byte)) {
	for i := range headers {
		h := &headers[i]
		if !EqualFold(h.Name, "connection") {
			continue
		}
		v := h.Value
		for len(v) > 0 {
			var tok []byte
			tok, v = nextListElement(v)
			if len(tok) > 0 {
				fn(tok)
			}
		}
	}
}

// ConnectionListed reports whether a Connection field in headers nominates
// name, which makes that field hop-by-hop (RFC 9110 §7.6.1): a proxy drops
// it along with the fields IsHopByHop names.
func ConnectionListed(headers []Header, name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for i := range headers {
		h := &headers[i]
		if !EqualFold(h.Name, "connection") {
			continue
		}
		v := h.Value
		for len(v) > 0 {
			var tok []byte
			tok, v = nextListElement(v)
			if equalFoldBytes(tok, name) {
				return true
			}
		}
	}
	return false
}

// Lookup returns the value of the first field called name (case-insensitive)
// and whether there was one.
func Lookup(headers []Header, name string) ([]byte, bool) {
	for i := range headers {
		if EqualFold(headers[i].Name, name) {
			return headers[i].Value, true
		}
	}
	return nil, false
}

// ConnectionTokens calls fn with each token of the request's Connection
// fields (see the package-level ConnectionTokens).
func (r *Request) ConnectionTokens(fn func(token []byte)) { ConnectionTokens(r.Headers, fn) }

// ConnectionTokens calls fn with each token of the response's Connection
// fields (see the package-level ConnectionTokens).
func (r *Response) ConnectionTokens(fn func(token []byte)) { ConnectionTokens(r.Headers, fn) }

// HeadEnd finds the first empty line in buf at or after from-2 and returns
// the offset just past it, or -1. It lets a caller that receives a head in
// pieces skip ParseRequest/ParseResponse until the head can be complete:
// re-parsing from the start on every read would cost time quadratic in the
// head size to a peer that sends one byte at a time. Pass the length buf had
// at the previous call as from, so each byte is examined about once.
//
// Empty lines before the start-line also match, so a result >= 0 only means
// that parsing is worth trying; -1 means a parse would find the head
// incomplete (call it anyway once len(buf) exceeds the head limit, to get
// the 431).
func HeadEnd(buf []byte, from int) int {
	i := max(from-2, 0)
	for i < len(buf) {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return -1
		}
		k := i + j + 1
		if k < len(buf) && buf[k] == '\n' {
			return k + 1
		}
		if k+1 < len(buf) && buf[k] == '\r' && buf[k+1] == '\n' {
			return k + 2
		}
		i = k
	}
	return -1
}
