// Command loadtest sends HTTP requests to the load balancer (or any URL) from
// a fixed number of concurrent workers and reports throughput, latency
// percentiles, status codes and which backend answered.
//
// Usage:
//
//	go run loadtest/main.go [-url URL] [-c CONCURRENCY] [-n REQUESTS | -duration D]
//	    [-rate R] [-method M] [-body S] [-timeout D] [-json]
//
// It stops after -n requests, after -duration, or at Ctrl-C, whichever comes
// first, and always prints the summary. The backend of each response is the
// "server" field of its JSON body, as the test backend answers (DESIGN.md
// section 8). While it runs it shows a progress bar when the progress output is
// a terminal and a plain line every second otherwise; with -json the progress
// goes to stderr and stdout holds only the JSON summary.
//
// Exit status: 0 when the test ran (even if requests failed), 2 on bad flags.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
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

	progressBar   bool          // draw a progress bar instead of plain lines
	progressEvery time.Duration // interval between plain progress lines (default 1s)
}

// usageLine is the synopsis printed with -h and with flag errors.
const usageLine = "usage: go run loadtest/main.go [-url URL] [-c CONCURRENCY] [-n REQUESTS | -duration D] [-rate R] [-method M] [-body S] [-timeout D] [-json]"

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

	tallies := runWorkers(runCtx, opts, newClient(opts, conns), newSchedule(opts, start), live)
	elapsed := time.Since(start)
	cancel()
	<-repDone
	rep.finish(elapsed)

	s := merge(tallies, elapsed)
	s.Interrupted = ctx.Err() != nil
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
// all have stopped.
func runWorkers(ctx context.Context, opts options, c *fasthttp.Client, sched *schedule, live *counters) []*tally {
	tallies := make([]*tally, opts.concurrency)
	var wg sync.WaitGroup
	for i := range tallies {
		w := newWorker(opts, c, live)
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
}

// newWorker returns a worker sending the request opts describes.
func newWorker(opts options, c *fasthttp.Client, live *counters) *worker {
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
	}
}

// loop sends requests as the schedule releases them until it says stop.
func (w *worker) loop(ctx context.Context, sched *schedule) {
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
	elapsed := time.Since(begin)
	if err != nil {
		if ctx.Err() != nil {
			return // aborted by the stop
		}
		w.tally.addError(err)
		w.live.failed.Add(1)
		w.live.done.Add(1)
		return
	}
	code := w.resp.StatusCode()
	w.tally.addResponse(code, elapsed, w.resp.Body())
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
	progress := stdout
	if opts.json {
		progress = stderr
	}
	opts.progressBar = isTerminal(progress)
	s, err := run(ctx, opts, progress)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if opts.json {
		err = s.writeJSON(stdout)
	} else {
		err = s.writeText(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "loadtest: writing summary:", err)
		return 1
	}
	return 0
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default so a second Ctrl-C kills at once.
	context.AfterFunc(ctx, stop)
	os.Exit(realMain(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
