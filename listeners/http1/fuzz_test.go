package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/textproto"
	"strings"
	"testing"
	"unsafe"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/ (request smuggling
// classics among them); f.Add only adds the everyday shapes.

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(wrkRequest))
	f.Add([]byte(browserRequest))
	f.Add([]byte("POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRequestInput(t, data)
		// Mutations of whole requests rarely keep the request-line and Host
		// intact, so most never reach the field and target checks. These
		// wrappings put the fuzzer's bytes straight into the field section
		// and into the request-target.
		checkRequestInput(t, concat("GET / HTTP/1.1\r\nHost: a\r\n", data, "\r\n\r\n"))
		checkRequestInput(t, concat("GET ", data, " HTTP/1.1\r\nHost: a\r\n\r\n"))
	})
}

func concat(prefix string, data []byte, suffix string) []byte {
	out := make([]byte, 0, len(prefix)+len(data)+len(suffix))
	return append(append(append(out, prefix...), data...), suffix...)
}

// checkRequestInput parses data and checks the result against the
// contract and against net/http.
func checkRequestInput(t *testing.T, data []byte) {
	var r Request
	n, err := ParseRequest(data, &r, DefaultLimits)
	if end := HeadEnd(data, 0); (end < 0 || end > n) && err == nil {
		t.Fatalf("HeadEnd = %d but ParseRequest found a head of %d bytes", end, n)
	}
	if err != nil {
		checkRequestError(t, data, n, err)
		compareRejectionWithStdlib(t, data, err)
		return
	}
	checkRequestInvariants(t, data, n, &r)
	compareAcceptanceWithStdlib(t, data, n, &r)
}

// checkRequestError checks the error contract: n is 0, the error is
// ErrNeedMore or a *ParseError with a status a server would send, and
// ErrNeedMore is only returned while the limit has not been passed.
func checkRequestError(t *testing.T, data []byte, n int, err error) {
	if n != 0 {
		t.Fatalf("n = %d with error %v", n, err)
	}
	if errors.Is(err, ErrNeedMore) {
		if len(data) > DefaultLimits.MaxHeaderBytes {
			t.Fatalf("ErrNeedMore with %d bytes buffered, beyond the %d limit", len(data), DefaultLimits.MaxHeaderBytes)
		}
		return
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is %T, want *ParseError", err, err)
	}
	switch pe.Status {
	case 400, 414, 431, 501, 505:
	default:
		t.Fatalf("status %d for a request", pe.Status)
	}
}

func checkRequestInvariants(t *testing.T, data []byte, n int, r *Request) {
	if n <= 0 || n > len(data) || n > DefaultLimits.MaxHeaderBytes {
		t.Fatalf("n = %d for len %d", n, len(data))
	}
	if r.Chunked && r.ContentLength >= 0 {
		t.Fatalf("both chunked and Content-Length %d", r.ContentLength)
	}
	if r.ContentLength < -1 {
		t.Fatalf("ContentLength %d", r.ContentLength)
	}
	if r.Major != 1 || r.Minor < 0 || r.Minor > 9 {
		t.Fatalf("version %d.%d", r.Major, r.Minor)
	}
	if len(r.Method) == 0 || len(r.Target) == 0 {
		t.Fatal("empty method or target")
	}
	head := data[:n]
	mustBeWithin(t, head, r.Method, "Method")
	mustBeWithin(t, head, r.Target, "Target")
	mustBeWithin(t, head, r.Query, "Query")
	mustBeWithin(t, head, r.Host, "Host")
	if !(r.Form == AbsoluteForm && unsafe.SliceData(r.Path) == unsafe.SliceData(slashPath)) {
		mustBeWithin(t, head, r.Path, "Path")
	}
	for _, h := range r.Headers {
		mustBeWithin(t, head, h.Name, "header name")
		mustBeWithin(t, head, h.Value, "header value")
		if len(h.Name) == 0 {
			t.Fatal("empty header name")
		}
	}
	if len(r.Headers) > DefaultLimits.MaxHeaders {
		t.Fatalf("%d headers beyond the limit", len(r.Headers))
	}
	// The head alone parses the same, and every proper prefix of it is
	// incomplete (sampled for long heads to keep the fuzzer fast).
	var again Request
	if n2, err := ParseRequest(head, &again, DefaultLimits); err != nil || n2 != n {
		t.Fatalf("re-parsing the head alone: %d, %v; want %d, nil", n2, err, n)
	}
	step := max(1, n/64)
	for k := 0; k < n; k += step {
		if _, err := ParseRequest(head[:k], &again, DefaultLimits); err != ErrNeedMore {
			t.Fatalf("prefix of %d bytes of a valid head: %v, want ErrNeedMore", k, err)
		}
	}
}

