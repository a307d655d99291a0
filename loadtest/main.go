// Command loadtest sends HTTP requests to the load balancer (or any URL) from
// a fixed number of concurrent workers and reports throughput, latency
// percentiles, status codes and which backend answered.
//
// Usage:
//
//	go run ./loadtest [-url URL] [-c CONCURRENCY] [-n REQUESTS | -duration D]
//	    [-rate R] [-m METHOD] [-H 'Name: value']... [-d BODY | -d @FILE]
//	    [-timeout D] [-json] [-plot PATH.html]
//
// It stops after -n requests, after -duration, or at Ctrl-C, whichever comes
// first, and always prints the summary. The backend of each response is the
// "server" field of its JSON body, as the test backend answers (DESIGN.md
// section 8). While it runs it shows a progress bar when the progress output is
// a terminal and a plain line every second otherwise; with -json the progress
// goes to stderr and stdout holds only the JSON summary.
//
// -m, -H and -d shape the request as curl's flags of the same names do: -H
// adds a header (repeatable; a Host header replaces the URL's host in the
// request, not the address dialled) and -d @FILE sends a file's bytes as they
// are. The method stays POST unless -m says otherwise.
//
// Each worker keeps one connection to the target (TLS for an https URL) and
// sends its requests on it one at a time, dialling again after a response
// that closes the connection or an error. -timeout bounds each request, its
// dial and TLS handshake included. No request is retried: a failed one counts
// as one failure.
//
// A target that refuses connections ends the run early (refused.go): once
// every attempt for 1s has been refused, or for 2s when the target has
// answered earlier in the run, so that a restart of the load balancer does not
// end a long run.
//
// -plot PATH.html also writes a self-contained page (inline SVG, no external
// script, font or stylesheet) with charts of throughput and latency
// percentiles over time, the backends' shares and the status codes.
//
// Exit status: 0 when at least one request succeeded (got a 2xx response) and
// the target did not stop the run by refusing connections; 1 when no request
// succeeded, the target refused connections, or the summary or page could not
// be written; 2 on bad flags or a -plot path that cannot be created.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

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

// options configures one load test run.
type options struct {
	url         string        // target URL (default http://localhost:8000/requests)
	method      string        // HTTP method (default POST)
	headers     headers       // request headers added by -H, in order
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
	tlsConfig     *tls.Config   // base TLS configuration of an https URL; nil for the defaults (the system's roots)
}

// usageLine is the synopsis printed with -h and with flag errors.
const usageLine = "usage: go run ./loadtest [-url URL] [-c CONCURRENCY] [-n REQUESTS | -duration D] [-rate R] [-m METHOD] [-H 'Name: value']... [-d BODY | -d @FILE] [-timeout D] [-json] [-plot PATH.html]"

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
	fs.StringVar(&o.method, "m", defaultMethod, "HTTP `METHOD`")
	fs.StringVar(&o.method, "method", defaultMethod, "same as -m")
	fs.Var(&o.headers, "H", "add the request header `'Name: value'` (repeatable; Host replaces the URL's host in the request)")
	fs.Func("d", "request `BODY` (Content-Type application/octet-stream unless -H gives one); @FILE sends the bytes of FILE", func(arg string) error {
		body, err := readBody(arg)
		o.body = body
		return err
	})
	fs.StringVar(&o.body, "body", "", "request body `string`, taken literally (-d without @FILE)")
	fs.IntVar(&o.concurrency, "c", defaultConcurrency, "number of concurrent workers")
	fs.Int64Var(&o.requests, "n", 0, "stop after `N` requests (default 1000 unless -duration is given)")
	fs.DurationVar(&o.duration, "duration", 0, "stop after duration `D` (e.g. 30s); with -n, whichever comes first")
	fs.Float64Var(&o.rate, "rate", 0, "limit to `R` requests/s overall (0 = unlimited)")
	fs.DurationVar(&o.timeout, "timeout", defaultTimeout, "per-request timeout `D`")
	fs.BoolVar(&o.json, "json", false, "print the summary as one JSON object (progress goes to stderr)")
	fs.StringVar(&o.plot, "plot", "", "also write a self-contained HTML page with charts of the run to `PATH`")
	return fs
}

// header is one request header field given with -H.
type header struct{ name, value string }

// headers collects the repeatable -H flag; *headers is a flag.Value.
type headers []header

// String returns the headers as -H would take them, separated by ", ".
func (h *headers) String() string {
	var parts []string
	for _, f := range *h {
		parts = append(parts, f.name+": "+f.value)
	}
	return strings.Join(parts, ", ")
}

