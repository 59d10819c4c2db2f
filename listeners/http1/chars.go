package http1

import "encoding/binary"

// byteClass is a bit set of the character classes one octet belongs to; a
// single table lookup answers every "is this byte allowed here" question on
// the hot path.
type byteClass uint8

const (
	// classToken: tchar (RFC 9110 §5.6.2), the alphabet of methods, field
	// names and transfer codings.
	classToken byteClass = 1 << iota
	// classFieldValue: field-vchar / SP / HTAB (RFC 9110 §5.5). Everything
	// but the control characters other than HTAB, and DEL; obs-text passes.
	classFieldValue
	// classTarget: octets allowed in a request-target. Visible ASCII except
	// '#': a fragment is never sent (RFC 9112 §3.2) and forwarding one lets
	// proxies and servers disagree on the path.
	classTarget
	// classRegName: reg-name octets of a host (RFC 3986 §3.2.2) without
	// pct-encoding, which no real host name needs.
	classRegName
	// classHex: HEXDIG.
	classHex
	// classQDText: qdtext and the octets a quoted-pair may escape, for
	// quoted chunk-ext values (RFC 9110 §5.6.4).
	classQDText
)

// charClass is the class table, indexed by octet. It is computed once and
// never written afterwards.
var charClass = buildCharClass()

func buildCharClass() [256]byteClass {
	var t [256]byteClass
	const tokenPunct = "!#$%&'*+-.^_`|~"
	const subDelims = "!$&'()*+,;="
	const unreservedPunct = "-._~"
	for c := 0; c < 256; c++ {
		b := byte(c)
		alpha := (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')
		digit := b >= '0' && b <= '9'
		var k byteClass
		if alpha || digit || contains(tokenPunct, b) {
			k |= classToken
		}
		if b == '\t' || (b >= 0x20 && b != 0x7f) {
			k |= classFieldValue
		}
		if b > 0x20 && b < 0x7f && b != '#' {
			k |= classTarget
		}
		if alpha || digit || contains(unreservedPunct, b) || contains(subDelims, b) {
			k |= classRegName
		}
		if digit || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F') {
			k |= classHex
		}
		if b == '\t' || (b >= 0x20 && b != 0x7f && b != '"' && b != '\\') {
			k |= classQDText
		}
		t[c] = k
	}
	return t
}

func contains(set string, b byte) bool {
	for i := 0; i < len(set); i++ {
		if set[i] == b {
			return true
		}
	}
	return false
}

func isToken(b byte) bool      { return charClass[b]&classToken != 0 }
func isFieldValue(b byte) bool { return charClass[b]&classFieldValue != 0 }
func isHex(b byte) bool        { return charClass[b]&classHex != 0 }

// unhex is the value of a hex digit; callers check isHex first.
func unhex(b byte) uint64 {
	switch {
	case b >= '0' && b <= '9':
		return uint64(b - '0')
	case b >= 'a' && b <= 'f':
		return uint64(b - 'a' + 10)
	default:
		return uint64(b - 'A' + 10)
	}
}

// lower folds ASCII upper case only: field names and tokens are ASCII, and
// folding other octets would let distinct names compare equal.
func lower(b byte) byte {
	if b >= 'A' && b <= 'Z' {
		return b + ('a' - 'A')
	}
	return b
}

func isOWS(b byte) bool { return b == ' ' || b == '\t' }

// trimOWS strips optional whitespace (SP / HTAB) from both ends.
func trimOWS(v []byte) []byte {
	for len(v) > 0 && isOWS(v[0]) {
		v = v[1:]
	}
	for len(v) > 0 && isOWS(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	return v
}

// Word-at-a-time checks (SWAR). Field values and targets are most of a
// head's bytes, and testing eight octets per step against "is any of them a
// control character" is several times faster than a table lookup per octet.
// The predicates are exact about whether some octet matches, which is all
// that is needed: a flagged word is re-checked octet by octet.
const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

// anyLess reports whether some octet of x is below n (n <= 0x80).
func anyLess(x uint64, n byte) bool { return (x-swarLo*uint64(n))&^x&swarHi != 0 }

// anyEqual reports whether some octet of x equals b.
func anyEqual(x uint64, b byte) bool {
	y := x ^ (swarLo * uint64(b))
	return (y-swarLo)&^y&swarHi != 0
}

// validFieldValue reports whether every octet of v is field-vchar, SP or
// HTAB.
func validFieldValue(v []byte) bool {
	i := 0
	for ; i+8 <= len(v); i += 8 {
		x := binary.LittleEndian.Uint64(v[i:])
		if anyLess(x, 0x20) || anyEqual(x, 0x7f) {
			// Usually an HTAB; look closer.
			for _, c := range v[i : i+8] {
				if !isFieldValue(c) {
					return false
				}
			}
		}
	}
	for ; i < len(v); i++ {
		if !isFieldValue(v[i]) {
			return false
		}
	}
	return true
}

// validTarget reports whether every octet of t may appear in a
// request-target (classTarget).
func validTarget(t []byte) bool {
	i := 0
	for ; i+8 <= len(t); i += 8 {
		x := binary.LittleEndian.Uint64(t[i:])
		if anyLess(x, 0x21) || x&swarHi != 0 || anyEqual(x, 0x7f) || anyEqual(x, '#') {
			return false
		}
	}
	for ; i < len(t); i++ {
		if charClass[t[i]]&classTarget == 0 {
			return false
		}
	}
	return true
}
