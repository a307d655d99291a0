// Command loadtest sends HTTP requests to the load balancer (or any URL) from
// a fixed number of concurrent workers and reports throughput, latency
// percentiles, status codes and which backend answered.
//
// Usage:
//
//	go run loadtest/main.go [-url URL] [-c CONCURRENCY] [-n REQUESTS | -duration D]
//	    [-rate R] [-method M] [-body S] [-timeout D] [-json] [-plot PATH.html]
//
// It stops after -n requests, after -duration, or at Ctrl-C, whichever comes
// first, and always prints the summary. The backend of each response is the
// "server" field of its JSON body, as the test backend answers (DESIGN.md
// section 8). While it runs it shows a progress bar when the progress output is
// a terminal and a plain line every second otherwise; with -json the progress
// goes to stderr and stdout holds only the JSON summary.
//
// -plot PATH.html also writes a self-contained page (inline SVG, no external
// script, font or stylesheet) with charts of throughput and latency
// percentiles over time, the backends' shares and the status codes.
//
// Exit status: 0 when at least one request succeeded (got a 2xx response);
// 1 when none did, or the summary or page could not be written; 2 on bad
// flags or a -plot path that cannot be created.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/schollz/progressbar/v3"
	"github.com/valyala/fasthttp"
	"golang.org/x/term"
)

// Defaults of the command line (DESIGN.md section 8).
const (
	defaultURL         = "http://localhost:8000/requests"
	defaultMethod      = "POST"
	defaultConcurrency = 10
	defaultRequests    = 1000
	defaultTimeout     = 10 * time.Second
)

// Latency histogram range: microseconds from 1µs to 60s, 3 significant digits.
const (
	histMin     = 1
	histMax     = int64(60 * time.Second / time.Microsecond)
	histSigFigs = 3
)

// unknownBackend counts responses whose body has no "server" field.
const unknownBackend = "unknown"

// Transport error kinds, the keys of summary.Errors.
const (
	errTimeout = "timeout"
	errRefused = "connection_refused"
	errOther   = "other"
)

// errorKinds lists the transport error kinds in report order.
var errorKinds = []string{errTimeout, errRefused, errOther}

// options configures one load test run.
type options struct {
	url         string        // target URL (default http://localhost:8000/requests)
	method      string        // HTTP method (default POST)
	body        string        // request body (default empty)
	concurrency int           // number of workers, each with one request in flight (default 10)
	requests    int64         // stop after this many requests; 0 means no limit
	duration    time.Duration // stop after this long; 0 means no limit
	rate        float64       // overall requests per second; 0 means unlimited
	timeout     time.Duration // per-request timeout, dial included (default 10s)
	json        bool          // print the summary as JSON
	plot        string        // also write an HTML page with charts to this path; "" for none

	progressBar   bool          // draw a progress bar instead of plain lines
	progressEvery time.Duration // interval between plain progress lines (default 1s)
}

// usageLine is the synopsis printed with -h and with flag errors.
const usageLine = "usage: go run loadtest/main.go [-url URL] [-c CONCURRENCY] [-n REQUESTS | -duration D] [-rate R] [-method M] [-body S] [-timeout D] [-json] [-plot PATH.html]"

// parseFlags reads the command line into options. On an error it prints the
// error and the usage to stderr; the error is flag.ErrHelp for -h.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := newFlagSet(&o, stderr)
	if err := fs.Parse(args); err != nil {
		return o, err // the flag package has printed it and the usage
	}
	if err := o.complete(fs); err != nil {
		fmt.Fprintln(stderr, err)
		fs.Usage()
		return o, err
	}
	return o, nil
}

// newFlagSet returns the command's flags, bound to the fields of o.
func newFlagSet(o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, usageLine)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.url, "url", defaultURL, "target `URL`")
	fs.StringVar(&o.method, "method", defaultMethod, "HTTP `method`")
	fs.StringVar(&o.body, "body", "", "request body `string`")
	fs.IntVar(&o.concurrency, "c", defaultConcurrency, "number of concurrent workers")
	fs.Int64Var(&o.requests, "n", 0, "stop after `N` requests (default 1000 unless -duration is given)")
	fs.DurationVar(&o.duration, "duration", 0, "stop after duration `D` (e.g. 30s); with -n, whichever comes first")
	fs.Float64Var(&o.rate, "rate", 0, "limit to `R` requests/s overall (0 = unlimited)")
	fs.DurationVar(&o.timeout, "timeout", defaultTimeout, "per-request timeout `D`")
	fs.BoolVar(&o.json, "json", false, "print the summary as one JSON object (progress goes to stderr)")
	fs.StringVar(&o.plot, "plot", "", "also write a self-contained HTML page with charts of the run to `PATH`")
	return fs
}

// complete checks the parsed flags and fills the defaults that depend on
// which flags were given.
func (o *options) complete(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("loadtest: unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["n"] && o.requests <= 0 {
		return fmt.Errorf("loadtest: -n must be at least 1, got %d", o.requests)
	}
	if set["duration"] && o.duration <= 0 {
		return fmt.Errorf("loadtest: -duration must be positive, got %v", o.duration)
	}
	if !set["n"] && !set["duration"] {
		o.requests = defaultRequests
	}
	o.method = strings.ToUpper(o.method)
	return o.validate()
}

