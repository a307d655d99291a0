package nethttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/h1"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// request is one request's scratch, pooled: what the strategy sees and the backends
// tried would otherwise escape to the heap on every request. What the transport may
// still read after the round trip returns (the request body, sent by another
// goroutine) is not in it.
type request struct {
	view  strategy.Request
	hdr   headerView
	tried [4]*backend.Backend
	out   http.Request
	url   url.URL
	copy  []byte
	body  *clientBody // this request's, not pooled; nil when it has none
}

var requests = sync.Pool{New: func() any { return &request{copy: make([]byte, 32<<10)} }}

// ServeHTTP proxies one request. It reads top to bottom: ACME challenge, redirect,
// status page, refusals, admission, pick, forward (with retries), answer. Every path
// answers the client.
func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.cfg.Challenge != nil && !isUpgrade(r) && f.cfg.Challenge(w, r) {
		return // the gate holds nothing back after a request that is no upgrade
	}
	p := f.cfg.Proxy
	s := p.Settings()
	c, _ := r.Context().Value(connKey{}).(*conn)
	if c == nil {
		c = &conn{}
	}
	first := c.requests.Add(1) == 1
	x := &exchangeState{f: f, w: w, r: r, c: c, start: time.Now()}
	if f.cfg.RedirectHTTPS {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		x.reply(&exchange.Reply{Status: http.StatusPermanentRedirect}, []byte("https://"+host+r.RequestURI))
		return
	}
	upgrade := isUpgrade(r)
	if upgrade {
		// The gate holds what follows an upgrade request until it knows how the
		// request was answered: as anything but a tunnel, unless tunnel says so.
		defer func() {
			if !x.tunneled {
				c.g.decide(false)
			}
		}()
	}

	// 1. The status page belongs to the proxy.
	if (r.Method == http.MethodGet || r.Method == http.MethodPost) && r.URL.Path == s.StatusPath {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if r.ContentLength != 0 && !f.skipBody(w, r) {
			closeAfter(w.Header(), r)
		}
		_, _ = w.Write(f.cfg.Status())
		return
	}

	// 2. Refuse what no backend should see (h1 refused the rest of HTTP/1.1 at the
	// gate; an HTTP/2 header section is held to the same limits here).
	if r.URL.User != nil || strings.IndexByte(r.Host, '@') >= 0 {
		x.own(exchange.UserInfo, true)
		return
	}
	if r.ProtoMajor == 2 {
		if e := f.h2HeadTooLarge(r); e != nil {
			x.own(exchange.Malformed(e), false)
			return
		}
	}

	// 3. Route: the host the request goes on with (an absolute target's authority,
	// else Host) and its path choose the route; a route the proxy answers itself
	// takes no worker.
	target, host := r.RequestURI, r.Host
	if origin, authority, ok := exchange.OriginForm([]byte(target)); ok {
		target, host = string(origin), string(authority)
	}
	hv := headerView(r.Header)
	rt := p.Table().Route([]byte(r.Method), []byte(host), exchange.Path([]byte(target)), &hv)
	x.route = rt
	switch rt.Action {
	case exchange.NoRoute:
		x.own(exchange.NoRouteAnswer, false)
		return
	case exchange.DoRespond:
		x.reply(&rt.Reply, nil)
		return
	case exchange.DoRedirect:
		x.reply(&exchange.Reply{Status: rt.Redirect.Status}, rt.Redirect.AppendLocation(nil, []byte(host), []byte(target)))
		return
	}
	u := rt.Upstream

	// 4. Admission: a worker, or 503 at once when the queue is full.
	if err := p.Pool().Acquire(); err != nil {
		x.own(exchange.Shed(err), true) // as the event loop: the connection ends
		return
	}
	x.worker = true
	defer x.release()

	st := requests.Get().(*request)
	defer func() {
		st.tried, st.view, st.body, st.out, st.url = [4]*backend.Backend{}, strategy.Request{}, nil, http.Request{}, url.URL{}
		requests.Put(st)
	}()
	x.st = st
	st.hdr = headerView(r.Header)
	st.view = strategy.Request{Method: []byte(r.Method), Host: []byte(r.Host), Path: []byte(r.URL.Path), RemoteAddr: c.ip, Header: &st.hdr}
	var body io.ReadCloser = http.NoBody
	if r.ContentLength != 0 {
		st.body = &clientBody{r: r.Body, rc: http.NewResponseController(w), idle: f.cfg.Timeouts.BodyIdle}
		body = st.body
		// The answer may start before the upload ends, and the upload goes on to
		// the backend meanwhile: without this the server would read the rest of
		// the body itself, and close it, at the answer's first write.
		_ = st.body.rc.EnableFullDuplex()
	}
	bodiless := r.ContentLength == 0
	grpc := isGRPC(r)

	// A request its client already cancelled (an HTTP/2 stream reset while it
	// waited) costs no backend anything.
	if r.Context().Err() != nil {
		panic(http.ErrAbortHandler)
	}

	// 5. Pick among the route's pool and forward, retrying on another backend when
	// the request can be sent again safely (exchange.MayRetry).
	picker := u.Picker()
	exclude := st.tried[:0]
	for attempt := 1; ; attempt++ {
		b, err := picker.Pick(&st.view, u.Backends().Snapshot().Candidates, exclude)
		if err != nil {
			x.attempts = attempt - 1
			x.own(exchange.NoBackend(err), true) // as the event loop: the connection ends
			return
		}
		x.b, x.picker, x.attempts = b, picker, attempt
		scheme := b.Key[:strings.IndexByte(b.Key, ':')]
		if upgrade && scheme == "h2c" {
			// Not the backend's fault: the request needs what it does not speak.
			x.own(exchange.ErrH2CUpgrade.Answer(), true)
			return
		}
		out := f.outRequest(st, w, rt, r, b, c, body, upgrade)
		if upgrade {
			f.tunnel(x, out)
			return
		}
		if grpc && scheme == "http" {
			x.grpcUnavailable("the backend speaks HTTP/1.1 only; gRPC needs HTTP/2 (h2c:// or https://)")
			return
		}
		b.Start()
		sent := time.Now()
		ts := f.transportsFor(u.TLS())
		var tr http.RoundTripper = ts.pooled
		switch {
		case !s.ReuseAlways && first && !grpc:
			// A client connection's first request takes no idle connection that
			// another client used last (load_balancer.reuse "safe"). A gRPC call
			// needs HTTP/2, which the pooled connections speak where the backend
			// offers it: each stream is its own request there.
			tr = ts.fresh
		}
		var resp *http.Response
		if scheme == "h2c" {
			resp, err = f.roundTripH2C(out)
		} else {
			resp, err = tr.RoundTrip(out)
		}
		if err == nil && grpc && resp.ProtoMajor < 2 {
			resp.Body.Close()
			b.Abandon()
			x.grpcUnavailable("the backend answered in HTTP/1.1; gRPC needs HTTP/2")
			return
		}
		if err == nil && (st.body == nil || st.body.failed() == nil) {
			x.answer(resp, sent)
			return
		}
		if err == nil { // an answer to a body the client broke off: the client's fault
			resp.Body.Close()
		}
		if st.body != nil && st.body.failed() != nil {
			// A request body that the client broke off is the client's fault: the
			// backend's standing does not move.
			b.Abandon()
			x.clientFault(st.body.failed())
			return
		}
		if r.Context().Err() != nil {
			// The client left before the answer: not the backend's failure, and
			// nobody to answer (the server must not answer for us either).
			b.Abandon()
			panic(http.ErrAbortHandler)
		}
		fl := failure(err)
		p.Log().Debug("backend failed", "backend", b.URL, "error", err)
		p.Record(picker, b, 0, fl.Msg, time.Since(sent))
		if !exchange.MayRetry(attempt, u.Retries(), fl.NotSent, st.view.Method, bodiless) {
			x.backendFailed(fl.Answer())
			return
		}
		exclude = append(exclude, b)
	}
}

