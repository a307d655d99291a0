package h1

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name, in string
		err      *Error // nil: accepted
		framing  Framing
		length   int64
		keep     bool
	}{
		{name: "get", in: "GET /a?b HTTP/1.1\r\nHost: x\r\n\r\n", framing: BodyNone, keep: true},
		{name: "bare LF read as CRLF", in: "GET / HTTP/1.1\nHost: x\n\n", keep: true},
		{name: "mixed endings", in: "GET / HTTP/1.1\r\nHost: x\n\r\n", keep: true},
		{name: "empty lines first", in: "\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", keep: true},
		{name: "post length", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n", framing: BodyLength, length: 12, keep: true},
		{name: "equal lengths listed", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\ncontent-length: 3\r\n\r\n", framing: BodyLength, length: 3, keep: true},
		{name: "chunked", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n", framing: BodyChunked, keep: true},
		{name: "http/1.0 closes", in: "GET / HTTP/1.0\r\n\r\n"},
		{name: "http/1.0 keep-alive", in: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", keep: true},
		{name: "connection close", in: "GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n"},
		{name: "conflicting lengths", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", err: ErrConflictLength},
		{name: "signed length", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\n", err: ErrContentLength},
		{name: "huge length", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", err: ErrContentLength},
		{name: "empty length", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n", err: ErrContentLength},
		{name: "length and chunked", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", err: ErrLengthAndChunked},
		{name: "chunked not last", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", err: &Error{Status: 400}},
		{name: "chunked twice", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", err: &Error{Status: 400}},
		{name: "other coding", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", err: ErrTransferEncoding},
		{name: "chunked in 1.0", in: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", err: ErrHTTP10Chunked},
		{name: "space before colon", in: "GET / HTTP/1.1\r\nHost : x\r\n\r\n", err: ErrHeaderLine},
		{name: "folded", in: "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n", err: ErrObsFold},
		{name: "NUL in value", in: "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\x002\r\n\r\n", err: ErrHeaderLine},
		{name: "bare CR", in: "GET / HTTP/1.1\r\nHost: x\rX-A: 1\r\n\r\n", err: ErrHeaderLine},
		{name: "no host", in: "GET / HTTP/1.1\r\n\r\n", err: ErrHost},
		{name: "two hosts", in: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", err: ErrHost},
		{name: "http/2 line", in: "GET / HTTP/2.0\r\n\r\n", err: ErrVersion},
		{name: "garbage version", in: "GET / HTTX/1.1\r\n\r\n", err: ErrRequestLine},
		{name: "two spaces", in: "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", err: ErrRequestLine},
		{name: "space in target", in: "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", err: ErrRequestLine},
		{name: "too many empty lines", in: strings.Repeat("\r\n", 5) + "GET / HTTP/1.1\r\nHost: x\r\n\r\n", err: ErrRequestLine},
		{name: "space in Host", in: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", err: ErrHostValue},
		{name: "Host beyond ASCII", in: "GET / HTTP/1.1\r\nHost: caf\xc3\xa9.example\r\n\r\n", err: ErrHostValue},
		{name: "Host with an IPv6 address and a port", in: "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", keep: true},
		{name: "empty Host", in: "GET / HTTP/1.1\r\nHost:\r\n\r\n", keep: true},
		{name: "unknown expectation", in: "GET / HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n", err: ErrExpectation},
		{name: "unknown expectation listed", in: "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue, foo\r\nContent-Length: 1\r\n\r\n", err: ErrExpectation},
		{name: "unknown expectation in HTTP/1.0", in: "GET / HTTP/1.0\r\nExpect: foo\r\n\r\n", err: ErrExpectation},
		{name: "100-continue", in: "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n", framing: BodyLength, length: 1, keep: true},
		{name: "100-continue without a body", in: "GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", keep: true},
		{name: "chunked and an empty Transfer-Encoding", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding:\r\n\r\n", framing: BodyChunked, keep: true},
		{name: "chunked with an empty element", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: , chunked,\r\n\r\n", framing: BodyChunked, keep: true},
		{name: "empty Transfer-Encoding alone", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n", err: &Error{Status: 400}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Request
			n, err := ParseRequest([]byte(tt.in), DefaultLimits, &r)
			if tt.err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Status != tt.err.Status || tt.err.Msg != "" && e != tt.err {
					t.Fatalf("ParseRequest = %d, %v; want %v", n, err, tt.err)
				}
				return
			}
			if err != nil || n != len(tt.in) {
				t.Fatalf("ParseRequest = %d, %v; want %d, nil", n, err, len(tt.in))
			}
			if r.Framing != tt.framing || r.ContentLength != tt.length || r.KeepAlive != tt.keep {
				t.Errorf("framing %d length %d keep-alive %v; want %d %d %v", r.Framing, r.ContentLength, r.KeepAlive, tt.framing, tt.length, tt.keep)
			}
			// Every shorter prefix asks for more and never fails.
			for k := range len(tt.in) {
				if n, err := ParseRequest([]byte(tt.in[:k]), DefaultLimits, &r); n != 0 || err != nil {
					t.Fatalf("prefix %q: %d, %v", tt.in[:k], n, err)
				}
			}
		})
	}
}

func TestParseRequestFields(t *testing.T) {
	in := "PUT http://h.example/p HTTP/1.1\r\nHost: other\r\nConnection: Upgrade, X-Hop\r\nUpgrade: websocket\r\nExpect: 100-Continue\r\nX-Sp:  v v  \r\nContent-Length: 0\r\n\r\nNEXT"
	var r Request
	n, err := ParseRequest([]byte(in), DefaultLimits, &r)
	if err != nil || n != len(in)-4 {
		t.Fatalf("ParseRequest = %d, %v", n, err)
	}
	if string(r.Method) != "PUT" || string(r.Target) != "http://h.example/p" || string(r.Host) != "other" || r.Minor != 1 {
		t.Errorf("line: %q %q host %q minor %d", r.Method, r.Target, r.Host, r.Minor)
	}
	if !r.Upgrade || !r.Expect100 || len(r.Connection) != 1 || string(r.Connection[0]) != "X-Hop" {
		t.Errorf("upgrade %v expect %v connection %q", r.Upgrade, r.Expect100, r.Connection)
	}
	if len(r.Headers) != 6 || string(r.Headers[4].Name) != "X-Sp" || string(r.Headers[4].Value) != "v v" {
		t.Errorf("headers %q", r.Headers)
	}
}

func TestRequestLimits(t *testing.T) {
	lim := Limits{MaxHeaderBytes: 64, MaxHeaders: 2}
	var r Request
	if _, err := ParseRequest([]byte("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n"), lim, &r); err != ErrTooManyHeaders {
		t.Errorf("3 fields over 2: %v", err)
	}
	long := "GET / HTTP/1.1\r\nHost: x\r\nA: " + strings.Repeat("a", 60)
	if _, err := ParseRequest([]byte(long), lim, &r); err != ErrHeadTooLarge {
		t.Errorf("unfinished head over the limit: %v", err)
	}
	if _, err := ParseRequest([]byte(long+"\r\n\r\n"), lim, &r); err != ErrHeadTooLarge {
		t.Errorf("finished head over the limit: %v", err)
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name, in string
		head     bool
		bad      bool
		status   int
		framing  Framing
		length   int64
		keep     bool
	}{
		{name: "length", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", status: 200, framing: BodyLength, length: 5, keep: true},
		{name: "no reason", in: "HTTP/1.1 204\r\n\r\n", status: 204, keep: true},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", status: 200, framing: BodyChunked, keep: true},
		{name: "until close", in: "HTTP/1.1 200 OK\r\n\r\n", status: 200, framing: BodyUntilClose},
		{name: "head has no body", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", head: true, status: 200, keep: true},
		{name: "not modified", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", status: 304, keep: true},
		{name: "continue", in: "HTTP/1.1 100 Continue\r\n\r\n", status: 100, keep: true},
		{name: "1.0 closes", in: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", status: 200, framing: BodyLength, length: 1},
		{name: "close", in: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", status: 200, framing: BodyLength, length: 1},
		{name: "gzip coding", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", bad: true},
		{name: "gzip then chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", bad: true},
		{name: "gzip then chunked on two lines", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", bad: true},
		{name: "gzip then chunked to HEAD", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", head: true, bad: true},
		{name: "chunked twice", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", bad: true},
		{name: "chunked in HTTP/1.0", in: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", bad: true},
		{name: "gzip coding on a 304", in: "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: gzip\r\n\r\n", status: 304, keep: true},
		{name: "chunked and an empty Transfer-Encoding", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: \r\n\r\n", status: 200, framing: BodyChunked, keep: true},
		{name: "length and chunked", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", bad: true},
		{name: "conflicting lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", bad: true},
		{name: "bad status", in: "HTTP/1.1 20x OK\r\n\r\n", bad: true},
		{name: "status 600", in: "HTTP/1.1 600 X\r\n\r\n", bad: true},
		{name: "not http", in: "SSH-2.0-OpenSSH\r\n\r\n", bad: true},
		{name: "folded", in: "HTTP/1.1 200 OK\r\nA: 1\r\n 2\r\n\r\n", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Response
			n, err := ParseResponse([]byte(tt.in), DefaultLimits, tt.head, &r)
			if tt.bad {
				if err != ErrResponse {
					t.Fatalf("ParseResponse = %d, %v; want ErrResponse", n, err)
				}
				return
			}
			if err != nil || n != len(tt.in) {
				t.Fatalf("ParseResponse = %d, %v", n, err)
			}
			if r.Status != tt.status || r.Framing != tt.framing || r.ContentLength != tt.length || r.KeepAlive != tt.keep {
				t.Errorf("status %d framing %d length %d keep %v; want %d %d %d %v", r.Status, r.Framing, r.ContentLength, r.KeepAlive, tt.status, tt.framing, tt.length, tt.keep)
			}
		})
	}
}

func TestChunked(t *testing.T) {
	tests := []struct {
		name, in string
		n        int // bytes of body; -1: all
		bad      bool
	}{
		{name: "plain", in: "5\r\nhello\r\n0\r\n\r\n", n: -1},
		{name: "leading zeros", in: "0005\r\nhello\r\n000\r\n\r\n", n: -1},
		{name: "extension", in: "5;name=\"v\"\r\nhello\r\n0; last\r\n\r\n", n: -1},
		{name: "white space before extension", in: "5 ;a\r\nhello\r\n0\r\n\r\n", n: -1},
		{name: "trailers", in: "1\r\na\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\n", n: -1},
		{name: "next message after", in: "1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n", n: 11},
		{name: "hex sizes", in: "A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n", n: -1},
		{name: "17 digits, leading zeros", in: "00000000000000005\r\nhello\r\n00000000000000000\r\n\r\n", n: -1},
		{name: "invalid size", in: "g\r\n", bad: true},
		{name: "no size", in: "\r\n", bad: true},
		{name: "negative", in: "-1\r\n", bad: true},
		{name: "bare LF after size", in: "5\nhello\r\n0\r\n\r\n", bad: true},
		{name: "bare LF after data", in: "5\r\nhello\n0\r\n\r\n", bad: true},
		{name: "data longer than size", in: "3\r\nhello\r\n", bad: true},
		{name: "overflow", in: "1000000000000000\r\n", bad: true},
		{name: "control in extension", in: "5;\x01\r\nhello\r\n", bad: true},
		{name: "folded trailer", in: "0\r\n folded\r\n\r\n", bad: true},
		{name: "trailer without colon", in: "0\r\nX\r\n\r\n", bad: true},
		{name: "space before trailer colon", in: "0\r\nX : 1\r\n\r\n", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.n
			if want < 0 {
				want = len(tt.in)
			}
			var c Chunked
			n, done, err := c.Scan([]byte(tt.in))
			if tt.bad {
				if err == nil {
					t.Fatalf("Scan = %d, %v, nil; want an error", n, done)
				}
				return
			}
			if err != nil || !done || n != want {
				t.Fatalf("Scan = %d, %v, %v; want %d, true, nil", n, done, err, want)
			}
			// Byte by byte gives the same.
			c.Reset()
			total := 0
			for i := 0; i < len(tt.in) && !c.Done(); i++ {
				k, _, err := c.Scan([]byte(tt.in[i : i+1]))
				if err != nil {
					t.Fatalf("byte %d: %v", i, err)
				}
				total += k
			}
			if !c.Done() || total != want {
				t.Fatalf("byte by byte: done %v after %d bytes", c.Done(), total)
			}
		})
	}
}

func TestTrailerLimit(t *testing.T) {
	c := Chunked{MaxTrailerBytes: 10}
	if _, _, err := c.Scan([]byte("0\r\nX-Long: " + strings.Repeat("a", 20) + "\r\n\r\n")); err != ErrTrailerTooLarge {
		t.Fatalf("Scan: %v, want ErrTrailerTooLarge", err)
	}
}

func TestChunkedForwardDropsExtensionsAndFramingTrailers(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"5\r\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n"},
		{"5;a=\"unclosed\r\nhello\r\n6 ; b=1\r\n world\r\n0;end\r\n\r\n", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"},
		{"1\r\na\r\n0\r\nContent-Length: 3\r\nX-Sum: 2\r\nHOST: evil\r\nTransfer-Encoding: gzip\r\nX-Really-Long-Trailer-Name: v\r\n\r\n",
			"1\r\na\r\n0\r\nX-Sum: 2\r\nX-Really-Long-Trailer-Name: v\r\n\r\n"},
		{"0\r\nHosts: kept\r\nHost: dropped\r\n\r\n", "0\r\nHosts: kept\r\n\r\n"},
	} {
		// Every split of the input into two reads gives the same output.
		for cut := 0; cut <= len(tc.in); cut++ {
			var c Chunked
			var got []byte
			done := false
			for _, piece := range []string{tc.in[:cut], tc.in[cut:]} {
				out, n, d, err := c.Forward(nil, []byte(piece))
				if err != nil || n != len(piece) {
					t.Fatalf("Forward(%q) split at %d: n %d err %v", tc.in, cut, n, err)
				}
				got, done = append(got, out...), d
			}
			if string(got) != tc.want || !done {
				t.Errorf("Forward(%q) split at %d = %q (done %v), want %q", tc.in, cut, got, done, tc.want)
			}
		}
	}
}

func TestChunkedForwardPassesPlainBodiesWithoutCopy(t *testing.T) {
	var c Chunked
	in := []byte("5\r\nhello\r\n0\r\n\r\nNEXT")
	out, n, done, err := c.Forward(make([]byte, 0, 64), in)
	if err != nil || !done || n != len(in)-4 || &out[0] != &in[0] {
		t.Errorf("Forward(plain) = %q n %d done %v err %v, want the input's own bytes up to NEXT", out, n, done, err)
	}
}

func TestRequestTarget(t *testing.T) {
	for _, tc := range []struct {
		method, target string
		err            error
	}{
		{"GET", "/a/b?c=d", nil},
		{"GET", "/a%2Fb%c3%A9", nil},
		{"GET", "/a?q=%zz&r=100%", nil}, // the query goes on as it came
		{"GET", "/%zz", ErrTarget},
		{"GET", "/a%2", ErrTarget},
		{"GET", "/a%", ErrTarget},
		{"GET", "/a#%zz", ErrTarget},
		{"GET", "foo", ErrTarget},
		{"GET", "?x", ErrTarget},
		{"GET", "%2Fa", ErrTarget},
		{"OPTIONS", "*", nil},
		{"GET", "*", nil},
		{"OPTIONS", "**", ErrTarget},
		{"GET", "http://h.example", nil},
		{"GET", "HTTPS://h.example:8443/p?q", nil},
		{"GET", "http://h.example?q", nil},
		{"GET", "http://[2001:db8::1]:80/", nil},
		{"GET", "http://[::ffff:192.0.2.1]/", nil},
		{"GET", "http://192.0.2.1/", nil},
		{"GET", "foo:bar", ErrTarget},
		{"GET", "http:/x", ErrTarget},
		{"GET", "1http://h/", ErrTarget},
		{"GET", "http:///x", ErrTarget},
		{"GET", "http://:80/", ErrTarget},
		{"GET", "http://h:8x/", ErrTarget},
		{"GET", "http://h:1:2/", ErrTarget},
		{"GET", "http://h<b/", ErrTarget},
		{"GET", "http://caf\xc3\xa9/", ErrTarget},
		{"GET", "http://h%41/", ErrTarget},
		{"GET", "http://h.example/%zz", ErrTarget},
		{"GET", "http://[1:2]/", ErrTarget},
		{"GET", "http://[192.0.2.1]/", ErrTarget},
		{"GET", "http://[fe80::1%25en0]/", ErrTarget},
		{"GET", "http://[::1/", ErrTarget},
		{"GET", "http://[::1]x/", ErrTarget},
		{"CONNECT", "h.example:443", nil},
		{"CONNECT", "[::1]:443", nil},
		{"CONNECT", "h.example:443/x", ErrTarget},
		{"CONNECT", "/rpc", nil},
		{"GET", "http://u:p@evil.example/", ErrUserInfo},
		{"GET", "http://u@evil.example", ErrUserInfo},
		{"GET", "http://good.example/a@b", nil},
		{"GET", "/path@x", nil},
		{"GET", "http://good.example/?q=a@b", nil},
	} {
		var r Request
		_, err := ParseRequest([]byte(tc.method+" "+tc.target+" HTTP/1.1\r\nHost: h\r\n\r\n"), DefaultLimits, &r)
		if err != tc.err && !(err == nil && tc.err == nil) {
			t.Errorf("ParseRequest(%s %s) error %v, want %v", tc.method, tc.target, err, tc.err)
		}
	}
}

func TestIPv6(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"::", true}, {"::1", true}, {"1::", true}, {"1:2:3:4:5:6:7:8", true}, {"1:2:3:4:5:6:7::", true},
		{"::ffff:192.0.2.1", true}, {"1:2:3:4:5:6:192.0.2.1", true}, {"fe80::abcd:1", true},
		{"", false}, {":", false}, {":::", false}, {"1::2::3", false}, {"1:2:3:4:5:6:7", false},
		{"1:2:3:4:5:6:7:8:9", false}, {"1:2:3:4:5:6:7:8::", false}, {"12345::", false}, {"g::", false},
		{"192.0.2.1", false}, {"::192.0.2.256", false}, {"::192.0.2", false}, {"::01.2.3.4", false},
		{"1.2.3.4::", false}, {"::1.2.3.4:5", false},
	} {
		if got := ipv6([]byte(tc.in)); got != tc.ok {
			t.Errorf("ipv6(%q) = %v, want %v", tc.in, got, tc.ok)
		}
	}
}

// A Transfer-Encoding said with empty lines or elements goes on as one field,
// chunked, in requests and answers alike.
func TestTransferEncodingTidied(t *testing.T) {
	for _, tc := range []struct{ fields, want string }{
		{"Transfer-Encoding: chunked\r\nX-A: 1\r\n", "Transfer-Encoding: chunked|X-A: 1"},
		{"Transfer-Encoding: chunked\r\nX-A: 1\r\nTransfer-Encoding:\r\n", "Transfer-Encoding: chunked|X-A: 1"},
		{"transfer-encoding: \r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n", "transfer-encoding: chunked|X-A: 1"},
		{"Transfer-Encoding: chunked,\r\n", "Transfer-Encoding: chunked"},
		{"Transfer-Encoding: , CHUNKED , \r\nX-A: 1\r\n", "Transfer-Encoding: chunked|X-A: 1"},
	} {
		var req Request
		if _, err := ParseRequest([]byte("POST / HTTP/1.1\r\n"+tc.fields+"Host: h\r\n\r\n"), DefaultLimits, &req); err != nil {
			t.Fatalf("ParseRequest(%q): %v", tc.fields, err)
		}
		if got := join(req.Headers[:len(req.Headers)-1]); got != tc.want || req.Framing != BodyChunked {
			t.Errorf("ParseRequest(%q) fields %q framing %d, want %q, chunked", tc.fields, got, req.Framing, tc.want)
		}
		var resp Response
		if _, err := ParseResponse([]byte("HTTP/1.1 200 OK\r\n"+tc.fields+"\r\n"), DefaultLimits, false, &resp); err != nil {
			t.Fatalf("ParseResponse(%q): %v", tc.fields, err)
		}
		if got := join(resp.Headers); got != tc.want || resp.Framing != BodyChunked {
			t.Errorf("ParseResponse(%q) fields %q framing %d, want %q, chunked", tc.fields, got, resp.Framing, tc.want)
		}
	}
}

func join(hs []Header) string {
	var out []string
	for _, h := range hs {
		out = append(out, string(h.Name)+": "+string(h.Value))
	}
	return strings.Join(out, "|")
}

// A chunk size goes on without its leading zeros, at most one of which passes where a
// read ends right after it: no recipient reads a size of more than 16 digits.
func TestChunkedForwardDropsLeadingZeros(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"00000000000000005\r\nhello\r\n0000000000000000000\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n"},
		{"005 \r\nhello\r\n0\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n"},
		{"0a;x=1\r\n0123456789\r\n00;end\r\nX: 1\r\n\r\n", "a\r\n0123456789\r\n0\r\nX: 1\r\n\r\n"},
		{"10\r\n0123456789abcdef\r\n0\r\n\r\n", "10\r\n0123456789abcdef\r\n0\r\n\r\n"},
	} {
		var c Chunked
		out, n, done, err := c.Forward(nil, []byte(tc.in))
		if string(out) != tc.want || n != len(tc.in) || !done || err != nil {
			t.Errorf("Forward(%q) = %q, %d, %v, %v; want %q", tc.in, out, n, done, err, tc.want)
		}
		for cut := 0; cut <= len(tc.in); cut++ {
			var c Chunked
			var got []byte
			for _, piece := range []string{tc.in[:cut], tc.in[cut:]} {
				out, _, _, err := c.Forward(nil, []byte(piece))
				if err != nil {
					t.Fatalf("Forward(%q) split at %d: %v", tc.in, cut, err)
				}
				got = append(got, out...)
			}
			if string(got) != tc.want && !oneMoreZero(string(got), tc.want) {
				t.Errorf("Forward(%q) split at %d = %q, want %q (one more leading zero at most)", tc.in, cut, got, tc.want)
			}
		}
	}
}

// oneMoreZero reports whether got is want with a 0 put before one of its lines.
func oneMoreZero(got, want string) bool {
	for i := range len(got) {
		if got[i] == '0' && (i == 0 || got[i-1] == '\n') && got[:i]+got[i+1:] == want {
			return true
		}
	}
	return false
}

// The trailer section is bounded as the nethttp front's server bounds it: 4 KiB from
// its first field to the end of the empty line after the last.
func TestTrailerLimitMatchesNetHTTP(t *testing.T) {
	for _, size := range []int{4096, 4097} {
		trailers := "X-Long: " + strings.Repeat("a", size-len("X-Long: \r\n\r\n")) + "\r\n\r\n"
		body := "1\r\na\r\n0\r\n" + trailers
		var c Chunked
		_, done, err := c.Scan([]byte(body))
		std, serr := http.ReadRequest(bufio.NewReader(strings.NewReader("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body)))
		if serr == nil {
			_, serr = io.ReadAll(std.Body)
		}
		if want := size <= 4096; done != want || (err == nil) != want || (serr == nil) != want {
			t.Errorf("trailers of %d bytes: Scan done %v, %v; net/http %v; want accepted: %v", size, done, err, serr, want)
		}
	}
}
