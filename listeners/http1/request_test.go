package http1

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// statusOf is the status an error maps to: 0 for success, -1 for
// ErrNeedMore, the ParseError status otherwise (and a test failure for any
// other error type).
func statusOf(t testing.TB, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	if errors.Is(err, ErrNeedMore) {
		return -1
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is neither ErrNeedMore nor *ParseError", err, err)
	}
	return pe.Status
}

// reqWant lists the fields a successful parse must produce; fields left at
// their zero value in a table row are still compared, so every row states
// the whole framing outcome.
type reqWant struct {
	method, target, path, query, host string
	queryPresent                      bool
	form                              TargetForm
	major, minor                      int
	contentLength                     int64
	chunked, keepAlive, upgrade       bool
	expect100                         bool
	headers                           int
}

func checkRequest(t *testing.T, buf []byte, n int, r *Request, w reqWant) {
	t.Helper()
	if got := string(r.Method); got != w.method {
		t.Errorf("Method = %q, want %q", got, w.method)
	}
	if got := string(r.Target); got != w.target {
		t.Errorf("Target = %q, want %q", got, w.target)
	}
	if got := string(r.Path); got != w.path {
		t.Errorf("Path = %q, want %q", got, w.path)
	}
	if got := string(r.Query); got != w.query || (r.Query != nil) != w.queryPresent {
		t.Errorf("Query = %q (nil=%v), want %q (present=%v)", got, r.Query == nil, w.query, w.queryPresent)
	}
	if got := string(r.Host); got != w.host {
		t.Errorf("Host = %q, want %q", got, w.host)
	}
	if r.Form != w.form {
		t.Errorf("Form = %d, want %d", r.Form, w.form)
	}
	if r.Major != w.major || r.Minor != w.minor {
		t.Errorf("version = %d.%d, want %d.%d", r.Major, r.Minor, w.major, w.minor)
	}
	if r.ContentLength != w.contentLength || r.Chunked != w.chunked {
		t.Errorf("framing = CL %d chunked %v, want CL %d chunked %v", r.ContentLength, r.Chunked, w.contentLength, w.chunked)
	}
	if r.KeepAlive != w.keepAlive || r.Upgrade != w.upgrade || r.Expect100 != w.expect100 {
		t.Errorf("flags = keepAlive %v upgrade %v expect100 %v, want %v %v %v",
			r.KeepAlive, r.Upgrade, r.Expect100, w.keepAlive, w.upgrade, w.expect100)
	}
	if len(r.Headers) != w.headers {
		t.Errorf("len(Headers) = %d, want %d", len(r.Headers), w.headers)
	}
	if n > len(buf) {
		t.Errorf("n = %d beyond len(buf) = %d", n, len(buf))
	}
}

// get11 is the framing outcome of a plain HTTP/1.1 GET with a Host field.
func get11(target, path string, headers int) reqWant {
	return reqWant{method: "GET", target: target, path: path, host: "example.com", major: 1, minor: 1,
		contentLength: -1, keepAlive: true, headers: headers}
}