// validate reports the first invalid option.
func (o options) validate() error {
	switch {
	case o.concurrency < 1:
		return fmt.Errorf("loadtest: -c must be at least 1, got %d", o.concurrency)
	case o.requests < 0:
		return fmt.Errorf("loadtest: -n must not be negative, got %d", o.requests)
	case o.duration < 0:
		return fmt.Errorf("loadtest: -duration must not be negative, got %v", o.duration)
	case o.requests == 0 && o.duration == 0:
		return errors.New("loadtest: one of -n or -duration is needed")
	case o.rate < 0 || math.IsNaN(o.rate) || math.IsInf(o.rate, 0):
		return fmt.Errorf("loadtest: -rate must be a finite number >= 0, got %v", o.rate)
	case o.timeout <= 0:
		return fmt.Errorf("loadtest: -timeout must be positive, got %v", o.timeout)
	case o.method == "" || strings.ContainsAny(o.method, " \t\r\n"):
		return fmt.Errorf("loadtest: invalid -method %q", o.method)
	}
	u, err := url.Parse(o.url)
	if err != nil {
		return fmt.Errorf("loadtest: invalid -url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("loadtest: invalid -url %q: want http://host[:port]/path or https://...", o.url)
	}
	return nil
}

// summary is the result of a run; its JSON form is what -json prints.
type summary struct {
	Requests    int64            `json:"requests"`         // responses plus transport errors
	Duration    float64          `json:"duration_seconds"` // wall time of the run
	RPS         float64          `json:"rps"`              // Requests / Duration
	Latency     latency          `json:"latency_ms"`       // over responses, not transport errors
	Status      map[string]int64 `json:"status"`           // status code → responses
	Errors      map[string]int64 `json:"errors"`           // transport error kind → count
	Backends    map[string]int64 `json:"backends"`         // body "server" field → responses
	Interrupted bool             `json:"interrupted"`      // stopped early by Ctrl-C

	Seconds []secondStats `json:"-"` // per second of the run, only with -plot
}

// latency holds response-time statistics in milliseconds.
type latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// run sends requests as opts says until the request count or duration is
// reached or ctx is cancelled, writing progress to progress. Requests cut off
// by the stop are not counted. The error is non-nil only for invalid options.
func run(ctx context.Context, opts options, progress io.Writer) (summary, error) {
	if err := opts.validate(); err != nil {
		return summary{}, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	if opts.duration > 0 {
		runCtx, cancel = context.WithDeadline(runCtx, start.Add(opts.duration))
		defer cancel()
	}

	conns := &connSet{open: map[*trackedConn]struct{}{}}
	stopped := context.AfterFunc(runCtx, conns.closeAll)
	defer stopped()

	live := &counters{}
	rep := newReporter(opts, progress, live, start)
	repDone := make(chan struct{})
	go func() { defer close(repDone); rep.loop(runCtx) }()

	var tl *timeline
	if opts.plot != "" {
		tl = newTimeline(start)
	}
	tallies := runWorkers(runCtx, opts, newClient(opts, conns), newSchedule(opts, start), live, tl)
	elapsed := time.Since(start)
	cancel()
	<-repDone
	rep.finish(elapsed)

	s := merge(tallies, elapsed)
	s.Interrupted = ctx.Err() != nil
	if tl != nil {
		s.Seconds = tl.seconds(elapsed)
	}
	return s, nil
}

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

// runWorkers starts opts.concurrency workers and returns their tallies once
// all have stopped. With a timeline (nil for none) each worker also records
// into a lane of it.
func runWorkers(ctx context.Context, opts options, c *fasthttp.Client, sched *schedule, live *counters, tl *timeline) []*tally {
	tallies := make([]*tally, opts.concurrency)
	var wg sync.WaitGroup
	for i := range tallies {
		w := newWorker(opts, c, live, tl.newLane())
		tallies[i] = w.tally
		wg.Go(func() { w.loop(ctx, sched) })
	}
	wg.Wait()
	return tallies
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
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// counters are the live totals the progress reporter reads.
type counters struct {
	done   atomic.Int64 // requests finished (response or transport error)
	failed atomic.Int64 // transport errors and non-2xx responses
}

// tally is one worker's private record of its requests; tallies are merged
// when the run ends, so recording takes no lock.
type tally struct {
	requests int64
	hist     *hdrhistogram.Histogram // response latency in µs
	status   map[int]int64
	errors   map[string]int64
	backends map[string]*int64 // pointer values: counting a known key allocates nothing
}

// newTally returns an empty tally. Its histogram takes ~140 KB.
func newTally() *tally {
	return &tally{
		hist:     hdrhistogram.New(histMin, histMax, histSigFigs),
		status:   map[int]int64{},
		errors:   map[string]int64{},
		backends: map[string]*int64{},
	}
}

// addResponse records one response.
func (t *tally) addResponse(status int, elapsed time.Duration, body []byte) {
	t.requests++
	t.status[status]++
	us := min(max(elapsed.Microseconds(), histMin), histMax)
	_ = t.hist.RecordValue(us) // cannot fail: us is clamped to the range
	name := serverField(body)
	if name == nil {
		name = []byte(unknownBackend)
	}
	if n := t.backends[string(name)]; n != nil {
		*n++
		return
	}
	one := int64(1)
	t.backends[string(name)] = &one
}

// addError records one transport error.
func (t *tally) addError(err error) {
	t.requests++
	t.errors[errorKind(err)]++
}

// errorKind classifies a transport error as timeout, connection refused or other.
func errorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return errTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return errRefused
	}
	return errOther
}

// serverKey is the JSON key naming the backend in a response body.
var serverKey = []byte(`"server"`)

// serverField returns the string value of the "server" key of a JSON body, or
// nil when there is none. It scans instead of decoding the whole body; only a
// value with escapes is handed to encoding/json.
func serverField(body []byte) []byte {
	for rest := body; ; {
		i := bytes.Index(rest, serverKey)
		if i < 0 {
			return nil
		}
		rest = rest[i+len(serverKey):]
		v := bytes.TrimLeft(rest, " \t\r\n")
		if len(v) == 0 || v[0] != ':' {
			continue // "server" was a value, not a key
		}
		v = bytes.TrimLeft(v[1:], " \t\r\n")
		if len(v) == 0 || v[0] != '"' {
			return nil
		}
		end := bytes.IndexByte(v[1:], '"')
		if end < 0 {
			return nil
		}
		if s := v[1 : 1+end]; bytes.IndexByte(s, '\\') < 0 {
			return s
		}
		return unquoteServer(body)
	}
}

// unquoteServer decodes the "server" field of a body whose value has escapes.
func unquoteServer(body []byte) []byte {
	var b struct {
		Server *string `json:"server"`
	}
	if json.Unmarshal(body, &b) != nil || b.Server == nil {
		return nil
	}
	return []byte(*b.Server)
}

// worker sends one request at a time with its own request and response.
type worker struct {
	client  *fasthttp.Client
	req     *fasthttp.Request
	resp    *fasthttp.Response
	timeout time.Duration
	tally   *tally
	live    *counters
	lane    *lane // per-second record for -plot; nil records nothing
}

// newWorker returns a worker sending the request opts describes and
// recording per-second statistics into ln (nil for none).
func newWorker(opts options, c *fasthttp.Client, live *counters, ln *lane) *worker {
	req := &fasthttp.Request{}
	req.SetRequestURI(opts.url)
	req.Header.SetMethod(opts.method)
	if opts.body != "" {
		req.SetBodyString(opts.body)
	}
	return &worker{
		client:  c,
		req:     req,
		resp:    &fasthttp.Response{},
		timeout: opts.timeout,
		tally:   newTally(),
		live:    live,
		lane:    ln,
	}
}

// loop sends requests as the schedule releases them until it says stop.
func (w *worker) loop(ctx context.Context, sched *schedule) {
	defer w.lane.close()
	for sched.wait(ctx) {
		w.do(ctx)
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
		w.tally.addError(err)
		w.lane.record(end, 0, 0)
		w.live.failed.Add(1)
		w.live.done.Add(1)
		return
	}
	code := w.resp.StatusCode()
	w.tally.addResponse(code, elapsed, w.resp.Body())
	w.lane.record(end, elapsed, code)
	if code < 200 || code > 299 {
		w.live.failed.Add(1)
	}
	w.live.done.Add(1)
}

// merge combines the workers' tallies into a summary.
func merge(tallies []*tally, elapsed time.Duration) summary {
	s := summary{
		Duration: elapsed.Seconds(),
		Status:   map[string]int64{},
		Errors:   map[string]int64{},
		Backends: map[string]int64{},
	}
	for _, k := range errorKinds {
		s.Errors[k] = 0
	}
	hist := hdrhistogram.New(histMin, histMax, histSigFigs)
	for _, t := range tallies {
		s.Requests += t.requests
		hist.Merge(t.hist)
		for code, n := range t.status {
			s.Status[strconv.Itoa(code)] += n
		}
		for k, n := range t.errors {
			s.Errors[k] += n
		}
		for name, n := range t.backends {
			s.Backends[name] += *n
		}
	}
	if s.Duration > 0 {
		s.RPS = float64(s.Requests) / s.Duration
	}
	s.Latency = latencyOf(hist)
	return s
}

// latencyOf reads the statistics of a histogram of microseconds.
func latencyOf(h *hdrhistogram.Histogram) latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return latency{
		P50:  ms(h.ValueAtQuantile(50)),
		P90:  ms(h.ValueAtQuantile(90)),
		P99:  ms(h.ValueAtQuantile(99)),
		Max:  ms(h.Max()),
		Mean: h.Mean() / 1000,
	}
}

