package proxy

import (
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/strategy"
	"github.com/switchyard-lb/switchyard/sdk"
)

// exchange is one request's round trip to one backend. When the backend answers, it
// becomes the body stream of the client's response: the server reads the backend's
// body through it as it writes to the client, and closes it at the end, which is
// when the request is done: the worker, the backend's in-flight slot and the
// upstream connection are released and the outcome recorded.
type exchange struct {
	h      *Handler
	b      *backend.Backend
	picker strategy.Picker
	up     *fasthttp.Response
	body   io.Reader // up's body stream
	start  time.Time
	status int
	err    error            // first error reading the backend's body
	pre    []byte           // body bytes read already, sent before the rest
	small  *[smallBody]byte // kept across uses: a small body read whole, or pre

	// For the access log and metrics, once the backend answered.
	ctx      *fasthttp.RequestCtx
	attempts int
	in, out  int64 // request body bytes sent, response body bytes read
}

var exchangePool = sync.Pool{New: func() any { return new(exchange) }}

// acquireExchange starts a request to b whose answer will be read into up.
func acquireExchange(h *Handler, b *backend.Backend, p strategy.Picker, up *fasthttp.Response) *exchange {
	x := exchangePool.Get().(*exchange)
	small := x.small
	if small == nil {
		small = new([smallBody]byte)
	}
	*x = exchange{h: h, b: b, picker: p, up: up, start: time.Now(), small: small}
	b.Start()
	return x
}

// fail records a round trip that got no answer; the caller decides what follows.
func (x *exchange) fail(err error) {
	x.err = err
	x.done()
}

// smallBody is the largest response body that is read whole before the answer goes
// out, when it has arrived with its header: header and body then leave in one write.
const smallBody = 4 << 10

// answer turns the backend's response into the client's. Its body streams: each
// piece reaches the client as the backend sends it (DESIGN section 11), except a
// small Content-Length body that arrived with its header, which goes out with it.
func (x *exchange) answer(ctx *fasthttp.RequestCtx, clientClose bool) {
	up := x.up
	x.status = up.StatusCode()
	prepareResponse(&up.Header)
	if err := copyResponseHeader(&ctx.Response.Header, &up.Header); err != nil {
		up.Header.CopyTo(&ctx.Response.Header) // unreachable: fasthttp wrote it
	}
	// The backend's Connection: close ends the upstream connection only.
	ctx.Response.Header.ResetConnectionClose()
	if clientClose {
		ctx.SetConnectionClose()
	}
	x.body = up.BodyStream()
	if x.body == nil { // no body: HEAD, 204, 304
		dropBodyFraming(&ctx.Response.Header, x.status)
		ctx.Response.SkipBody = true
		x.release()
		return
	}
	size := up.Header.ContentLength()
	if size < 0 {
		// Chunked, or until close: the client gets chunks, each flushed as it comes.
		ctx.Response.SetBodyStream(x, -1)
		return
	}
	if small := x.small[:]; size <= len(small) {
		// One read takes what arrived with the header, without waiting for more.
		n, err := x.body.Read(small[:size])
		if n == size && err == nil {
			_, err = x.body.Read(small[size:size]) // the end, so the connection is reused
		}
		if n == size && err == io.EOF {
			ctx.Response.SetBodyRaw(nil)
			ctx.Response.AppendBody(small[:n])
			x.out = int64(n)
			x.release()
			return
		}
		x.pre = small[:n] // the rest is still on its way: stream it
		switch {
		case err == io.EOF: // the backend stopped short of its Content-Length
			x.err = io.ErrUnexpectedEOF
		case err != nil:
			x.err = err
		}
	}
	// The header leaves at once; the body then goes through clientConn.ReadFrom,
	// which writes each read as it returns.
	ctx.Response.ImmediateHeaderFlush = true
	ctx.Response.SetBodyStream(x, size)
}

// Read reads the backend's body for the client.
func (x *exchange) Read(p []byte) (int, error) {
	if len(x.pre) > 0 {
		n := copy(p, x.pre)
		x.pre = x.pre[n:]
		x.out += int64(n)
		return n, nil
	}
	if x.err != nil {
		return 0, x.err
	}
	n, err := x.body.Read(p)
	x.out += int64(n)
	if err == io.EOF && x.ctx != nil {
		copyTrailers(&x.ctx.Response.Header, &x.up.Header) // the chunked body's trailers
	}
	if err != nil && err != io.EOF && x.err == nil {
		x.err = err
	}
	return n, err
}

// CloseWithError ends the exchange once the server has written the response, or
// failed to (werr): a connection with unread or unwritten body is not reused.
func (x *exchange) CloseWithError(werr error) error {
	// A client that went away is not the backend's failure: werr is not recorded.
	if c, ok := x.body.(fasthttp.ReadCloserWithError); ok {
		_ = c.CloseWithError(werr)
	}
	x.release()
	return nil
}

// abandon ends a round trip that the client broke off: nothing is recorded against
// the backend or reported to the strategy.
func (x *exchange) abandon() {
	x.b.Abandon()
	*x = exchange{small: x.small}
	exchangePool.Put(x)
}

// release ends the exchange: outcome recorded, upstream response and worker released.
func (x *exchange) release() {
	h, up := x.h, x.up
	x.done()
	if x.ctx != nil {
		h.finish(x.ctx, x.b.Answers, x.b.URL, x.out, x.attempts, x.in)
	}
	fasthttp.ReleaseResponse(up)
	h.pool.Release()
	*x = exchange{small: x.small}
	exchangePool.Put(x)
}

// done records the outcome on the backend and with the strategy.
func (x *exchange) done() {
	latency := time.Since(x.start)
	failed := x.err != nil || x.status >= 500
	x.b.Finish(latency, failed)
	o := sdk.Outcome{URL: x.b.URL, Status: x.status, Latency: latency}
	if x.err != nil {
		o.Err = x.err.Error()
	} else if failed {
		o.Err = "status " + strconv.Itoa(x.status)
	}
	x.h.outcomes.Observe(x.b, failed, o.Err)
	x.picker.Observe(x.b, o)
}

// Interface guards
var _ fasthttp.ReadCloserWithError = (*exchange)(nil)
