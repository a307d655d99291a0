// Package h1 reads HTTP/1.1 message framing (RFC 9112) for the event-loop data plane:
// request and response heads, and chunked bodies. Every parser works on the bytes
// received so far, never blocks, and says how many bytes it consumed, so a caller
// feeds it whatever a read returned and calls it again when more arrives.
//
// The parsers are strict where leniency lets two parties read one message two ways
// (request smuggling, response splitting): conflicting Content-Length and
// Transfer-Encoding, a Transfer-Encoding that does not end in chunked, white space
// before a header's colon, folded header lines, control bytes in names and values,
// and bare LFs inside chunked framing are refused. They are lenient where HAProxy is
// and no ambiguity results: a head whose lines end in a bare LF is read as if they
// ended in CRLF, and empty lines before a request line are skipped.
//
// What the parsers accept, net/http reads the same way too (the nethttp front hands
// its server each head as h1 read it), so both fronts give the same answer to the
// same bytes: a request's Host holds only the bytes of a host and port, and its
// target is in one of RFC 9112's forms with well-formed escapes in its path (else
// 400); an expectation other than 100-continue is 417; a Transfer-Encoding said with
// empty list elements or lines goes on as one "chunked"; a chunk size loses its
// leading zeros on the way (Chunked.Forward); trailers are bounded to 4 KiB.
//
// Parsed fields are slices of the caller's buffer: they are valid until the caller
// reuses it. (A tidied Transfer-Encoding's value is the parser's own; no parsed
// field is to be written to.)
package h1

import (
	"errors"
	"fmt"
)

// Error is a framing error: what was wrong and the status a server answers with.
type Error struct {
	Status int    // 400, 413, 417, 431, 501 or 505 for requests; responses use 502
	Msg    string // a fixed sentence that echoes none of the message's bytes
}

func (e *Error) Error() string { return fmt.Sprintf("h1: %s", e.Msg) }

func errf(status int, msg string) *Error { return &Error{Status: status, Msg: msg} }

// The errors of a request's head. Their messages echo none of the client's bytes, so
// they may be sent back as they are.
var (
	ErrHeadTooLarge     = errf(431, "request header section too large")
	ErrTooManyHeaders   = errf(431, "too many request header fields")
	ErrRequestLine      = errf(400, "malformed request line")
	ErrVersion          = errf(505, "HTTP version not supported")
	ErrHeaderLine       = errf(400, "malformed header field")
	ErrObsFold          = errf(400, "folded header field")
	ErrContentLength    = errf(400, "invalid Content-Length")
	ErrConflictLength   = errf(400, "conflicting Content-Length values")
	ErrLengthAndChunked = errf(400, "both Content-Length and Transfer-Encoding are set")
	ErrTransferEncoding = errf(501, "Transfer-Encoding must end in chunked")
	ErrHTTP10Chunked    = errf(400, "Transfer-Encoding in an HTTP/1.0 message")
	ErrHost             = errf(400, "missing or repeated Host")
	ErrHostValue        = errf(400, "invalid Host")
	ErrTarget           = errf(400, "invalid request target")
	ErrUserInfo         = errf(400, "user information in the request target")
	ErrExpectation      = errf(417, "unsupported expectation")
	ErrChunk            = errf(400, "invalid chunked framing")
	ErrTrailerTooLarge  = errf(431, "trailer section too large")
)

// ErrResponse is any framing error in a backend's answer: the client gets 502.
var ErrResponse = errors.New("h1: malformed answer")

// Limits bound what a head may hold.
type Limits struct {
	MaxHeaderBytes int // the whole head, start line included
	MaxHeaders     int // header fields
}

// DefaultLimits are HAProxy's defaults, near enough: 16 KiB and 100 fields.
var DefaultLimits = Limits{MaxHeaderBytes: 16 << 10, MaxHeaders: 100}

// Header is one header field as received: name and value with surrounding white
// space removed.
type Header struct {
	Name, Value []byte
}

// Framing says how a message's body is delimited.
type Framing uint8

const (
	// BodyNone: the message ends with its head.
	BodyNone Framing = iota
	// BodyLength: Content-Length bytes follow.
	BodyLength
	// BodyChunked: a chunked body follows (see Chunked).
	BodyChunked
	// BodyUntilClose: the body runs until the sender closes (responses only).
	BodyUntilClose
)
