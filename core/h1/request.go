package h1

import "bytes"

// Request is a parsed request head.
type Request struct {
	Method, Target []byte
	Minor          int      // HTTP/1.Minor: 0 or 1
	Headers        []Header // in the order received
	Framing        Framing  // BodyNone, BodyLength or BodyChunked
	ContentLength  int64    // with BodyLength
	KeepAlive      bool     // the connection may carry another request after this one
	Host           []byte   // the Host field, nil when absent
	Upgrade        bool     // an Upgrade field is present and Connection names it
	Expect100      bool     // Expect: 100-continue
	// Connection lists the names the Connection field gives besides close,
	// keep-alive and upgrade: headers meant for this hop only.
	Connection [][]byte
}

// maxEmptyLines is how many empty lines may come before a request line (RFC 9112
// section 2.2 asks to ignore at least one).
const maxEmptyLines = 4

// ParseRequest parses the request head at the start of buf into r. It returns the
// length of the head, or 0 and no error when buf does not hold all of it yet. An error
// is an *Error whose Status is the answer to give.
func ParseRequest(buf []byte, lim Limits, r *Request) (int, error) {
	hs, conn := r.Headers[:0], r.Connection[:0]
	*r = Request{Headers: hs, Connection: conn}
	pos := 0
	var line []byte
	for empty := 0; ; empty++ {
		l, next, ok, bad := nextLine(buf, pos)
		if !ok {
			if len(buf) > lim.MaxHeaderBytes {
				return 0, ErrHeadTooLarge
			}
			return 0, nil
		}
		if bad {
			return 0, ErrRequestLine
		}
		pos = next
		if len(l) > 0 {
			line = l
			break
		}
		if empty == maxEmptyLines {
			return 0, ErrRequestLine
		}
	}
	if err := r.parseLine(line); err != nil {
		return 0, err
	}
	f := fields{contentLength: -1, connection: conn}
	end, hs, err := parseFields(buf, pos, lim, hs, &f)
	r.Headers, r.Connection = hs, f.connection
	if end == 0 || err != nil {
		return 0, err
	}
	return end, r.frame(&f)
}

// parseLine reads "method SP request-target SP HTTP-version".
func (r *Request) parseLine(line []byte) error {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !isToken(line[:sp]) {
		return ErrRequestLine
	}
	r.Method, line = line[:sp], line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return ErrRequestLine
	}
	r.Target, line = line[:sp], line[sp+1:]
	if err := checkTarget(r.Method, r.Target); err != nil {
		return err
	}
	minor, err := parseVersion(line)
	if err != nil {
		return err
	}
	r.Minor = minor
	return nil
}

// parseVersion reads "HTTP/1.0" or "HTTP/1.1"; another well-formed version is
// ErrVersion.
func parseVersion(v []byte) (int, error) {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' || !isDigit(v[5]) || !isDigit(v[7]) {
		return 0, ErrRequestLine
	}
	if v[5] != '1' || v[7] > '1' {
		return 0, ErrVersion
	}
	return int(v[7] - '0'), nil
}

// checkTarget checks a request target (RFC 9112 section 3.2): the origin form, the
// asterisk, an absolute form with an authority, or an authority alone for CONNECT;
// with no space or control byte, and with well-formed percent escapes in its path
// (RFC 3986 section 2.1), which a backend decodes. The query goes on as it came.
func checkTarget(method, t []byte) error {
	query := false
	for i, c := range t {
		if k := targetClass[c]; k != 0 {
			switch {
			case k == tcBad:
				return ErrRequestLine
			case k == tcQuery:
				query = true
			case !query && (i+2 >= len(t) || !isHex(t[i+1]) || !isHex(t[i+2])):
				return ErrTarget
			}
		}
	}
	switch {
	case t[0] == '/' || len(t) == 1 && t[0] == '*':
		return nil
	case string(method) == "CONNECT":
		if !validAuthority(t) {
			return ErrTarget
		}
		return nil
	}
	return checkAbsolute(t)
}

// Classes of target bytes (targetClass): the others need no look.
const (
	tcBad     = 1 + iota // a space, a control byte
	tcPercent            // an escape
	tcQuery              // the start of the query
)

var targetClass = func() (t [256]uint8) {
	for c := range 256 {
		if c <= ' ' || c == 0x7f {
			t[c] = tcBad
		}
	}
	t['%'], t['?'] = tcPercent, tcQuery
	return t
}()

// checkAbsolute checks an absolute-form target: a scheme, "://", and an authority
// with no user information (http://user:pass@host/ names no Host a backend should be
// sent, and proxies read it differently: RFC 9110 section 4.2.4 deprecates it).
func checkAbsolute(t []byte) error {
	i := 0
	for i < len(t) && (isAlpha(t[i]) || i > 0 && (isDigit(t[i]) || t[i] == '+' || t[i] == '-' || t[i] == '.')) {
		i++
	}
	if i == 0 || !bytes.HasPrefix(t[i:], []byte("://")) {
		return ErrTarget
	}
	authority := t[i+3:]
	if j := bytes.IndexAny(authority, "/?"); j >= 0 {
		authority = authority[:j]
	}
	switch {
	case bytes.IndexByte(authority, '@') >= 0:
		return ErrUserInfo
	case !validAuthority(authority):
		return ErrTarget
	}
	return nil
}

func isAlpha(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

func isHex(c byte) bool { _, ok := unhex(c); return ok }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// frame decides the request's framing and persistence (RFC 9112 sections 6.1, 6.3,
// 9.3), refusing every ambiguous case.
func (r *Request) frame(f *fields) error {
	if f.hosts > 1 || r.Minor == 1 && f.hosts == 0 {
		return ErrHost
	}
	if !validHost(f.host) {
		return ErrHostValue
	}
	r.Host = f.host
	switch {
	case f.transfer > 0:
		if r.Minor == 0 {
			return ErrHTTP10Chunked
		}
		if f.contentLength >= 0 {
			return ErrLengthAndChunked
		}
		if !f.chunkedLast || f.chunkedTwice {
			return errf(400, "Transfer-Encoding must end in chunked")
		}
		if f.otherCoding {
			return ErrTransferEncoding
		}
		if f.untidy {
			r.Headers = tidyTransfer(r.Headers)
		}
		r.Framing = BodyChunked
	case f.contentLength >= 0:
		r.Framing, r.ContentLength = BodyLength, f.contentLength
	}
	if f.expectOther {
		// RFC 9110 section 10.1.1: 100-continue is the only expectation there is.
		return ErrExpectation
	}
	r.KeepAlive = !f.close && (r.Minor == 1 || f.keep)
	r.Upgrade = f.upgrade && f.upgradeToken
	r.Expect100 = f.expect100 && r.Minor == 1
	return nil
}
