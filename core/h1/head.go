package h1

import "bytes"

// fields is what the header fields of a head say about its framing and connection.
type fields struct {
	contentLength int64 // -1: none
	transfer      int   // Transfer-Encoding fields seen
	chunkedLast   bool  // the last coding named is chunked
	chunkedTwice  bool  // chunked named more than once, or before another coding
	otherCoding   bool  // a coding other than chunked is named
	untidy        bool  // a Transfer-Encoding field is empty, or more than one name
	hosts         int
	host          []byte
	close, keep   bool     // Connection: close, keep-alive
	upgradeToken  bool     // Connection: upgrade
	upgrade       bool     // an Upgrade field is present
	expect100     bool     // Expect: 100-continue
	expectOther   bool     // Expect names another expectation
	connection    [][]byte // the other names Connection lists
}

// nextLine returns the line of buf that starts at pos, without its ending (CRLF or a
// bare LF), and where the next one starts; ok is false when buf holds no whole line.
// A CR anywhere else in the line is bad.
func nextLine(buf []byte, pos int) (line []byte, next int, ok, bad bool) {
	i := bytes.IndexByte(buf[pos:], '\n')
	if i < 0 {
		return nil, pos, false, false
	}
	line = buf[pos : pos+i]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, pos + i + 1, true, bytes.IndexByte(line, '\r') >= 0
}

// parseFields reads header field lines from buf at pos up to and including the empty
// line that ends the head. It returns the position after that line, 0 when buf does
// not hold the whole head yet.
func parseFields(buf []byte, pos int, lim Limits, hs []Header, f *fields) (end int, out []Header, err error) {
	for {
		line, next, ok, bad := nextLine(buf, pos)
		if !ok {
			if len(buf) > lim.MaxHeaderBytes {
				return 0, hs, ErrHeadTooLarge
			}
			return 0, hs, nil
		}
		if bad {
			return 0, hs, ErrHeaderLine
		}
		if next > lim.MaxHeaderBytes {
			return 0, hs, ErrHeadTooLarge
		}
		pos = next
		if len(line) == 0 {
			return pos, hs, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			return 0, hs, ErrObsFold
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return 0, hs, ErrHeaderLine
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		if !validValue(value) {
			return 0, hs, ErrHeaderLine
		}
		if len(hs) >= lim.MaxHeaders {
			return 0, hs, ErrTooManyHeaders
		}
		hs = append(hs, Header{Name: name, Value: value})
		if err := f.note(name, value); err != nil {
			return 0, hs, err
		}
	}
}

// note takes in one header field that bears on framing or the connection.
func (f *fields) note(name, value []byte) error {
	switch len(name) {
	case 4:
		if equalFold(name, "host") {
			f.hosts++
			f.host = value
		}
	case 6:
		if equalFold(name, "expect") {
			if equalFold(value, "100-continue") {
				f.expect100 = true
				break
			}
			for tok := range tokens(value) {
				if equalFold(tok, "100-continue") {
					f.expect100 = true
				} else {
					f.expectOther = true
				}
			}
		}
	case 7:
		if equalFold(name, "upgrade") {
			f.upgrade = true
		}
	case 10:
		if equalFold(name, "connection") {
			for tok := range tokens(value) {
				switch {
				case equalFold(tok, "close"):
					f.close = true
				case equalFold(tok, "keep-alive"):
					f.keep = true
				case equalFold(tok, "upgrade"):
					f.upgradeToken = true
				default:
					f.connection = append(f.connection, tok)
				}
			}
		}
	case 14:
		if equalFold(name, "content-length") {
			return f.noteLength(value)
		}
	case 17:
		if equalFold(name, "transfer-encoding") {
			f.transfer++
			n := 0
			for tok := range tokens(value) {
				if f.chunkedLast {
					f.chunkedTwice = true // chunked must be the last coding, once
				}
				f.chunkedLast = equalFold(tok, "chunked")
				if !f.chunkedLast {
					f.otherCoding = true
				}
				n++
				if len(tok) != len(value) {
					f.untidy = true // more than the coding's name
				}
			}
			if n == 0 {
				f.untidy = true
			}
		}
	}
	return nil
}

// noteLength takes in a Content-Length field: a list of equal values, or one value,
// as RFC 9110 section 8.6 allows; any other disagreement is an error.
func (f *fields) noteLength(value []byte) error {
	seen := false
	for tok := range tokens(value) {
		n, ok := parseDecimal(tok)
		if !ok {
			return ErrContentLength
		}
		if f.contentLength >= 0 && f.contentLength != n {
			return ErrConflictLength
		}
		f.contentLength, seen = n, true
	}
	if !seen {
		return ErrContentLength
	}
	return nil
}

// tidyTransfer leaves one Transfer-Encoding field in hs, saying chunked, where the
// fields said it with empty elements or empty lines ("chunked,", a second, empty
// Transfer-Encoding line), which RFC 9110 section 5.6.1 has a recipient ignore: what
// goes on is read one way by every recipient. It is for a message framed as chunked.
func tidyTransfer(hs []Header) []Header {
	out, seen := hs[:0], false
	for _, h := range hs {
		if len(h.Name) == 17 && equalFold(h.Name, "transfer-encoding") {
			if seen {
				continue
			}
			seen, h.Value = true, chunked
		}
		out = append(out, h)
	}
	return out
}

// chunked is the value of a tidied Transfer-Encoding field.
var chunked = []byte("chunked")[:7:7]

// tokens yields the non-empty elements of a comma-separated list, white space trimmed.
func tokens(v []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(v) > 0 {
			var tok []byte
			if i := bytes.IndexByte(v, ','); i >= 0 {
				tok, v = v[:i], v[i+1:]
			} else {
				tok, v = v, nil
			}
			if tok = trimOWS(tok); len(tok) > 0 && !yield(tok) {
				return
			}
		}
	}
}

// parseDecimal reads a non-negative decimal of at most 18 digits.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// validValue reports whether v holds only field-content bytes: visible ASCII, obs-text,
// space and tab (RFC 9110 section 5.5).
func validValue(v []byte) bool {
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// isToken reports whether b is a non-empty token (RFC 9110 section 5.6.2).
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return true
}

var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// equalFold reports whether b equals lower, which is in lower case, ignoring ASCII case.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// EqualFold reports whether b equals lower, which must be in lower case, ignoring
// ASCII case.
func EqualFold(b []byte, lower string) bool { return equalFold(b, lower) }
