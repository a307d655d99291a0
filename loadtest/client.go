package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Each worker owns one connection to the target and sends its requests on it
// one after another, HTTP/1.1 with keep-alive, as wrk does: it writes the
// request with (*http.Request).Write, reads the response with
// http.ReadResponse and reads the body to the end. It dials again for the
// next request after a response that closes the connection and after an
// error. No request is ever sent twice: a failed one is one failure, even on a
// kept-alive connection the target had closed meanwhile (net/http's
// Transport would resend it). With an http.Transport per worker instead, the
// generator sent 54-58k requests/s to bench/fastbackend on a 2-core machine
// with -c 64; with this loop, 99-118k.

// userAgent is the User-Agent of every request unless -H gives one.
const userAgent = "switchyard-loadtest"

// target is what the workers of a run send and where. It is safe for use by
// multiple goroutines; each worker clones req.
type target struct {
	req  *http.Request // the request, without its body
	addr string        // host:port to dial
	tls  *tls.Config   // the TLS configuration of an https URL; nil for http
}

// newTarget returns the target of a run as opts describe it.
func newTarget(opts options) (*target, error) {
	req, err := newRequest(opts)
	if err != nil {
		return nil, err
	}
	u := req.URL
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	t := &target{req: req, addr: net.JoinHostPort(u.Hostname(), port)}
	if u.Scheme == "https" {
		t.tls = &tls.Config{}
		if opts.tlsConfig != nil {
			t.tls = opts.tlsConfig.Clone()
		}
		if t.tls.ServerName == "" {
			// The URL's host, as for the address dialled, even with -H Host.
			t.tls.ServerName = u.Hostname()
		}
		t.tls.NextProtos = []string{"http/1.1"} // the requests are written as HTTP/1.1
	}
	return t, nil
}

// newRequest returns the request of a run as opts describe it, without its
// body.
func newRequest(opts options) (*http.Request, error) {
	req, err := http.NewRequest(opts.method, opts.url, nil)
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	req.Header.Set("User-Agent", userAgent)
	if opts.body != "" {
		req.ContentLength = int64(len(opts.body)) // Content-Length, not chunked
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	for _, h := range opts.headers {
		switch {
		case strings.EqualFold(h.name, "Host"):
			// The request's Host, not the address dialled, which stays the URL's.
			req.Host = h.value
		case strings.EqualFold(h.name, "User-Agent"), strings.EqualFold(h.name, "Content-Type"):
			req.Header.Set(h.name, h.value) // replaces the default
		default:
			req.Header.Add(h.name, h.value)
		}
	}
	return req, nil
}

// dial opens a connection to t, TLS for https, within deadline and until ctx
// ends: it returns the connection to use and the TCP connection under it,
// which is what closing aborts a request in flight.
func (t *target) dial(ctx context.Context, deadline time.Time) (c, raw net.Conn, err error) {
	d := net.Dialer{Deadline: deadline}
	raw, err = d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, nil, err
	}
	if err := raw.SetDeadline(deadline); err != nil {
		raw.Close()
		return nil, nil, err
	}
	if t.tls == nil {
		return raw, raw, nil
	}
	tc := tls.Client(raw, t.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, nil, err
	}
	return tc, raw, nil
}

// worker sends one request at a time on its own connection. Only its own
// goroutine uses it.
type worker struct {
	target  *target
	req     *http.Request  // the worker's copy of target.req, with body as its Body
	body    strings.Reader // the request body, rewound for every request; unused without one
	bodyStr string         // what body reads; "" for none
	timeout time.Duration  // per request, dial included
	conn    net.Conn       // the connection; nil before the first request and after one that ended it
	endConn func() bool    // stops closing conn at the end of the run
	br      *bufio.Reader  // reads conn, reset for each new connection
	bw      *bufio.Writer  // writes conn, reset for each new connection
	resp    bytes.Buffer   // the body of the last response
	wire    []byte         // req and its body as written, built once: every request is the same bytes

	tally    *tally
	live     *counters
	refusals *refusals
	lane     *lane         // per-second record for -plot; nil records nothing
	backoff  time.Duration // wait before the next request after a refused one; 0 for none
}

// newWorker returns a worker sending the request of t with the body of opts,
// reporting its outcomes to live and rf and recording per-second statistics
// into ln (nil for none).
func newWorker(opts options, t *target, live *counters, rf *refusals, ln *lane) *worker {
	w := &worker{
		target:   t,
		req:      t.req.Clone(context.Background()),
		bodyStr:  opts.body,
		timeout:  opts.timeout,
		br:       bufio.NewReader(nil),
		bw:       bufio.NewWriter(nil),
		tally:    newTally(),
		live:     live,
		refusals: rf,
		lane:     ln,
	}
	if w.bodyStr != "" {
		// A NopCloser of a *strings.Reader, which Write knows is in memory: it
		// writes head and body in one flush (net/http issue 22088).
		w.req.Body = io.NopCloser(&w.body)
	}
	return w
}

