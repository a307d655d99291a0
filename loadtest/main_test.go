package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// newBackend starts a server that answers the i-th request (from 0) with 503
// when i%4 == 0, else {"server":"a"} for odd i and {"server":"b"} for even i:
// of every 4 requests, 1 is 503, 2 are "a" and 1 is "b".
func newBackend(t *testing.T) *httptest.Server {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1) - 1
		w.Header().Set("Content-Type", "application/json")
		switch {
		case i%4 == 0:
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":"queue full","code":"queue_full"}`)
		case i%2 == 1:
			fmt.Fprint(w, `{"server":"a","queue_length":1}`)
		default:
			fmt.Fprint(w, `{ "server" : "b" }`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// newSlowBackend starts a server that answers {"server":"slow"} after d, or
// gives up when the client goes away.
func newSlowBackend(t *testing.T, d time.Duration) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
			fmt.Fprint(w, `{"server":"slow"}`)
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// testOptions returns options for a run against url as parseFlags would
// build them, with -n n and -c c.
func testOptions(url string, n int64, c int) options {
	return options{
		url:         url,
		method:      "POST",
		concurrency: c,
		requests:    n,
		timeout:     5 * time.Second,
	}
}

// mustRun runs opts and fails the test on error.
func mustRun(t *testing.T, ctx context.Context, opts options, progress io.Writer) summary {
	t.Helper()
	s, err := run(ctx, opts, progress)
	if err != nil {
		t.Fatalf("run(%+v) error: %v", opts, err)
	}
	return s
}

// sum adds the values of m.
func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

func TestRunCounts(t *testing.T) {
	srv := newBackend(t)
	s := mustRun(t, t.Context(), testOptions(srv.URL+"/requests", 200, 8), io.Discard)

	if s.Requests != 200 {
		t.Errorf("Requests = %d, want 200", s.Requests)
	}
	wantStatus := map[string]int64{"200": 150, "503": 50}
	if fmt.Sprint(s.Status) != fmt.Sprint(wantStatus) {
		t.Errorf("Status = %v, want %v", s.Status, wantStatus)
	}
	wantBackends := map[string]int64{"a": 100, "b": 50, "unknown": 50}
	if fmt.Sprint(s.Backends) != fmt.Sprint(wantBackends) {
		t.Errorf("Backends = %v, want %v", s.Backends, wantBackends)
	}
	if got := sum(s.Backends); got != s.Requests {
		t.Errorf("sum(Backends) = %d, want %d", got, s.Requests)
	}
	if got := sum(s.Errors); got != 0 {
		t.Errorf("Errors = %v, want none", s.Errors)
	}
	l := s.Latency
	if l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.Max || l.Mean <= 0 {
		t.Errorf("Latency = %+v, want 0 < p50 <= p90 <= p99 <= max and mean > 0", l)
	}
	if s.RPS <= 0 || s.Duration <= 0 || s.Interrupted {
		t.Errorf("RPS, Duration, Interrupted = %v, %v, %v; want > 0, > 0, false", s.RPS, s.Duration, s.Interrupted)
	}
}

func TestRunRequestsBeforeDuration(t *testing.T) {
	srv := newBackend(t)
	opts := testOptions(srv.URL, 20, 4)
	opts.duration = time.Minute
	begin := time.Now()
	s := mustRun(t, t.Context(), opts, io.Discard)
	if s.Requests != 20 {
		t.Errorf("Requests = %d, want 20", s.Requests)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("run with -n 20 -duration 1m took %v, want it to stop after 20 requests", d)
	}
}

func TestRunDuration(t *testing.T) {
	srv := newBackend(t)
	opts := testOptions(srv.URL, 0, 4)
	opts.duration = 300 * time.Millisecond
	begin := time.Now()
	s := mustRun(t, t.Context(), opts, io.Discard)
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("run with -duration 300ms took %v", d)
	}
	if s.Requests == 0 {
		t.Error("Requests = 0, want some")
	}
	if s.Duration < 0.2 || s.Duration > 5 {
		t.Errorf("Duration = %vs, want about 0.3s", s.Duration)
	}
}

func TestRunRate(t *testing.T) {
	srv := newBackend(t)
	opts := testOptions(srv.URL, 0, 8)
	opts.duration = 500 * time.Millisecond
	opts.rate = 100
	s := mustRun(t, t.Context(), opts, io.Discard)
	// 100 req/s for 0.5s is about 50 requests; unlimited would be thousands.
	if s.Requests == 0 || s.Requests >= 80 {
		t.Errorf("Requests = %d with -rate 100 -duration 500ms, want about 50", s.Requests)
	}
}

func TestRunCancelAbortsInFlight(t *testing.T) {
	srv := newSlowBackend(t, time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	s := mustRun(t, ctx, testOptions(srv.URL, 100, 4), io.Discard)
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("run took %v after cancel, want it to abort requests in flight", d)
	}
	if !s.Interrupted {
		t.Error("Interrupted = false, want true")
	}
	if s.Requests != 0 {
		t.Errorf("Requests = %d, want 0 (requests cut off are not counted)", s.Requests)
	}
}

func TestRunTransportErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String() + "/"
	ln.Close()

	s := mustRun(t, t.Context(), testOptions(closedURL, 10, 2), io.Discard)
	if s.Requests != 10 || s.Errors[errRefused] != 10 {
		t.Errorf("against a closed port: Requests = %d, Errors = %v; want 10 connection refused", s.Requests, s.Errors)
	}

	slow := newSlowBackend(t, 2*time.Second)
	opts := testOptions(slow.URL, 4, 2)
	opts.timeout = 50 * time.Millisecond
	s = mustRun(t, t.Context(), opts, io.Discard)
	if s.Requests != 4 || s.Errors[errTimeout] != 4 {
		t.Errorf("with -timeout 50ms: Requests = %d, Errors = %v; want 4 timeouts", s.Requests, s.Errors)
	}
	if len(s.Status) != 0 || len(s.Backends) != 0 {
		t.Errorf("with only errors: Status = %v, Backends = %v; want both empty", s.Status, s.Backends)
	}
}

