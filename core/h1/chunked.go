package h1

// Chunked follows a chunked body (RFC 9112 section 7.1) through reads split anywhere,
// so that a proxy can pass its bytes on as they are while knowing where it ends. The
// framing is read strictly: every line ends in CRLF, a chunk size is hexadecimal
// (leading zeros allowed, any number of them) and fits in 60 bits, extensions hold no
// control byte, and trailer fields are well-formed and bounded.
//
// The zero value is ready for a body; Reset readies it for the next one.
type Chunked struct {
	state   uint8
	zeros   bool  // Forward dropped leading zeros of the size being read
	left    int64 // data bytes left in the current chunk
	trailer int   // bytes of the trailer section so far
	inValue bool  // past the colon of the current trailer line
	// What Forward needs to rewrite the framing.
	edit    bool             // the scan met an extension or a trailer field
	hold    [maxFraming]byte // the start of a trailer field's name, until it is known
	held    uint8            // bytes in hold; 0 when not holding
	holding bool             // a trailer field's name is being held
	drop    bool             // the current trailer line is dropped
	// MaxTrailerBytes bounds the trailer section, from its first field to the end of
	// the empty line that ends it (0: 4 KiB, as much as the nethttp front's server
	// reads).
	MaxTrailerBytes int
}

const (
	chSizeStart    = iota // the first digit of a size
	chSize                // more digits
	chSizeWS              // white space after the size
	chExt                 // a chunk extension
	chSizeLF              // the LF of a size line
	chData                // chunk data
	chDataCR              // the CR after data
	chDataLF              // the LF after data
	chTrailerStart        // a trailer line, or the CR of the empty line that ends the body
	chTrailer             // inside a trailer line
	chTrailerLF           // the LF of a trailer line
	chEndLF               // the LF of the final empty line
	chDone
)

// Reset readies c for another body.
func (c *Chunked) Reset() { *c = Chunked{MaxTrailerBytes: c.MaxTrailerBytes} }

// Done reports whether the body has ended.
func (c *Chunked) Done() bool { return c.state == chDone }

// InData reports whether the scan is inside chunk data, and how many data bytes of
// the current chunk are still to come.
func (c *Chunked) InData() (bool, int64) { return c.state == chData, c.left }

// Scan consumes the prefix of buf that belongs to the body: n bytes that may be passed
// on as they are. done reports that the body ended at buf[n]; bytes after it are the
// next message. A framing fault is ErrChunk (or ErrTrailerTooLarge); what was consumed
// before it is n.
func (c *Chunked) Scan(buf []byte) (n int, done bool, err error) {
	for n < len(buf) {
		if c.state == chData {
			k := int64(len(buf) - n)
			if k > c.left {
				k = c.left
			}
			n += int(k)
			if c.left -= k; c.left == 0 {
				c.state = chDataCR
			}
			continue
		}
		if c.state == chDone {
			return n, true, nil
		}
		if err := c.step(buf[n]); err != nil {
			return n, false, err
		}
		n++
	}
	return n, c.state == chDone, nil
}

// step takes one framing byte.
func (c *Chunked) step(b byte) error {
	switch c.state {
	case chSizeStart, chSize:
		v, ok := unhex(b)
		switch {
		case ok:
			switch {
			case c.left>>56 != 0:
				return ErrChunk // over 60 bits
			case c.left == 0 && c.state == chSize:
				c.edit = true // leading zeros: Forward drops them
			}
			c.left = c.left<<4 | int64(v)
			c.state = chSize
		case c.state == chSizeStart:
			return ErrChunk
		case b == ' ' || b == '\t':
			c.state, c.edit = chSizeWS, true
		case b == ';':
			c.state, c.edit = chExt, true
		case b == '\r':
			c.state = chSizeLF
		default:
			return ErrChunk
		}
	case chSizeWS:
		switch b {
		case ' ', '\t':
		case ';':
			c.state = chExt
		case '\r':
			c.state = chSizeLF
		default:
			return ErrChunk
		}
	case chExt:
		switch {
		case b == '\r':
			c.state = chSizeLF
		case b < ' ' && b != '\t' || b == 0x7f:
			return ErrChunk
		}
	case chSizeLF:
		if b != '\n' {
			return ErrChunk
		}
		if c.left == 0 {
			c.state = chTrailerStart
		} else {
			c.state = chData
		}
	case chDataCR:
		if b != '\r' {
			return ErrChunk
		}
		c.state = chDataLF
	case chDataLF:
		if b != '\n' {
			return ErrChunk
		}
		c.state = chSizeStart
	case chTrailerStart:
		switch {
		case b == '\r':
			c.state = chEndLF
			if c.trailer > 0 {
				return c.countTrailer()
			}
		case tchar[b]:
			c.state, c.inValue, c.edit = chTrailer, false, true
			return c.countTrailer()
		default: // folded, or not a field name
			return ErrChunk
		}
	case chTrailer:
		switch {
		case !c.inValue && b == ':':
			c.inValue = true
		case !c.inValue && !tchar[b]:
			return ErrChunk // white space before the colon, or no colon
		case b == '\r':
			c.state = chTrailerLF
		case b < ' ' && b != '\t' || b == 0x7f:
			return ErrChunk
		}
		return c.countTrailer()
	case chTrailerLF:
		if b != '\n' {
			return ErrChunk
		}
		c.state = chTrailerStart
		return c.countTrailer()
	case chEndLF:
		if b != '\n' {
			return ErrChunk
		}
		c.state = chDone
		if c.trailer > 0 {
			return c.countTrailer()
		}
	}
	return nil
}