// outRequest is the request as backend b will see it: the client's with the header
// rules of the exchange applied (hop-by-hop and forwarded fields, Host).
func (f *Front) outRequest(st *request, w http.ResponseWriter, rt *exchange.Route, r *http.Request, b *backend.Backend, c *conn, body io.ReadCloser, upgrade bool) *http.Request {
	scheme, host, _ := strings.Cut(b.Key, "://")
	st.url = url.URL{Scheme: scheme, Host: host}
	target := r.RequestURI
	clientHost := r.Host
	if origin, authority, ok := exchange.OriginForm([]byte(target)); ok {
		target, clientHost = string(origin), string(authority)
	}
	if rt.StripPrefix != "" {
		target = string(rt.Strip(nil, []byte(target)))
	}
	if clientHost == "" { // HTTP/1.0 without Host: the backend's address stands in
		clientHost = host
	}
	// The path goes on as the client wrote it: Path and RawPath, never Opaque,
	// which would turn a target such as //other/x into an absolute one.
	rawPath, query, hasQuery := strings.Cut(target, "?")
	st.url.RawQuery, st.url.ForceQuery = query, hasQuery
	if path, err := url.PathUnescape(rawPath); err == nil {
		st.url.Path, st.url.RawPath = path, rawPath
	} else {
		st.url.Path = rawPath
	}
	h := make(http.Header, len(r.Header)+4)
	connection := r.Header["Connection"]
	rules := &rt.Request
	for name, values := range r.Header {
		if dropRequestField(name, connection, upgrade) || !rules.Empty() && rules.Drops([]byte(name)) {
			continue
		}
		h[name] = values
	}
	for _, fd := range rules.Set {
		h[fd.Name] = []string{fd.Value}
	}
	if upgrade {
		h["Connection"] = []string{"Upgrade"}
	}
	if isGRPC(r) {
		// gRPC servers ask for it: the client said it takes trailers.
		h["Te"] = []string{"trailers"}
	}
	if ua := r.Header["User-Agent"]; len(ua) > 0 {
		h["User-Agent"] = ua
	} else {
		h["User-Agent"] = []string{""} // none: the transport adds none either
	}
	proto := "http"
	if r.TLS != nil || c.tls {
		proto = "https"
	}
	h["X-Forwarded-For"] = []string{string(c.ip)}
	h["X-Forwarded-Proto"] = []string{proto}
	if clientHost != "" {
		h["X-Forwarded-Host"] = []string{clientHost}
	}
	st.out = http.Request{
		Method: r.Method, URL: &st.url, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: body, ContentLength: r.ContentLength, Host: clientHost,
	}
	if r.ContentLength < 0 {
		// Chunked: the client's trailers, read with the body's end, go on after it
		// (see clientBody.Read).
		st.out.TransferEncoding = []string{"chunked"}
		st.out.Trailer = http.Header{}
		st.body.trailer, st.body.from = st.out.Trailer, r
	}
	if body == http.NoBody {
		st.out.ContentLength = 0
	}
	return st.out.WithContext(httptrace.WithClientTrace(r.Context(), interim(w)))
}