func TestSummaryJSON(t *testing.T) {
	srv := newBackend(t)
	s := mustRun(t, t.Context(), testOptions(srv.URL, 40, 4), io.Discard)
	var buf bytes.Buffer
	if err := s.writeJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("writeJSON output %q does not parse: %v", buf.String(), err)
	}
	for _, k := range []string{"requests", "duration_seconds", "rps", "latency_ms", "status", "errors", "backends"} {
		if _, ok := got[k]; !ok {
			t.Errorf("JSON summary has no %q: %s", k, buf.String())
		}
	}
	lat, _ := got["latency_ms"].(map[string]any)
	for _, k := range []string{"p50", "p90", "p99", "max", "mean"} {
		if _, ok := lat[k].(float64); !ok {
			t.Errorf("latency_ms.%s missing or not a number: %v", k, got["latency_ms"])
		}
	}
	if got["requests"] != 40.0 {
		t.Errorf("requests = %v, want 40", got["requests"])
	}
	if st, _ := got["status"].(map[string]any); st["503"] != 10.0 {
		t.Errorf("status = %v, want 503: 10", got["status"])
	}
	if be, _ := got["backends"].(map[string]any); be["a"] != 20.0 {
		t.Errorf("backends = %v, want a: 20", got["backends"])
	}
}

func TestSummaryText(t *testing.T) {
	s := summary{
		Requests: 4, Duration: 2, RPS: 2,
		Latency:  latency{P50: 1.5, P90: 2, P99: 3, Max: 4, Mean: 1.75},
		Status:   map[string]int64{"200": 3},
		Errors:   map[string]int64{errTimeout: 1, errRefused: 0, errOther: 0},
		Backends: map[string]int64{"127.0.0.1:8081": 2, "127.0.0.1:8082": 1},
	}
	var buf bytes.Buffer
	if err := s.writeText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"4 in 2.000s, 2.0 req/s", "p50 1.500", "p99 3.000", "mean 1.750",
		"200", "timeout", "127.0.0.1:8081  2  (50.0%)"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("writeText() = \n%s\nwant it to contain %q", buf.String(), want)
		}
	}
}