// writeJSON writes the summary as one JSON object on one line.
func (s summary) writeJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(s)
}

// writeText writes the summary for people to read.
func (s summary) writeText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if s.Interrupted {
		fmt.Fprintln(tw, "Interrupted: summary of the requests completed so far.")
	}
	fmt.Fprintf(tw, "Requests:\t%d in %.3fs, %.1f req/s\n", s.Requests, s.Duration, s.RPS)
	l := s.Latency
	fmt.Fprintf(tw, "Latency (ms):\tp50 %.3f  p90 %.3f  p99 %.3f  max %.3f  mean %.3f\n",
		l.P50, l.P90, l.P99, l.Max, l.Mean)
	fmt.Fprintln(tw, "Status codes:")
	writeCounts(tw, s.Status, s.Requests)
	fmt.Fprintln(tw, "Transport errors:")
	for _, k := range errorKinds {
		fmt.Fprintf(tw, "  %s\t%d\n", strings.ReplaceAll(k, "_", " "), s.Errors[k])
	}
	fmt.Fprintln(tw, "Backends:")
	writeCounts(tw, s.Backends, s.Requests)
	return tw.Flush()
}

// writeCounts writes one indented "key count (share%)" line per key, sorted.
func writeCounts(w io.Writer, counts map[string]int64, total int64) {
	if len(counts) == 0 {
		fmt.Fprintln(w, "  none")
		return
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s\t%d\t(%.1f%%)\n", k, counts[k], 100*float64(counts[k])/float64(max(total, 1)))
	}
}

// reporter shows the progress of a run, as a bar or as plain lines.
type reporter struct {
	opts  options
	w     io.Writer
	live  *counters
	start time.Time
	bar   *progressbar.ProgressBar // nil for plain lines

	lastDone int64     // live.done at the previous report
	lastAt   time.Time // time of the previous report
}

// newReporter returns a reporter for a run starting at start.
func newReporter(opts options, w io.Writer, live *counters, start time.Time) *reporter {
	r := &reporter{opts: opts, w: w, live: live, start: start, lastAt: start}
	if opts.progressBar {
		r.bar = newBar(opts, w)
	}
	return r
}

// newBar returns a bar counting requests for -n or seconds for -duration alone.
func newBar(opts options, w io.Writer) *progressbar.ProgressBar {
	total := opts.requests
	if total == 0 {
		total = int64(math.Ceil(opts.duration.Seconds()))
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(opts.requests > 0),
		progressbar.OptionThrottle(0),
		progressbar.OptionSetRenderBlankState(true),
	)
}

