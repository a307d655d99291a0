package h1

// Response is a parsed response head.
type Response struct {
	Minor         int
	Status        int
	Headers       []Header
	Framing       Framing
	ContentLength int64 // with BodyLength
	// Length is the Content-Length field's value, one value however it was written
	// (a list of equal values, repeated lines), -1 when there is none. A HEAD
	// answer's describes the body a GET would have.
	Length int64
	// KeepAlive: the connection may carry another exchange after this answer.
	KeepAlive bool
	// Connection lists the names the Connection field gives besides close, keep-alive
	// and upgrade.
	Connection [][]byte
}

// Bodiless reports whether the status rules out a body whatever the request
// (1xx, 204, 304): such an answer carries no body framing.
func (r *Response) Bodiless() bool { return r.Status < 200 || r.Status == 204 || r.Status == 304 }

// Interim reports whether the answer is informational (1xx other than 101): the final
// answer follows it on the same exchange.
func (r *Response) Interim() bool { return r.Status < 200 && r.Status != 101 }

// ParseResponse parses the response head at the start of buf into r, for a request
// whose method was HEAD when head is true. It returns the length of the head, or 0 and
// no error when buf does not hold all of it yet. Any fault is ErrResponse.
func ParseResponse(buf []byte, lim Limits, head bool, r *Response) (int, error) {
	hs, conn := r.Headers[:0], r.Connection[:0]
	*r = Response{Headers: hs, Connection: conn}
	line, pos, ok, bad := nextLine(buf, 0)
	if !ok {
		if len(buf) > lim.MaxHeaderBytes {
			return 0, ErrResponse
		}
		return 0, nil
	}
	if bad || !r.parseLine(line) {
		return 0, ErrResponse
	}
	f := fields{contentLength: -1, connection: conn}
	end, hs, err := parseFields(buf, pos, lim, hs, &f)
	r.Headers, r.Connection = hs, f.connection
	if err != nil {
		return 0, ErrResponse
	}
	if end == 0 {
		return 0, nil
	}
	if !r.frame(&f, head) {
		return 0, ErrResponse
	}
	return end, nil
}

// parseLine reads "HTTP-version SP status-code [SP reason-phrase]".
func (r *Response) parseLine(line []byte) bool {
	if len(line) < 12 || line[8] != ' ' || len(line) > 12 && line[12] != ' ' {
		return false
	}
	minor, err := parseVersion(line[:8])
	if err != nil {
		return false
	}
	r.Minor = minor
	s := line[9:12]
	if !isDigit(s[0]) || !isDigit(s[1]) || !isDigit(s[2]) || s[0] < '1' || s[0] > '5' {
		return false
	}
	r.Status = int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
	return validValue(line[12:])
}

// frame decides the answer's framing (RFC 9112 section 6.3). An answer with both
// Content-Length and Transfer-Encoding is refused rather than repaired: the backend
// that sent it frames messages in a way someone may read differently. So is one
// whose status allows a body and whose Transfer-Encoding is not chunked alone in
// HTTP/1.1: chunked is the only coding the proxy reads, another (gzip, chunked) could
// only go on as it came, which no HTTP/1.0 or HTTP/2 client may be sent, and an
// HTTP/1.0 answer with a Transfer-Encoding is framed faultily (RFC 9112 section 6.1).
func (r *Response) frame(f *fields, head bool) bool {
	r.KeepAlive = !f.close && (r.Minor == 1 || f.keep)
	r.Length = f.contentLength
	if f.transfer > 0 {
		if f.contentLength >= 0 {
			return false
		}
		if !r.Bodiless() && (!f.chunkedLast || f.chunkedTwice || f.otherCoding || r.Minor == 0) {
			return false
		}
		if f.untidy && !r.Bodiless() {
			r.Headers = tidyTransfer(r.Headers)
		}
	}
	switch {
	case head || r.Bodiless():
		r.Framing = BodyNone
	case f.transfer > 0:
		r.Framing = BodyChunked
	case f.contentLength >= 0:
		r.Framing, r.ContentLength = BodyLength, f.contentLength
	default:
		r.Framing, r.KeepAlive = BodyUntilClose, false
	}
	return true
}