func TestProgressLines(t *testing.T) {
	srv := newSlowBackend(t, 2*time.Millisecond)
	opts := testOptions(srv.URL, 60, 1)
	opts.progressEvery = 20 * time.Millisecond
	var buf bytes.Buffer
	mustRun(t, t.Context(), opts, &buf)

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	re := regexp.MustCompile(`^progress: \d+/60 requests, \d+ req/s, errors 0$`)
	for _, l := range lines {
		if !re.MatchString(l) {
			t.Errorf("progress line %q does not match %v", l, re)
		}
	}
	if len(lines) < 2 {
		t.Errorf("got %d progress lines, want several:\n%s", len(lines), buf.String())
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "progress: 60/60 requests") {
		t.Errorf("last progress line = %q, want 60/60", last)
	}
}

func TestProgressLinesDuration(t *testing.T) {
	srv := newBackend(t)
	opts := testOptions(srv.URL, 0, 2)
	opts.duration = 100 * time.Millisecond
	var buf bytes.Buffer
	mustRun(t, t.Context(), opts, &buf)
	re := regexp.MustCompile(`(?m)^progress: \d+ requests, 0s/100ms, \d+ req/s, errors \d+$`)
	if !re.MatchString(buf.String()) {
		t.Errorf("progress = %q, want a line matching %v", buf.String(), re)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    options // compared on url, method, c, n, duration, rate, plot
		wantErr string
	}{
		{name: "defaults", args: nil,
			want: options{url: defaultURL, method: "POST", concurrency: 10, requests: 1000}},
		{name: "duration drops default n", args: []string{"-duration", "5s"},
			want: options{url: defaultURL, method: "POST", concurrency: 10, duration: 5 * time.Second}},
		{name: "n and duration", args: []string{"-n", "5", "-duration", "5s", "-rate", "2.5", "-method", "get"},
			want: options{url: defaultURL, method: "GET", concurrency: 10, requests: 5, duration: 5 * time.Second, rate: 2.5}},
		{name: "plot", args: []string{"-plot", "run.html"},
			want: options{url: defaultURL, method: "POST", concurrency: 10, requests: 1000, plot: "run.html"}},
		{name: "zero c", args: []string{"-c", "0"}, wantErr: "-c must be at least 1"},
		{name: "zero n", args: []string{"-n", "0"}, wantErr: "-n must be at least 1"},
		{name: "negative duration", args: []string{"-duration", "-1s"}, wantErr: "-duration must be positive"},
		{name: "negative rate", args: []string{"-rate", "-3"}, wantErr: "-rate must be"},
		{name: "zero timeout", args: []string{"-timeout", "0s"}, wantErr: "-timeout must be positive"},
		{name: "bad url", args: []string{"-url", "localhost:8000"}, wantErr: "invalid -url"},
		{name: "ftp url", args: []string{"-url", "ftp://host/"}, wantErr: "invalid -url"},
		{name: "bad number", args: []string{"-c", "many"}, wantErr: "invalid value"},
		{name: "unknown flag", args: []string{"-x"}, wantErr: "not defined"},
		{name: "extra argument", args: []string{"8000"}, wantErr: "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseFlags(%q) error = %v, want %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseFlags(%q) error = %v", tt.args, err)
			}
			got.timeout, got.body, got.json = 0, "", false
			if got != tt.want {
				t.Errorf("parseFlags(%q) = %+v, want %+v", tt.args, got, tt.want)
			}
		})
	}
}

func TestParseFlagsHelp(t *testing.T) {
	var buf bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, &buf); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("parseFlags(-h) error = %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(buf.String(), "-duration") {
		t.Errorf("usage = %q, want it to list -duration", buf.String())
	}
}

