// Package proxy is the data plane: it admits each client request through the worker
// pool, asks the strategy for a backend, forwards the request over a pooled keep-alive
// connection and streams the answer back.
package proxy

import (
	"bytes"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"

	"github.com/switchyard-lb/switchyard/core/backend"
	ex "github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/pool"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// Settings are the live-changeable knobs of the request path.
type Settings struct {
	StatusPath string // answered by Status, GET or POST
	Retries    int    // more backends a failed request may try
	// ReuseAlways lets a client connection's first request take an idle backend
	// connection another client used last (load_balancer.reuse "always"); by default
	// ("safe") it goes on a connection of its own.
	ReuseAlways    bool
	MaxHeaders     int           // more request header fields get 431
	ConnectTimeout time.Duration // dialing a backend for a WebSocket
	Idle           time.Duration // longest silence of an upgraded (WebSocket) connection
	AccessLog      *AccessLog    // one line per request; nil: off
}

// OutcomeObserver hears the result of every request sent to a backend; it must not
// block (passive health checks implement it).
type OutcomeObserver interface {
	Observe(b *backend.Backend, failed bool, errMsg string)
}

// Config builds a Handler.
type Config struct {
	Pool     *pool.Pool
	Backends *backend.Set
	Picker   strategy.Picker
	Settings Settings
	// Outcomes hears each request's result (nil: nobody).
	Outcomes OutcomeObserver
	// Status answers the status path.
	Status fasthttp.RequestHandler
	// Own counts the answers made without a backend (nil: the Handler's own memory).
	Own *backend.Answers
	Log hclog.Logger
}

// Handler proxies client requests to the backends.
//
// Handler is safe for use by multiple goroutines; its picker and settings may be
// replaced while it serves.
type Handler struct {
	pool     *pool.Pool
	backends *backend.Set
	picker   atomic.Pointer[pickerBox]
	settings atomic.Pointer[Settings]
	status   fasthttp.RequestHandler
	outcomes OutcomeObserver
	log      hclog.Logger
	// own counts the answers no backend gave: shed, no backend, refused requests.
	own *backend.Answers
}

// OwnAnswers counts the answers the proxy made without a backend.
func (h *Handler) OwnAnswers() *backend.Answers { return h.own }

// pickerBox lets an interface live in an atomic.Pointer.
type pickerBox struct{ strategy.Picker }

// New returns a Handler.
func New(cfg Config) *Handler {
	h := &Handler{pool: cfg.Pool, backends: cfg.Backends, status: cfg.Status, outcomes: cfg.Outcomes, log: cfg.Log, own: cfg.Own}
	if h.own == nil {
		h.own = new(backend.Answers)
	}
	if h.outcomes == nil {
		h.outcomes = nobody{}
	}
	h.SetPicker(cfg.Picker)
	h.SetSettings(cfg.Settings)
	return h
}

// SetPicker makes p choose the backends of requests from now on.
func (h *Handler) SetPicker(p strategy.Picker) { h.picker.Store(&pickerBox{p}) }

// Picker returns the current picker.
func (h *Handler) Picker() strategy.Picker { return h.picker.Load().Picker }

// SetSettings applies s to requests from now on.
func (h *Handler) SetSettings(s Settings) { h.settings.Store(&s) }

// ServeHTTP proxies one request. It reads top to bottom: status page, limits,
// admission, pick, forward (with retries), answer. Every path answers the client.
func (h *Handler) ServeHTTP(ctx *fasthttp.RequestCtx) {
	s := h.settings.Load()
	req := &ctx.Request
	if c, ok := ctx.Conn().(*clientConn); ok {
		c.headerEnd.next() // this request's header is read: scan the next one's
	}

	// 1. The status page belongs to the proxy.
	if (req.Header.IsGet() || req.Header.IsPost()) && string(ctx.Path()) == s.StatusPath {
		h.status(ctx)
		return
	}

	// 2. Refuse what no backend should see.
	if req.Header.Len() > s.MaxHeaders {
		WriteError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, CodeHeaderTooLarge, "too many request header fields")
		ctx.SetConnectionClose()
		h.finishOwn(ctx, 0)
		return
	}
	if msg := smuggling(&req.Header); msg != "" {
		WriteError(ctx, fasthttp.StatusBadRequest, CodeBadRequest, msg)
		ctx.SetConnectionClose()
		h.finishOwn(ctx, 0)
		return
	}

	if hasUserinfo(req) {
		WriteError(ctx, fasthttp.StatusBadRequest, CodeBadRequest, "user information in the request target or Host")
		ctx.SetConnectionClose()
		h.finishOwn(ctx, 0)
		return
	}

	// 3. Admission: a worker, or 503 at once when the queue is full.
	if err := h.pool.Acquire(); err != nil {
		writeShed(ctx, err)
		h.finishOwn(ctx, 0)
		return
	}

	// 4. The request as the backend will see it. The client's Connection: close
	// concerns the client's connection only (RFC 9112 section 9.6).
	clientClose := req.Header.ConnectionClose()
	req.Header.ResetConnectionClose()
	var proto []byte
	if isUpgrade(&req.Header) {
		proto = append(proto, req.Header.Peek("Upgrade")...)
	}
	prepareRequest(ctx, &req.Header)
	// What the strategy sees, and the backends tried, live in a pooled state: through
	// the Picker interface they would escape to the heap on every request.
	st := statePool.Get().(*requestState)
	defer func() {
		// Keep no backend, request or body alive.
		st.tried, st.view, st.body = [4]*backend.Backend{}, strategy.Request{}, clientBody{}
		statePool.Put(st)
	}()
	var body *clientBody // the streamed request body, nil when none
	if req.IsBodyStream() {
		if c, ok := ctx.Conn().(*clientConn); ok {
			c.streamBody()
		}
		// The server keeps draining and releasing its own stream; the request
		// reads it through st.body, which notes a failure on the client's side.
		size := req.Header.ContentLength()
		st.body = clientBody{r: req.BodyStream(), left: max(size, -1)}
		body = &st.body
		req.SetBodyStream(body, size)
	}
	st.view = strategy.Request{Method: req.Header.Method(), Host: req.Header.Host(), Path: ctx.Path(), Header: &req.Header}
	st.view.RemoteAddr, _ = ctx.RemoteIP().AppendText(st.addr[:0])

	// 5. Pick and forward, retrying on another backend (never the same one twice
	// while another exists) when the request can be sent again safely: a backend that
	// could not be reached got none of it, whatever the method; otherwise only an
	// idempotent request whose body is still at hand (DESIGN section 3).
	replayable := ex.Idempotent(req.Header.Method()) && !req.IsBodyStream()
	picker := h.picker.Load().Picker
	up := fasthttp.AcquireResponse()
	up.Header.SetNoDefaultContentType(true) // a Content-Type only if the backend sent one
	exclude := st.tried[:0]
	for attempt := 0; ; attempt++ {
		b, err := picker.Pick(&st.view, h.backends.Snapshot().Candidates, exclude)
		if err != nil {
			fasthttp.ReleaseResponse(up)
			h.pool.Release()
			writeNoBackend(ctx, err)
			h.finishOwn(ctx, attempt)
			return
		}
		if proto != nil {
			fasthttp.ReleaseResponse(up)
			h.tunnel(ctx, b, proto, s, body)
			return
		}
		setScheme(req, b)
		x := acquireExchange(h, b, picker, up)
		if s.ReuseAlways || ctx.ConnRequestNum() > 1 {
			err = b.Do(req, up)
		} else {
			// A client connection's first request takes no idle connection that
			// another client used last (load_balancer.reuse "safe").
			err = b.DoFresh(req, up)
		}
		if err == nil {
			x.ctx, x.attempts, x.in = ctx, attempt+1, bytesIn(req, body)
			x.answer(ctx, clientClose)
			return
		}
		// A request body that the client broke off or framed badly is the client's
		// fault: it answers for it, and the backend's standing does not move.
		if cerr := clientFault(err, body); cerr != nil {
			x.abandon()
			h.log.Debug("client request body failed", "backend", b.URL, "error", err)
			fasthttp.ReleaseResponse(up)
			h.pool.Release()
			writeClientFault(ctx, cerr)
			h.finishOwn(ctx, attempt+1)
			return
		}
		x.fail(err)
		if attempt >= s.Retries || !notSent(err) && !replayable {
			h.log.Debug("backend failed", "backend", b.URL, "error", err)
			fasthttp.ReleaseResponse(up)
			h.pool.Release()
			writeUpstreamError(ctx, err)
			h.finish(ctx, b.Answers, b.URL, int64(len(ctx.Response.Body())), attempt+1, bytesIn(req, body))
			return
		}
		exclude = append(exclude, b)
	}
}