// dropRequestField reports whether the request field name stays on this hop: the
// exchange's rules (exchange.HopByHop, Forwarded, ContentLength), and what the
// client's Connection names unless it is protected. Host goes in http.Request.Host.
func dropRequestField(name string, connection []string, upgrade bool) bool {
	if upgrade && name == "Upgrade" {
		return false // the upgrade goes on; it says so itself
	}
	n := []byte(name)
	if name == "Host" || name == "User-Agent" || exchange.ContentLength(n) || exchange.Forwarded(n) || exchange.HopByHop(n, true) {
		return true
	}
	return len(connection) > 0 && listed(connection, name) && !exchange.Protected(n)
}

// dropResponseField is dropRequestField for an answer's fields.
func dropResponseField(name string, connection []string) bool {
	n := []byte(name)
	if exchange.HopByHop(n, false) {
		return true
	}
	return len(connection) > 0 && listed(connection, name) && !exchange.Protected(n)
}

// listed reports whether the Connection values list name.
func listed(connection []string, name string) bool {
	for _, v := range connection {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), name) {
				return true
			}
		}
	}
	return false
}

// isUpgrade reports whether r asks to switch protocols (WebSocket): an Upgrade field
// is present and Connection names it, as h1 reads it (and the gate holds it).
func isUpgrade(r *http.Request) bool {
	return len(r.Header["Upgrade"]) > 0 && listed(r.Header["Connection"], "upgrade")
}

