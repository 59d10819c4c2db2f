package http1

// Limits of the chunked scanner. A chunk-size line (size and chunk-ext) or
// trailer line longer than maxChunkLineBytes, or a trailer section longer than maxTrailerBytes, is
// rejected: nothing legitimate comes close, and the scanner must not be a
// sink a peer can feed forever without a byte of payload.
const (
	maxChunkSize      = 1 << 62
	maxChunkSizeHex   = 16
	maxChunkLineBytes = 4 * 1024
	maxTrailerBytes   = 64 * 1024
)

// chunkState is where the scanner is in the chunked-body grammar of RFC 9112
// §7.1; the zero value is the start of a body.
type chunkState uint8

const (
	csSizeStart        chunkState = iota // first hex digit of chunk-size
	csSize                               // more hex digits, ";", BWS or CR
	csSizeBWS                            // BWS after the size: only ";" may follow
	csExtNameStart                       // after ";": BWS then ext-name
	csExtName                            // inside an ext-name
	csExtNameBWS                         // BWS after an ext-name: "=" or ";"
	csExtValStart                        // after "=": BWS then token or quoted-string
	csExtValToken                        // inside a token value
	csExtValQuoted                       // inside a quoted-string value
	csExtValQuotedPair                   // after a backslash in a quoted-string
	csExtValEnd                          // after a value: BWS then ";" or CR
	csExtValBWS                          // BWS after a value: only ";" may follow
	csSizeLF                             // CR seen at the end of a chunk line
	csData                               // chunk payload
	csDataCR                             // CR that must follow the payload
	csDataLF                             // LF that must follow it
	csTrailerStart                       // start of a trailer line or the final CRLF
	csTrailerName                        // inside a trailer field name
	csTrailerValue                       // inside a trailer field value
	csTrailerLF                          // CR seen at the end of a trailer line
	csFinalLF                            // CR of the final CRLF seen
	csDone                               // body complete
)

// chunkErr names one way a chunked body can be malformed.
type chunkErr uint8

const (
	ceNone chunkErr = iota
	ceSizeChar
	ceSizeOverflow
	ceSizeWhitespace
	ceExtSyntax
	ceExtTooLong
	ceBareLF
	ceBareCR
	ceDataCRLF
	ceTrailerObsFold
	ceTrailerEmptyName
	ceTrailerNameChar
	ceTrailerSpaceBeforeColon
	ceTrailerNoColon
	ceTrailerValueChar
	ceTrailerLineTooLong
	ceTrailersTooLarge
	numChunkErrs
)

// chunkErrors are the immutable errors Feed returns. Status 400 fits a
// request body; a caller scanning a response body answers 502 instead.
var chunkErrors = buildChunkErrors()

func buildChunkErrors() (t [numChunkErrs]*ParseError) {
	reasons := [numChunkErrs]string{
		ceSizeChar:                "chunked: invalid chunk-size",
		ceSizeOverflow:            "chunked: chunk-size too large",
		ceSizeWhitespace:          "chunked: whitespace after chunk-size without chunk-ext",
		ceExtSyntax:               "chunked: malformed chunk-ext",
		ceExtTooLong:              "chunked: chunk-ext too long",
		ceBareLF:                  "chunked: bare LF",
		ceBareCR:                  "chunked: bare CR",
		ceDataCRLF:                "chunked: chunk data not followed by CRLF",
		ceTrailerObsFold:          "chunked: obsolete line folding in trailer",
		ceTrailerEmptyName:        "chunked: empty trailer field name",
		ceTrailerNameChar:         "chunked: invalid character in trailer field name",
		ceTrailerSpaceBeforeColon: "chunked: whitespace between trailer field name and colon",
		ceTrailerNoColon:          "chunked: trailer line without colon",
		ceTrailerValueChar:        "chunked: invalid character in trailer field value",
		ceTrailerLineTooLong:      "chunked: trailer line too long",
		ceTrailersTooLarge:        "chunked: trailer section too large",
	}
	for code := chunkErr(1); code < numChunkErrs; code++ {
		t[code] = &ParseError{Status: 400, Reason: reasons[code]}
	}
	return t
}

// ChunkedScanner validates a chunked body (RFC 9112 §7.1) as it streams
// past, without decoding it: the proxy forwards the bytes verbatim and only
// needs to know where the body ends and that it is well-formed, so that the
// next hop cannot read a different message boundary out of it. The zero
// value is ready to scan a body.
type ChunkedScanner struct {
	state     chunkState
	size      uint64 // chunk-size being read, then payload bytes left
	digits    int    // hex digits of the chunk-size so far
	lineBytes int    // octets of the current chunk-size or trailer line
	trailer   int    // octets of the trailer section so far
	body      int64  // payload octets seen
	err       error  // sticky: a malformed body stays malformed
}

