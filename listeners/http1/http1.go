// Package http1 parses and frames HTTP/1.x messages for switchyard's fast
// forwarding path. It works on byte slices owned by the caller (no
// allocation per message on the common path) and is strict where RFC 9112
// makes leniency dangerous: request smuggling vectors (conflicting framing,
// bad chunk sizes, obs-fold, stray CR/LF/NUL) are rejected, never guessed.
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

// Request is a parsed request head. Every slice points into the buffer given
// to ParseRequest and is valid until that buffer is reused.
type Request struct {
	Method []byte
	Target []byte // request-target as sent (origin-form "/p?q", or absolute-form)
	Path   []byte // path part of Target (absolute-form: the path after the authority)
	Query  []byte // after '?', without it; nil when absent
	Major  int
	Minor  int

	Headers []Header // in order, including Host and framing headers
	Host    []byte   // Host field value (or the absolute-form authority)

	// Body framing, decided per RFC 9112 §6.
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
	ContentLength int64 // -1 when chunked or delimited by close
	Chunked       bool
	UntilClose    bool // body runs until the connection closes
	NoBody        bool

	KeepAlive bool
}
