package l7

import "errors"

// ErrPathAboveRoot is a path whose dot segments climb above "/": the
// request is answered 400 (SPEC §3).
var ErrPathAboveRoot = errors.New("the path climbs above /")

// NormalizePath returns the form of an origin-form path that routes match
// and backends receive (SPEC §3, README "HTTP behaviour"): the path
// normalised per RFC 3986 §6.2.2 — percent-escapes of unreserved characters
// decoded, the hex digits of every other escape upper-cased, dot segments
// removed (§5.2.4) — and runs of "/" merged into one, as nginx's
// merge_slashes does, so that "//admin" cannot slip past a route for
// "/admin". "%2F" stays encoded: it is data, not a separator.
//
// A path that needs no change is returned as it is; otherwise the result is
// built in dst's backing array (grown if too small), so a caller that keeps
// a scratch buffer normalises without allocating. path must not be the
// asterisk-form "*" or empty; those are returned unchanged. Percent-escapes
// should be well-formed (the parsers check); a stray '%' becomes "%25".
func NormalizePath[T text](dst []byte, path T) ([]byte, bool, error) {
	if len(path) == 0 || path[0] != '/' || isNormal(path) {
		return nil, false, nil
	}
	out := dst[:0]
	for i := 0; i < len(path); {
		end := i + 1
		for end < len(path) && path[end] != '/' {
			end++
		}
		last := end == len(path)
		mark := len(out)
		out = append(out, '/')
		out = appendSegment(out, path[i+1:end])
		seg := out[mark+1:]
		switch {
		case len(seg) == 0 && !last:
			out = out[:mark] // "//": merged
		case len(seg) == 1 && seg[0] == '.':
			out = out[:mark]
			if last {
				out = append(out, '/')
			}
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			out = out[:mark]
			k := len(out) - 1
			for k >= 0 && out[k] != '/' {
				k--
			}
			if k < 0 {
				return nil, false, ErrPathAboveRoot
			}
			out = out[:k]
			if last {
				out = append(out, '/')
			}
		}
		i = end
	}
	if len(out) == 0 {
		out = append(out, '/')
	}
	if string(out) == string(path) {
		// Only upper-case escapes that were upper-case already: report
		// no change, so callers keep the original and copy nothing.
		return out, false, nil
	}
	return out, true, nil
}

// isNormal reports whether path is already in normal form: no escapes, no
// empty segment before the end, no "." or ".." segment. Almost every real
// path is, and then nothing is copied.
func isNormal[T text](path T) bool {
	for i := 0; i < len(path); i++ {
		switch path[i] {
		case '%':
			return false
		case '/':
			if i+1 == len(path) {
				return true
			}
			switch path[i+1] {
			case '/':
				return false
			case '.':
				rest := path[i+2:]
				if len(rest) == 0 || rest[0] == '/' {
					return false // "/."
				}
				if rest[0] == '.' && (len(rest) == 1 || rest[1] == '/') {
					return false // "/.."
				}
			}
		}
	}
	return true
}

// appendSegment appends seg with unreserved escapes decoded and the other
// escapes' hex digits upper-cased (RFC 3986 §6.2.2.1, §6.2.2.2).
func appendSegment[T text](out []byte, seg T) []byte {
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c != '%' {
			out = append(out, c)
			continue
		}
		hi, lo := -1, -1
		if i+2 < len(seg) {
			hi, lo = unhex(seg[i+1]), unhex(seg[i+2])
		}
		if hi < 0 || lo < 0 {
			// A stray '%' (the parsers refuse these; kept safe anyway)
			// is data: encode it, so it cannot form an escape with what
			// follows once something before it is decoded.
			out = append(out, "%25"...)
			continue
		}
		if b := byte(hi<<4 | lo); unreserved(b) {
			out = append(out, b)
		} else {
			out = append(out, '%', upperHex[hi], upperHex[lo])
		}
		i += 2
	}
	return out
}

const upperHex = "0123456789ABCDEF"

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// unreserved is RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~".
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