func TestParseRequestAccepts(t *testing.T) {
	with := func(w reqWant, edit func(*reqWant)) reqWant { edit(&w); return w }
	cases := []struct {
		name string
		in   string
		want reqWant
	}{
		{"minimal", "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", get11("/", "/", 1)},
		{"query", "GET /a/b?x=1&y=%zz HTTP/1.1\r\nHost: example.com\r\n\r\n",
			with(get11("/a/b?x=1&y=%zz", "/a/b", 1), func(w *reqWant) { w.query, w.queryPresent = "x=1&y=%zz", true })},
		{"empty query is present", "GET /a? HTTP/1.1\r\nHost: example.com\r\n\r\n",
			with(get11("/a?", "/a", 1), func(w *reqWant) { w.queryPresent = true })},
		{"percent-encoded path", "GET /a%20b%2F HTTP/1.1\r\nHost: example.com\r\n\r\n", get11("/a%20b%2F", "/a%20b%2F", 1)},
		{"bare LF line endings", "GET / HTTP/1.1\nHost: example.com\n\n", get11("/", "/", 1)},
		{"mixed line endings", "GET / HTTP/1.1\r\nHost: example.com\n\r\n", get11("/", "/", 1)},
		{"one leading CRLF", "\r\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n", get11("/", "/", 1)},
		{"four leading empty lines", "\r\n\n\r\n\r\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n", get11("/", "/", 1)},
		{"OWS around value", "GET / HTTP/1.1\r\nHost: \t example.com \t\r\nX-Empty:\r\n\r\n", get11("/", "/", 2)},
		{"obs-text in value", "GET / HTTP/1.1\r\nHost: example.com\r\nX-Name: caf\xc3\xa9\r\n\r\n", get11("/", "/", 2)},
		{"host with port", "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
			with(get11("/", "/", 1), func(w *reqWant) { w.host = "example.com:8080" })},
		{"host IPv6", "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
			with(get11("/", "/", 1), func(w *reqWant) { w.host = "[::1]:80" })},
		{"empty host value", "GET / HTTP/1.1\r\nHost:\r\n\r\n",
			with(get11("/", "/", 1), func(w *reqWant) { w.host = "" })},
		{"content-length", "POST /up HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\n",
			with(get11("/up", "/up", 2), func(w *reqWant) { w.method, w.contentLength = "POST", 5 })},
		{"content-length leading zeros", "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0005\r\n\r\n",
			with(get11("/", "/", 2), func(w *reqWant) { w.method, w.contentLength = "POST", 5 })},
		{"content-length zero", "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n",
			with(get11("/", "/", 2), func(w *reqWant) { w.method, w.contentLength = "POST", 0 })},
		{"content-length max int64", "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 9223372036854775807\r\n\r\n",
			with(get11("/", "/", 2), func(w *reqWant) { w.method, w.contentLength = "POST", 1<<63-1 })},
		{"content-length identical fields", "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n",
			with(get11("/", "/", 3), func(w *reqWant) { w.method, w.contentLength = "POST", 5 })},
		{"chunked", "POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n",
			with(get11("/", "/", 2), func(w *reqWant) { w.method, w.chunked = "POST", true })},
		{"chunked case-insensitive", "POST / HTTP/1.1\r\nHost: example.com\r\ntransfer-encoding: ChUnKeD\r\n\r\n",
			with(get11("/", "/", 2), func(w *reqWant) { w.method, w.chunked = "POST", true })},
		{"connection close", "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: foo, CLOSE\r\n\r\n",
			with(get11("/", "/", 2), func(w *reqWant) { w.keepAlive = false })},
		{"close beats keep-alive", "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
			with(get11("/", "/", 3), func(w *reqWant) { w.keepAlive = false })},
		{"http/1.0 default close, no host", "GET / HTTP/1.0\r\n\r\n",
			reqWant{method: "GET", target: "/", path: "/", major: 1, minor: 0, contentLength: -1}},
		{"http/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
			reqWant{method: "GET", target: "/", path: "/", major: 1, minor: 0, contentLength: -1, keepAlive: true, headers: 1}},
		{"http/1.0 ignores upgrade and expect", "POST / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
			reqWant{method: "POST", target: "/", path: "/", major: 1, minor: 0, contentLength: 1, headers: 4}},
		{"http/1.2 treated as 1.1", "GET / HTTP/1.2\r\nHost: example.com\r\n\r\n",
			with(get11("/", "/", 1), func(w *reqWant) { w.minor = 2 })},
		{"upgrade", "GET /ws HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
			with(get11("/ws", "/ws", 3), func(w *reqWant) { w.upgrade = true })},
		{"upgrade token without field", "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: upgrade\r\n\r\n", get11("/", "/", 2)},
		{"upgrade field without token", "GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\r\n", get11("/", "/", 2)},
		{"expect 100-continue", "PUT / HTTP/1.1\r\nHost: example.com\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
			with(get11("/", "/", 3), func(w *reqWant) { w.method, w.expect100, w.contentLength = "PUT", true, 3 })},
		{"other expectation", "PUT / HTTP/1.1\r\nHost: example.com\r\nExpect: 200-ok\r\n\r\n",
			with(get11("/", "/", 2), func(w *reqWant) { w.method = "PUT" })},
		{"absolute-form", "GET http://Example.org:81/p?q HTTP/1.1\r\nHost: ignored.example\r\n\r\n",
			with(get11("http://Example.org:81/p?q", "/p", 1), func(w *reqWant) {
				w.host, w.form, w.query, w.queryPresent = "Example.org:81", AbsoluteForm, "q", true
			})},
		{"absolute-form empty path", "GET HTTPS://example.org?q HTTP/1.1\r\nHost: example.org\r\n\r\n",
			with(get11("HTTPS://example.org?q", "/", 1), func(w *reqWant) {
				w.host, w.form, w.query, w.queryPresent = "example.org", AbsoluteForm, "q", true
			})},
		{"asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n",
			with(get11("*", "*", 1), func(w *reqWant) { w.method, w.form = "OPTIONS", AsteriskForm })},
		{"authority-form", "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n",
			with(get11("example.org:443", "", 1), func(w *reqWant) {
				w.method, w.form, w.host = "CONNECT", AuthorityForm, "example.org:443"
			})},
		{"authority-form IPv6", "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n",
			with(get11("[2001:db8::1]:443", "", 1), func(w *reqWant) {
				w.method, w.form, w.host = "CONNECT", AuthorityForm, "[2001:db8::1]:443"
			})},
		{"extension method", "PROPFIND /d HTTP/1.1\r\nHost: example.com\r\n\r\n",
			with(get11("/d", "/d", 1), func(w *reqWant) { w.method = "PROPFIND" })},
		{"visible ASCII in target", "GET /a{b}|c^\"<> HTTP/1.1\r\nHost: example.com\r\n\r\n", get11("/a{b}|c^\"<>", "/a{b}|c^\"<>", 1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Bytes after the head (a body, the next request) are not part
			// of it: n must stop exactly at the end of the head.
			buf := []byte(tc.in + "BODY")
			var r Request
			n, err := ParseRequest(buf, &r, DefaultLimits)
			if err != nil {
				t.Fatalf("ParseRequest(%q) error %v", tc.in, err)
			}
			if n != len(tc.in) {
				t.Errorf("n = %d, want %d (end of head)", n, len(tc.in))
			}
			checkRequest(t, buf, n, &r, tc.want)
		})
	}
}