func TestServerField(t *testing.T) {
	tests := []struct {
		body string
		want string // "" means no field
	}{
		{`{"server": "127.0.0.1:8081", "queue_length": 3}`, "127.0.0.1:8081"},
		{`{"queue_length":3,"server":"a"}`, "a"},
		{"{\n  \"server\" :\t\"b\"\n}", "b"},
		{`{"note":"server","server":"c"}`, "c"},
		{`{"server":"a\"b"}`, `a"b`},
		{`{"error":"no backend","code":"no_backend"}`, ""},
		{`{"server": 8081}`, ""},
		{`not json`, ""},
		{``, ""},
	}
	for _, tt := range tests {
		if got := string(serverField([]byte(tt.body))); got != tt.want {
			t.Errorf("serverField(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestProgram(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the program")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool:", err)
	}
	bin := filepath.Join(t.TempDir(), "loadtest")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	srv := newBackend(t)

	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), bin, "-url", srv.URL+"/requests", "-n", "50", "-json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("loadtest -n 50 -json: %v\nstderr: %s", err, stderr.String())
	}
	var s summary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("stdout %q is not JSON: %v", stdout.String(), err)
	}
	if s.Requests != 50 || sum(s.Status) != 50 || sum(s.Backends) != 50 {
		t.Errorf("summary = %+v, want 50 requests, statuses and backends", s)
	}
	if !strings.Contains(stderr.String(), "progress: 50/50 requests") {
		t.Errorf("stderr = %q, want the progress lines", stderr.String())
	}

	err = exec.CommandContext(t.Context(), bin, "-c", "0").Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Errorf("loadtest -c 0: %v, want exit status 2", err)
	}

	stderr.Reset()
	cmd = exec.CommandContext(t.Context(), bin, "-url", deadURL(t), "-n", "3")
	cmd.Stderr = &stderr
	err = cmd.Run()
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), "no request succeeded") {
		t.Errorf("loadtest against a dead port: %v, stderr %q; want exit status 1 and why", err, stderr.String())
	}
}

// deadURL returns the URL of a port where nothing listens: it listens on a
// free port and closes the listener.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String() + "/requests"
	ln.Close()
	return u
}

// newABBackend starts a server that answers {"server":"a"} and
// {"server":"b"} in turn, starting with "a", and counts the requests.
func newABBackend(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "a"
		if (n.Add(1)-1)%2 == 1 {
			name = "b"
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"server":%q}`, name)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// runMain runs realMain with args and returns its exit status and output.
func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = realMain(t.Context(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestMainNoSuccessDeadPort(t *testing.T) {
	u := deadURL(t)
	t.Run("text", func(t *testing.T) {
		code, stdout, stderr := runMain(t, "-url", u, "-n", "6", "-c", "2")
		if code != 1 {
			t.Errorf("exit status = %d, want 1", code)
		}
		for _, want := range []string{"no request succeeded", "6 of 6 requests failed", "6 connection refused"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, want)
			}
		}
		if !regexp.MustCompile(`connection refused\s+6`).MatchString(stdout) {
			t.Errorf("stdout = %q, want the summary with 6 connection refused", stdout)
		}
	})
	t.Run("json", func(t *testing.T) {
		code, stdout, stderr := runMain(t, "-url", u, "-n", "3", "-json")
		if code != 1 || !strings.Contains(stderr, "no request succeeded") {
			t.Errorf("exit status = %d, stderr = %q; want 1 and why", code, stderr)
		}
		var s summary
		if err := json.Unmarshal([]byte(stdout), &s); err != nil || s.Errors[errRefused] != 3 {
			t.Errorf("stdout = %q (%v), want the JSON summary with 3 refused", stdout, err)
		}
	})
}

func TestMainNoSuccessErrorStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"queue full"}`, http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	code, _, stderr := runMain(t, "-url", srv.URL, "-n", "4")
	if code != 1 || !strings.Contains(stderr, "no request succeeded: 4 of 4 requests failed (4 status 503)") {
		t.Errorf("exit status = %d, stderr = %q; want 1 and 4 status 503", code, stderr)
	}
}

