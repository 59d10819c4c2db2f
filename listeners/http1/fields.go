package http1

import "bytes"

// maxEmptyLinesBeforeStart is how many empty lines ParseRequest and
// ParseResponse skip before the start-line. RFC 9112 §2.2 asks servers to
// ignore at least one (clients that end a POST body with an extra CRLF);
// a few more cost nothing, an unbounded number would let a peer keep the
// parser busy without ever sending a message.
const maxEmptyLinesBeforeStart = 4

// skipEmptyLines returns the offset of the start-line in w. ok is false when
// w ends inside the empty lines (more input needed).
func skipEmptyLines(w []byte) (start int, ok bool) {
	for n := 0; n < maxEmptyLinesBeforeStart; n++ {
		switch {
		case start < len(w) && w[start] == '\n':
			start++
		case start+1 < len(w) && w[start] == '\r' && w[start+1] == '\n':
			start += 2
		case start >= len(w) || (w[start] == '\r' && start+1 == len(w)):
			return start, false
		default:
			return start, true
		}
	}
	return start, true
}

// nextLine finds the line starting at w[p]. It returns the line without its
// terminator and the offset after the terminator; next < 0 means the line is
// incomplete. A line may end in CRLF or in a bare LF (accepted per RFC 9112
// §2.2, which is safe because heads are re-serialised with CRLF); a CR
// anywhere else is left in the line for the caller's character checks to
// reject.
func nextLine(w []byte, p int) (line []byte, next int) {
	i := bytes.IndexByte(w[p:], '\n')
	if i < 0 {
		return nil, -1
	}
	end := p + i
	next = end + 1
	if end > p && w[end-1] == '\r' {
		end--
	}
	return w[p:end], next
}

// parseFields parses the field lines that start at w[p] through the empty
// line that ends the head, appending to headers. end is the offset after the
// head; end < 0 with errNone means w ends before the head does.
func parseFields(w []byte, p int, headers []Header, maxFields int) (end int, out []Header, code errCode) {
	for {
		if p >= len(w) {
			return -1, headers, errNone
		}
		switch w[p] {
		case '\n':
			return p + 1, headers, errNone
		case '\r':
			if p+1 >= len(w) {
				return -1, headers, errNone
			}
			if w[p+1] != '\n' {
				return 0, headers, errBareCR
			}
			return p + 2, headers, errNone
		case ' ', '\t':
			// obs-fold, or whitespace before the first field: RFC 9112
			// §5.2 and §2.2 allow rejecting, and guessing is how smuggling
			// starts.
			return 0, headers, errObsFold
		}
		line, next := nextLine(w, p)
		if next < 0 {
			return -1, headers, errNone
		}
		name, value, c := splitFieldLine(line)
		if c != errNone {
			return 0, headers, c
		}
		if len(headers) >= maxFields {
			return 0, headers, errTooManyFields
		}
		headers = append(headers, Header{Name: name, Value: value})
		p = next
	}
}

// splitFieldLine splits "name: value" (RFC 9112 §5) and validates both.
func splitFieldLine(line []byte) (name, value []byte, code errCode) {
	i := 0
	for i < len(line) && isToken(line[i]) {
		i++
	}
	switch {
	case i == len(line):
		return nil, nil, errMissingColon
	case line[i] == ':':
		if i == 0 {
			return nil, nil, errEmptyFieldName
		}
	case isOWS(line[i]):
		return nil, nil, errSpaceBeforeColon
	case line[i] == '\r':
		return nil, nil, errBareCR
	default:
		return nil, nil, errFieldNameChar
	}
	name = line[:i]
	value = line[i+1:]
	if !validFieldValue(value) {
		if bytes.IndexByte(value, '\r') >= 0 {
			return nil, nil, errBareCR
		}
		return nil, nil, errFieldValueChar
	}
	return name, trimOWS(value), errNone
}

// framing is what the framing-related fields of a head say, gathered in one
// pass so requests and responses apply their own rules to it.
type framing struct {
	contentLength   int64 // -1: no Content-Length field
	otherCoding     bool  // a transfer coding other than chunked was listed
	hasTE           bool
	chunkedFinal    bool // the last transfer coding is chunked
	chunkedSeen     bool
	chunkedTwice    bool
	unknownCoding   bool // a coding other than chunked/gzip/deflate/compress
	connClose       bool
	connKeepAlive   bool
	connUpgrade     bool
	hasUpgradeField bool
	expect100       bool
	hostCount       int
	host            []byte
}

