// Package http1 parses and frames HTTP/1.x messages for switchyard's fast
// forwarding path. It works on byte slices owned by the caller (no
// allocation per message on the common path) and is strict where RFC 9112
// makes leniency dangerous: request smuggling vectors (conflicting framing,
// bad chunk sizes, obs-fold, stray CR/LF/NUL) are rejected, never guessed.
//
// Where RFC 9112 lets a recipient choose, this package chooses as follows
// (statuses are what ParseError.Status says for a request):
//
//   - Transfer-Encoding together with Content-Length: 400 (§6.3 allows
//     believing Transfer-Encoding; the hop before us may have believed
//     Content-Length). In a response: 502.
//   - Transfer-Encoding whose final coding is not chunked: 400 (§6.3). chunked
//     twice: 400 (§6.1). Any coding besides chunked in a request: 501 (§6.1
//     "not understood"; the proxy re-states the framing and does not carry
//     other codings). Parameters,
//     quoted strings or empty list elements in Transfer-Encoding: 400.
//     Transfer-Encoding in an HTTP/1.0 message: 400 (§6.1 "faulty framing").
//   - Content-Length: 1*DIGIT up to 2^63-1; repeated fields of equal value
//     are that value (RFC 9110 §8.6); anything else, a list in one field
//     included, is 400.
//   - obs-fold and whitespace before the first field line: 400 (§5.2, §2.2).
//     Whitespace between a field name and its colon: 400 (§5.1). CR, LF, NUL
//     and every other control character except HTAB in a field value: 400.
//   - Line endings: CRLF or a bare LF (§2.2 allows it; safe because the
//     engine re-serialises heads with CRLF). A bare CR anywhere: 400. Up to
//     four empty lines before the start-line are skipped (§2.2).
//   - Request-line: exactly one SP between its three parts, no other
//     whitespace. HTTP-version "HTTP/" DIGIT "." DIGIT, case-sensitive, else
//     400; a major version other than 1 is 505; 1.x with x > 1 is 1.1.
//   - Request-target: visible ASCII except '#'; percent-encoding must be
//     well-formed in the path (the query is passed through). origin-form for
//     every method but CONNECT; absolute-form only with http/https, a
//     non-empty host and no userinfo; "*" only for OPTIONS; CONNECT only with
//     host:port. Otherwise 400.
//   - Host: exactly one field in HTTP/1.1 (none or two: 400), at most one in
//     HTTP/1.0; its value is empty or uri-host [":" port] with no
//     pct-encoding and IPv6 literals only in brackets, else 400. For
//     absolute-form and CONNECT, Request.Host is the target's authority
//     (§3.2.2); the engine should send that authority as Host upstream.
//   - Limits: request-line over MaxRequestLineBytes: 414; head over
//     Limits.MaxHeaderBytes or more than Limits.MaxHeaders fields: 431.
//   - Chunked bodies (ChunkedScanner): BWS before ";" is accepted as the
//     §7.1.1 grammar says, whitespace after the size without an extension is
//     not; bare LF or CR: rejected; chunk-size lines and trailer lines over
//     4 KiB and trailer sections over 64 KiB: rejected.
package http1

import "errors"

// ErrNeedMore means the buffer holds an incomplete message head (or chunk
// line): read more bytes and parse again from the start of the message.
var ErrNeedMore = errors.New("http1: incomplete message")

// ParseError is a malformed message. Status is the response a server sends
// for it (400, 414, 431, 501, 505).
type ParseError struct {
	Status int
	Reason string
}

func (e *ParseError) Error() string { return "http1: " + e.Reason }

// Header is one header field; both slices point into the parsed buffer.
type Header struct {
	Name  []byte
	Value []byte
}

// Limits bound what a request may carry.
type Limits struct {
	MaxHeaderBytes int // whole head including request line; over it: 431
	MaxHeaders     int // number of fields; over it: 431
}

// DefaultLimits match the standard library server's spirit at a smaller size.
var DefaultLimits = Limits{MaxHeaderBytes: 64 * 1024, MaxHeaders: 128}

// DefaultResponseLimits bound the response heads ParseResponse accepts. They
// allow more fields than DefaultLimits because backends legitimately send
// long lists (one Set-Cookie field per cookie).
var DefaultResponseLimits = Limits{MaxHeaderBytes: 64 * 1024, MaxHeaders: 256}

// MaxRequestLineBytes bounds the request-line (without its CRLF); a longer
// one is answered with 414. RFC 9112 §3 recommends supporting at least 8000
// octets.
const MaxRequestLineBytes = 8 * 1024

// TargetForm is the shape of a request-target (RFC 9112 §3.2).
type TargetForm uint8

// The four request-target forms. Each is only valid with the methods noted.
const (
	OriginForm    TargetForm = iota // "/path?query": every method except CONNECT
	AbsoluteForm                    // "http://authority/path?query": every method except CONNECT
	AuthorityForm                   // "host:port": CONNECT only
	AsteriskForm                    // "*": OPTIONS only
)

// Request is a parsed request head. Every slice points into the buffer given
// to ParseRequest and is valid until that buffer is reused.
type Request struct {
	Method []byte
	Target []byte // request-target as sent (origin-form "/p?q", or absolute-form)
	Path   []byte // path part of Target (absolute-form: the path after the authority, "/" when empty; "*" for asterisk-form; nil for CONNECT)
	Query  []byte // after '?', without it; nil when absent
	Major  int
	Minor  int
	Form   TargetForm // which request-target form Target uses

	Headers []Header // in order, including Host and framing headers
	Host    []byte   // Host field value (or the absolute-form authority)

	// Body framing, decided per RFC 9112 §6. A request with neither
	// Content-Length nor Transfer-Encoding has no body: ContentLength -1 and
	// Chunked false.
	ContentLength int64 // -1 when the body is chunked or there is none
	Chunked       bool

	KeepAlive bool // false: the connection closes after this exchange
	Upgrade   bool // Connection: upgrade and an Upgrade field
	Expect100 bool // Expect: 100-continue
}

// Response is a parsed response head; slices point into the parsed buffer.
type Response struct {
	Major, Minor int
	Status       int
	Reason       []byte
	Headers      []Header

	// Body framing per RFC 9112 §6.3 (the request method matters: HEAD and
	// 1xx/204/304 have no body — see ParseResponse).
	ContentLength int64 // -1 when chunked or delimited by close; 0 when NoBody
	Chunked       bool
	UntilClose    bool // body runs until the connection closes (KeepAlive is then false)
	NoBody        bool

	KeepAlive bool
}