func TestMainSomeSuccess(t *testing.T) {
	srv := newBackend(t) // a quarter of the answers are 503
	code, stdout, stderr := runMain(t, "-url", srv.URL, "-n", "20")
	if code != 0 || stderr != "" {
		t.Errorf("exit status = %d, stderr = %q; want 0 and nothing", code, stderr)
	}
	if !strings.Contains(stdout, "Requests:") {
		t.Errorf("stdout = %q, want the summary", stdout)
	}
}

// figure returns the <figure id="id"> element of a page, or fails the test.
func figure(t *testing.T, page, id string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<figure id="` + id + `">.*?</figure>`).FindString(page)
	if m == "" {
		t.Fatalf("page has no figure %q:\n%s", id, page)
	}
	return m
}

// checkSelfContained fails the test if page loads anything from elsewhere.
func checkSelfContained(t *testing.T, page string) {
	t.Helper()
	external := regexp.MustCompile(`(?i)(\b(src|href|srcset|action|data)\s*=|url\(|@import|<script|<link|<iframe|<object|<embed)`)
	if m := external.FindString(page); m != "" {
		t.Errorf("page refers to something outside itself: %q", m)
	}
}

// checkSVG fails the test unless every <svg> of page is well-formed XML.
func checkSVG(t *testing.T, page string) {
	t.Helper()
	svgs := regexp.MustCompile(`(?s)<svg.*?</svg>`).FindAllString(page, -1)
	if len(svgs) == 0 {
		t.Error("page has no <svg>")
	}
	for _, svg := range svgs {
		d := xml.NewDecoder(strings.NewReader(svg))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Errorf("svg is not well-formed: %v\n%s", err, svg)
				break
			}
		}
	}
}

func TestMainPlot(t *testing.T) {
	srv, _ := newABBackend(t)
	path := filepath.Join(t.TempDir(), "run.html")
	code, stdout, stderr := runMain(t, "-url", srv.URL+"/requests", "-n", "200", "-c", "4", "-plot", path)
	if code != 0 || stderr != "" {
		t.Fatalf("exit status = %d, stderr = %q; want 0 and nothing", code, stderr)
	}
	if !strings.Contains(stdout, "Plot: "+path) {
		t.Errorf("stdout = %q, want it to name the plot", stdout)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)

	tp := figure(t, page, "throughput")
	if !strings.Contains(tp, "<svg") || !strings.Contains(tp, `<rect class="ok"`) {
		t.Errorf("throughput figure has no SVG bars:\n%s", tp)
	}
	var ok, failed int
	for _, m := range regexp.MustCompile(`\((\d+) 2xx, (\d+) failed\)`).FindAllStringSubmatch(tp, -1) {
		o, _ := strconv.Atoi(m[1])
		f, _ := strconv.Atoi(m[2])
		ok, failed = ok+o, failed+f
	}
	if ok != 200 || failed != 0 {
		t.Errorf("throughput bars count %d 2xx and %d failed, want 200 and 0", ok, failed)
	}

	lat := figure(t, page, "latency")
	for _, q := range []string{"p50", "p90", "p99"} {
		if !regexp.MustCompile(`<path class="line ` + q + `" d="M[\d.]+ [\d.]+`).MatchString(lat) {
			t.Errorf("latency figure has no %s line:\n%s", q, lat)
		}
	}
	if !strings.Contains(lat, "<svg") || !regexp.MustCompile(`p50 \d+\.\d\d ms`).MatchString(lat) {
		t.Errorf("latency figure has no SVG with values:\n%s", lat)
	}

	for _, name := range []string{"a", "b"} {
		row := `<td class="name">` + name + `</td><td class="count">100</td><td class="share">50.0%</td>`
		if !strings.Contains(page, row) {
			t.Errorf("page has no row %q", row)
		}
	}
	if row := `<td class="name">200</td><td class="count">200</td><td class="share">100.0%</td>`; !strings.Contains(page, row) {
		t.Errorf("page has no row %q", row)
	}
	checkSelfContained(t, page)
	checkSVG(t, page)
}

