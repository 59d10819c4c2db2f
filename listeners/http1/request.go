package http1

import "bytes"

// slashPath is the Path of an absolute-form target with an empty path: its
// origin-form is "/" (RFC 9112 §3.2.1). Read-only; capacity 1 so an append by
// a caller copies instead of writing here.
var slashPath = []byte("/")[:1:1]

// ParseRequest parses one request head from the start of buf into req and
// returns its length including the final empty line. It returns ErrNeedMore
// when buf holds only part of a head (and no more than lim.MaxHeaderBytes),
// and a *ParseError, whose Status is the answer to send, for a malformed or
// oversized head. Zero limits mean DefaultLimits.
//
// Every field of req is reset; req.Headers is reused from index 0, so a
// Request kept per connection parses without allocating. The slices in req
// point into buf.
//
// Leniencies, each safe because the engine re-serialises heads: up to four
// empty lines before the request-line are skipped (RFC 9112 §2.2), and a bare
// LF ends a line like CRLF does. Everything else RFC 9112 lets a recipient
// either reject or repair is rejected.
func ParseRequest(buf []byte, req *Request, lim Limits) (n int, err error) {
	*req = Request{Headers: req.Headers[:0], ContentLength: -1}
	maxBytes, maxFields := lim.MaxHeaderBytes, lim.MaxHeaders
	if maxBytes <= 0 {
		maxBytes = DefaultLimits.MaxHeaderBytes
	}
	if maxFields <= 0 {
		maxFields = DefaultLimits.MaxHeaders
	}
	w := buf
	if len(w) > maxBytes {
		w = w[:maxBytes]
	}

	start, ok := skipEmptyLines(w)
	if !ok {
		return 0, incomplete(buf, w, requestError)
	}
	lineWindow := w[start:]
	if len(lineWindow) > MaxRequestLineBytes+2 {
		lineWindow = lineWindow[:MaxRequestLineBytes+2]
	}
	i := bytes.IndexByte(lineWindow, '\n')
	if i < 0 {
		seen := len(lineWindow)
		if seen > 0 && lineWindow[seen-1] == '\r' {
			seen--
		}
		if seen > MaxRequestLineBytes {
			return 0, requestError(errRequestLineTooLong)
		}
		return 0, incomplete(buf, w, requestError)
	}
	line := lineWindow[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if len(line) > MaxRequestLineBytes {
		return 0, requestError(errRequestLineTooLong)
	}
	if len(line) == 0 {
		return 0, requestError(errTooManyEmptyLines)
	}
	if code := parseRequestLine(line, req); code != errNone {
		return 0, requestError(code)
	}

	end, headers, code := parseFields(w, start+i+1, req.Headers, maxFields)
	req.Headers = headers // keep any grown capacity for the next parse
	if code != errNone {
		return 0, requestError(code)
	}
	if end < 0 {
		return 0, incomplete(buf, w, requestError)
	}
	if code := applyRequestFields(req); code != errNone {
		return 0, requestError(code)
	}
	return end, nil
}

// incomplete is the answer for a head that does not end within w: more input
// may complete it unless the limit already cut buf short.
func incomplete(buf, w []byte, mapErr func(errCode) error) error {
	if len(buf) > len(w) {
		return mapErr(errHeadTooLarge)
	}
	return ErrNeedMore
}

// parseRequestLine parses method SP request-target SP HTTP-version with
// exactly one SP between the parts (RFC 9112 §3); the whitespace leniency
// §3 permits is a known smuggling vector and is not offered.
func parseRequestLine(line []byte, req *Request) errCode {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return errRequestLineParts
	}
	method, rest := line[:sp1], line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return errRequestLineParts
	}
	target, version := rest[:sp2], rest[sp2+1:]
	if bytes.IndexByte(version, ' ') >= 0 {
		return errRequestLineParts
	}
	for _, c := range method {
		if !isToken(c) {
			return errMethodChar
		}
	}
	req.Method = method
	// The version goes before the target so "PRI * HTTP/2.0" (the HTTP/2
	// preface) earns a 505, not a complaint about its target.
	major, minor, code := parseVersion(version)
	if code != errNone {
		return code
	}
	if major != 1 {
		return errVersionUnsupported
	}
	req.Major, req.Minor = major, minor
	return parseTarget(method, target, req)
}