// exchangeState is one request on its way: what the answer and the outcome need.
type exchangeState struct {
	f        *Front
	w        http.ResponseWriter
	r        *http.Request
	c        *conn
	st       *request
	b        *backend.Backend
	picker   strategy.Picker
	route    *exchange.Route // nil before the request is routed
	start    time.Time
	attempts int
	status   int
	out      int64
	worker   bool // a worker of the pool is held
	tunneled bool // the request became a tunnel (the gate was told)
}

// release gives the request's worker back, once.
func (x *exchangeState) release() {
	if x.worker {
		x.worker = false
		x.f.cfg.Proxy.Pool().Release()
	}
}

// own answers with the proxy's own error, no backend involved.
func (x *exchangeState) own(a exchange.Answer, closing bool) {
	x.write(a, closing)
	x.finish(x.f.cfg.Proxy.OwnAnswers(), "")
}

// backendFailed answers a request whose last backend failed.
func (x *exchangeState) backendFailed(a exchange.Answer) {
	x.write(a, false)
	x.finish(x.b.Answers, x.b.URL)
}

// clientFault answers a request whose body the client broke: 408 when it stalled,
// 400 otherwise; the connection closes, its framing being lost.
func (x *exchangeState) clientFault(err error) {
	a := exchange.BodyCut
	switch {
	case isTimeout(err):
		a = exchange.BodyTimeout
	case errors.Is(err, errBadChunk):
		a = exchange.BodyChunked
	}
	x.write(a, true)
	x.finish(x.f.cfg.Proxy.OwnAnswers(), "")
}

func (x *exchangeState) write(a exchange.Answer, closing bool) {
	h := x.w.Header()
	h["Content-Type"] = []string{"application/json"}
	noDefaults(h)
	if a.RetryAfter {
		h["Retry-After"] = []string{"1"}
	}
	if closing {
		closeAfter(h, x.r)
	}
	body := a.Body()
	x.status, x.out = a.Status, int64(len(body))
	x.w.WriteHeader(a.Status)
	_, _ = x.w.Write(body)
}

// finish records the answer (exchange.Proxy.Finish).
func (x *exchangeState) finish(answers *backend.Answers, url string) {
	var in int64
	if x.st != nil && x.st.body != nil {
		in = x.st.body.read()
	}
	var pool string
	if x.route != nil {
		pool = x.route.Pool() // a request routed to a pool names it, answered by a backend or not
	}
	x.f.cfg.Proxy.Finish(answers, &exchange.Entry{Start: x.start, Client: x.c.ip, Method: []byte(x.r.Method),
		Path: []byte(x.r.RequestURI), Proto: x.r.Proto, Status: x.status, Backend: url, Pool: pool, In: in, Out: x.out,
		Duration: time.Since(x.start), Attempts: x.attempts})
}