// loop reports progress periodically until ctx is done.
func (r *reporter) loop(ctx context.Context) {
	every := r.opts.progressEvery
	if every <= 0 {
		every = time.Second
	}
	if r.bar != nil {
		every = min(every, 250*time.Millisecond)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.report(now.Sub(r.start))
		}
	}
}

// finish writes the final report of a run that took elapsed.
func (r *reporter) finish(elapsed time.Duration) {
	r.lastDone, r.lastAt = 0, r.start // final rate: the run's average
	r.report(elapsed)
	if r.bar != nil {
		_ = r.bar.Exit()
		fmt.Fprintln(r.w)
	}
}

// report writes one progress update at elapsed into the run.
func (r *reporter) report(elapsed time.Duration) {
	done, failed := r.live.done.Load(), r.live.failed.Load()
	now := r.start.Add(elapsed)
	rps := 0.0
	if dt := now.Sub(r.lastAt).Seconds(); dt > 0 {
		rps = float64(done-r.lastDone) / dt
	}
	r.lastDone, r.lastAt = done, now
	if r.bar != nil {
		r.updateBar(done, elapsed, rps, failed)
		return
	}
	if r.opts.requests > 0 {
		fmt.Fprintf(r.w, "progress: %d/%d requests, %.0f req/s, errors %d\n", done, r.opts.requests, rps, failed)
		return
	}
	fmt.Fprintf(r.w, "progress: %d requests, %v/%v, %.0f req/s, errors %d\n",
		done, elapsed.Truncate(time.Second), r.opts.duration, rps, failed)
}

// updateBar moves the bar to done requests (or elapsed seconds) and shows the rate.
func (r *reporter) updateBar(done int64, elapsed time.Duration, rps float64, failed int64) {
	r.bar.Describe(fmt.Sprintf("%.0f req/s, errors %d", rps, failed))
	if r.opts.requests > 0 {
		_ = r.bar.Set64(done)
		return
	}
	_ = r.bar.Set64(min(int64(elapsed.Seconds()), r.bar.GetMax64()))
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

// secondSigFigs is the precision of the per-second latency histograms of
// -plot: 2 significant digits (1%) keep each one near 20 KB.
const secondSigFigs = 2

// timeline collects the per-second statistics of a run for -plot: for each
// second since the start, the requests that finished in it and the latency
// percentiles of its responses. Each worker records into its own lane and
// hands a second over when it finishes a request in a later one, so the lock
// is taken about once per worker per second, not per request. A second is
// reduced to its percentiles, and its histogram reused, as soon as no lane can
// add to it any more, so histograms do not pile up over a long run.
type timeline struct {
	start time.Time

	mu      sync.Mutex
	low     []int                     // per lane: the earliest second it may still hand over
	pending map[int]*secondTally      // seconds some lane may still add to
	final   []secondStats             // reduced seconds by index; seconds without requests stay zero
	spare   []*hdrhistogram.Histogram // reset histograms for reuse
}

// secondTally counts the requests that finished in one second.
type secondTally struct {
	ok     int64                   // 2xx responses
	failed int64                   // other responses and transport errors
	hist   *hdrhistogram.Histogram // latency of the responses in µs
}

// secondStats is one second of a run as the plot shows it.
type secondStats struct {
	OK        int64   // 2xx responses
	Failed    int64   // other responses and transport errors
	Responses int64   // responses, which the percentiles are over
	P50       float64 // latency percentiles in ms; 0 without responses
	P90       float64
	P99       float64
}

// newTimeline returns an empty timeline of a run starting at start.
func newTimeline(start time.Time) *timeline {
	return &timeline{start: start, pending: map[int]*secondTally{}}
}

// newSecondHist returns an empty per-second latency histogram.
func newSecondHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMin, histMax, secondSigFigs)
}

// newLane adds a lane for one worker. On a nil timeline it returns nil, a
// lane that records nothing.
func (tl *timeline) newLane() *lane {
	if tl == nil {
		return nil
	}
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.low = append(tl.low, 0)
	return &lane{tl: tl, id: len(tl.low) - 1, acc: secondTally{hist: newSecondHist()}}
}

// second returns the index of the second of the run that t falls in.
func (tl *timeline) second(t time.Time) int {
	return max(int(t.Sub(tl.start)/time.Second), 0)
}

// add merges one lane's count of second sec; tl.mu must be held.
func (tl *timeline) add(sec int, t *secondTally) {
	p := tl.pending[sec]
	if p == nil {
		p = &secondTally{}
		if n := len(tl.spare); n > 0 {
			p.hist, tl.spare = tl.spare[n-1], tl.spare[:n-1]
		} else {
			p.hist = newSecondHist()
		}
		tl.pending[sec] = p
	}
	p.ok += t.ok
	p.failed += t.failed
	p.hist.Merge(t.hist)
}

// reduce turns the pending seconds no lane can add to into secondStats;
// tl.mu must be held.
func (tl *timeline) reduce() {
	low := slices.Min(tl.low)
	for sec, p := range tl.pending {
		if sec >= low {
			continue
		}
		if sec >= len(tl.final) {
			tl.final = append(tl.final, make([]secondStats, sec+1-len(tl.final))...)
		}
		tl.final[sec] = p.stats()
		p.hist.Reset()
		tl.spare = append(tl.spare, p.hist)
		delete(tl.pending, sec)
	}
}

// stats reduces a second's count to what the plot shows.
func (t *secondTally) stats() secondStats {
	ms := func(q float64) float64 { return float64(t.hist.ValueAtQuantile(q)) / 1000 }
	st := secondStats{OK: t.ok, Failed: t.failed, Responses: t.hist.TotalCount()}
	if st.Responses > 0 {
		st.P50, st.P90, st.P99 = ms(50), ms(90), ms(99)
	}
	return st
}

