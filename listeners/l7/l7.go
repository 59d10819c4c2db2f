// Package l7 holds the HTTP request policy that every switchyard HTTP engine
// applies: how a request path is normalised before routing and forwarding,
// which client header fields reach a backend, what the proxy states about
// the client (X-Forwarded-*), and which protocol upgrades pass. The engines
// (the event-loop HTTP/1.1 engine and the net/http engine) only parse,
// write, time out and reuse connections; each rule of SPEC §3 that concerns
// a request's shape is written here once, so both engines give a request the
// same meaning. README "HTTP behaviour" documents the rules for users.
//
// Functions take either strings or byte slices (the event-loop engine works
// on views of its read buffer and must not allocate), hence the generic
// text parameter.
package l7

// text is what the field and path helpers accept: the event-loop engine
// passes views of its buffers, the net/http engine strings.
type text interface{ ~string | ~[]byte }

// equalFold reports whether a equals the lower-case ASCII word s under
// ASCII case folding.
func equalFold[T text](a T, s string) bool {
	if len(a) != len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := a[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// hasPrefixFold reports whether a starts with the lower-case ASCII prefix
// under ASCII case folding.
func hasPrefixFold[T text](a T, prefix string) bool {
	return len(a) >= len(prefix) && equalFold(a[:len(prefix)], prefix)
}