// reply sends a route's own answer (respond, redirect to location), counted among
// the proxy's own. A body that comes with the request is skipped, as for the status
// page.
func (x *exchangeState) reply(rp *exchange.Reply, location []byte) {
	h := x.w.Header()
	noDefaults(h)
	if len(location) > 0 {
		h["Location"] = []string{string(location)}
	}
	if len(rp.Body) > 0 {
		h["Content-Type"] = []string{rp.ContentType}
	}
	if !rp.Bodiless() {
		h["Content-Length"] = []string{itoa(int64(len(rp.Body)))}
	}
	if x.r.ContentLength != 0 && (expectsContinue(x.r) || !x.f.skipBody(x.w, x.r)) {
		// A body not sent yet (the client waits for 100 Continue, which an answer
		// without a backend never asks for) or not here in time: the connection
		// ends with the answer, as from the event loop.
		closeAfter(h, x.r)
	}
	x.status = rp.Status
	x.w.WriteHeader(rp.Status)
	if x.r.Method != http.MethodHead && !rp.Bodiless() {
		n, _ := x.w.Write(rp.Body)
		x.out = int64(n)
	}
	x.finish(x.f.cfg.Proxy.OwnAnswers(), "")
}

// answer sends the backend's answer on: its head at once, its body as it comes.
func (x *exchangeState) answer(resp *http.Response, sent time.Time) {
	defer resp.Body.Close()
	x.status = resp.StatusCode
	h := x.w.Header()
	connection := resp.Header["Connection"]
	rules := &x.route.Response
	for name, values := range resp.Header {
		if !dropResponseField(name, connection) && (rules.Empty() || !rules.Drops([]byte(name))) {
			h[name] = values
		}
	}
	for _, fd := range rules.Set {
		h[fd.Name] = []string{fd.Value}
	}
	noDefaults(h)
	bodiless := resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified
	switch {
	case bodiless:
		delete(h, "Content-Length")
	case resp.ContentLength >= 0:
		h["Content-Length"] = []string{itoa(resp.ContentLength)}
	case x.r.Method != http.MethodHead:
		delete(h, "Content-Length") // chunked, or until the backend closes
		if len(resp.TransferEncoding) == 0 {
			// Until the backend closes: the client's connection ends with it, as
			// the event loop ends it.
			closeAfter(h, x.r)
		}
	}
	for name := range resp.Trailer {
		h.Add("Trailer", name)
	}
	if x.r.Header.Get("Connection") == "close" || x.r.Close {
		closeAfter(h, x.r)
	}
	x.w.WriteHeader(resp.StatusCode)
	err, clientGone := x.copyBody(resp)
	for name, values := range resp.Trailer {
		if !framingTrailer(name) {
			h[http.TrailerPrefix+name] = values
		}
	}
	p := x.f.cfg.Proxy
	switch {
	case clientGone:
		p.Record(x.picker, x.b, resp.StatusCode, "", time.Since(sent))
		// Nobody to answer, and the server must not end the answer as if whole.
		panic(http.ErrAbortHandler)
	case err != nil:
		fl := failure(err)
		p.Record(x.picker, x.b, resp.StatusCode, fl.Msg, time.Since(sent))
		x.finish(x.b.Answers, x.b.URL)
		// The client has part of the answer: only closing can tell it.
		panic(http.ErrAbortHandler)
	default:
		p.Record(x.picker, x.b, resp.StatusCode, "", time.Since(sent))
	}
	x.finish(x.b.Answers, x.b.URL)
}

// copyBody streams the answer's body: each piece reaches the client as the backend
// sends it. A body that arrives whole in one read leaves with the head.
func (x *exchangeState) copyBody(resp *http.Response) (err error, clientGone bool) {
	buf := x.st.copy
	rc := http.NewResponseController(x.w)
	idle := x.f.cfg.Timeouts.BodyIdle
	var stall *time.Timer
	if resp.ProtoMajor == 2 && idle > 0 {
		// An HTTP/2 answer comes on a stream, not on a connection of its own that
		// the answer gate times (see transport): a stream silent for body_idle is
		// ended here.
		stall = time.AfterFunc(idle, func() { resp.Body.Close() })
		defer stall.Stop()
	}
	for {
		if stall != nil {
			stall.Reset(idle)
		}
		n, rerr := resp.Body.Read(buf)
		// The silence timed is the backend's: the timer stops while the client
		// takes what came.
		if stall != nil && !stall.Stop() {
			return os.ErrDeadlineExceeded, false // it fired: the body is closed
		}
		if n > 0 {
			if _, werr := x.w.Write(buf[:n]); werr != nil {
				return nil, true
			}
			x.out += int64(n)
		}
		if rerr == io.EOF {
			return nil, false
		}
		if rerr != nil {
			if x.r.Context().Err() != nil {
				return nil, true // the client left: the read was called off
			}
			return rerr, false
		}
		if resp.ContentLength >= 0 && x.out >= resp.ContentLength {
			continue // the end comes with the next read, which does not block
		}
		if err := rc.Flush(); err != nil {
			return nil, true
		}
	}
}

