package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
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
		want    options // compared on url, method, c, n, duration, rate
		wantErr string
	}{
		{name: "defaults", args: nil,
			want: options{url: defaultURL, method: "POST", concurrency: 10, requests: 1000}},
		{name: "duration drops default n", args: []string{"-duration", "5s"},
			want: options{url: defaultURL, method: "POST", concurrency: 10, duration: 5 * time.Second}},
		{name: "n and duration", args: []string{"-n", "5", "-duration", "5s", "-rate", "2.5", "-method", "get"},
			want: options{url: defaultURL, method: "GET", concurrency: 10, requests: 5, duration: 5 * time.Second, rate: 2.5}},
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
}