// parseVersion parses "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3); the name is
// case-sensitive.
func parseVersion(v []byte) (major, minor int, code errCode) {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' ||
		v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9' {
		return 0, 0, errVersionSyntax
	}
	return int(v[5] - '0'), int(v[7] - '0'), errNone
}

// parseTarget classifies the request-target (RFC 9112 §3.2) and fills
// Target, Form, Path, Query and, for the forms that carry one, Host.
func parseTarget(method, target []byte, req *Request) errCode {
	if !validTarget(target) {
		return errTargetChar
	}
	req.Target = target
	isConnect := string(method) == "CONNECT"
	switch {
	case target[0] == '/':
		if isConnect {
			return errConnectTarget
		}
		req.Form = OriginForm
		return splitPathQuery(target, req)
	case len(target) == 1 && target[0] == '*':
		if string(method) != "OPTIONS" {
			return errAsteriskNotOptions
		}
		req.Form = AsteriskForm
		req.Path = target
		return errNone
	case isConnect:
		// RFC 9110 §9.3.6: CONNECT names host and port, nothing else.
		if !validHost(target, true) {
			return errConnectTarget
		}
		req.Form = AuthorityForm
		req.Host = target
		return errNone
	}
	return parseAbsoluteForm(target, req)
}

// parseAbsoluteForm handles "http://authority/path?query". Only http and
// https make sense in front of an HTTP server; userinfo is rejected as RFC
// 9110 §4.2.4 advises, and an empty host as §4.2.1 requires.
func parseAbsoluteForm(target []byte, req *Request) errCode {
	colon := bytes.IndexByte(target, ':')
	if colon <= 0 {
		return errTargetForm
	}
	scheme := target[:colon]
	for i, c := range scheme {
		alpha := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !alpha && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return errTargetForm
		}
	}
	if !EqualFold(scheme, "http") && !EqualFold(scheme, "https") {
		return errAbsoluteScheme
	}
	rest := target[colon+1:]
	if len(rest) < 2 || rest[0] != '/' || rest[1] != '/' {
		return errAbsoluteAuthority
	}
	rest = rest[2:]
	authEnd := 0
	for authEnd < len(rest) && rest[authEnd] != '/' && rest[authEnd] != '?' {
		authEnd++
	}
	authority := rest[:authEnd]
	if !validHost(authority, false) {
		return errAbsoluteAuthority
	}
	req.Form = AbsoluteForm
	req.Host = authority
	if code := splitPathQuery(rest[authEnd:], req); code != errNone {
		return code
	}
	if len(req.Path) == 0 {
		req.Path = slashPath
	}
	return errNone
}

// splitPathQuery sets Path and Query from "path?query". Percent-encoding is
// checked in the path, which routing and backends decode and which must
// therefore mean one thing; the query is passed through as sent because
// clients routinely send a literal '%' there.
func splitPathQuery(pq []byte, req *Request) errCode {
	path := pq
	if q := bytes.IndexByte(pq, '?'); q >= 0 {
		path = pq[:q]
		req.Query = pq[q+1:]
	}
	for rest := path; ; {
		pct := bytes.IndexByte(rest, '%')
		if pct < 0 {
			break
		}
		if pct+2 >= len(rest) || !isHex(rest[pct+1]) || !isHex(rest[pct+2]) {
			return errTargetPercent
		}
		rest = rest[pct+3:]
	}
	req.Path = path
	return errNone
}

