package h1

import (
	"bufio"
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

var requestSeeds = []string{
	"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST /p?q HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"GET / HTTP/1.1\nHost: x\n\n",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\n",
	"GET http://a/b HTTP/1.1\r\nHost: c\r\nConnection: Upgrade, X\r\nUpgrade: websocket\r\n\r\n",
	"GET http://[::1]:80/%41?q=%zz HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
	"CONNECT h.example:443 HTTP/1.1\r\nHost: h.example:443\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked,\r\nTransfer-Encoding:\r\n\r\n",
}

// FuzzParseRequest checks that a request head is never read two ways: whatever is
// accepted is accepted whole by net/http too, as the nethttp front hands it on, with
// the same method, target and body framing; and a head split anywhere asks for more
// instead of failing.
func FuzzParseRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var r Request
		n, err := ParseRequest(in, DefaultLimits, &r)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		if n == 0 {
			return
		}
		if n > len(in) {
			t.Fatalf("consumed %d of %d bytes", n, len(in))
		}
		for _, k := range []int{n - 1, n / 2, 1} {
			if k <= 0 {
				continue
			}
			var p Request
			if m, err := ParseRequest(in[:k], DefaultLimits, &p); m != 0 || err != nil {
				t.Fatalf("prefix of %d bytes: %d, %v", k, m, err)
			}
		}
		// The nethttp front hands its server the head as h1 read it: the server must
		// take it, so that its own refusals (400, 417, 501) never answer first.
		head := relay(&r)
		std, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("net/http refuses %q, handed on as %q: %v", in[:n], head, err)
		}
		if hosts := std.Header["Host"]; len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]) {
			t.Fatalf("net/http's server refuses the Host of %q", in[:n])
		}
		if e := std.Header.Get("Expect"); e != "" && !httpguts.HeaderValuesContainsToken([]string{e}, "100-continue") {
			t.Fatalf("net/http's server answers %q with 417", in[:n])
		}
		if std.Method != string(r.Method) || std.RequestURI != string(r.Target) {
			t.Fatalf("net/http reads %q %q, we read %q %q", std.Method, std.RequestURI, r.Method, r.Target)
		}
		chunked := len(std.TransferEncoding) > 0 && std.TransferEncoding[0] == "chunked"
		if chunked != (r.Framing == BodyChunked) {
			t.Fatalf("net/http chunked %v, we read framing %d", chunked, r.Framing)
		}
		if r.Framing == BodyLength && std.ContentLength != r.ContentLength {
			t.Fatalf("net/http length %d, we read %d", std.ContentLength, r.ContentLength)
		}
		if r.Framing == BodyNone && std.ContentLength > 0 {
			t.Fatalf("net/http length %d, we read no body", std.ContentLength)
		}
	})
}

// FuzzParseResponse checks that any input is parsed without panic, within its bounds,
// and that a split head asks for more.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nbody",
		"HTTP/1.1 304\r\nConnection: close\r\n\r\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, head bool) {
		var r Response
		n, err := ParseResponse(in, DefaultLimits, head, &r)
		if err != nil || n == 0 {
			return
		}
		if n > len(in) || r.Status < 100 || r.Status > 599 {
			t.Fatalf("consumed %d of %d, status %d", n, len(in), r.Status)
		}
		if r.Framing == BodyUntilClose && r.KeepAlive {
			t.Fatal("a body delimited by close on a kept connection")
		}
		var p Response
		if m, err := ParseResponse(in[:n-1], DefaultLimits, head, &p); m != 0 || err != nil {
			t.Fatalf("prefix: %d, %v", m, err)
		}
	})
}

// FuzzChunked checks that a chunked body's end is found at the same byte however the
// input is split, that net/http decodes what Forward passes on of a body we read as
// whole, and that no input panics.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"0005;a=b\r\nhello\r\n0\r\nX: y\r\n\r\n",
		"1\r\na\r\n0\r\n\r\nGET",
		"g\r\n",
		"00000000000000000005\r\nhello\r\n000\r\n\r\n",
		"1\r\na\r\n0\r\nX: " + strings.Repeat("a", 4089) + "\r\n\r\n",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		var whole Chunked
		n, done, err := whole.Scan(in)
		if n > len(in) {
			t.Fatalf("consumed %d of %d", n, len(in))
		}
		var split Chunked
		k := int(step%16) + 1
		m, sdone, serr := 0, false, error(nil)
		for i := 0; i < len(in) && !sdone && serr == nil; i += k {
			c, d, e := split.Scan(in[i:min(i+k, len(in))])
			m, sdone, serr = m+c, d, e
		}
		if m != n || sdone != done || (serr == nil) != (err == nil) {
			t.Fatalf("whole: %d %v %v; split by %d: %d %v %v", n, done, err, k, m, sdone, serr)
		}
		if !done {
			return
		}
		var fwd Chunked
		out, _, _, _ := fwd.Forward(nil, in[:n])
		req := "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + string(out)
		std, err := http.ReadRequest(bufio.NewReader(bytes.NewReader([]byte(req))))
		if err != nil {
			t.Fatalf("net/http refuses the request: %v", err)
		}
		if _, err := bytes.NewBuffer(nil).ReadFrom(std.Body); err != nil {
			t.Fatalf("net/http cannot read a body we pass as whole: %v", err)
		}
	})
}

// relay is the head the nethttp front's server reads for r.
func relay(r *Request) []byte {
	dst := append([]byte(nil), r.Method...)
	dst = append(dst, ' ')
	dst = append(dst, r.Target...)
	dst = append(dst, " HTTP/1."...)
	dst = append(dst, byte('0'+r.Minor))
	dst = append(dst, "\r\n"...)
	for _, h := range r.Headers {
		if equalFold(h.Name, "content-length") {
			continue
		}
		dst = append(dst, h.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, h.Value...)
		dst = append(dst, "\r\n"...)
	}
	if r.Framing == BodyLength {
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, r.ContentLength, 10)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}
