package http1

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// scanResult is the outcome of scanning a whole input, however it was split.
type scanResult struct {
	n    int
	done bool
	err  error
	body int64
}

// feedPieces feeds p to a fresh scanner cut at the given offsets (sorted,
// within p) and stops like an engine would: at done or at the first error.
func feedPieces(p []byte, cuts []int) scanResult {
	var s ChunkedScanner
	total, start := 0, 0
	for _, end := range append(cuts, len(p)) {
		n, done, err := s.Feed(p[start:end])
		total += n
		if err != nil || done {
			return scanResult{total, done, err, s.BodyBytes()}
		}
		if n != end-start {
			return scanResult{total, done, errShortFeed, s.BodyBytes()}
		}
		start = end
	}
	return scanResult{total, false, nil, s.BodyBytes()}
}

// errShortFeed flags a Feed that stopped early without done or an error,
// which the contract rules out.
var errShortFeed = &ParseError{Reason: "test: Feed consumed less than offered without done or error"}

func byteByByte(p []byte) []int {
	cuts := make([]int, 0, len(p))
	for i := 1; i < len(p); i++ {
		cuts = append(cuts, i)
	}
	return cuts
}

func randomCuts(rng *rand.Rand, size int) []int {
	var cuts []int
	for i := 1; i < size; i++ {
		if rng.IntN(4) == 0 {
			cuts = append(cuts, i)
		}
	}
	return cuts
}

// next is what follows a body in the stream in every valid case below: it
// must be left alone.
const next = "GET / HTTP/1.1\r\n"

func TestChunkedScannerValid(t *testing.T) {
	cases := []struct {
		name string
		body string
		data int64
	}{
		{"empty body", "0\r\n\r\n", 0},
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", 5},
		{"two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 11},
		{"hex upper and lower", "a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n", 20},
		{"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", 5},
		{"sixteen hex digits", "0000000000000005\r\nhello\r\n0\r\n\r\n", 5},
		{"payload with CRLF inside", "4\r\n\r\n\r\n\r\n0\r\n\r\n", 4},
		{"ext", "5;name\r\nhello\r\n0\r\n\r\n", 5},
		{"ext with value", "5;name=value;other=x\r\nhello\r\n0;last=1\r\n\r\n", 5},
		{"ext quoted", "5;n=\"a \\\"b\\\" ;c\"\r\nhello\r\n0\r\n\r\n", 5},
		{"ext BWS", "5 ; n = v ;m\r\nhello\r\n0\t;x\r\n\r\n", 5},
		{"trailer", "5\r\nhello\r\n0\r\nChecksum: abc\r\nX-Empty:\r\n\r\n", 5},
		{"trailer OWS and obs-text", "0\r\nX-A: \t caf\xc3\xa9 \t\r\n\r\n", 0},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.body + next)
			want := scanResult{n: len(tc.body), done: true, body: tc.data}
			if got := feedPieces(in, nil); got != want {
				t.Fatalf("whole: %+v, want %+v", got, want)
			}
			if got := feedPieces(in, byteByByte(in)); got != want {
				t.Fatalf("byte by byte: %+v, want %+v", got, want)
			}
			for range 50 {
				cuts := randomCuts(rng, len(in))
				if got := feedPieces(in, cuts); got != want {
					t.Fatalf("cut at %v: %+v, want %+v", cuts, got, want)
				}
			}
		})
	}
}