// validHost reports whether h is uri-host [":" port] (RFC 3986 §3.2.2,
// RFC 9110 §7.2) with a non-empty host. Registered names may not contain
// pct-encoding; IP literals must be IPv6 addresses without a zone, the only
// kind an HTTP server can be reached at. requirePort demands a non-empty
// port, as CONNECT targets need.
func validHost(h []byte, requirePort bool) bool {
	if len(h) == 0 {
		return false
	}
	i := 0
	if h[0] == '[' {
		end := bytes.IndexByte(h, ']')
		if end < 0 || !validIPv6Literal(h[1:end]) {
			return false
		}
		i = end + 1
	} else {
		for i < len(h) && charClass[h[i]]&classRegName != 0 {
			i++
		}
		if i == 0 {
			return false
		}
	}
	if i == len(h) {
		return !requirePort
	}
	if h[i] != ':' {
		return false
	}
	port := h[i+1:]
	if len(port) == 0 {
		return !requirePort
	}
	if len(port) > 5 {
		return false
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// validIPv6Literal reports whether s, the inside of "[...]", is an IPv6
// address (RFC 3986 §3.2.2 IPv6address). Zones and IPvFuture are refused:
// no HTTP server is reached through them. Hand-written rather than
// netip.ParseAddr so that checking an IPv6 Host does not allocate.
func validIPv6Literal(s []byte) bool {
	groups, elided := 0, false
	i := 0
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		elided, i = true, 2
	}
	for i < len(s) {
		j := i
		for j < len(s) && j-i < 5 && isHex(s[j]) {
			j++
		}
		if j < len(s) && s[j] == '.' {
			// An embedded IPv4 address ends the literal and fills two groups.
			if groups > 6 || !validIPv4(s[i:]) {
				return false
			}
			groups += 2
			break
		}
		if j == i || j-i > 4 {
			return false
		}
		groups++
		i = j
		if i == len(s) {
			break
		}
		if s[i] != ':' {
			return false
		}
		i++
		switch {
		case i < len(s) && s[i] == ':':
			if elided {
				return false
			}
			elided = true
			i++
		case i == len(s):
			return false // a single trailing colon
		}
	}
	if elided {
		return groups <= 7
	}
	return groups == 8
}

// validIPv4 reports whether s is a dotted-quad IPv4 address with no leading
// zeros (which some stacks read as octal).
func validIPv4(s []byte) bool {
	for part := 0; part < 4; part++ {
		if part > 0 {
			if len(s) == 0 || s[0] != '.' {
				return false
			}
			s = s[1:]
		}
		n, digits := 0, 0
		for digits < len(s) && digits < 4 && s[digits] >= '0' && s[digits] <= '9' {
			n = n*10 + int(s[digits]-'0')
			digits++
		}
		if digits == 0 || digits > 3 || n > 255 || (digits > 1 && s[0] == '0') {
			return false
		}
		s = s[digits:]
	}
	return len(s) == 0
}

// applyRequestFields applies RFC 9112 §6 and §3.2 to the parsed fields:
// Host rules, body framing, and the connection flags.
func applyRequestFields(req *Request) errCode {
	var f framing
	if code := scanFraming(req.Headers, &f); code != errNone {
		return code
	}
	http11 := req.Minor >= 1 // major is 1; 1.x with x > 1 is treated as 1.1 (RFC 9110 §6.2)
	switch {
	case f.hostCount > 1:
		return errMultipleHost
	case f.hostCount == 0 && http11:
		return errMissingHost
	case len(f.host) > 0 && !validHost(f.host, false):
		return errInvalidHost
	}
	// RFC 9112 §3.2.2: the target's authority overrides the Host field.
	if req.Form != AbsoluteForm && req.Form != AuthorityForm {
		req.Host = f.host
	}

	if f.hasTE {
		// RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has
		// faulty framing; with Content-Length as well, §6.3 lets us choose
		// between believing Transfer-Encoding and rejecting: we reject,
		// because the other hop may have believed Content-Length.
		switch {
		case !http11:
			return errTEInHTTP10
		case f.contentLength >= 0:
			return errTEAndContentLength
		case !f.chunkedFinal:
			return errTEChunkedNotFinal
		case f.chunkedTwice:
			return errTEChunkedTwice
		case f.unknownCoding, f.otherCoding:
			// Only "chunked" alone is served, as nginx and net/http do:
			// the proxy re-states the framing upstream and would
			// otherwise have to carry other codings it does not apply.
			return errTEUnknownCoding
		}
		req.Chunked = true
		req.ContentLength = -1
	} else {
		req.ContentLength = f.contentLength
	}

	if http11 {
		req.KeepAlive = !f.connClose
	} else {
		req.KeepAlive = f.connKeepAlive && !f.connClose
	}
	// HTTP/1.0 servers must ignore Upgrade (RFC 9110 §7.8) and a
	// 100-continue expectation (§10.1.1).
	req.Upgrade = http11 && f.connUpgrade && f.hasUpgradeField
	req.Expect100 = http11 && f.expect100
	return errNone
}