// seconds returns the statistics of each second of a run that took elapsed.
// Every lane must have been closed.
func (tl *timeline) seconds(elapsed time.Duration) []secondStats {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.reduce()
	n := max(int(math.Ceil(elapsed.Seconds())), len(tl.final))
	out := make([]secondStats, n)
	copy(out, tl.final)
	return out
}

// lane is one worker's part of a timeline: the count of the second it is
// in, which only that worker touches.
type lane struct {
	tl  *timeline
	id  int         // index in tl.low
	sec int         // the second acc counts
	acc secondTally // requests of second sec not yet handed over
}

// record adds a request that finished at end: a response with status after
// elapsed, or a transport error when status is 0. A nil lane does nothing.
func (l *lane) record(end time.Time, elapsed time.Duration, status int) {
	if l == nil {
		return
	}
	if sec := l.tl.second(end); sec > l.sec {
		l.handOver(sec)
	}
	switch {
	case status == 0:
		l.acc.failed++
		return
	case status >= 200 && status <= 299:
		l.acc.ok++
	default:
		l.acc.failed++
	}
	us := min(max(elapsed.Microseconds(), histMin), histMax)
	_ = l.acc.hist.RecordValue(us) // cannot fail: us is clamped to the range
}

// handOver gives the lane's count to the timeline and moves the lane on to
// second next.
func (l *lane) handOver(next int) {
	tl := l.tl
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if l.acc.ok+l.acc.failed > 0 {
		tl.add(l.sec, &l.acc)
		l.acc.ok, l.acc.failed = 0, 0
		l.acc.hist.Reset()
	}
	l.sec = next
	tl.low[l.id] = next
	tl.reduce()
}

// close hands over the lane's last count; the lane must not record after it.
// A nil lane does nothing.
func (l *lane) close() {
	if l != nil {
		l.handOver(math.MaxInt)
	}
}

// Geometry of the -plot page, in SVG user units.
const (
	chartW      = 960
	chartH      = 280
	chartLeft   = 64          // left edge of the plot area, after the y labels
	chartRight  = chartW - 16 // right edge of the plot area
	chartTop    = 28          // top edge of the plot area, below the y title
	chartBottom = chartH - 44 // bottom edge of the plot area, above the x labels
	shareBarW   = 320         // width of the bar of a 100% share, as in plotHTML
	maxDots     = 120         // above this many seconds latency lines have no dots
	minLastSpan = 0.5         // a shorter last second joins the one before in the throughput chart
)

// page is what the -plot page shows.
type page struct {
	Method      string
	URL         string
	Concurrency int
	Rate        float64 // -rate; 0 for none
	Written     string  // when the page was written
	S           summary
	Succeeded   int64   // 2xx responses
	SuccessPct  float64 // Succeeded as a share of all requests
	Throughput  chart
	Latency     chart
	Status      []share // status codes, then transport errors
	Backends    []share
}

// share is one row of a table of counts.
type share struct {
	Name  string  // status code, error kind or backend
	Count int64   // requests
	Pct   float64 // share of all requests, 0 to 100
	BarW  float64 // width of the bar showing Pct
	Class string  // CSS class giving the bar's colour
}

// chart is one SVG chart over the seconds of the run.
type chart struct {
	ID     string // element id of the figure
	Title  string
	Note   string // how to read it
	Legend []key
	W, H   int     // size of the SVG
	Left   float64 // plot area
	Right  float64
	Top    float64
	Bottom float64
	XTicks []tick
	YTicks []tick
	TickY  float64 // lower end of the x tick marks
	MidX   float64 // centre of the plot area, for Empty
	MidY   float64
	XTitle string
	YTitle string
	Bars   []bar
	Lines  []series
	Empty  string // shown instead of data when there is none
}

// key is one entry of a chart's legend.
type key struct{ Class, Label string }

// tick is one labelled position on an axis.
type tick struct {
	Pos   float64 // x or y in user units
	Label string
}

// bar is one rectangle of a bar chart.
type bar struct {
	X, Y, W, H float64
	Class      string
	Tip        string // tooltip
}

// series is one line of a line chart.
type series struct {
	Class  string
	D      string  // SVG path data; M starts a new piece after a gap
	Points []point // dots with tooltips; none when there are too many
}

// point is one dot of a line.
type point struct {
	X, Y float64
	Tip  string
}

// axis maps values from [0, top] onto user units from..to.
type axis struct{ top, from, to float64 }

// at returns the user unit of value v, rounded to a tenth.
func (a axis) at(v float64) float64 {
	return round1(a.from + v/a.top*(a.to-a.from))
}

// round1 rounds v to one decimal.
func round1(v float64) float64 { return math.Round(v*10) / 10 }

// fmtNum formats v with at most one decimal and no trailing zeros.
func fmtNum(v float64) string { return strconv.FormatFloat(round1(v), 'f', -1, 64) }

// niceStep returns a step of 1, 2 or 5 times a power of ten that divides
// [0, hi] into at most about n parts.
func niceStep(hi float64, n int) float64 {
	raw := hi / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw*(1-1e-9) {
			return m * mag
		}
	}
	return 10 * mag
}

// ticks returns the multiples of step from 0 to top, labelled, placed by a.
func ticks(a axis, step float64) []tick {
	decimals := max(0, int(-math.Floor(math.Log10(step))))
	var out []tick
	for k := 0; float64(k)*step <= a.top*(1+1e-9); k++ {
		v := float64(k) * step
		out = append(out, tick{Pos: a.at(v), Label: strconv.FormatFloat(v, 'f', decimals, 64)})
	}
	return out
}