func TestMainPlotNoSuccess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.html")
	code, _, stderr := runMain(t, "-url", deadURL(t), "-n", "3", "-plot", path)
	if code != 1 || !strings.Contains(stderr, "no request succeeded") {
		t.Errorf("exit status = %d, stderr = %q; want 1 and why", code, stderr)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no page after a run without success: %v", err)
	}
	if page := string(b); !strings.Contains(page, "no responses") || !strings.Contains(page, "connection refused") {
		t.Errorf("page does not show that every request failed:\n%s", page)
	}
}

func TestMainPlotBadPath(t *testing.T) {
	srv, n := newABBackend(t)
	path := filepath.Join(t.TempDir(), "missing", "run.html")
	code, _, stderr := runMain(t, "-url", srv.URL, "-n", "5", "-plot", path)
	if code != 2 || !strings.Contains(stderr, "-plot") || !strings.Contains(stderr, "missing") {
		t.Errorf("exit status = %d, stderr = %q; want 2 and the -plot error", code, stderr)
	}
	if got := n.Load(); got != 0 {
		t.Errorf("backend got %d requests, want none before the -plot path is known to work", got)
	}
}

func TestRenderPlotEscapes(t *testing.T) {
	const evil = `<script>alert("x")</script>&'`
	opts := testOptions(`http://example.test/?q=<b>"x"</b>&y=1`, 2, 1)
	s := summary{
		Requests: 2, Duration: 1.5, RPS: 2,
		Status:   map[string]int64{"200": 2},
		Errors:   map[string]int64{},
		Backends: map[string]int64{evil: 1, "b": 1},
		Seconds:  []secondStats{{OK: 1, Responses: 1, P50: 1, P90: 1, P99: 1}, {OK: 1, Responses: 1, P50: 2, P90: 2, P99: 2}},
	}
	var buf bytes.Buffer
	if err := renderPlot(&buf, opts, s, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, raw := range []string{"<script", `<b>"x"`, "alert(\"x\")"} {
		if strings.Contains(page, raw) {
			t.Errorf("page contains %q unescaped", raw)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;&#39;", "q=&lt;b&gt;&#34;x&#34;&lt;/b&gt;&amp;y=1"} {
		if !strings.Contains(page, want) {
			t.Errorf("page does not contain the escaped %q", want)
		}
	}
	checkSelfContained(t, page)
	checkSVG(t, page)
}

func TestRunSeconds(t *testing.T) {
	srv := newBackend(t)
	opts := testOptions(srv.URL, 200, 8)
	if s := mustRun(t, t.Context(), opts, io.Discard); s.Seconds != nil {
		t.Errorf("Seconds = %v without -plot, want nil", s.Seconds)
	}
	opts.plot = "unused.html" // run records seconds; realMain writes the page
	s := mustRun(t, t.Context(), opts, io.Discard)
	if want := int(math.Ceil(s.Duration)); len(s.Seconds) != want {
		t.Errorf("len(Seconds) = %d for %.3fs, want %d", len(s.Seconds), s.Duration, want)
	}
	var ok, failed, responses int64
	for _, st := range s.Seconds {
		ok, failed, responses = ok+st.OK, failed+st.Failed, responses+st.Responses
		if st.Responses > 0 && !(0 < st.P50 && st.P50 <= st.P90 && st.P90 <= st.P99) {
			t.Errorf("second %+v: want 0 < p50 <= p90 <= p99", st)
		}
	}
	if ok != s.Status["200"] || failed != s.Status["503"] || responses != s.Requests {
		t.Errorf("seconds count %d ok, %d failed, %d responses; summary %v, %d requests",
			ok, failed, responses, s.Status, s.Requests)
	}
}

func TestTimeline(t *testing.T) {
	start := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	ms := time.Millisecond
	tl := newTimeline(start)
	l0, l1 := tl.newLane(), tl.newLane()

	l0.record(at(100*ms), 10*ms, 200)
	l0.record(at(500*ms), 20*ms, 503)
	l1.record(at(900*ms), 30*ms, 204) // l1 keeps second 0 while l0 moves on
	l0.record(at(1200*ms), 0, 0)
	l0.record(at(3100*ms), 50*ms, 200)
	if _, ok := tl.pending[0]; !ok || len(tl.final) != 0 {
		t.Errorf("second 0 was reduced while lane 1 could still add to it: final = %v", tl.final)
	}
	l1.record(at(2500*ms), 40*ms, 200) // hands second 0 over; 0 and 1 are final
	if len(tl.final) != 2 || len(tl.pending) != 0 {
		t.Errorf("after both lanes passed second 1: final = %v, %d pending; want 2 final, none pending (the lanes hold seconds 2 and 3)",
			tl.final, len(tl.pending))
	}
	l0.close()
	l1.close()
	got := tl.seconds(4500 * ms)

	if len(got) != 5 {
		t.Fatalf("seconds(4.5s) = %d seconds, want 5: %+v", len(got), got)
	}
	near := func(v, want float64) bool { return math.Abs(v-want) <= want*0.01 }
	s0 := got[0]
	if s0.OK != 2 || s0.Failed != 1 || s0.Responses != 3 || !near(s0.P50, 20) || !near(s0.P99, 30) {
		t.Errorf("second 0 = %+v, want 2 ok, 1 failed, 3 responses, p50 20ms, p99 30ms", s0)
	}
	if s1 := got[1]; s1 != (secondStats{Failed: 1}) {
		t.Errorf("second 1 = %+v, want one transport error only", s1)
	}
	if s2 := got[2]; s2.OK != 1 || !near(s2.P50, 40) || !near(s2.P99, 40) {
		t.Errorf("second 2 = %+v, want one 40ms response", s2)
	}
	if s3 := got[3]; s3.OK != 1 || !near(s3.P90, 50) {
		t.Errorf("second 3 = %+v, want one 50ms response", s3)
	}
	if got[4] != (secondStats{}) {
		t.Errorf("second 4 = %+v, want empty", got[4])
	}
	if len(tl.spare) == 0 {
		t.Error("no histogram was kept for reuse")
	}
}

func TestNilLane(t *testing.T) {
	var tl *timeline
	l := tl.newLane()
	l.record(time.Now(), time.Millisecond, 200) // must not panic
	l.close()
}

func TestSpans(t *testing.T) {
	secs := []secondStats{{OK: 10}, {OK: 20, Failed: 2}, {OK: 3}}
	got := spans(secs, 2.2) // the last second lasts 0.2s: it joins the one before
	want := []span{{0, 1, 10, 0}, {1, 2.2, 23, 2}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("spans(2.2s) = %v, want %v", got, want)
	}
	got = spans(secs, 2.6)
	want = []span{{0, 1, 10, 0}, {1, 2, 20, 2}, {2, 2.6, 3, 0}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("spans(2.6s) = %v, want %v", got, want)
	}
	if got := spans(secs[:1], 0.1); len(got) != 1 || got[0].to != 0.1 {
		t.Errorf("spans of a 0.1s run = %v, want one span to 0.1", got)
	}
}

func TestTicks(t *testing.T) {
	tests := []struct {
		hi   float64
		n    int
		want float64
	}{{10, 5, 2}, {9.9, 5, 2}, {370, 5, 100}, {0.04, 5, 0.01}, {61, 12, 10}, {1, 12, 0.1}}
	for _, tt := range tests {
		if got := niceStep(tt.hi, tt.n); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("niceStep(%v, %d) = %v, want %v", tt.hi, tt.n, got, tt.want)
		}
	}
	var labels []string
	for _, tk := range ticks(axis{top: 0.3, from: 0, to: 300}, 0.1) {
		labels = append(labels, fmt.Sprintf("%s@%v", tk.Label, tk.Pos))
	}
	if got, want := strings.Join(labels, " "), "0.0@0 0.1@100 0.2@200 0.3@300"; got != want {
		t.Errorf("ticks = %s, want %s", got, want)
	}
}
