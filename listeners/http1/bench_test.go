package http1

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// wrkRequest is what wrk sends by default.
const wrkRequest = "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"

// browserRequest is a navigation request as a current Chrome sends it.
const browserRequest = "GET /products/list?page=2&sort=price HTTP/1.1\r\n" +
	"Host: shop.example.com\r\n" +
	"Connection: keep-alive\r\n" +
	"Cache-Control: max-age=0\r\n" +
	"sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n" +
	"sec-ch-ua-mobile: ?0\r\n" +
	"sec-ch-ua-platform: \"Linux\"\r\n" +
	"Upgrade-Insecure-Requests: 1\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n" +
	"Sec-Fetch-Site: same-origin\r\n" +
	"Sec-Fetch-Mode: navigate\r\n" +
	"Sec-Fetch-User: ?1\r\n" +
	"Sec-Fetch-Dest: document\r\n" +
	"Referer: https://shop.example.com/products/list?page=1&sort=price\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Accept-Language: en-GB,en;q=0.9,de;q=0.8\r\n" +
	"Cookie: session=3f9a1c0e7b2d4e8f; theme=dark; cart=17%2C42%2C99\r\n" +
	"\r\n"

// backendResponse is a typical keep-alive response head from an app server.
const backendResponse = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: application/json; charset=utf-8\r\n" +
	"Content-Length: 1234\r\n" +
	"Date: Tue, 25 Nov 2025 21:51:00 GMT\r\n" +
	"Cache-Control: no-store\r\n" +
	"X-Request-Id: 6c1b8f0e-9f0a-4c1e-8a53-1f2b3c4d5e6f\r\n" +
	"Vary: Accept-Encoding\r\n" +
	"\r\n"

// hostileRequest is a near-maximal head built to be slow: 30000 one-letter
// tokens in Connection. Its throughput bounds what a peer can make a parse
// cost per byte sent.
var hostileRequest = "GET / HTTP/1.1\r\nHost: a\r\nConnection: " + strings.Repeat("a,", 30000) + "\r\n\r\n"

func BenchmarkParseRequest(b *testing.B) {
	for _, bc := range []struct{ name, head string }{{"wrk", wrkRequest}, {"browser", browserRequest}, {"hostile", hostileRequest}} {
		b.Run(bc.name, func(b *testing.B) {
			buf := []byte(bc.head)
			var r Request
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseRequest(buf, &r, DefaultLimits); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStdlibReadRequest is the reference point: net/http's parser on
// the same heads.
func BenchmarkStdlibReadRequest(b *testing.B) {
	for _, bc := range []struct{ name, head string }{{"wrk", wrkRequest}, {"browser", browserRequest}} {
		b.Run(bc.name, func(b *testing.B) {
			rd := strings.NewReader(bc.head)
			br := bufio.NewReader(rd)
			b.SetBytes(int64(len(bc.head)))
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(bc.head)
				br.Reset(rd)
				if _, err := http.ReadRequest(br); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseResponse(b *testing.B) {
	buf := []byte(backendResponse)
	var r Response
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseResponse(buf, &r, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChunkedScanner(b *testing.B) {
	for _, bc := range []struct {
		name      string
		chunk     int
		chunks    int
		readSize  int
		extension string
	}{
		{"4KiBx16/read16KiB", 4096, 16, 16 << 10, ""},
		{"64Bx256/read4KiB", 64, 256, 4 << 10, ";name=value"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			body := chunkedBody(strings.Repeat("x", bc.chunk), bc.chunks, bc.extension)
			var s ChunkedScanner
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				s.Reset()
				done := false
				for off := 0; off < len(body) && !done; off += bc.readSize {
					end := min(off+bc.readSize, len(body))
					var err error
					if _, done, err = s.Feed(body[off:end]); err != nil {
						b.Fatal(err)
					}
				}
				if !done {
					b.Fatal("body not complete")
				}
			}
		})
	}
}

// chunkedBody encodes chunks copies of data, each with extension, then the
// last-chunk and an empty trailer section.
func chunkedBody(data string, chunks int, extension string) []byte {
	var sb strings.Builder
	for range chunks {
		sb.WriteString(strconv.FormatInt(int64(len(data)), 16))
		sb.WriteString(extension)
		sb.WriteString("\r\n")
		sb.WriteString(data)
		sb.WriteString("\r\n")
	}
	sb.WriteString("0\r\n\r\n")
	return []byte(sb.String())
}
