package h1

import (
	"strings"
	"testing"
)

// benchRequest is a browser's GET, as most requests through the proxy are.
const benchRequest = "GET /assets/app.js?v=3 HTTP/1.1\r\n" +
	"Host: www.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: */*\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Referer: https://www.example.com/index.html\r\n" +
	"Cookie: session=8f2a9c1e7b; theme=dark\r\n" +
	"Connection: keep-alive\r\n\r\n"

func BenchmarkParseRequest(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"browser", benchRequest},
		{"small", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"upload", "POST /api/items HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in := []byte(bc.in)
			var r Request
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseRequest(in, DefaultLimits, &r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseResponse(b *testing.B) {
	in := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/javascript\r\nContent-Length: 48213\r\n" +
		"Cache-Control: public, max-age=31536000\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n" +
		"Etag: \"5f3c-a1b2c3\"\r\nServer: backend\r\n\r\n")
	var r Response
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseResponse(in, DefaultLimits, false, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChunked(b *testing.B) {
	body := []byte(strings.Repeat("400\r\n"+strings.Repeat("x", 0x400)+"\r\n", 16) + "0\r\nX-Sum: 1\r\n\r\n")
	b.Run("scan", func(b *testing.B) {
		var c Chunked
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			c.Reset()
			if _, done, err := c.Scan(body); !done || err != nil {
				b.Fatal(done, err)
			}
		}
	})
	b.Run("framing", func(b *testing.B) {
		// Many small chunks: the per-byte framing path.
		small := []byte(strings.Repeat("000a\r\n0123456789\r\n", 64) + "0\r\n\r\n")
		var c Chunked
		b.SetBytes(int64(len(small)))
		b.ReportAllocs()
		for b.Loop() {
			c.Reset()
			if _, done, err := c.Scan(small); !done || err != nil {
				b.Fatal(done, err)
			}
		}
	})
	b.Run("forward", func(b *testing.B) {
		var c Chunked
		dst := make([]byte, 0, len(body))
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			c.Reset()
			if _, _, done, err := c.Forward(dst, body); !done || err != nil {
				b.Fatal(done, err)
			}
		}
	})
}
