package http1

import (
	"strings"
	"testing"
)

func TestParseResponseFraming(t *testing.T) {
	type framingWant struct {
		contentLength                      int64
		chunked, untilClose, noBody, alive bool
	}
	cl := func(n int64) framingWant { return framingWant{contentLength: n, alive: true} }
	chunked := framingWant{contentLength: -1, chunked: true, alive: true}
	untilClose := framingWant{contentLength: -1, untilClose: true}
	noBody := framingWant{contentLength: 0, noBody: true, alive: true}
	cases := []struct {
		name   string
		in     string
		head   bool
		status int
		want   framingWant
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", false, 200, cl(12)},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, 200, chunked},
		{"gzip then chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, 200, chunked},
		{"unknown coding then chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: br, chunked\r\n\r\n", false, 200, chunked},
		{"chunked not final: until close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false, 200, untilClose},
		{"no framing: until close", "HTTP/1.1 200 OK\r\n\r\n", false, 200, untilClose},
		{"HEAD with content-length", "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", true, 200, noBody},
		{"HEAD with chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, 200, noBody},
		{"HEAD without framing", "HTTP/1.1 200 OK\r\n\r\n", true, 200, noBody},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", false, 204, noBody},
		{"304 with content-length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", false, 304, noBody},
		{"100 continue", "HTTP/1.1 100 Continue\r\n\r\n", false, 100, noBody},
		{"101 switching", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false, 101, noBody},
		{"103 early hints", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", false, 103, noBody},
		{"connection close", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false, 200,
			framingWant{contentLength: 0}},
		{"1.0 default close", "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", false, 200, framingWant{contentLength: 3}},
		{"1.0 keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n", false, 200, cl(3)},
		{"1.0 until close", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", false, 200, untilClose},
		{"no reason, no SP", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", false, 404, cl(0)},
		{"empty reason", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", false, 404, cl(0)},
		{"status 999", "HTTP/1.1 999 Custom\r\nContent-Length: 0\r\n\r\n", false, 999, cl(0)},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 1\n\n", false, 200, cl(1)},
		{"leading CRLF", "\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n", false, 200, cl(1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r Response
			buf := []byte(tc.in + "body")
			n, err := ParseResponse(buf, &r, tc.head)
			if err != nil {
				t.Fatalf("ParseResponse(%q) error %v", tc.in, err)
			}
			if n != len(tc.in) {
				t.Errorf("n = %d, want %d", n, len(tc.in))
			}
			got := framingWant{r.ContentLength, r.Chunked, r.UntilClose, r.NoBody, r.KeepAlive}
			if got != tc.want || r.Status != tc.status {
				t.Errorf("status %d framing %+v, want %d %+v", r.Status, got, tc.status, tc.want)
			}
		})
	}
}

func TestParseResponseFields(t *testing.T) {
	var r Response
	in := "HTTP/1.1 201 Created Here\r\nLocation: /x\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n"
	if _, err := ParseResponse([]byte(in), &r, false); err != nil {
		t.Fatal(err)
	}
	if r.Major != 1 || r.Minor != 1 || r.Status != 201 || string(r.Reason) != "Created Here" || len(r.Headers) != 4 {
		t.Fatalf("parsed %+v", r)
	}
	if v, ok := Lookup(r.Headers, "set-cookie"); !ok || string(v) != "a=1" {
		t.Fatalf("Lookup(set-cookie) = %q, %v", v, ok)
	}
}

func TestParseResponseRejects(t *testing.T) {
	cases := []struct{ name, in string }{
		{"TE and CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"},
		{"TE in 1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{"chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"},
		{"TE empty element", "HTTP/1.1 200 OK\r\nTransfer-Encoding: , chunked\r\n\r\n"},
		{"CL mismatch", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"},
		{"CL list", "HTTP/1.1 200 OK\r\nContent-Length: 12, 12\r\n\r\n"},
		{"CL invalid", "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n"},
		{"CL invalid on 304", "HTTP/1.1 304 Not Modified\r\nContent-Length: -1\r\n\r\n"},
		{"HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n"},
		{"lowercase version", "http/1.1 200 OK\r\n\r\n"},
		{"two-digit status", "HTTP/1.1 20 OK\r\n\r\n"},
		{"four-digit status", "HTTP/1.1 2000 OK\r\n\r\n"},
		{"status below 100", "HTTP/1.1 099 Odd\r\n\r\n"},
		{"non-digit status", "HTTP/1.1 2x0 OK\r\n\r\n"},
		{"tab after version", "HTTP/1.1\t200 OK\r\n\r\n"},
		{"control char in reason", "HTTP/1.1 200 O\x01K\r\n\r\n"},
		{"bare CR in reason", "HTTP/1.1 200 O\rK\r\n\r\n"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\n\r\n"},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n"},
		{"NUL in value", "HTTP/1.1 200 OK\r\nX-A: \x00\r\n\r\n"},
		{"too many fields", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", 257) + "\r\n"},
		{"too large", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("y", 64<<10) + "\r\n\r\n"},
		{"too many empty lines", "\r\n\r\n\r\n\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r Response
			n, err := ParseResponse([]byte(tc.in), &r, false)
			if got := statusOf(t, err); got != 502 {
				t.Fatalf("ParseResponse(%.60q) = %d, %v (status %d), want 502", tc.in, n, err, got)
			}
		})
	}
}

func TestParseResponseEveryPrefix(t *testing.T) {
	for _, head := range []string{backendResponse, "HTTP/1.1 204\n\n", "\r\nHTTP/1.0 200 OK\r\n\r\n"} {
		var r Response
		for i := 0; i < len(head); i++ {
			if n, err := ParseResponse([]byte(head[:i]), &r, false); err != ErrNeedMore {
				t.Fatalf("prefix %q: n %d err %v, want ErrNeedMore", head[:i], n, err)
			}
		}
		if n, err := ParseResponse([]byte(head+"HTTP/1.1"), &r, false); err != nil || n != len(head) {
			t.Fatalf("ParseResponse(%q) = %d, %v; want %d, nil", head, n, err, len(head))
		}
	}
}

func TestParseResponseLimits(t *testing.T) {
	head := "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n"
	var r Response
	if _, err := ParseResponseLimits([]byte(head), &r, false, Limits{MaxHeaderBytes: len(head), MaxHeaders: 2}); err != nil {
		t.Fatalf("at the limits: %v", err)
	}
	if _, err := ParseResponseLimits([]byte(head), &r, false, Limits{MaxHeaderBytes: len(head), MaxHeaders: 1}); statusOf(t, err) != 502 {
		t.Fatalf("over the field limit: %v", err)
	}
	if _, err := ParseResponseLimits([]byte(head[:len(head)-1]), &r, false, Limits{MaxHeaderBytes: len(head) - 1, MaxHeaders: 2}); statusOf(t, err) != -1 {
		t.Fatalf("buffer not beyond the byte limit yet: %v, want ErrNeedMore", err)
	}
	if _, err := ParseResponseLimits([]byte(head+"x"), &r, false, Limits{MaxHeaderBytes: len(head) - 1, MaxHeaders: 2}); statusOf(t, err) != 502 {
		t.Fatalf("over the byte limit: %v", err)
	}
}

func TestParseResponseResetsEveryField(t *testing.T) {
	var r Response
	if _, err := ParseResponse([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), &r, false); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseResponse([]byte("HTTP/1.0 204\r\n\r\n"), &r, false); err != nil {
		t.Fatal(err)
	}
	if r.Chunked || r.UntilClose || r.KeepAlive || !r.NoBody || r.Reason != nil || len(r.Headers) != 0 || r.Minor != 0 {
		t.Fatalf("fields survived from the previous parse: %+v", r)
	}
}

func TestParseResponseAllocs(t *testing.T) {
	buf := []byte(backendResponse)
	var r Response
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := ParseResponse(buf, &r, false); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocs per ParseResponse, want 0", allocs)
	}
}