// finishOwn records an answer the proxy made itself, after attempts tries.
func (h *Handler) finishOwn(ctx *fasthttp.RequestCtx, attempts int) {
	h.finish(ctx, h.own, "", int64(len(ctx.Response.Body())), attempts, int64(max(ctx.Request.Header.ContentLength(), 0)))
}

// bytesIn is the size of the request body read so far.
func bytesIn(req *fasthttp.Request, body *clientBody) int64 {
	if body != nil {
		return body.n
	}
	return int64(len(req.Body()))
}

// requestState is the per-request scratch of ServeHTTP, pooled.
type requestState struct {
	view  strategy.Request
	addr  [64]byte
	tried [4]*backend.Backend
	body  clientBody
}

var statePool = sync.Pool{New: func() any { return new(requestState) }}

// nobody is the OutcomeObserver that hears nothing.
type nobody struct{}

func (nobody) Observe(*backend.Backend, bool, string) {}

// setScheme points req at b's scheme, which the client for b checks.
func setScheme(req *fasthttp.Request, b *backend.Backend) {
	if b.Client().IsTLS {
		req.URI().SetScheme("https")
	} else {
		req.URI().SetScheme("http")
	}
}

// smuggling names what makes a request's framing ambiguous, or "" when it is sound.
// A body announced both by Content-Length and Transfer-Encoding is refused rather
// than guessed at (RFC 9112 section 6.3); the server already refuses conflicting
// Content-Lengths. Only chunked requests are scanned, so the common case costs nothing.
func smuggling(h *fasthttp.RequestHeader) string {
	if h.ContentLength() != -1 { // not chunked
		return ""
	}
	for line := range bytes.SplitSeq(h.RawHeaders(), []byte("\n")) {
		name, _, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("Content-Length")) {
			return "both Content-Length and Transfer-Encoding are set"
		}
	}
	return ""
}