// Reset prepares the scanner for a new body.
func (s *ChunkedScanner) Reset() { *s = ChunkedScanner{} }

// BodyBytes is the number of payload octets (chunk data, without framing)
// seen so far.
func (s *ChunkedScanner) BodyBytes() int64 { return s.body }

// TrailerBytes is the number of octets of the trailer section (RFC 9112
// §7.1.2: the field lines after the last chunk and the final CRLF) seen so
// far. They are always the last octets fed: a proxy that drops request
// trailers withholds that many octets of what Feed accepted and, once the
// body is done, sends a bare CRLF in their place.
func (s *ChunkedScanner) TrailerBytes() int {
	if s.state == csDone {
		return s.trailer + 1 // the final LF is not charged to the limit
	}
	return s.trailer
}

// Feed scans the next bytes of the body. n is how many leading bytes of p
// belong to the body; done reports that the body's final CRLF was among
// them, in which case p[n:] is the start of the next message. A malformed
// body returns a *ParseError with Status 400 (a response body is the
// proxy's 502 to decide) and n is the offset of the offending byte; the
// scanner then keeps returning that error until Reset. State carries
// across calls, so p may be split anywhere.
func (s *ChunkedScanner) Feed(p []byte) (n int, done bool, err error) {
	if s.err != nil {
		return 0, false, s.err
	}
	i := 0
	for i < len(p) {
		switch s.state {
		case csDone:
			return i, true, nil
		case csData:
			// The hot path: skip payload without looking at it.
			k := uint64(len(p) - i)
			if k > s.size {
				k = s.size
			}
			i += int(k)
			s.size -= k
			s.body += int64(k)
			if s.size == 0 {
				s.state = csDataCR
			}
			continue
		}
		if code := s.step(p[i]); code != ceNone {
			s.err = chunkErrors[code]
			return i, false, s.err
		}
		i++
	}
	return i, s.state == csDone, nil
}

// step advances the grammar by one octet outside chunk data.
func (s *ChunkedScanner) step(c byte) chunkErr {
	switch s.state {
	case csSizeStart:
		if !isHex(c) {
			return ceSizeChar
		}
		s.size, s.digits, s.lineBytes = unhex(c), 1, 1
		s.state = csSize
		return ceNone
	case csSize:
		if isHex(c) {
			s.digits++
			v := unhex(c)
			if s.digits > maxChunkSizeHex || s.size > (maxChunkSize-v)>>4 {
				return ceSizeOverflow
			}
			s.size = s.size<<4 | v
			s.lineBytes++ // at most 16 digits: the line limit cannot trip here
			return ceNone
		}
		return s.afterSize(c)
	case csSizeBWS:
		switch {
		case isOWS(c):
		case c == ';':
			s.state = csExtNameStart
		case c == '\r' || c == '\n':
			return ceSizeWhitespace
		default:
			return ceSizeChar
		}
		return s.countExt()
	case csExtNameStart, csExtName, csExtNameBWS, csExtValStart, csExtValToken,
		csExtValQuoted, csExtValQuotedPair, csExtValEnd, csExtValBWS:
		return s.stepExt(c)
	case csSizeLF:
		if c != '\n' {
			return ceBareCR
		}
		if s.size == 0 {
			s.state = csTrailerStart
		} else {
			s.state = csData
		}
		return ceNone
	case csDataCR:
		if c != '\r' {
			return ceDataCRLF
		}
		s.state = csDataLF
		return ceNone
	case csDataLF:
		if c != '\n' {
			return ceDataCRLF
		}
		s.state = csSizeStart
		return ceNone
	case csTrailerStart, csTrailerName, csTrailerValue, csTrailerLF, csFinalLF:
		return s.stepTrailer(c)
	}
	return ceNone
}

// afterSize handles the octet that ends the hex digits of a chunk-size.
func (s *ChunkedScanner) afterSize(c byte) chunkErr {
	switch {
	case c == '\r':
		s.state = csSizeLF
		return ceNone
	case c == '\n':
		return ceBareLF
	case c == ';':
		s.state = csExtNameStart
	case isOWS(c):
		// chunk-ext = *( BWS ";" ... ): whitespace is only allowed when an
		// extension follows, so "5 \r\n" is rejected below.
		s.state = csSizeBWS
	default:
		return ceSizeChar
	}
	return s.countExt()
}