// scanFraming fills f from headers. It returns a code for malformed
// Content-Length or Transfer-Encoding values; policy (which combinations are
// allowed) is the caller's.
func scanFraming(headers []Header, f *framing) errCode {
	*f = framing{contentLength: -1}
	for i := range headers {
		h := &headers[i]
		// Dispatch on length first: most fields are none of these and are
		// dismissed by one comparison.
		switch len(h.Name) {
		case 4:
			if EqualFold(h.Name, "host") {
				f.hostCount++
				f.host = h.Value
			}
		case 6:
			if EqualFold(h.Name, "expect") && EqualFold(h.Value, "100-continue") {
				f.expect100 = true
			}
		case 7:
			if EqualFold(h.Name, "upgrade") {
				f.hasUpgradeField = true
			}
		case 10:
			if EqualFold(h.Name, "connection") {
				scanConnection(h.Value, f)
			}
		case 14:
			if EqualFold(h.Name, "content-length") {
				if c := scanContentLength(h.Value, f); c != errNone {
					return c
				}
			}
		case 17:
			if EqualFold(h.Name, "transfer-encoding") {
				if c := scanTransferEncoding(h.Value, f); c != errNone {
					return c
				}
			}
		}
	}
	return errNone
}

func scanConnection(v []byte, f *framing) {
	for len(v) > 0 {
		var tok []byte
		tok, v = nextListElement(v)
		switch {
		case EqualFold(tok, "close"):
			f.connClose = true
		case EqualFold(tok, "keep-alive"):
			f.connKeepAlive = true
		case EqualFold(tok, "upgrade"):
			f.connUpgrade = true
		}
	}
}

// maxContentLength keeps Content-Length within int64 so body accounting
// never overflows.
const maxContentLength = 1<<63 - 1

// scanContentLength parses one Content-Length field value: 1*DIGIT, which
// must equal any value seen in an earlier field (repeated identical fields
// are that value, RFC 9110 §8.6). A list in one field ("5, 5") is refused,
// as net/http refuses it: both engines must frame a request alike, and the
// proxy states one Content-Length of its own upstream.
func scanContentLength(v []byte, f *framing) errCode {
	v = trimOWS(v)
	if len(v) == 0 {
		return errContentLengthSyntax
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return errContentLengthSyntax
		}
		d := int64(c - '0')
		if n > (maxContentLength-d)/10 {
			return errContentLengthSyntax
		}
		n = n*10 + d
	}
	if f.contentLength >= 0 && f.contentLength != n {
		return errContentLengthMismatch
	}
	f.contentLength = n
	return errNone
}

// scanTransferEncoding folds one Transfer-Encoding field value into f.
// Elements must be bare codings: parameters, quoted strings and empty
// elements are legal in general lists but no client needs them here, and
// every leniency in this field has been a smuggling vector somewhere.
func scanTransferEncoding(v []byte, f *framing) errCode {
	f.hasTE = true
	if len(v) == 0 {
		return errTESyntax
	}
	for {
		comma := bytes.IndexByte(v, ',')
		elem := v
		if comma >= 0 {
			elem = v[:comma]
		}
		elem = trimOWS(elem)
		if len(elem) == 0 {
			return errTESyntax
		}
		for _, c := range elem {
			if !isToken(c) {
				return errTESyntax
			}
		}
		if EqualFold(elem, "chunked") {
			if f.chunkedSeen {
				f.chunkedTwice = true
			}
			f.chunkedSeen = true
			f.chunkedFinal = true
		} else {
			f.chunkedFinal = false
			f.otherCoding = true
			if !knownCoding(elem) {
				f.unknownCoding = true
			}
		}
		if comma < 0 {
			return errNone
		}
		v = v[comma+1:]
	}
}

// knownCoding reports the registered codings a proxy may pass through ahead
// of chunked (RFC 9112 §7); the recipient decodes them, not us.
func knownCoding(c []byte) bool {
	return EqualFold(c, "gzip") || EqualFold(c, "x-gzip") || EqualFold(c, "deflate") ||
		EqualFold(c, "compress") || EqualFold(c, "x-compress")
}

// nextListElement returns the first non-empty element of a comma-separated
// list with OWS trimmed, and the rest after it. Empty elements are skipped,
// as RFC 9110 §5.6.1 asks of recipients, in one tight loop so that a value
// of thousands of commas costs little more than a normal one.
func nextListElement(v []byte) (elem, rest []byte) {
	i := 0
	for i < len(v) && (v[i] == ',' || isOWS(v[i])) {
		i++
	}
	start := i
	for i < len(v) && v[i] != ',' {
		i++
	}
	elem = trimOWS(v[start:i])
	if i < len(v) {
		i++
	}
	return elem, v[i:]
}
