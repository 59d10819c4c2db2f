package http1

// ParseResponse parses one response head from the start of buf with
// DefaultResponseLimits; see ParseResponseLimits.
func ParseResponse(buf []byte, resp *Response, reqMethodIsHEAD bool) (n int, err error) {
	return ParseResponseLimits(buf, resp, reqMethodIsHEAD, DefaultResponseLimits)
}

// ParseResponseLimits parses one response head (status-line and fields) from
// the start of buf into resp and returns its length including the final
// empty line. ErrNeedMore means the head is incomplete; a *ParseError (always
// Status 502: the proxy cannot forward what it cannot frame) means it is
// malformed or larger than lim. Zero limits mean DefaultResponseLimits.
//
// Body framing follows RFC 9112 §6.3: a response to HEAD and every 1xx, 204
// and 304 response has no body (NoBody, ContentLength 0); otherwise chunked
// as the final transfer coding means Chunked, another final coding means the
// body runs until close, then Content-Length, then until close. Both
// Transfer-Encoding and Content-Length, chunked applied twice, or
// Transfer-Encoding in an HTTP/1.0 response are rejected rather than
// repaired. A 2xx answer to CONNECT starts a tunnel: that is for the caller,
// who knows the method, to handle.
//
// Status codes 100-999 are accepted: RFC 9110 §15 calls 600-999 invalid but
// asks clients to treat them as 5xx, which forwarding them unchanged does.
func ParseResponseLimits(buf []byte, resp *Response, reqMethodIsHEAD bool, lim Limits) (n int, err error) {
	*resp = Response{Headers: resp.Headers[:0], ContentLength: -1}
	maxBytes, maxFields := lim.MaxHeaderBytes, lim.MaxHeaders
	if maxBytes <= 0 {
		maxBytes = DefaultResponseLimits.MaxHeaderBytes
	}
	if maxFields <= 0 {
		maxFields = DefaultResponseLimits.MaxHeaders
	}
	w := buf
	if len(w) > maxBytes {
		w = w[:maxBytes]
	}
	start, ok := skipEmptyLines(w)
	if !ok {
		return 0, incomplete(buf, w, responseError)
	}
	line, next := nextLine(w, start)
	if next < 0 {
		return 0, incomplete(buf, w, responseError)
	}
	if len(line) == 0 {
		return 0, responseError(errTooManyEmptyLines)
	}
	if code := parseStatusLine(line, resp); code != errNone {
		return 0, responseError(code)
	}
	end, headers, code := parseFields(w, next, resp.Headers, maxFields)
	resp.Headers = headers
	if code != errNone {
		return 0, responseError(code)
	}
	if end < 0 {
		return 0, incomplete(buf, w, responseError)
	}
	if code := applyResponseFields(resp, reqMethodIsHEAD); code != errNone {
		return 0, responseError(code)
	}
	return end, nil
}

// parseStatusLine parses HTTP-version SP 3DIGIT SP reason-phrase (RFC 9112
// §4). The SP before an empty reason-phrase is optional in practice (many
// servers omit it) and harmless to accept.
func parseStatusLine(line []byte, resp *Response) errCode {
	if len(line) < 12 || line[8] != ' ' {
		return errStatusLine
	}
	major, minor, code := parseVersion(line[:8])
	if code != errNone || major != 1 {
		return errStatusLine
	}
	resp.Major, resp.Minor = major, minor
	status := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return errStatusCode
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 {
		return errStatusCode
	}
	resp.Status = status
	if len(line) == 12 {
		return errNone
	}
	if line[12] != ' ' {
		return errStatusLine
	}
	reason := line[13:]
	for _, c := range reason {
		if !isFieldValue(c) {
			return errReasonChar
		}
	}
	resp.Reason = reason
	return errNone
}

func applyResponseFields(resp *Response, reqMethodIsHEAD bool) errCode {
	var f framing
	if code := scanFraming(resp.Headers, &f); code != errNone {
		return code
	}
	http11 := resp.Minor >= 1
	if f.hasTE {
		switch {
		case !http11:
			return errTEInHTTP10
		case f.contentLength >= 0:
			return errTEAndContentLength
		case f.chunkedTwice:
			return errTEChunkedTwice
		}
	}
	switch {
	case reqMethodIsHEAD || resp.Status/100 == 1 || resp.Status == 204 || resp.Status == 304:
		resp.NoBody = true
		resp.ContentLength = 0
	case f.hasTE && f.chunkedFinal:
		resp.Chunked = true
	case f.hasTE:
		resp.UntilClose = true
	case f.contentLength >= 0:
		resp.ContentLength = f.contentLength
	default:
		resp.UntilClose = true
	}
	if http11 {
		resp.KeepAlive = !f.connClose
	} else {
		resp.KeepAlive = f.connKeepAlive && !f.connClose
	}
	if resp.UntilClose {
		resp.KeepAlive = false
	}
	return errNone
}
