package http1

import (
	"strings"
	"testing"
)

func TestEqualFold(t *testing.T) {
	cases := []struct {
		b, s string
		want bool
	}{
		{"Content-Length", "content-length", true},
		{"CONTENT-LENGTH", "content-length", true},
		{"content-length", "content-length", true},
		{"content-lengt", "content-length", false},
		{"content_length", "content-length", false},
		// Folding is ASCII-only: octets that differ from a letter by 0x20
		// but are not letters must not compare equal.
		{"\rontent", "-ontent", false},
		{"[", "{", false},
		{"@", "`", false},
		{"\xc9", "\xe9", false},
		{"", "", true},
	}
	for _, tc := range cases {
		if got := EqualFold([]byte(tc.b), tc.s); got != tc.want {
			t.Errorf("EqualFold(%q, %q) = %v, want %v", tc.b, tc.s, got, tc.want)
		}
	}
}

func TestHasToken(t *testing.T) {
	cases := []struct {
		value, token string
		want         bool
	}{
		{"close", "close", true},
		{"Close", "close", true},
		{"keep-alive, Upgrade", "upgrade", true},
		{" \tkeep-alive\t ,  close ", "close", true},
		{"a,,b", "b", true},
		{"closed", "close", false},
		{"x-close", "close", false},
		{"", "close", false},
		{",", "close", false},
		{"keep-alive", "close", false},
	}
	for _, tc := range cases {
		if got := HasToken([]byte(tc.value), tc.token); got != tc.want {
			t.Errorf("HasToken(%q, %q) = %v, want %v", tc.value, tc.token, got, tc.want)
		}
	}
}

func TestIsHopByHop(t *testing.T) {
	hop := []string{"Connection", "keep-alive", "PROXY-CONNECTION", "Proxy-Authenticate", "proxy-authorization",
		"TE", "Trailer", "Transfer-Encoding", "upgrade"}
	for _, name := range hop {
		if !IsHopByHop([]byte(name)) {
			t.Errorf("IsHopByHop(%q) = false, want true", name)
		}
	}
	endToEnd := []string{"Content-Length", "Host", "Trailers", "TEE", "Upgrade-Insecure-Requests", "Proxy", "X-Connection", ""}
	for _, name := range endToEnd {
		if IsHopByHop([]byte(name)) {
			t.Errorf("IsHopByHop(%q) = true, want false", name)
		}
	}
}

func TestConnectionTokensAndListed(t *testing.T) {
	var r Request
	in := "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Trace\r\nX-Trace: 1\r\nconnection: ,Upgrade,\r\nUpgrade: h2c\r\nX-Keep: 1\r\n\r\n"
	if _, err := ParseRequest([]byte(in), &r, DefaultLimits); err != nil {
		t.Fatal(err)
	}
	var tokens []string
	r.ConnectionTokens(func(tok []byte) { tokens = append(tokens, string(tok)) })
	if got := strings.Join(tokens, "|"); got != "keep-alive|X-Trace|Upgrade" {
		t.Fatalf("ConnectionTokens = %q", got)
	}
	var kept []string
	for _, h := range r.Headers {
		if IsHopByHop(h.Name) || ConnectionListed(r.Headers, h.Name) {
			continue
		}
		kept = append(kept, string(h.Name))
	}
	if got := strings.Join(kept, ","); got != "Host,X-Keep" {
		t.Fatalf("forwardable fields = %q, want Host,X-Keep", got)
	}
	if ConnectionListed(r.Headers, nil) {
		t.Fatal("an empty name is never listed")
	}

	var resp Response
	if _, err := ParseResponse([]byte("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"), &resp, false); err != nil {
		t.Fatal(err)
	}
	tokens = tokens[:0]
	resp.ConnectionTokens(func(tok []byte) { tokens = append(tokens, string(tok)) })
	if len(tokens) != 1 || tokens[0] != "close" {
		t.Fatalf("response ConnectionTokens = %q", tokens)
	}
}

func TestLookup(t *testing.T) {
	h := []Header{{Name: []byte("A"), Value: []byte("1")}, {Name: []byte("b"), Value: []byte("2")}, {Name: []byte("B"), Value: []byte("3")}}
	if v, ok := Lookup(h, "B"); !ok || string(v) != "2" {
		t.Fatalf("Lookup(B) = %q, %v; want the first match", v, ok)
	}
	if _, ok := Lookup(h, "C"); ok {
		t.Fatal("Lookup(C) found a field that is not there")
	}
}

func TestHelpersDoNotAllocate(t *testing.T) {
	var r Request
	if _, err := ParseRequest([]byte(browserRequest), &r, DefaultLimits); err != nil {
		t.Fatal(err)
	}
	count := 0
	allocs := testing.AllocsPerRun(100, func() {
		for _, h := range r.Headers {
			if IsHopByHop(h.Name) || ConnectionListed(r.Headers, h.Name) || HasToken(h.Value, "close") {
				count++
			}
		}
		r.ConnectionTokens(func([]byte) { count++ })
	})
	if allocs != 0 {
		t.Errorf("%v allocs, want 0", allocs)
	}
	if count == 0 {
		t.Error("the browser request has a Connection field; the helpers did not see it")
	}
}

func TestHeadEnd(t *testing.T) {
	for _, head := range []string{wrkRequest, browserRequest, backendResponse, "GET / HTTP/1.0\n\n", "GET / HTTP/1.1\nHost: a\r\n\n"} {
		buf := []byte(head + "GET / HTTP/1.1\r\n\r\n")
		if got := HeadEnd(buf, 0); got != len(head) {
			t.Fatalf("HeadEnd(%q, 0) = %d, want %d", head, got, len(head))
		}
		// Fed in pieces, resuming where the previous call stopped, it finds
		// the end exactly when the piece holding it arrives.
		for piece := 1; piece <= 7; piece++ {
			found := -1
			for have := 0; have < len(buf) && found < 0; {
				next := min(have+piece, len(buf))
				found = HeadEnd(buf[:next], have)
				if found < 0 && next >= len(head) {
					t.Fatalf("piece %d: end not found with %d of %d bytes", piece, next, len(head))
				}
				have = next
			}
			if found != len(head) {
				t.Fatalf("piece %d: HeadEnd found %d, want %d", piece, found, len(head))
			}
		}
		for i := 0; i < len(head); i++ {
			if got := HeadEnd(buf[:i], 0); got >= 0 {
				t.Fatalf("HeadEnd on a %d-byte prefix of %q = %d, want -1", i, head, got)
			}
		}
	}
	// Leading empty lines match early; that only costs a parse that says
	// ErrNeedMore.
	if got := HeadEnd([]byte("\r\n\r\nGET"), 0); got != 4 {
		t.Fatalf("HeadEnd on leading empty lines = %d, want 4", got)
	}
}
