package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-lb/switchyard/core/backend"
	ex "github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/pool"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// The error codes of the proxy's own answers are the exchange's (ex.Code*).
const (
	CodeQueueFull      = ex.CodeQueueFull
	CodeQueueTimeout   = ex.CodeQueueTimeout
	CodeNoBackend      = ex.CodeNoBackend
	CodeBackendFailed  = ex.CodeBackendFailed
	CodeBackendTimeout = ex.CodeBackendTimeout
	CodeBadRequest     = ex.CodeBadRequest
	CodeHeaderTooLarge = ex.CodeHeaderTooLarge
	CodeShuttingDown   = ex.CodeShuttingDown
)

// WriteError answers ctx with the proxy's JSON error body {"error": msg, "code": code}.
func WriteError(ctx *fasthttp.RequestCtx, status int, code, msg string) {
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	_, _ = ctx.Response.BodyWriter().Write(ex.ErrorBody(code, msg))
}

// writeShed answers a request the pool refused: 503 with Retry-After.
func writeShed(ctx *fasthttp.RequestCtx, err error) {
	code, msg := CodeQueueFull, "load balancer queue is full"
	if errors.Is(err, pool.ErrQueueTimeout) {
		code, msg = CodeQueueTimeout, "timed out waiting in the load balancer queue"
	}
	WriteError(ctx, fasthttp.StatusServiceUnavailable, code, msg)
	ctx.Response.Header.Set("Retry-After", "1")
}

// writeNoBackend answers 503 when no backend can take the request.
func writeNoBackend(ctx *fasthttp.RequestCtx, err error) {
	msg := "no healthy backend available"
	if err != strategy.ErrNoBackend { // the strategy said why
		msg = err.Error()
	}
	WriteError(ctx, fasthttp.StatusServiceUnavailable, ex.NoBackendCode(err), msg)
	ctx.Response.Header.Set("Retry-After", "1")
}

// writeUpstreamError answers a failed exchange with a backend: 504 on a timeout,
// 502 otherwise. The message is the proxy's own words: an error may quote what the
// backend sent (a malformed header, a Set-Cookie), and no byte of that reaches the
// client (DESIGN section 11).
func writeUpstreamError(ctx *fasthttp.RequestCtx, err error) {
	if isTimeout(err) {
		WriteError(ctx, fasthttp.StatusGatewayTimeout, CodeBackendTimeout, "backend timed out")
		return
	}
	WriteError(ctx, fasthttp.StatusBadGateway, CodeBackendFailed, upstreamMessage(err))
}

// upstreamMessage says in fixed words what went wrong with a backend.
func upstreamMessage(err error) string {
	var op *net.OpError
	switch {
	case notSent(err):
		return "backend failed: could not connect"
	case errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "backend failed: connection closed before a complete answer"
	case errors.As(err, &op):
		return "backend failed: connection error"
	}
	return "backend failed: malformed answer"
}

// clientFault returns the client's error when err, a failed exchange with a backend,
// came from the client's side: reading its request body failed (body is nil when
// there was none to stream). It returns nil when the backend is to blame.
func clientFault(err error, body *clientBody) error {
	if body == nil || body.err == nil {
		return nil
	}
	return body.err
}

// writeClientFault answers a request whose body the client broke: 408 when it
// stalled, 400 otherwise; the connection closes, its framing being lost. A client
// that went away does not read it.
func writeClientFault(ctx *fasthttp.RequestCtx, err error) {
	if isTimeout(err) {
		WriteError(ctx, fasthttp.StatusRequestTimeout, CodeBadRequest, "request body not received in time")
	} else {
		WriteError(ctx, fasthttp.StatusBadRequest, CodeBadRequest, "malformed or incomplete request body")
	}
	ctx.SetConnectionClose()
}

// isTimeout reports whether err is a deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, fasthttp.ErrDialTimeout) || (errors.As(err, &ne) && ne.Timeout())
}

// notSent reports whether err happened before any byte of the request reached the
// backend (the dial failed), so the request may go to another backend whatever its
// method (DESIGN section 3).
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		errors.Is(err, fasthttp.ErrNoFreeConns) || errors.Is(err, backend.ErrStaleConn)
}

// ServerError answers the errors fasthttp's server meets before the handler runs:
// malformed requests and oversized headers.
func ServerError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		WriteError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, CodeHeaderTooLarge, "request header too large")
	case isTimeout(err):
		WriteError(ctx, fasthttp.StatusRequestTimeout, CodeBadRequest, "request not received in time")
	default:
		// fasthttp quotes the raw request after "buffer size=": keep it out of answers.
		msg, _, _ := strings.Cut(err.Error(), ": buffer size=")
		msg = strings.TrimPrefix(msg, "error when reading request headers: ")
		WriteError(ctx, fasthttp.StatusBadRequest, CodeBadRequest, "malformed request: "+msg)
	}
	ctx.SetConnectionClose()
}