func TestChunkedScannerInvalid(t *testing.T) {
	// The chunk-size line limit counts the size digits too.
	longExt := "5;" + strings.Repeat("a", maxChunkLineBytes) + "\r\nhello\r\n0\r\n\r\n"
	maxExt := "5;" + strings.Repeat("a", maxChunkLineBytes-2) + "\r\nhello\r\n0\r\n\r\n"
	if got := feedPieces([]byte(maxExt), nil); got.err != nil || !got.done {
		t.Fatalf("a chunk-size line of exactly %d octets: %+v, want accepted", maxChunkLineBytes, got)
	}
	maxTrailer := "0\r\nX: " + strings.Repeat("a", maxChunkLineBytes-3) + "\r\n\r\n"
	if got := feedPieces([]byte(maxTrailer), nil); got.err != nil || !got.done {
		t.Fatalf("a trailer line of exactly %d octets: %+v, want accepted", maxChunkLineBytes, got)
	}
	longTrailer := "0\r\nX: " + strings.Repeat("a", maxChunkLineBytes) + "\r\n\r\n"
	manyTrailers := "0\r\n" + strings.Repeat("X: "+strings.Repeat("a", 1000)+"\r\n", 70) + "\r\n"
	cases := []struct {
		name   string
		body   string
		offset int // index of the byte that must be rejected
		reason string
	}{
		{"empty size", "\r\n", 0, "invalid chunk-size"},
		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", 1, "invalid chunk-size"},
		{"negative", "-1\r\n", 0, "invalid chunk-size"},
		{"plus", "+5\r\n", 0, "invalid chunk-size"},
		{"non-hex", "5g\r\n", 1, "invalid chunk-size"},
		{"leading space", " 5\r\n", 0, "invalid chunk-size"},
		{"trailing space without ext", "5 \r\nhello\r\n0\r\n\r\n", 2, "whitespace after chunk-size"},
		{"seventeen hex digits", "00000000000000005\r\n", 16, "too large"},
		{"over 2^62", "4000000000000001\r\n", 15, "too large"},
		{"2^64", "10000000000000000\r\n", 16, "too large"},
		{"bare LF after size", "5\nhello\r\n0\r\n\r\n", 1, "bare LF"},
		{"bare CR after size", "5\rhello\r\n", 2, "bare CR"},
		{"bare LF after ext", "5;a\nhello\r\n", 3, "bare LF"},
		{"data not followed by CRLF", "5\r\nhelloX\r\n0\r\n\r\n", 8, "not followed by CRLF"},
		{"data followed by LF only", "5\r\nhello\n0\r\n\r\n", 8, "not followed by CRLF"},
		{"data too long (TE.CL)", "3\r\nhello\r\n0\r\n\r\n", 6, "not followed by CRLF"},
		{"ext without name", "5;\r\nhello\r\n", 2, "malformed chunk-ext"},
		{"ext name not token", "5;a(b\r\n", 3, "malformed chunk-ext"},
		{"ext value empty", "5;a=\r\n", 4, "malformed chunk-ext"},
		{"ext BWS then CR", "5;a \r\n", 4, "malformed chunk-ext"},
		{"ext unterminated quote", "5;a=\"b\r\n", 6, "bare CR"},
		{"ext control char", "5;a=\"\x01\"\r\n", 5, "malformed chunk-ext"},
		{"ext too long", longExt, maxChunkLineBytes, "chunk-ext too long"},
		{"last-chunk bare LF", "0\r\n\n", 3, "bare LF"},
		{"last-chunk missing final CRLF", "0\r\nX\r\n", 4, "without colon"},
		{"final CR then not LF", "0\r\n\rX", 4, "bare CR"},
		{"trailer obs-fold", "0\r\nA: b\r\n c\r\n\r\n", 9, "obsolete line folding"},
		{"trailer space before colon", "0\r\nA : b\r\n\r\n", 4, "whitespace between"},
		{"trailer empty name", "0\r\n: b\r\n\r\n", 3, "empty trailer field name"},
		{"trailer invalid name", "0\r\nA(: b\r\n\r\n", 4, "invalid character in trailer field name"},
		{"trailer NUL", "0\r\nA: \x00\r\n\r\n", 6, "invalid character in trailer field value"},
		{"trailer bare CR", "0\r\nA: b\rc\r\n\r\n", 8, "bare CR"},
		{"trailer bare LF", "0\r\nA: b\n\r\n", 7, "bare LF"},
		{"trailer line too long", longTrailer, 3 + maxChunkLineBytes, "trailer line too long"},
		{"trailer section too large", manyTrailers, 3 + maxTrailerBytes, "trailer section too large"},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.body)
			got := feedPieces(in, nil)
			if got.err == nil || !strings.Contains(got.err.Error(), tc.reason) {
				t.Fatalf("err = %v, want one mentioning %q", got.err, tc.reason)
			}
			if got.n != tc.offset || got.done {
				t.Fatalf("n = %d done = %v, want n = %d (offending byte %q)", got.n, got.done, tc.offset, in[min(tc.offset, len(in)-1)])
			}
			if statusOf(t, got.err) != 400 {
				t.Fatalf("status %d, want 400", statusOf(t, got.err))
			}
			for _, cuts := range [][]int{byteByByte(in), randomCuts(rng, len(in)), randomCuts(rng, len(in))} {
				if split := feedPieces(in, cuts); split != got {
					t.Fatalf("split result %+v differs from whole %+v", split, got)
				}
			}
		})
	}
}

