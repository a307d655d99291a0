package h1

import (
	"errors"
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
		{name: "gzip coding reads to close", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", status: 200, framing: BodyUntilClose},
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
		{"005 \r\nhello\r\n0\r\n\r\n", "005\r\nhello\r\n0\r\n\r\n"},
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

func TestUserInfoInTargetRefused(t *testing.T) {
	for _, tc := range []struct {
		target string
		err    error
	}{
		{"http://u:p@evil.example/", ErrUserInfo},
		{"http://u@evil.example", ErrUserInfo},
		{"http://good.example/a@b", nil},
		{"/path@x", nil},
		{"http://good.example/?q=a@b", nil},
	} {
		var r Request
		_, err := ParseRequest([]byte("GET "+tc.target+" HTTP/1.1\r\nHost: h\r\n\r\n"), DefaultLimits, &r)
		if err != tc.err && !(err == nil && tc.err == nil) {
			t.Errorf("ParseRequest(GET %s) error %v, want %v", tc.target, err, tc.err)
		}
	}
}
