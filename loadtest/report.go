package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
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

// addError records one transport error of kind (see errorKind).
func (t *tally) addError(kind string) {
	t.requests++
	t.errors[kind]++
}

// errorKind classifies a transport error as timeout, connection refused or other.
func errorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), // the connection's deadline: -timeout
		errors.As(err, &ne) && ne.Timeout(): // a dial that ran out of time
		return errTimeout
	case errors.Is(err, errConnRefused):
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