// mustBeWithin fails unless s is empty or a sub-slice of buf.
func mustBeWithin(t *testing.T, buf, s []byte, what string) {
	t.Helper()
	if len(s) == 0 {
		return
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	if p < start || p+uintptr(len(s)) > start+uintptr(len(buf)) {
		t.Fatalf("%s %q does not point into the parsed head", what, s)
	}
}

// stdlibServerRead parses head the way net/http's server does: ReadRequest
// plus the checks its conn.readRequest adds (version, Host, field syntax).
// ReadRequest drops the Host field, so the fields are read a second time
// with net/textproto, as readRequest itself reads them.
func stdlibServerRead(head []byte) (*http.Request, error) {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		return nil, err
	}
	if req.ProtoMajor != 1 {
		return nil, errors.New("unsupported protocol version")
	}
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(head)))
	if _, err := tp.ReadLine(); err != nil {
		return nil, err
	}
	fields, err := tp.ReadMIMEHeader()
	if err != nil {
		return nil, err
	}
	hosts, haveHost := fields["Host"]
	if req.ProtoAtLeast(1, 1) && (!haveHost || len(hosts) == 0) && req.Method != "CONNECT" {
		return nil, errors.New("missing required Host header")
	}
	for k, vv := range fields {
		if !validStdName(k) {
			return nil, errors.New("invalid header name")
		}
		for _, v := range vv {
			if !validFieldValue([]byte(v)) {
				return nil, errors.New("invalid header value")
			}
		}
	}
	return req, nil
}

// validStdName mirrors httpguts.ValidHeaderFieldName (a token).
func validStdName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isToken(k[i]) {
			return false
		}
	}
	return true
}

// stricterThanStdlib reports rejections where this parser is deliberately
// stricter than net/http (RFC 9112 lets a recipient choose and we choose
// rejection, or we apply our own limits), so net/http accepting the same
// input is not a disagreement.
func stricterThanStdlib(err error) bool {
	for _, code := range []errCode{
		errHeadTooLarge, errTooManyFields, errRequestLineTooLong, // net/http allows 1 MiB
		errObsFold,    // net/http unfolds
		errTargetChar, // non-ASCII, '#'
		errTargetForm, errAsteriskNotOptions, errConnectTarget, errAbsoluteScheme, errAbsoluteAuthority,
		errInvalidHost,        // net/http only checks the alphabet
		errTEAndContentLength, // net/http drops Content-Length
		errTEInHTTP10,         // net/http ignores Transfer-Encoding
		errVersionUnsupported, // net/http passes the h2 preface
	} {
		if err == requestError(code) {
			return true
		}
	}
	return false
}

// compareRejectionWithStdlib: when we reject a complete head for a reason
// net/http also enforces, net/http must reject it too.
func compareRejectionWithStdlib(t *testing.T, data []byte, err error) {
	var pe *ParseError
	if !errors.As(err, &pe) || stricterThanStdlib(err) {
		return
	}
	start, _ := skipEmptyLines(data)
	if bytes.HasPrefix(data[start:], []byte("CONNECT ")) {
		return // net/http does not require Host for CONNECT
	}
	if err == requestError(errMissingHost) || isTEError(err) {
		// net/http skips Host and ignores Transfer-Encoding below 1.1; our
		// version check is on the request-line, so look there.
		if line, _ := nextLine(data, start); bytes.HasSuffix(line, []byte("HTTP/1.0")) {
			return
		}
	}
	if _, stdErr := stdlibServerRead(data[start:]); stdErr == nil {
		t.Fatalf("we reject (%d %s) but net/http accepts %q", pe.Status, pe.Reason, data)
	}
}

