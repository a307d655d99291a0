package h1

// Chunked follows a chunked body (RFC 9112 section 7.1) through reads split anywhere,
// so that a proxy can pass its bytes on as they are while knowing where it ends. The
// framing is read strictly: every line ends in CRLF, a chunk size is hexadecimal
// (leading zeros allowed) and fits in 60 bits, extensions hold no control byte, and
// trailer fields are well-formed and bounded.
//
// The zero value is ready for a body; Reset readies it for the next one.
type Chunked struct {
	state   uint8
	digits  uint8 // significant digits of the size
	left    int64 // data bytes left in the current chunk
	trailer int   // bytes of the trailer section so far
	inValue bool  // past the colon of the current trailer line
	// MaxTrailerBytes bounds the trailer section (0: 16 KiB).
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
			if c.digits > 0 || v != 0 {
				c.digits++
			}
			if c.digits > 15 {
				return ErrChunk
			}
			c.left = c.left<<4 | int64(v)
			c.state = chSize
		case c.state == chSizeStart:
			return ErrChunk
		case b == ' ' || b == '\t':
			c.state = chSizeWS
		case b == ';':
			c.state = chExt
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
		c.digits = 0
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
		case tchar[b]:
			c.state, c.inValue = chTrailer, false
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
	case chEndLF:
		if b != '\n' {
			return ErrChunk
		}
		c.state = chDone
	}
	return nil
}

// countTrailer bounds the trailer section.
func (c *Chunked) countTrailer() error {
	c.trailer++
	limit := c.MaxTrailerBytes
	if limit == 0 {
		limit = 16 << 10
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