// newChart returns an empty chart with its axes: x over the run's total
// seconds (at least one), y from 0 to a round value at least yHi.
func newChart(id, title string, total, yHi float64) (chart, axis, axis) {
	c := chart{ID: id, Title: title, W: chartW, H: chartH,
		Left: chartLeft, Right: chartRight, Top: chartTop, Bottom: chartBottom, TickY: chartBottom + 5,
		MidX: (chartLeft + chartRight) / 2, MidY: (chartTop + chartBottom) / 2, XTitle: "seconds"}
	noData := yHi <= 0
	total, yHi = max(total, 1), max(yHi, 1e-3)
	x := axis{top: total, from: chartLeft, to: chartRight}
	xs := niceStep(total, 12)
	if total >= 2 {
		xs = max(xs, 1) // whole seconds
	}
	c.XTicks = ticks(x, xs)
	ys := niceStep(yHi, 5)
	y := axis{top: math.Ceil(yHi/ys*(1-1e-9)) * ys, from: chartBottom, to: chartTop}
	c.YTicks = ticks(y, ys)
	if noData {
		c.YTicks = []tick{{Pos: y.at(0), Label: "0"}}
	}
	return c, x, y
}

// span is a stretch of the run drawn as one bar of the throughput chart.
type span struct {
	from, to   float64 // seconds since the start
	ok, failed int64
}

// spans returns one span per second of a run of total seconds; a last partial
// second shorter than minLastSpan joins the one before, so that a few
// requests in a sliver of time do not show as a spike.
func spans(secs []secondStats, total float64) []span {
	out := make([]span, 0, len(secs))
	for i, st := range secs {
		sp := span{from: float64(i), to: min(float64(i+1), total), ok: st.OK, failed: st.Failed}
		if n := len(out); n > 0 && sp.to-sp.from < minLastSpan {
			out[n-1].to, out[n-1].ok, out[n-1].failed = sp.to, out[n-1].ok+sp.ok, out[n-1].failed+sp.failed
			continue
		}
		out = append(out, sp)
	}
	return out
}

// throughputChart draws the requests finished per second, 2xx below and
// failures stacked on top.
func throughputChart(s summary) chart {
	sps := spans(s.Seconds, s.Duration)
	peak := 0.0
	for _, sp := range sps {
		peak = max(peak, float64(sp.ok+sp.failed)/max(sp.to-sp.from, 1e-9))
	}
	c, x, y := newChart("throughput", "Throughput", s.Duration, peak)
	c.YTitle = "requests/s"
	c.Note = "Requests finished in each second: 2xx responses, with other responses and transport errors stacked on top."
	c.Legend = []key{{"ok", "2xx"}, {"fail", "failed"}}
	if len(sps) == 0 || peak == 0 {
		c.Empty = "no request finished"
		return c
	}
	for _, sp := range sps {
		c.Bars = append(c.Bars, spanBars(sp, x, y)...)
	}
	return c
}

// spanBars returns the bars of one span: 2xx, then failures on top.
func spanBars(sp span, x, y axis) []bar {
	d := max(sp.to-sp.from, 1e-9)
	okRate, failRate := float64(sp.ok)/d, float64(sp.failed)/d
	x0, x1 := x.at(sp.from), x.at(sp.to)
	if x1-x0 > 4 {
		x0, x1 = x0+1, x1-1 // a gap between neighbours
	}
	x1 = max(x1, x0+2) // visible even for a sliver of a run
	tip := fmt.Sprintf("%s–%s s: %.1f req/s (%d 2xx, %d failed)",
		fmtNum(sp.from), fmtNum(sp.to), okRate+failRate, sp.ok, sp.failed)
	var out []bar
	for _, b := range []struct {
		lo, hi float64
		class  string
	}{{0, okRate, "ok"}, {okRate, okRate + failRate, "fail"}} {
		if b.hi > b.lo {
			top, bottom := y.at(b.hi), y.at(b.lo)
			out = append(out, bar{X: x0, Y: top, W: round1(x1 - x0), H: round1(bottom - top), Class: b.class, Tip: tip})
		}
	}
	return out
}

// latencyChart draws the p50, p90 and p99 latency of each second's responses.
func latencyChart(s summary) chart {
	peak := 0.0
	for _, st := range s.Seconds {
		peak = max(peak, st.P99)
	}
	c, x, y := newChart("latency", "Latency percentiles", s.Duration, peak)
	c.YTitle = "ms"
	c.Note = "Response time of the responses that finished in each second; transport errors are not included."
	c.Legend = []key{{"p50", "p50"}, {"p90", "p90"}, {"p99", "p99"}}
	if peak == 0 {
		c.Empty = "no responses"
		return c
	}
	for _, q := range []struct {
		class string
		of    func(secondStats) float64
	}{
		{"p50", func(st secondStats) float64 { return st.P50 }},
		{"p90", func(st secondStats) float64 { return st.P90 }},
		{"p99", func(st secondStats) float64 { return st.P99 }},
	} {
		c.Lines = append(c.Lines, latencySeries(s, q.class, q.of, x, y))
	}
	return c
}

// latencySeries returns the line of one percentile, broken where a second
// had no response.
func latencySeries(s summary, class string, of func(secondStats) float64, x, y axis) series {
	ln := series{Class: class}
	var d strings.Builder
	gap := true
	for i, st := range s.Seconds {
		if st.Responses == 0 {
			gap = true
			continue
		}
		from, to := float64(i), min(float64(i+1), s.Duration)
		px, py := x.at((from+max(to, from))/2), y.at(of(st))
		cmd := "L"
		if gap {
			cmd = "M"
		}
		fmt.Fprintf(&d, "%s%s %s ", cmd, fmtNum(px), fmtNum(py))
		gap = false
		if len(s.Seconds) <= maxDots {
			tip := fmt.Sprintf("%s–%s s: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms (%d responses)",
				fmtNum(from), fmtNum(to), st.P50, st.P90, st.P99, st.Responses)
			ln.Points = append(ln.Points, point{X: px, Y: py, Tip: tip})
		}
	}
	ln.D = strings.TrimSpace(d.String())
	return ln
}