func isTEError(err error) bool {
	for _, c := range []errCode{errTESyntax, errTEChunkedNotFinal, errTEChunkedTwice, errTEUnknownCoding} {
		if err == requestError(c) {
			return true
		}
	}
	return false
}

// compareAcceptanceWithStdlib: what we accept, net/http must accept with the
// same meaning, except where we knowingly accept more (RFC 9110 §8.6 lists
// of identical Content-Length values; codings before chunked).
func compareAcceptanceWithStdlib(t *testing.T, data []byte, n int, r *Request) {
	clFields, teFields := 0, 0
	for _, h := range r.Headers {
		switch {
		case EqualFold(h.Name, "content-length"):
			clFields++
			if bytes.IndexByte(h.Value, ',') >= 0 {
				return
			}
		case EqualFold(h.Name, "transfer-encoding"):
			teFields++
			if !EqualFold(h.Value, "chunked") {
				return
			}
		}
	}
	if clFields > 1 || teFields > 1 {
		return
	}
	start, _ := skipEmptyLines(data)
	std, err := stdlibServerRead(data[start:n])
	if err != nil {
		t.Fatalf("we accept but net/http rejects (%v): %q", err, data[:n])
	}
	if std.Method != string(r.Method) || std.RequestURI != string(r.Target) ||
		std.ProtoMajor != r.Major || std.ProtoMinor != r.Minor {
		t.Fatalf("request-line differs: net/http %s %s %d.%d", std.Method, std.RequestURI, std.ProtoMajor, std.ProtoMinor)
	}
	if std.Host != string(r.Host) {
		t.Fatalf("Host: net/http %q, ours %q", std.Host, r.Host)
	}
	wantCL := r.ContentLength
	if !r.Chunked && wantCL < 0 {
		wantCL = 0 // net/http reports "no body" as 0 for requests
	}
	if std.ContentLength != wantCL || (len(std.TransferEncoding) == 1) != r.Chunked {
		t.Fatalf("framing: net/http CL %d TE %v, ours CL %d chunked %v",
			std.ContentLength, std.TransferEncoding, r.ContentLength, r.Chunked)
	}
	if std.Close == r.KeepAlive {
		t.Fatalf("persistence: net/http Close %v, ours KeepAlive %v", std.Close, r.KeepAlive)
	}
	for _, h := range r.Headers {
		if EqualFold(h.Name, "content-length") || EqualFold(h.Name, "transfer-encoding") || EqualFold(h.Name, "host") {
			continue // net/http moves these into Host and the framing fields
		}
		if !containsString(std.Header.Values(string(h.Name)), string(h.Value)) {
			t.Fatalf("field %q: %q not among net/http's %q", h.Name, h.Value, std.Header.Values(string(h.Name)))
		}
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if strings.Trim(v, " \t") == s {
			return true
		}
	}
	return false
}

func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(backendResponse), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		var r Response
		n, err := ParseResponse(data, &r, head)
		if err != nil {
			var pe *ParseError
			if n != 0 || (!errors.Is(err, ErrNeedMore) && (!errors.As(err, &pe) || pe.Status != 502)) {
				t.Fatalf("n %d err %v", n, err)
			}
			return
		}
		if n <= 0 || n > len(data) {
			t.Fatalf("n = %d for len %d", n, len(data))
		}
		modes := 0
		for _, m := range []bool{r.Chunked, r.UntilClose, r.NoBody, r.ContentLength >= 0 && !r.NoBody} {
			if m {
				modes++
			}
		}
		if modes != 1 {
			t.Fatalf("framing not exactly one mode: %+v", r)
		}
		if r.UntilClose && r.KeepAlive {
			t.Fatal("body delimited by close on a kept-alive connection")
		}
		mustBeWithin(t, data[:n], r.Reason, "Reason")
		for _, h := range r.Headers {
			mustBeWithin(t, data[:n], h.Name, "header name")
			mustBeWithin(t, data[:n], h.Value, "header value")
		}
		// What we frame, net/http must frame the same way (it is the
		// client most backends were tested against).
		std, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data[:n])), headRequest(head))
		if err != nil {
			return // net/http is stricter about Transfer-Encoding lists; fine
		}
		defer std.Body.Close()
		if std.StatusCode != r.Status {
			t.Fatalf("status: net/http %d, ours %d", std.StatusCode, r.Status)
		}
		if r.Chunked != (len(std.TransferEncoding) > 0 && std.TransferEncoding[len(std.TransferEncoding)-1] == "chunked") && !r.NoBody {
			t.Fatalf("chunked: net/http %v, ours %v", std.TransferEncoding, r.Chunked)
		}
		if r.ContentLength >= 0 && !r.NoBody && std.ContentLength != r.ContentLength {
			t.Fatalf("Content-Length: net/http %d, ours %d", std.ContentLength, r.ContentLength)
		}
	})
}