// countExt charges one octet of chunk-ext to the chunk-size line.
func (s *ChunkedScanner) countExt() chunkErr {
	s.lineBytes++
	if s.lineBytes > maxChunkLineBytes {
		return ceExtTooLong
	}
	return ceNone
}

// stepExt follows chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
// with ext-val = token / quoted-string (RFC 9112 §7.1.1).
func (s *ChunkedScanner) stepExt(c byte) chunkErr {
	if c == '\r' {
		switch s.state {
		case csExtName, csExtValToken, csExtValEnd:
			s.state = csSizeLF
			return ceNone
		case csExtValQuoted, csExtValQuotedPair:
			return ceBareCR
		}
		return ceExtSyntax
	}
	if c == '\n' {
		return ceBareLF
	}
	switch s.state {
	case csExtNameStart:
		switch {
		case isOWS(c):
		case isToken(c):
			s.state = csExtName
		default:
			return ceExtSyntax
		}
	case csExtName:
		switch {
		case isToken(c):
		case c == ';':
			s.state = csExtNameStart
		case c == '=':
			s.state = csExtValStart
		case isOWS(c):
			s.state = csExtNameBWS
		default:
			return ceExtSyntax
		}
	case csExtNameBWS:
		switch {
		case isOWS(c):
		case c == ';':
			s.state = csExtNameStart
		case c == '=':
			s.state = csExtValStart
		default:
			return ceExtSyntax
		}
	case csExtValStart:
		switch {
		case isOWS(c):
		case c == '"':
			s.state = csExtValQuoted
		case isToken(c):
			s.state = csExtValToken
		default:
			return ceExtSyntax
		}
	case csExtValToken:
		switch {
		case isToken(c):
		case c == ';':
			s.state = csExtNameStart
		case isOWS(c):
			s.state = csExtValBWS
		default:
			return ceExtSyntax
		}
	case csExtValQuoted:
		switch {
		case c == '"':
			s.state = csExtValEnd
		case c == '\\':
			s.state = csExtValQuotedPair
		case charClass[c]&classQDText == 0:
			return ceExtSyntax
		}
	case csExtValQuotedPair:
		if !isFieldValue(c) {
			return ceExtSyntax
		}
		s.state = csExtValQuoted
	case csExtValEnd, csExtValBWS:
		switch {
		case isOWS(c):
			s.state = csExtValBWS
		case c == ';':
			s.state = csExtNameStart
		default:
			return ceExtSyntax
		}
	}
	return s.countExt()
}

// stepTrailer follows trailer-section = *( field-line CRLF ) CRLF, with the
// same field-line rules as the head (no obs-fold, no whitespace before the
// colon, no CTLs in values).
func (s *ChunkedScanner) stepTrailer(c byte) chunkErr {
	switch s.state {
	case csTrailerStart:
		switch {
		case c == '\r':
			s.state = csFinalLF
			return s.countTrailer(false)
		case c == '\n':
			return ceBareLF
		case isOWS(c):
			return ceTrailerObsFold
		case c == ':':
			return ceTrailerEmptyName
		case !isToken(c):
			return ceTrailerNameChar
		}
		s.lineBytes = 0
		s.state = csTrailerName
	case csTrailerName:
		switch {
		case isToken(c):
		case c == ':':
			s.state = csTrailerValue
		case isOWS(c):
			return ceTrailerSpaceBeforeColon
		case c == '\r' || c == '\n':
			return ceTrailerNoColon
		default:
			return ceTrailerNameChar
		}
	case csTrailerValue:
		switch {
		case c == '\r':
			s.state = csTrailerLF
			return s.countTrailer(false)
		case c == '\n':
			return ceBareLF
		case !isFieldValue(c):
			return ceTrailerValueChar
		}
	case csTrailerLF:
		if c != '\n' {
			return ceBareCR
		}
		s.state = csTrailerStart
		return s.countTrailer(false)
	case csFinalLF:
		if c != '\n' {
			return ceBareCR
		}
		s.state = csDone
		return ceNone
	}
	return s.countTrailer(true)
}

// countTrailer charges one octet to the trailer section and, for octets of
// a field line proper, to the current line.
func (s *ChunkedScanner) countTrailer(lineOctet bool) chunkErr {
	s.trailer++
	if s.trailer > maxTrailerBytes {
		return ceTrailersTooLarge
	}
	if lineOctet {
		s.lineBytes++
		if s.lineBytes > maxChunkLineBytes {
			return ceTrailerLineTooLong
		}
	}
	return ceNone
}
