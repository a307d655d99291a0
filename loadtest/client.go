package main

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// newClient returns a fasthttp client for one run: one connection per
// worker, no retries (each request is one attempt), and dials through conns so
// a stop can abort the requests in flight.
func newClient(opts options, conns *connSet) *fasthttp.Client {
	return &fasthttp.Client{
		Name:                      "switchyard-loadtest",
		MaxConnsPerHost:           opts.concurrency,
		MaxIdemponentCallAttempts: 1,
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		DialTimeout:               conns.dial,
	}
}

// connSet tracks the client's open connections so a stop can close them:
// fasthttp requests take no context, so closing the connection is the only
// way to abort one in flight. Its lock is taken per connection, not per request.
type connSet struct {
	mu     sync.Mutex
	open   map[*trackedConn]struct{}
	closed bool
}

// dial opens a TCP connection to addr and tracks it; it fails once the set is closed.
func (cs *connSet) dial(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, set: cs}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	cs.open[tc] = struct{}{}
	return tc, nil
}

// closeAll closes every open connection and refuses new ones.
func (cs *connSet) closeAll() {
	cs.mu.Lock()
	cs.closed = true
	open := cs.open
	cs.open = nil
	cs.mu.Unlock()
	for c := range open {
		c.Conn.Close()
	}
}

// trackedConn is a connection that leaves its connSet when closed.
type trackedConn struct {
	net.Conn
	set *connSet
}

// Close closes the connection and forgets it.
func (c *trackedConn) Close() error {
	c.set.mu.Lock()
	delete(c.set.open, c)
	c.set.mu.Unlock()
	return c.Conn.Close()
}

// worker sends one request at a time with its own request and response.
type worker struct {
	client   *fasthttp.Client
	req      *fasthttp.Request
	resp     *fasthttp.Response
	timeout  time.Duration
	tally    *tally
	live     *counters
	refusals *refusals
	lane     *lane         // per-second record for -plot; nil records nothing
	backoff  time.Duration // wait before the next request after a refused one; 0 for none
}

// newWorker returns a worker sending the request opts describes, reporting
// its outcomes to live and rf and recording per-second statistics into ln
// (nil for none).
func newWorker(opts options, c *fasthttp.Client, live *counters, rf *refusals, ln *lane) *worker {
	req := &fasthttp.Request{}
	req.SetRequestURI(opts.url)
	req.Header.SetMethod(opts.method)
	for _, h := range opts.headers {
		if strings.EqualFold(h.name, "Host") {
			// The request's Host, not the address dialled, which stays the URL's.
			req.Header.SetHost(h.value)
			req.UseHostHeader = true
			continue
		}
		req.Header.Add(h.name, h.value)
	}
	if opts.body != "" {
		req.SetBodyString(opts.body)
	}
	return &worker{
		client:   c,
		req:      req,
		resp:     &fasthttp.Response{},
		timeout:  opts.timeout,
		tally:    newTally(),
		live:     live,
		refusals: rf,
		lane:     ln,
	}
}

// loop sends requests as the schedule releases them until it says stop,
// backing off after a refused one.
func (w *worker) loop(ctx context.Context, sched *schedule) {
	defer w.lane.close()
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
	w.resp.Reset()
	begin := time.Now()
	err := w.client.DoTimeout(w.req, w.resp, w.timeout)
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
	code := w.resp.StatusCode()
	w.tally.addResponse(code, elapsed, w.resp.Body())
	w.lane.record(end, elapsed, code)
	if code < 200 || code > 299 {
		w.live.failed.Add(1)
	}
	w.live.done.Add(1)
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