// countTrailer bounds the trailer section.
func (c *Chunked) countTrailer() error {
	c.trailer++
	limit := c.MaxTrailerBytes
	if limit == 0 {
		limit = 4 << 10
	}
	if c.trailer > limit {
		return ErrTrailerTooLarge
	}
	return nil
}

func unhex(b byte) (byte, bool) {
	switch {
	case '0' <= b && b <= '9':
		return b - '0', true
	case 'a' <= b && b <= 'f':
		return b - 'a' + 10, true
	case 'A' <= b && b <= 'F':
		return b - 'A' + 10, true
	}
	return 0, false
}

// maxFraming is the length of the longest field name a trailer may not carry.
const maxFraming = len("transfer-encoding")

// Forward consumes the prefix of buf that belongs to the body, as Scan does, and
// returns what goes on in its place: the same bytes without chunk extensions (and
// white space after a size), without a size's leading zeros (0005 goes on as 5; a
// single one passes where a read ends right after it, so no recipient reads a size
// of more than 16 digits), and without trailer fields that frame or route a message
// (Content-Length, Transfer-Encoding, Host), which a recipient could take for the
// message's own (RFC 9112 section 7.1.1, RFC 9110 section 6.5.1). out is buf[:n]
// itself when nothing was dropped, the common case; else it is built in dst.
func (c *Chunked) Forward(dst, buf []byte) (out []byte, n int, done bool, err error) {
	saved := *c
	c.edit = false
	n, done, err = c.Scan(buf)
	if !c.edit && !saved.holding && !saved.drop && !saved.zeros && (saved.state != chSizeWS && saved.state != chExt) {
		return buf[:n], n, done, err
	}
	*c = saved
	return c.rewrite(dst[:0], buf)
}

// rewrite is Forward's slow path: it steps through buf, keeping what goes on.
func (c *Chunked) rewrite(dst, buf []byte) (out []byte, n int, done bool, err error) {
	for n < len(buf) {
		switch c.state {
		case chData:
			k := int(min(int64(len(buf)-n), c.left))
			dst = append(dst, buf[n:n+k]...)
			n += k
			if c.left -= int64(k); c.left == 0 {
				c.state = chDataCR
			}
			continue
		case chDone:
			return dst, n, true, nil
		}
		prev, b := c.state, buf[n]
		if err := c.step(b); err != nil {
			return dst, n, false, err
		}
		n++
		dst = c.keep(dst, prev, b)
	}
	return dst, n, c.state == chDone, nil
}

// keep appends b, a framing byte read in state prev, to dst unless it is dropped.
func (c *Chunked) keep(dst []byte, prev uint8, b byte) []byte {
	switch prev {
	case chSizeStart, chSize, chSizeWS, chExt:
		switch {
		case c.state == chSize: // a digit; leading zeros go
			if b == '0' && c.left == 0 {
				c.zeros = true
				return dst
			}
			return append(dst, b)
		case c.zeros: // the size ends here, and was all zeros when no digit went on
			if c.left == 0 {
				dst = append(dst, '0')
			}
			c.zeros = false
		}
		if c.state == chSizeLF { // the line's CR
			return append(dst, b)
		}
		return dst // an extension, or white space before one
	case chTrailerStart:
		if c.state == chTrailer { // a field name starts: held until it is known
			c.holding, c.held, c.drop = true, 0, false
			return c.holdByte(dst, b)
		}
	case chTrailer:
		switch {
		case c.holding && b == ':':
			c.holding = false
			if framing(c.hold[:c.held]) {
				c.drop = true
				return dst
			}
			return append(append(dst, c.hold[:c.held]...), b)
		case c.holding:
			return c.holdByte(dst, b)
		case c.drop:
			return dst
		}
	case chTrailerLF:
		if c.drop {
			c.drop = false
			return dst
		}
	}
	return append(dst, b)
}

// holdByte adds b to a held field name; a name longer than any dropped one goes on.
func (c *Chunked) holdByte(dst []byte, b byte) []byte {
	if int(c.held) == len(c.hold) {
		c.holding = false
		return append(append(dst, c.hold[:c.held]...), b)
	}
	c.hold[c.held] = b
	c.held++
	return dst
}

// framing reports whether a trailer field called name would frame or route the
// message.
func framing(name []byte) bool {
	return equalFold(name, "content-length") || equalFold(name, "transfer-encoding") || equalFold(name, "host")
}