// newShare returns the row of count out of total requests.
func newShare(name string, count, total int64, class string) share {
	pct := 100 * float64(count) / float64(max(total, 1))
	return share{Name: name, Count: count, Pct: pct, BarW: round1(pct / 100 * shareBarW), Class: class}
}

// statusShares returns a row per status code, then per transport error kind
// that occurred.
func statusShares(s summary) []share {
	codes := make([]string, 0, len(s.Status))
	for code := range s.Status {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	out := make([]share, 0, len(codes)+len(errorKinds))
	for _, code := range codes {
		class := "fail"
		if len(code) == 3 && code[0] == '2' {
			class = "ok"
		}
		out = append(out, newShare(code, s.Status[code], s.Requests, class))
	}
	for _, k := range errorKinds {
		if n := s.Errors[k]; n > 0 {
			out = append(out, newShare(strings.ReplaceAll(k, "_", " "), n, s.Requests, "fail"))
		}
	}
	return out
}

// backendShares returns a row per backend, by name.
func backendShares(s summary) []share {
	names := make([]string, 0, len(s.Backends))
	for name := range s.Backends {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]share, 0, len(names))
	for _, name := range names {
		class := "backend"
		if name == unknownBackend {
			class = "muted"
		}
		out = append(out, newShare(name, s.Backends[name], s.Requests, class))
	}
	return out
}

// newPage returns the page of a run, written at now.
func newPage(opts options, s summary, now time.Time) page {
	ok := s.succeeded()
	return page{
		Method:      opts.method,
		URL:         opts.url,
		Concurrency: opts.concurrency,
		Rate:        opts.rate,
		Written:     now.Format("2006-01-02 15:04:05 MST"),
		S:           s,
		Succeeded:   ok,
		SuccessPct:  100 * float64(ok) / float64(max(s.Requests, 1)),
		Throughput:  throughputChart(s),
		Latency:     latencyChart(s),
		Status:      statusShares(s),
		Backends:    backendShares(s),
	}
}

// openPlot creates the -plot file before the run, so that a bad path fails
// at once rather than after the test. It returns nil for an empty path.
func openPlot(path string) (*os.File, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("loadtest: -plot: %w", err)
	}
	return f, nil
}

// discardPlot closes and removes a plot file that will not be written; it
// ignores nil.
func discardPlot(f *os.File) {
	if f != nil {
		f.Close()
		os.Remove(f.Name())
	}
}

// writePlot writes the page of a run to f and closes f.
func writePlot(f *os.File, opts options, s summary, now time.Time) error {
	var buf bytes.Buffer
	if err := renderPlot(&buf, opts, s, now); err != nil {
		discardPlot(f)
		return err
	}
	_, err := f.Write(buf.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("loadtest: writing plot: %w", err)
	}
	return nil
}

// renderPlot writes the page of a run, written at now, to w.
func renderPlot(w io.Writer, opts options, s summary, now time.Time) error {
	if err := plotTemplate.Execute(w, newPage(opts, s, now)); err != nil {
		return fmt.Errorf("loadtest: rendering plot: %w", err)
	}
	return nil
}

// plotTemplate is the -plot page. html/template escapes everything from the
// run (URL, backend names) for the context it lands in.
var plotTemplate = template.Must(template.New("plot").Parse(plotHTML))

