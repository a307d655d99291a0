package exchange

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/switchyard-lb/switchyard/core/h1"
	"github.com/switchyard-lb/switchyard/core/pool"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// Answer is one of the proxy's own answers: its status, and the JSON body's code and
// message (see ErrorBody). Its words are the proxy's: none echoes a byte a client
// or a backend sent (DESIGN section 11).
type Answer struct {
	Status     int
	Code, Msg  string
	RetryAfter bool // Retry-After: 1 goes with it
}

// Body is the answer's JSON body.
func (a Answer) Body() []byte { return ErrorBody(a.Code, a.Msg) }

// AppendHTTP1 appends the whole answer as HTTP/1.1 sends it, head and body;
// closing adds Connection: close.
func (a Answer) AppendHTTP1(dst []byte, closing bool) []byte {
	body := a.Body()
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(a.Status), 10)
	dst = append(dst, ' ')
	dst = append(dst, statusText(a.Status)...)
	dst = append(dst, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	if a.RetryAfter {
		dst = append(dst, "\r\nRetry-After: 1"...)
	}
	if closing {
		dst = append(dst, "\r\nConnection: close"...)
	}
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

// The proxy's own answers that take no argument.
var (
	QueueFull    = Answer{503, CodeQueueFull, "load balancer queue is full", true}
	QueueTimeout = Answer{503, CodeQueueTimeout, "timed out waiting in the load balancer queue", true}
	HeadTimeout  = Answer{408, CodeBadRequest, "request not received in time", false}
	BodyTimeout  = Answer{408, CodeBadRequest, "request body not received in time", false}
	BodyCut      = Answer{400, CodeBadRequest, "request body cut short", false}
	BodyChunked  = Answer{400, CodeBadRequest, "invalid chunked request body", false}
	UserInfo     = Answer{400, CodeBadRequest, "user information in the request target or Host", false}
)

// Shed is the answer to a request the worker pool refused with err.
func Shed(err error) Answer {
	if errors.Is(err, pool.ErrQueueTimeout) {
		return QueueTimeout
	}
	return QueueFull
}

// NoBackend is the answer to a request no backend took; err is the pick's error.
func NoBackend(err error) Answer {
	msg := "no healthy backend available"
	if err != strategy.ErrNoBackend { // the strategy said why
		msg = err.Error()
	}
	return Answer{503, NoBackendCode(err), msg, true}
}

// Malformed is the answer to a request whose head h1 refused with e.
func Malformed(e *h1.Error) Answer {
	code := CodeBadRequest
	if e.Status == 431 {
		code = CodeHeaderTooLarge
	}
	return Answer{e.Status, code, e.Msg, false}
}

// Failure is a round trip to a backend that failed before the answer's head reached
// the client, in the proxy's own words.
type Failure struct {
	Msg     string
	Timeout bool
	NotSent bool // no byte of the request reached the backend
}

func (f *Failure) Error() string { return f.Msg }

// Answer is the client's answer to f: 504 for a timeout, else 502.
func (f *Failure) Answer() Answer {
	if f.Timeout {
		return Answer{504, CodeBackendTimeout, f.Msg, false}
	}
	return Answer{502, CodeBackendFailed, f.Msg, false}
}

// The ways a round trip to a backend fails.
var (
	ErrConnect   = &Failure{Msg: "backend failed: could not connect", NotSent: true}
	ErrConnectTO = &Failure{Msg: "backend timed out", Timeout: true, NotSent: true}
	// ErrTLS: the TLS handshake with an https backend failed (its certificate, its
	// protocol versions): nothing of the request was sent.
	ErrTLS       = &Failure{Msg: "backend failed: TLS handshake failed", NotSent: true}
	ErrClosedEOF = &Failure{Msg: "backend failed: connection closed before a complete answer"}
	ErrConnReset = &Failure{Msg: "backend failed: connection error"}
	// ErrNotSent: the connection failed under the request's first write; a pooled
	// connection the backend closed just then took nothing.
	ErrNotSent   = &Failure{Msg: "backend failed: connection error", NotSent: true}
	ErrMalformed = &Failure{Msg: "backend failed: malformed answer"}
	ErrTimeout   = &Failure{Msg: "backend timed out", Timeout: true}
	// ErrH2CUpgrade: an upgrade (WebSocket) needs HTTP/1.1, and the backend speaks
	// HTTP/2 only (h2c://); nothing was sent.
	ErrH2CUpgrade = &Failure{Msg: "backend failed: it speaks HTTP/2 only (h2c), and an upgrade needs HTTP/1.1", NotSent: true}
)

// statusText is the reason phrase of the proxy's own answers.
func statusText(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 408:
		return "Request Timeout"
	case 413:
		return "Request Entity Too Large"
	case 431:
		return "Request Header Fields Too Large"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "Error"
}