func headRequest(head bool) *http.Request {
	if head {
		return &http.Request{Method: http.MethodHead}
	}
	return &http.Request{Method: http.MethodGet}
}

func FuzzChunkedScanner(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), uint16(3))
	f.Add([]byte("5;a=\"b\"\r\nhello\r\n0\r\nT: v\r\n\r\nGET"), uint16(9))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		whole := feedPieces(data, nil)
		if whole.n > len(data) || whole.body > int64(whole.n) {
			t.Fatalf("n %d body %d for len %d", whole.n, whole.body, len(data))
		}
		if whole.err == nil && !whole.done && whole.n != len(data) {
			t.Fatalf("stopped at %d of %d without done or error", whole.n, len(data))
		}
		if whole.done && !bytes.HasSuffix(data[:whole.n], []byte("\r\n\r\n")) {
			t.Fatalf("done at %d without a final CRLF", whole.n)
		}
		if whole.err != nil && statusOf(t, whole.err) != 400 {
			t.Fatalf("error %v", whole.err)
		}
		at := 0
		if len(data) > 0 {
			at = int(cut) % (len(data) + 1)
		}
		if split := feedPieces(data, []int{at}); split != whole {
			t.Fatalf("cut at %d: %+v, whole: %+v", at, split, whole)
		}
		if len(data) <= 256 {
			if split := feedPieces(data, byteByByte(data)); split != whole {
				t.Fatalf("byte by byte: %+v, whole: %+v", split, whole)
			}
		}
		if whole.done {
			compareChunkedWithStdlib(t, data[:whole.n], whole.body)
		}
	})
}

// compareChunkedWithStdlib decodes a body we accepted with net/http's
// chunked reader, which must yield exactly as many payload bytes. net/http
// rejects some valid bodies (BWS before ";", very long lines, bodies mostly
// made of framing); those are skipped, not excused in general.
func compareChunkedWithStdlib(t *testing.T, body []byte, payload int64) {
	got, err := io.Copy(io.Discard, httputil.NewChunkedReader(bytes.NewReader(body)))
	if err != nil {
		msg := err.Error()
		if strings.Contains(msg, "too much non-data") || strings.Contains(msg, "too long") ||
			bytes.Contains(body, []byte(" ;")) || bytes.Contains(body, []byte("\t;")) {
			return
		}
		t.Fatalf("we accept but net/http's chunked reader fails (%v): %q", err, body)
	}
	if got != payload {
		t.Fatalf("payload: net/http %d bytes, ours %d", got, payload)
	}
}

// FuzzValidIPv6Literal holds the hand-written IPv6 check to net/netip in
// both directions (zones aside, which we refuse).
func FuzzValidIPv6Literal(f *testing.F) {
	for _, s := range []string{"::1", "2001:db8::1", "::ffff:192.0.2.1", "1:2:3:4:5:6:7:8", "1::2::3", "::01.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addr, err := netip.ParseAddr(s)
		want := err == nil && addr.Is6() && addr.Zone() == "" && !strings.Contains(s, "%")
		if got := validIPv6Literal([]byte(s)); got != want {
			t.Fatalf("validIPv6Literal(%q) = %v, netip says %v", s, got, want)
		}
	})
}