// h2HeadTooLarge holds an HTTP/2 request's fields to load_balancer.limits, as h1
// holds an HTTP/1.1 head: too many fields, or too many bytes of them, get 431.
func (f *Front) h2HeadTooLarge(r *http.Request) *h1.Error {
	n, size := 0, len(r.Method)+len(r.RequestURI)+len(r.Host)
	for name, values := range r.Header {
		for _, v := range values {
			n++
			size += len(name) + len(v) + 4
		}
	}
	switch {
	case n > f.cfg.Limits.MaxHeaders:
		return h1.ErrTooManyHeaders
	case size > f.cfg.Limits.MaxHeaderBytes:
		return h1.ErrHeadTooLarge
	}
	return nil
}

// isGRPC reports whether r is a gRPC call (content-type application/grpc, or
// application/grpc+proto and the like).
func isGRPC(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return strings.HasPrefix(ct, "application/grpc") && (len(ct) == 16 || ct[16] == '+' || ct[16] == ';')
}

// grpcUnavailable answers a gRPC call that no backend can carry with the gRPC
// status UNAVAILABLE (14), in a trailers-only answer, rather than leave the client
// waiting.
func (x *exchangeState) grpcUnavailable(msg string) {
	h := x.w.Header()
	noDefaults(h)
	h["Content-Type"] = []string{"application/grpc"}
	h["Grpc-Status"] = []string{"14"}
	h["Grpc-Message"] = []string{url.PathEscape(msg)}
	x.status = http.StatusOK
	x.w.WriteHeader(http.StatusOK)
	x.finish(x.f.cfg.Proxy.OwnAnswers(), "")
}

// closeAfter makes the answer to r end its connection: Connection: close on
// HTTP/1.1. An HTTP/2 connection carries other requests, and ends only at shutdown.
func closeAfter(h http.Header, r *http.Request) {
	if r.ProtoMajor < 2 {
		h["Connection"] = []string{"close"}
	}
}

// expectsContinue reports whether r waits for 100 Continue before its body.
func expectsContinue(r *http.Request) bool {
	for _, v := range r.Header["Expect"] {
		if strings.EqualFold(strings.TrimSpace(v), "100-continue") {
			return true
		}
	}
	return false
}

// skipBody reads and drops the body of a request the proxy answers itself, as the
// event loop skips one, and reports whether the connection may carry another
// request: only when the whole body came within a second (bounded by body_idle) and
// was no larger than 256 KiB. A body that is not there is not waited for.
func (f *Front) skipBody(w http.ResponseWriter, r *http.Request) bool {
	rc := http.NewResponseController(w)
	wait := time.Second
	if d := f.cfg.Timeouts.BodyIdle; d > 0 && d < wait {
		wait = d
	}
	_ = rc.SetReadDeadline(time.Now().Add(wait))
	defer rc.SetReadDeadline(time.Time{})
	n, err := io.CopyN(io.Discard, r.Body, 256<<10+1)
	return err == io.EOF && n <= 256<<10
}

// noDefaults keeps the server from adding fields the answer did not have: Date, and
// a Content-Type guessed from the body.
func noDefaults(h http.Header) {
	if _, ok := h["Date"]; !ok {
		h["Date"] = nil
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil
	}
}