// plotHTML is the source of plotTemplate: one self-contained page, inline CSS
// and SVG, nothing loaded from elsewhere.
const plotHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>loadtest {{.Method}} {{.URL}}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#222;background:#fff;max-width:1000px;margin:24px auto;padding:0 16px}
h1{font-size:20px;margin:0 0 12px}
h2{font-size:16px;margin:28px 0 6px}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
table{border-collapse:collapse}
.meta th{text-align:left;font-weight:600;padding:2px 16px 2px 0;vertical-align:top;white-space:nowrap}
.meta td{padding:2px 0}
.shares th,.shares td{padding:3px 14px 3px 0;text-align:left}
.shares .count,.shares .share{text-align:right;font-variant-numeric:tabular-nums}
.shares .name{max-width:360px;word-break:break-all}
figure{margin:0}
figcaption small{color:#666}
.key{display:inline-block;width:12px;height:12px;margin:0 4px 0 14px;vertical-align:-1px;border-radius:2px}
svg.chart{width:100%;height:auto;display:block}
svg text{font-size:12px;fill:#555}
svg .grid line{stroke:#e6e6e6}
svg .axis{stroke:#999}
svg .empty{font-size:15px;fill:#999}
.track{fill:#f0f0f0}
.ok{fill:#4e79a7;background:#4e79a7}
.fail{fill:#e15759;background:#e15759}
.backend{fill:#59a14f;background:#59a14f}
.muted{fill:#bab0ac;background:#bab0ac}
.p50{stroke:#4e79a7;fill:#4e79a7;background:#4e79a7}
.p90{stroke:#f28e2b;fill:#f28e2b;background:#f28e2b}
.p99{stroke:#b07aa1;fill:#b07aa1;background:#b07aa1}
path.line{fill:none;stroke-width:2;stroke-linejoin:round}
.warn{color:#b00020;font-weight:600}
</style>
</head>
<body>
<h1>Load test report</h1>
<table class="meta">
<tr><th>Target</th><td>{{.Method}} <code class="url">{{.URL}}</code></td></tr>
<tr><th>Workers</th><td>{{.Concurrency}}{{if .Rate}}, limited to {{.Rate}} requests/s{{end}}</td></tr>
<tr><th>Requests</th><td>{{.S.Requests}} in {{printf "%.3f" .S.Duration}} s, {{printf "%.1f" .S.RPS}} requests/s</td></tr>
<tr><th>Succeeded</th><td{{if not .Succeeded}} class="warn"{{end}}>{{.Succeeded}} ({{printf "%.1f" .SuccessPct}}%) got a 2xx response</td></tr>
<tr><th>Latency</th><td>p50 {{printf "%.3f" .S.Latency.P50}} ms, p90 {{printf "%.3f" .S.Latency.P90}} ms, p99 {{printf "%.3f" .S.Latency.P99}} ms, max {{printf "%.3f" .S.Latency.Max}} ms, mean {{printf "%.3f" .S.Latency.Mean}} ms</td></tr>
{{if .S.Interrupted}}<tr><th>Stopped</th><td class="warn">interrupted; these are the requests completed so far</td></tr>
{{end}}<tr><th>Written</th><td>{{.Written}}</td></tr>
</table>
{{template "chart" .Throughput}}
{{template "chart" .Latency}}
<h2>Backends</h2>
<p><small>Requests each backend served, by the "server" field of the response body; "unknown" is a response without one. Shares are of all requests.</small></p>
{{template "shares" .Backends}}
<h2>Status codes and transport errors</h2>
{{template "shares" .Status}}
</body>
</html>
{{define "chart"}}<h2>{{.Title}}</h2>
<figure id="{{.ID}}">
<figcaption>{{range .Legend}}<span class="key {{.Class}}"></span>{{.Label}}{{end}}<br><small>{{.Note}}</small></figcaption>
<svg class="chart" viewBox="0 0 {{.W}} {{.H}}" role="img" aria-label="{{.Title}}">
<g class="grid">{{range .YTicks}}<line x1="{{$.Left}}" x2="{{$.Right}}" y1="{{.Pos}}" y2="{{.Pos}}"/>{{end}}</g>
<g text-anchor="end">{{range .YTicks}}<text x="{{$.Left}}" y="{{.Pos}}" dx="-6" dy="4">{{.Label}}</text>{{end}}</g>
<g text-anchor="middle">{{range .XTicks}}<line class="axis" x1="{{.Pos}}" x2="{{.Pos}}" y1="{{$.Bottom}}" y2="{{$.TickY}}"/><text x="{{.Pos}}" y="{{$.Bottom}}" dy="18">{{.Label}}</text>{{end}}
<text x="{{$.Right}}" y="{{$.H}}" dy="-4" text-anchor="end">{{.XTitle}}</text></g>
<text x="8" y="14">{{.YTitle}}</text>
{{range .Bars}}<rect class="{{.Class}}" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"><title>{{.Tip}}</title></rect>{{end}}
{{range .Lines}}<path class="line {{.Class}}" d="{{.D}}"/>{{$c := .Class}}{{range .Points}}<circle class="{{$c}}" cx="{{.X}}" cy="{{.Y}}" r="3"><title>{{.Tip}}</title></circle>{{end}}
{{end}}<line class="axis" x1="{{.Left}}" x2="{{.Right}}" y1="{{.Bottom}}" y2="{{.Bottom}}"/>
<line class="axis" x1="{{.Left}}" x2="{{.Left}}" y1="{{.Top}}" y2="{{.Bottom}}"/>
{{if .Empty}}<text class="empty" x="{{.MidX}}" y="{{.MidY}}" text-anchor="middle">{{.Empty}}</text>{{end}}
</svg>
</figure>
{{end}}
{{define "shares"}}{{if .}}<table class="shares">
<tr><th>name</th><th class="count">requests</th><th class="share">share</th><th></th></tr>
{{range .}}<tr><td class="name">{{.Name}}</td><td class="count">{{.Count}}</td><td class="share">{{printf "%.1f" .Pct}}%</td><td><svg width="320" height="12"><rect class="track" width="320" height="12"/><rect class="{{.Class}}" width="{{.BarW}}" height="12"/></svg></td></tr>
{{end}}</table>{{else}}<p>none</p>{{end}}{{end}}
`

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// realMain runs the command with args and returns the exit status.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2 // parseFlags has printed the error and the usage
	}
	plot, err := openPlot(opts.plot)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	progress := stdout
	if opts.json {
		progress = stderr
	}
	opts.progressBar = isTerminal(progress)
	s, err := run(ctx, opts, progress)
	if err != nil {
		discardPlot(plot)
		fmt.Fprintln(stderr, err)
		return 2
	}
	if err := report(opts, s, plot, stdout, progress); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if s.succeeded() == 0 {
		fmt.Fprintln(stderr, "loadtest: no request succeeded:", s.failures())
		return 1
	}
	return 0
}

// report writes the summary to stdout and, when plot is not nil, the page to
// plot, noting its path on progress.
func report(opts options, s summary, plot *os.File, stdout, progress io.Writer) error {
	var err error
	if opts.json {
		err = s.writeJSON(stdout)
	} else {
		err = s.writeText(stdout)
	}
	if err != nil {
		discardPlot(plot)
		return fmt.Errorf("loadtest: writing summary: %w", err)
	}
	if plot == nil {
		return nil
	}
	if err := writePlot(plot, opts, s, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(progress, "Plot: %s\n", plot.Name())
	return nil
}

// succeeded returns the number of 2xx responses.
func (s summary) succeeded() int64 {
	var n int64
	for code, c := range s.Status {
		if len(code) == 3 && code[0] == '2' {
			n += c
		}
	}
	return n
}

// failures describes the outcomes of a run in which no request succeeded,
// e.g. "10 of 10 requests failed (10 connection refused)".
func (s summary) failures() string {
	if s.Requests == 0 {
		return "no request finished"
	}
	var parts []string
	for _, k := range errorKinds {
		if n := s.Errors[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, strings.ReplaceAll(k, "_", " ")))
		}
	}
	codes := make([]string, 0, len(s.Status))
	for code := range s.Status {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	for _, code := range codes {
		parts = append(parts, fmt.Sprintf("%d status %s", s.Status[code], code))
	}
	return fmt.Sprintf("%d of %d requests failed (%s)", s.Requests, s.Requests, strings.Join(parts, ", "))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default so a second Ctrl-C kills at once.
	context.AfterFunc(ctx, stop)
	os.Exit(realMain(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