func TestParseRequestRejects(t *testing.T) {
	const host = "Host: example.com\r\n"
	cases := []struct {
		name   string
		in     string
		status int
	}{
		// Framing conflicts (RFC 9112 §6.1, §6.3).
		{"TE and CL (CL.TE)", "POST / HTTP/1.1\r\n" + host + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"CL and TE (TE.CL)", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n", 400},
		{"CL differing fields", "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
		{"CL differing list", "POST / HTTP/1.1\r\n" + host + "Content-Length: 5, 6\r\n\r\n", 400},
		{"CL empty list element", "POST / HTTP/1.1\r\n" + host + "Content-Length: 5,\r\n\r\n", 400},
		{"CL empty", "POST / HTTP/1.1\r\n" + host + "Content-Length:\r\n\r\n", 400},
		{"CL negative", "POST / HTTP/1.1\r\n" + host + "Content-Length: -1\r\n\r\n", 400},
		{"CL plus sign", "POST / HTTP/1.1\r\n" + host + "Content-Length: +5\r\n\r\n", 400},
		{"CL space inside", "POST / HTTP/1.1\r\n" + host + "Content-Length: 1 0\r\n\r\n", 400},
		{"CL hex", "POST / HTTP/1.1\r\n" + host + "Content-Length: 0x10\r\n\r\n", 400},
		{"CL decimal point", "POST / HTTP/1.1\r\n" + host + "Content-Length: 1.0\r\n\r\n", 400},
		{"CL overflow", "POST / HTTP/1.1\r\n" + host + "Content-Length: 9223372036854775808\r\n\r\n", 400},
		{"CL huge", "POST / HTTP/1.1\r\n" + host + "Content-Length: 99999999999999999999999\r\n\r\n", 400},
		{"TE not chunked", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\n\r\n", 400},
		{"content-length identical list", "POST / HTTP/1.1\r\n" + host + "Content-Length: 5, 5\r\n\r\n", 400},
		{"gzip then chunked", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"codings split over fields", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
		{"TE chunked not final", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, gzip\r\n\r\n", 400},
		{"TE chunked twice", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, chunked\r\n\r\n", 400},
		{"TE chunked twice across fields", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"TE xchunked", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: xchunked\r\n\r\n", 400},
		{"TE chunked-false", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked-false\r\n\r\n", 400},
		{"TE quoted", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: \"chunked\"\r\n\r\n", 400},
		{"TE with parameter", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked;q=1\r\n\r\n", 400},
		{"TE empty element", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked,\r\n\r\n", 400},
		{"TE empty", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding:\r\n\r\n", 400},
		{"TE unknown coding before chunked", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: foo, chunked\r\n\r\n", 501},
		{"TE identity before chunked", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: identity, chunked\r\n\r\n", 501},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"TE space before colon", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding : chunked\r\n\r\n", 400},
		{"TE vertical tab", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding:\x0bchunked\r\n\r\n", 400},
		{"TE obs-fold", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding:\r\n chunked\r\n\r\n", 400},
		// Field syntax (RFC 9112 §5, RFC 9110 §5.5).
		{"obs-fold", "GET / HTTP/1.1\r\n" + host + "X-A: 1\r\n\t2\r\n\r\n", 400},
		{"space before first field", "GET / HTTP/1.1\r\n Host: example.com\r\n\r\n", 400},
		{"NUL in value", "GET / HTTP/1.1\r\n" + host + "X-A: a\x00b\r\n\r\n", 400},
		{"bare CR in value", "GET / HTTP/1.1\r\n" + host + "X-A: a\rb\r\n\r\n", 400},
		{"CR before CRLF", "GET / HTTP/1.1\r\n" + host + "X-A: a\r\r\n\r\n", 400},
		{"bare CR line end", "GET / HTTP/1.1\r\n" + host + "X-A: a\rX-B: b\r\n\r\n", 400},
		{"bare CR final line", "GET / HTTP/1.1\r\n" + host + "\rX", 400},
		{"DEL in value", "GET / HTTP/1.1\r\n" + host + "X-A: a\x7fb\r\n\r\n", 400},
		{"control char in value", "GET / HTTP/1.1\r\n" + host + "X-A: a\x01b\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\n" + host + "X-A : b\r\n\r\n", 400},
		{"tab before colon", "GET / HTTP/1.1\r\n" + host + "X-A\t: b\r\n\r\n", 400},
		{"empty name", "GET / HTTP/1.1\r\n" + host + ": b\r\n\r\n", 400},
		{"no colon", "GET / HTTP/1.1\r\n" + host + "X-A\r\n\r\n", 400},
		{"invalid name char", "GET / HTTP/1.1\r\n" + host + "X(A): b\r\n\r\n", 400},
		{"non-ASCII name", "GET / HTTP/1.1\r\n" + host + "X-\xc3\xa9: b\r\n\r\n", 400},
		{"NUL in name", "GET / HTTP/1.1\r\n" + host + "X\x00: b\r\n\r\n", 400},
		// Request-line (RFC 9112 §3).
		{"two parts", "GET /\r\n" + host + "\r\n", 400},
		{"one part", "GET\r\n" + host + "\r\n", 400},
		{"four parts", "GET / HTTP/1.1 extra\r\n" + host + "\r\n", 400},
		{"double space", "GET  / HTTP/1.1\r\n" + host + "\r\n", 400},
		{"trailing space", "GET / HTTP/1.1 \r\n" + host + "\r\n", 400},
		{"leading space", " GET / HTTP/1.1\r\n" + host + "\r\n", 400},
		{"tab separator", "GET\t/ HTTP/1.1\r\n" + host + "\r\n", 400},
		{"invalid method char", "G(T / HTTP/1.1\r\n" + host + "\r\n", 400},
		{"non-ASCII method", "G\xc3\x89T / HTTP/1.1\r\n" + host + "\r\n", 400},
		{"lowercase version", "GET / http/1.1\r\n" + host + "\r\n", 400},
		{"version without minor", "GET / HTTP/1\r\n" + host + "\r\n", 400},
		{"two-digit minor", "GET / HTTP/1.10\r\n" + host + "\r\n", 400},
		{"two-digit major", "GET / HTTP/11.1\r\n" + host + "\r\n", 400},
		{"garbage version", "GET / FTP/1.1\r\n" + host + "\r\n", 400},
		{"HTTP/2.0", "GET / HTTP/2.0\r\n" + host + "\r\n", 505},
		{"HTTP/3.0", "GET / HTTP/3.0\r\n" + host + "\r\n", 505},
		{"HTTP/0.9", "GET / HTTP/0.9\r\n" + host + "\r\n", 505},
		{"h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
		{"bare CR in request-line", "GET /\r HTTP/1.1\r\n" + host + "\r\n", 400},
		{"too many empty lines", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" + host + "\r\n", 400},
		// Request-target (RFC 9112 §3.2).
		{"relative target", "GET a/b HTTP/1.1\r\n" + host + "\r\n", 400},
		{"fragment", "GET /a#b HTTP/1.1\r\n" + host + "\r\n", 400},
		{"non-ASCII target", "GET /caf\xc3\xa9 HTTP/1.1\r\n" + host + "\r\n", 400},
		{"control char in target", "GET /a\x01 HTTP/1.1\r\n" + host + "\r\n", 400},
		{"bad percent-encoding", "GET /a%zz HTTP/1.1\r\n" + host + "\r\n", 400},
		{"truncated percent-encoding", "GET /a%4 HTTP/1.1\r\n" + host + "\r\n", 400},
		{"asterisk with GET", "GET * HTTP/1.1\r\n" + host + "\r\n", 400},
		{"authority-form with GET", "GET example.org:443 HTTP/1.1\r\n" + host + "\r\n", 400},
		{"CONNECT origin-form", "CONNECT /x HTTP/1.1\r\n" + host + "\r\n", 400},
		{"CONNECT without port", "CONNECT example.org HTTP/1.1\r\n" + host + "\r\n", 400},
		{"CONNECT absolute-form", "CONNECT http://example.org:443/ HTTP/1.1\r\n" + host + "\r\n", 400},
		{"absolute-form other scheme", "GET ftp://example.org/ HTTP/1.1\r\n" + host + "\r\n", 400},
		{"absolute-form without slashes", "GET http:example.org/ HTTP/1.1\r\n" + host + "\r\n", 400},
		{"absolute-form empty host", "GET http:///p HTTP/1.1\r\n" + host + "\r\n", 400},
		{"absolute-form userinfo", "GET http://user@example.org/ HTTP/1.1\r\n" + host + "\r\n", 400},
		{"absolute-form bad port", "GET http://example.org:8x/ HTTP/1.1\r\n" + host + "\r\n", 400},
		// Host (RFC 9112 §3.2).
		{"1.1 without Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"absolute-form 1.1 without Host", "GET http://example.org/ HTTP/1.1\r\n\r\n", 400},
		{"two Host fields", "GET / HTTP/1.1\r\n" + host + host + "\r\n", 400},
		{"two Host fields in 1.0", "GET / HTTP/1.0\r\n" + host + host + "\r\n", 400},
		{"Host with space", "GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n", 400},
		{"Host with path", "GET / HTTP/1.1\r\nHost: example.com/x\r\n\r\n", 400},
		{"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@example.com\r\n\r\n", 400},
		{"Host list", "GET / HTTP/1.1\r\nHost: a.com, b.com\r\n\r\n", 400},
		{"Host bad port", "GET / HTTP/1.1\r\nHost: example.com:http\r\n\r\n", 400},
		{"Host IPv4 in brackets", "GET / HTTP/1.1\r\nHost: [127.0.0.1]\r\n\r\n", 400},
		{"Host IPv6 unterminated", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},
		{"Host percent", "GET / HTTP/1.1\r\nHost: ex%41mple.com\r\n\r\n", 400},
		// Sizes.
		{"request-line too long", "GET /" + strings.Repeat("a", MaxRequestLineBytes) + " HTTP/1.1\r\n" + host + "\r\n", 414},
		{"request-line too long, incomplete", "GET /" + strings.Repeat("a", MaxRequestLineBytes+10), 414},
		{"head too large", "GET / HTTP/1.1\r\n" + host + "X-A: " + strings.Repeat("a", 64*1024) + "\r\n\r\n", 431},
		{"head too large, incomplete", "GET / HTTP/1.1\r\n" + host + "X-A: " + strings.Repeat("a", 64*1024), 431},
		{"too many fields", "GET / HTTP/1.1\r\n" + host + strings.Repeat("X-A: b\r\n", 128) + "\r\n", 431},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			n, err := ParseRequest([]byte(tc.in), &r, DefaultLimits)
			if got := statusOf(t, err); got != tc.status {
				t.Fatalf("ParseRequest(%.80q) = n %d, err %v (status %d), want status %d", tc.in, n, err, got, tc.status)
			}
			if n != 0 {
				t.Errorf("n = %d on error, want 0", n)
			}
		})
	}
}

func TestParseRequestLimits(t *testing.T) {
	head := "GET / HTTP/1.1\r\nHost: example.com\r\nA: 1\r\nB: 2\r\n\r\n"
	var r Request
	tests := []struct {
		name   string
		lim    Limits
		in     string
		status int
	}{
		{"exactly at byte limit", Limits{MaxHeaderBytes: len(head), MaxHeaders: 10}, head, 0},
		{"one byte over, body follows", Limits{MaxHeaderBytes: len(head) - 1, MaxHeaders: 10}, head + "body", 431},
		{"incomplete under limit", Limits{MaxHeaderBytes: len(head), MaxHeaders: 10}, head[:len(head)-1], -1},
		{"incomplete at limit", Limits{MaxHeaderBytes: len(head) - 1, MaxHeaders: 10}, head[:len(head)-1], -1},
		{"exactly at field limit", Limits{MaxHeaderBytes: 1024, MaxHeaders: 3}, head, 0},
		{"one field over", Limits{MaxHeaderBytes: 1024, MaxHeaders: 2}, head, 431},
		{"zero limits mean defaults", Limits{}, head, 0},
		{"small byte limit beats 414", Limits{MaxHeaderBytes: 100, MaxHeaders: 10}, "GET /" + strings.Repeat("a", 200), 431},
		{"request-line exactly at its limit", Limits{MaxHeaderBytes: 64 << 10, MaxHeaders: 10},
			"GET /" + strings.Repeat("a", MaxRequestLineBytes-len("GET / HTTP/1.1")) + " HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"request-line one over its limit", Limits{MaxHeaderBytes: 64 << 10, MaxHeaders: 10},
			"GET /" + strings.Repeat("a", MaxRequestLineBytes-len("GET / HTTP/1.1")+1) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		{"request-line at its limit, CR pending", Limits{MaxHeaderBytes: 64 << 10, MaxHeaders: 10},
			"GET /" + strings.Repeat("a", MaxRequestLineBytes-len("GET / HTTP/1.1")) + " HTTP/1.1\r", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRequest([]byte(tc.in), &r, tc.lim)
			if got := statusOf(t, err); got != tc.status {
				t.Fatalf("status = %d (%v), want %d", got, err, tc.status)
			}
		})
	}
}

// TestParseRequestEveryPrefix checks the incremental contract: every proper
// prefix of a valid head is ErrNeedMore, the whole head parses, and bytes
// after it (a body, a pipelined request) do not change the result.
func TestParseRequestEveryPrefix(t *testing.T) {
	heads := []string{
		wrkRequest,
		browserRequest,
		"\r\nPOST /form HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.0\n\n",
		"OPTIONS * HTTP/1.1\nHost: a\r\n\n",
	}
	for _, head := range heads {
		var want Request
		n, err := ParseRequest([]byte(head), &want, DefaultLimits)
		if err != nil || n != len(head) {
			t.Fatalf("ParseRequest(%q) = %d, %v; want %d, nil", head, n, err, len(head))
		}
		var r Request
		for i := 0; i < len(head); i++ {
			if n, err := ParseRequest([]byte(head[:i]), &r, DefaultLimits); err != ErrNeedMore {
				t.Fatalf("prefix %q: n %d err %v, want ErrNeedMore", head[:i], n, err)
			}
		}
		for _, tail := range []string{"", "x", "GET / HTTP/1.1\r\n"} {
			buf := []byte(head + tail)
			n, err := ParseRequest(buf, &r, DefaultLimits)
			if err != nil || n != len(head) {
				t.Fatalf("ParseRequest(%q) = %d, %v; want %d, nil", buf, n, err, len(head))
			}
			if string(r.Method) != string(want.Method) || string(r.Target) != string(want.Target) ||
				len(r.Headers) != len(want.Headers) || r.KeepAlive != want.KeepAlive || r.Chunked != want.Chunked {
				t.Fatalf("with tail %q: request differs from the head alone", tail)
			}
		}
	}
}

// TestParseRequestResetsEveryField parses a request that sets every field,
// then a minimal one, and checks nothing of the first survives.
func TestParseRequestResetsEveryField(t *testing.T) {
	var r Request
	full := "GET http://a.example/p?q HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade\r\nUpgrade: x\r\n" +
		"Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"
	if _, err := ParseRequest([]byte(full), &r, DefaultLimits); err != nil {
		t.Fatal(err)
	}
	if !r.Upgrade || !r.Expect100 || !r.Chunked || r.Form != AbsoluteForm || r.Query == nil {
		t.Fatalf("setup request lacks the fields under test: %+v", r)
	}
	if _, err := ParseRequest([]byte("GET / HTTP/1.0\r\n\r\n"), &r, DefaultLimits); err != nil {
		t.Fatal(err)
	}
	if string(r.Method) != "GET" || string(r.Target) != "/" || string(r.Path) != "/" || r.Query != nil ||
		r.Major != 1 || r.Minor != 0 || r.Form != OriginForm || len(r.Headers) != 0 ||
		r.Host != nil || r.ContentLength != -1 || r.Chunked || r.KeepAlive || r.Upgrade || r.Expect100 {
		t.Fatalf("fields survived from the previous parse: %+v", r)
	}
	// A failed parse must not leave a half-filled request that looks valid.
	if _, err := ParseRequest([]byte("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n"), &r, DefaultLimits); err == nil {
		t.Fatal("want an error")
	}
	if r.ContentLength != -1 || r.KeepAlive {
		t.Fatalf("failed parse left framing set: %+v", r)
	}
}

func TestParseRequestHeadersKeepOrderAndReuseStorage(t *testing.T) {
	r := Request{Headers: make([]Header, 0, 8)}
	buf := []byte("GET / HTTP/1.1\r\nHost: h\r\nB: 2\r\nA: 1\r\nB: 3\r\n\r\n")
	if _, err := ParseRequest(buf, &r, DefaultLimits); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range r.Headers {
		got = append(got, string(h.Name)+"="+string(h.Value))
	}
	if strings.Join(got, ",") != "Host=h,B=2,A=1,B=3" {
		t.Fatalf("headers = %v", got)
	}
	before := &r.Headers[:1][0]
	if _, err := ParseRequest(buf, &r, DefaultLimits); err != nil {
		t.Fatal(err)
	}
	if &r.Headers[0] != before {
		t.Fatal("ParseRequest did not reuse the Headers backing array")
	}
}

func TestParseRequestAllocs(t *testing.T) {
	for name, head := range map[string]string{"wrk": wrkRequest, "browser": browserRequest} {
		buf := []byte(head)
		var r Request
		allocs := testing.AllocsPerRun(200, func() {
			if _, err := ParseRequest(buf, &r, DefaultLimits); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocs per ParseRequest, want 0", name, allocs)
		}
	}
	// Rejecting must not allocate either: hostile input is the cheap case.
	bad := []byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
	var r Request
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := ParseRequest(bad, &r, DefaultLimits); err == nil {
			t.Fatal("want an error")
		}
	})
	if allocs != 0 {
		t.Errorf("rejection: %v allocs per ParseRequest, want 0", allocs)
	}
}

func TestValidIPv6LiteralMatchesNetip(t *testing.T) {
	cases := []string{
		"::", "::1", "1::", "1::2", "2001:db8::1", "2001:db8:0:0:0:0:0:1", "1:2:3:4:5:6:7:8",
		"1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6::8", "::ffff:192.0.2.1", "64:ff9b::192.0.2.33",
		"1:2:3:4:5:6:1.2.3.4", "::1.2.3.4", "ABCD:ef01::", "fe80::1%25eth0", "fe80::1%eth0",
		"1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1::2::3", ":1::", "1:::2", "12345::", "1:", ":1", ":",
		"1.2.3.4", "::1.2.3", "::1.2.3.4.5", "::256.1.1.1", "::01.2.3.4", "1:2:3:4:5:6:7:1.2.3.4",
		"::ffff:1.2.3.4:1", "g::", "", "v1.x", "::0:0:0:0:0:0:0", "0:0:0:0:0:0:0::",
	}
	for _, c := range cases {
		addr, err := netip.ParseAddr(c)
		want := err == nil && addr.Is6() && addr.Zone() == "" && !strings.Contains(c, "%")
		if got := validIPv6Literal([]byte(c)); got != want {
			t.Errorf("validIPv6Literal(%q) = %v, netip says %v", c, got, want)
		}
	}
}