// framingTrailer reports whether a trailer field would frame or route the message
// (Content-Length, Transfer-Encoding, Host): it is dropped, as h1 drops it.
func framingTrailer(name string) bool {
	return strings.EqualFold(name, "Content-Length") || strings.EqualFold(name, "Transfer-Encoding") || strings.EqualFold(name, "Host")
}

func itoa(n int64) string { return string(appendInt(nil, n)) }

// clientBody is the client's request body as the backend reads it: it notes the
// client's failure, so that it is not charged to the backend, and each read has
// body_idle to make progress.
type clientBody struct {
	r io.ReadCloser
	// trailer receives from's trailers when the body ends.
	trailer http.Header
	from    *http.Request
	rc      *http.ResponseController
	idle    time.Duration
	at      time.Time
	mu      sync.Mutex // the transport reads on its own goroutine; n and err are read on the handler's
	n       int64
	err     error
	ended   bool // the body was read to its end: no deadline is set any more
}

// failed is the client's error reading the body, or nil.
func (b *clientBody) failed() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// read is the number of body bytes read so far.
func (b *clientBody) read() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

func (b *clientBody) Read(p []byte) (int, error) {
	if b.ended {
		// The transport reads once more after the declared length; the server
		// may have closed the body it read to its end by then.
		return 0, io.EOF
	}
	if b.idle > 0 {
		_ = backend.Refresh(&b.at, b.idle, b.rc.SetReadDeadline)
	}
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.ended = true
	}
	if err == io.EOF && b.trailer != nil {
		for name, values := range b.from.Trailer {
			b.trailer[name] = values
		}
	}
	b.mu.Lock()
	b.n += int64(n)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
	return n, err
}

func (b *clientBody) Close() error { return nil } // the server closes the client's body

// headerView lets a strategy read the request's fields by name.
type headerView http.Header

// Peek returns the value of the first field called name, nil when there is none.
func (h *headerView) Peek(name string) []byte {
	v := (*h)[textproto.CanonicalMIMEHeaderKey(name)]
	if len(v) == 0 {
		return nil
	}
	return []byte(v[0])
}

// interim passes informational answers (103 Early Hints) on; 100 Continue is the
// server's own to send.
func interim(w http.ResponseWriter) *httptrace.ClientTrace {
	n := 0
	return &httptrace.ClientTrace{Got1xxResponse: func(code int, header textproto.MIMEHeader) error {
		if n++; n > exchange.MaxInterims {
			return exchange.ErrTooManyInterims
		}
		passInterim(w, code, http.Header(header))
		return nil
	}}
}

// passInterim sends the informational answer code with header's fields to the client.
func passInterim(w http.ResponseWriter, code int, header http.Header) {
	if code == http.StatusContinue {
		return
	}
	h := w.Header()
	for name, values := range header {
		h[name] = values
	}
	w.WriteHeader(code)
	for name := range header {
		delete(h, name)
	}
}

// roundTripH2C sends out to its h2c backend, and waits for the answer's head for
// response_header at most once the request is written, as net/http's transport does
// for the other backends.
func (f *Front) roundTripH2C(out *http.Request) (*http.Response, error) {
	d := f.cfg.Timeouts.ResponseHeader
	if d <= 0 {
		return f.h2c.RoundTrip(out)
	}
	ctx, cancel := context.WithCancel(out.Context())
	late := time.AfterFunc(time.Hour, cancel)
	late.Stop()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { late.Reset(d) }})
	resp, err := f.h2c.RoundTrip(out.WithContext(ctx))
	if !late.Stop() && ctx.Err() != nil && out.Context().Err() == nil {
		if err == nil {
			resp.Body.Close()
		}
		return nil, fmt.Errorf("no answer from the backend within response_header: %w", os.ErrDeadlineExceeded)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	// The context lives on with the answer's body, and ends with the request's.
	return resp, nil
}