// loop sends requests as the schedule releases them until it says stop,
// backing off after a refused one.
func (w *worker) loop(ctx context.Context, sched *schedule) {
	defer w.lane.close()
	// Each connection is closed when ctx ends, which aborts the request in
	// flight. The worker's own context takes those registrations, so that a
	// dial takes no lock the other workers take: a context keeps its
	// children in a map under a mutex.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer w.closeConn() // first, so that a TLS connection ends with close_notify
	for sched.wait(ctx) {
		w.do(ctx)
		if w.backoff > 0 && !sleep(ctx, w.backoff) {
			return
		}
	}
}

// do sends one request and records its outcome, unless the run was stopped
// while it was in flight.
func (w *worker) do(ctx context.Context) {
	begin := time.Now()
	code, err := w.attempt(ctx, begin.Add(w.timeout))
	end := time.Now()
	elapsed := end.Sub(begin)
	if err != nil {
		if ctx.Err() != nil {
			return // aborted by the stop
		}
		kind := errorKind(err)
		w.tally.addError(kind)
		w.lane.record(end, 0, 0)
		w.live.failed.Add(1)
		w.live.done.Add(1)
		if kind == errRefused {
			w.backoff = nextBackoff(w.backoff)
			w.refusals.refused(end, err)
			return
		}
		w.backoff = 0
		w.refusals.other(false)
		return
	}
	w.backoff = 0
	w.refusals.other(true)
	w.tally.addResponse(code, elapsed, w.resp.Bytes())
	w.lane.record(end, elapsed, code)
	if code < 200 || code > 299 {
		w.live.failed.Add(1)
	}
	w.live.done.Add(1)
}

// attempt sends the request once by deadline, dialling first when the worker
// has no connection, and reads the whole response body into w.resp. It keeps
// the connection for the next request unless the response closes it or the
// attempt fails. It returns the status code.
func (w *worker) attempt(ctx context.Context, deadline time.Time) (int, error) {
	if w.conn == nil {
		if err := w.dial(ctx, deadline); err != nil {
			return 0, err
		}
	} else if err := w.conn.SetDeadline(deadline); err != nil {
		w.closeConn()
		return 0, err
	}
	code, keep, err := w.exchange()
	if err != nil || !keep {
		w.closeConn()
	}
	return code, err
}

// dial opens the worker's connection, which ctx ending closes.
func (w *worker) dial(ctx context.Context, deadline time.Time) error {
	c, raw, err := w.target.dial(ctx, deadline)
	if err != nil {
		return err
	}
	w.conn = c
	w.endConn = context.AfterFunc(ctx, func() { raw.Close() })
	w.br.Reset(c)
	w.bw.Reset(c)
	return nil
}

// exchange writes the request on w.conn and reads the response, skipping
// informational (1xx) ones as http.Transport does. It reports whether the
// connection may carry the next request.
func (w *worker) exchange() (code int, keep bool, err error) {
	if w.wire == nil {
		w.body.Reset(w.bodyStr) // Write reads the body to its end
		var b bytes.Buffer
		if err := w.req.Write(&b); err != nil {
			return 0, false, err
		}
		w.wire = b.Bytes()
	}
	if _, err := w.bw.Write(w.wire); err != nil {
		return 0, false, err
	}
	if err := w.bw.Flush(); err != nil {
		return 0, false, err
	}
	for {
		resp, err := http.ReadResponse(w.br, w.req)
		if err != nil {
			return 0, false, err
		}
		if resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue // 1xx responses have no body
		}
		w.resp.Reset()
		_, err = w.resp.ReadFrom(resp.Body)
		resp.Body.Close()
		if err != nil {
			return 0, false, err
		}
		// After 101 the connection speaks another protocol.
		keep := !resp.Close && resp.StatusCode != http.StatusSwitchingProtocols
		return resp.StatusCode, keep, nil
	}
}

// closeConn closes the worker's connection, if it has one.
func (w *worker) closeConn() {
	if w.conn == nil {
		return
	}
	w.endConn()
	w.conn.Close()
	w.conn = nil
}

// schedule hands out request numbers and, with a rate, the time each is due:
// request k is due at start + k/rate. Because due times are absolute, a late
// request does not delay the ones after it and high rates need no ticker.
// schedule is safe for use by multiple goroutines.
type schedule struct {
	next  atomic.Int64
	limit int64   // number of requests to hand out; 0 means no limit
	rate  float64 // requests per second; 0 means no pacing
	start time.Time
}

// newSchedule returns the schedule of a run starting at start.
func newSchedule(opts options, start time.Time) *schedule {
	return &schedule{limit: opts.requests, rate: opts.rate, start: start}
}

// wait claims the next request and blocks until it is due. It returns false
// when no request is left or ctx is done.
func (s *schedule) wait(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	k := s.next.Add(1) - 1
	if s.limit > 0 && k >= s.limit {
		return false
	}
	if s.rate == 0 {
		return true
	}
	due := s.start.Add(time.Duration(float64(k) / s.rate * float64(time.Second)))
	d := time.Until(due)
	if d <= 0 {
		return true
	}
	if dl, ok := ctx.Deadline(); ok && due.After(dl) {
		return false // due after the end of the run
	}
	return sleep(ctx, d)
}