func TestChunkedScannerIncomplete(t *testing.T) {
	body := "5;a=b\r\nhello\r\n0\r\nT: v\r\n\r\n"
	for i := 0; i < len(body); i++ {
		if got := feedPieces([]byte(body[:i]), nil); got.err != nil || got.done || got.n != i {
			t.Fatalf("prefix %q: %+v, want all %d bytes consumed, not done", body[:i], got, i)
		}
	}
}

func TestChunkedScannerStickyErrorAndReset(t *testing.T) {
	var s ChunkedScanner
	if _, _, err := s.Feed([]byte("zz")); err == nil {
		t.Fatal("want an error")
	}
	if n, done, err := s.Feed([]byte("0\r\n\r\n")); err == nil || n != 0 || done {
		t.Fatalf("after an error Feed = %d, %v, %v; want the error again", n, done, err)
	}
	s.Reset()
	if n, done, err := s.Feed([]byte("0\r\n\r\n")); err != nil || n != 5 || !done {
		t.Fatalf("after Reset Feed = %d, %v, %v; want 5, true, nil", n, done, err)
	}
	if n, done, err := s.Feed([]byte("more")); err != nil || n != 0 || !done {
		t.Fatalf("after done Feed = %d, %v, %v; want 0, true, nil", n, done, err)
	}
	if n, done, err := s.Feed(nil); err != nil || n != 0 || !done {
		t.Fatalf("after done Feed(nil) = %d, %v, %v; want 0, true, nil", n, done, err)
	}
}

func TestChunkedScannerLargeChunk(t *testing.T) {
	// A chunk far larger than any read: the size survives across Feeds and
	// the payload is counted, not inspected.
	var s ChunkedScanner
	if n, done, err := s.Feed([]byte("3FFFFFFFFFFFFFFF\r\n")); err != nil || done || n != 18 {
		t.Fatalf("size line: %d %v %v", n, done, err)
	}
	block := make([]byte, 1<<16)
	for range 16 {
		if n, done, err := s.Feed(block); err != nil || done || n != len(block) {
			t.Fatalf("payload: %d %v %v", n, done, err)
		}
	}
	if got := s.BodyBytes(); got != 16<<16 {
		t.Fatalf("BodyBytes = %d, want %d", got, 16<<16)
	}
}

func TestChunkedScannerAllocs(t *testing.T) {
	body := chunkedBody(strings.Repeat("x", 100), 10, ";e=\"v\"")
	body = append(body[:len(body)-2], "T: v\r\n\r\n"...)
	var s ChunkedScanner
	allocs := testing.AllocsPerRun(200, func() {
		s.Reset()
		if _, done, err := s.Feed(body); err != nil || !done {
			t.Fatalf("done %v err %v", done, err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocs per body, want 0", allocs)
	}
}