// Set adds the header of one -H flag, "Name: value" as curl takes it. The
// value loses the white space around it and may be empty. The body's framing
// is not the caller's to set: (*http.Request).Write writes it from the body
// and ignores those headers.
func (h *headers) Set(arg string) error {
	name, value, ok := strings.Cut(arg, ":")
	if !ok {
		return fmt.Errorf("want 'Name: value', got %q", arg)
	}
	if !isToken(name) {
		return fmt.Errorf("invalid header name %q", name)
	}
	if strings.EqualFold(name, "Content-Length") || strings.EqualFold(name, "Transfer-Encoding") {
		return fmt.Errorf("%s comes from the body (-d) and cannot be set", name)
	}
	value = strings.Trim(value, " \t")
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("header %s: value has a line break or NUL", name)
	}
	*h = append(*h, header{name: name, value: value})
	return nil
}

// isToken reports whether s is a token, as a header name must be (RFC 9110
// section 5.6.2).
func isToken(s string) bool {
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// readBody returns the request body of a -d flag: arg itself or, for @FILE,
// the bytes of FILE unchanged (curl's -d drops the line breaks of a file;
// this is its --data-binary).
func readBody(arg string) (string, error) {
	name, ok := strings.CutPrefix(arg, "@")
	if !ok {
		return arg, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	return string(b), nil
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
		return fmt.Errorf("loadtest: invalid method %q (-m)", o.method)
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

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default so a second Ctrl-C kills at once.
	context.AfterFunc(ctx, stop)
	os.Exit(realMain(ctx, os.Args[1:], os.Stdout, os.Stderr))
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
	var refused *refusedError
	if err != nil && !errors.As(err, &refused) {
		discardPlot(plot)
		fmt.Fprintln(stderr, err)
		return 2
	}
	if err := report(opts, s, plot, stdout, progress); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	switch {
	case refused != nil:
		fmt.Fprintln(stderr, refused)
		return 1
	case s.succeeded() == 0:
		fmt.Fprintln(stderr, "loadtest: no request succeeded:", s.failures())
		if s.Requests > 0 && s.Errors[errRefused] == s.Requests {
			fmt.Fprintf(stderr, "loadtest: %s refuses connections; is the load balancer running?\n", opts.url)
		}
		return 1
	}
	return 0
}

// run sends requests as opts says until the request count or duration is
// reached or ctx is cancelled, writing progress to progress. Requests cut off
// by the stop are not counted. The error is a *refusedError, with the summary
// of the run so far, when the target refused connections until the run ended
// (refused.go); any other error is one of invalid options.
func run(ctx context.Context, opts options, progress io.Writer) (summary, error) {
	if err := opts.validate(); err != nil {
		return summary{}, err
	}
	tgt, err := newTarget(opts)
	if err != nil {
		return summary{}, err
	}
	stopCtx, stop := context.WithCancelCause(ctx) // stop(err) ends the run early with err
	defer stop(nil)
	runCtx := stopCtx
	start := time.Now()
	if opts.duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithDeadline(stopCtx, start.Add(opts.duration))
		defer cancel()
	}

	live := &counters{}
	rep := newReporter(opts, progress, live, start)
	repDone := make(chan struct{})
	go func() { defer close(repDone); rep.loop(runCtx) }()

	var tl *timeline
	if opts.plot != "" {
		tl = newTimeline(start)
	}
	tallies := runWorkers(runCtx, opts, tgt, newSchedule(opts, start), live, newRefusals(opts.url, stop), tl)
	elapsed := time.Since(start)
	stop(nil) // a cause given earlier stays
	<-repDone
	rep.finish(elapsed)

	s := merge(tallies, elapsed)
	s.Interrupted = ctx.Err() != nil
	if tl != nil {
		s.Seconds = tl.seconds(elapsed)
	}
	if refused := (*refusedError)(nil); errors.As(context.Cause(stopCtx), &refused) {
		return s, refused
	}
	return s, nil
}

// runWorkers starts opts.concurrency workers sending to tgt and returns
// their tallies once all have stopped. With a timeline (nil for none) each
// worker also records into a lane of it.
func runWorkers(ctx context.Context, opts options, tgt *target, sched *schedule, live *counters, rf *refusals, tl *timeline) []*tally {
	tallies := make([]*tally, opts.concurrency)
	var wg sync.WaitGroup
	for i := range tallies {
		w := newWorker(opts, tgt, live, rf, tl.newLane())
		tallies[i] = w.tally
		wg.Go(func() { w.loop(ctx, sched) })
	}
	wg.Wait()
	return tallies
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
