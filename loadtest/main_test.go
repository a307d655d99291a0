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
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
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

func TestParseFlags(t *testing.T) {
	bodyFile := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(bodyFile, []byte("{\"a\": 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		want    options // compared on all but timeout and json
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
		{name: "m H d", args: []string{"-m", "put", "-H", "X-Test: 1", "-H", "x-test:2", "-H", "Host:  example.test\t", "-H", "X-Empty:", "-d", "hello"},
			want: options{url: defaultURL, method: "PUT", concurrency: 10, requests: 1000, body: "hello",
				headers: headers{{"X-Test", "1"}, {"x-test", "2"}, {"Host", "example.test"}, {"X-Empty", ""}}}},
		{name: "d from file", args: []string{"-d", "@" + bodyFile},
			want: options{url: defaultURL, method: "POST", concurrency: 10, requests: 1000, body: "{\"a\": 1}\n"}},
		{name: "body is literal", args: []string{"-body", "@" + bodyFile},
			want: options{url: defaultURL, method: "POST", concurrency: 10, requests: 1000, body: "@" + bodyFile}},
		{name: "header without colon", args: []string{"-H", "X-Test 1"}, wantErr: `invalid value "X-Test 1" for flag -H: want 'Name: value'`},
		{name: "header name with space", args: []string{"-H", "X Test: 1"}, wantErr: `invalid header name "X Test"`},
		{name: "empty header name", args: []string{"-H", ": 1"}, wantErr: `invalid header name ""`},
		{name: "content length", args: []string{"-H", "content-length: 3"}, wantErr: "content-length comes from the body"},
		{name: "transfer encoding", args: []string{"-H", "Transfer-Encoding: chunked"}, wantErr: "Transfer-Encoding comes from the body"},
		{name: "header value with newline", args: []string{"-H", "X-Test: 1\r\nX-Evil: 2"}, wantErr: "line break"},
		{name: "missing body file", args: []string{"-d", "@" + bodyFile + ".missing"}, wantErr: "body.json.missing"},
		{name: "empty method", args: []string{"-m", ""}, wantErr: "invalid method"},
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
			got.timeout, got.json = 0, false
			if !reflect.DeepEqual(got, tt.want) {
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

	stderr.Reset()
	cmd = exec.CommandContext(t.Context(), bin, "-url", deadURL(t), "-duration", "1m")
	cmd.Stderr = &stderr
	begin := time.Now()
	err = cmd.Run()
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), "refuses connections") {
		t.Errorf("loadtest -duration 1m against a dead port: %v, stderr %q; want exit status 1 and why", err, stderr.String())
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("loadtest -duration 1m against a dead port took %v, want it to give up after about %v", d, refusedAtStart)
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
		for _, want := range []string{"no request succeeded", "6 of 6 requests failed", "6 connection refused",
			u + " refuses connections; is the load balancer running?"} {
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

// received is what a recording backend saw of one request.
type received struct {
	method, host, body string
	header             http.Header
}

// newRecordingBackend starts a server that answers {"server":"rec"} and
// sends what it received of each request on the returned channel, which
// holds up to 100 requests; later ones are not recorded.
func newRecordingBackend(t *testing.T) (*httptest.Server, <-chan received) {
	t.Helper()
	ch := make(chan received, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		select {
		case ch <- received{method: r.Method, host: r.Host, body: string(body), header: r.Header.Clone()}:
		default:
		}
		fmt.Fprint(w, `{"server":"rec"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func TestMainRequestShape(t *testing.T) {
	bodyFile := filepath.Join(t.TempDir(), "body.json")
	fileBody := "{\"a\": 1,\n \"b\": \"two\"}\n"
	if err := os.WriteFile(bodyFile, []byte(fileBody), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		method string
		host   string // "" for the URL's
		body   string
		header http.Header // must be among the request's headers
	}{
		{name: "defaults", args: nil, method: "POST", body: "",
			header: http.Header{"User-Agent": {"switchyard-loadtest"}}},
		{name: "m H d", method: "PUT", host: "example.test", body: `{"k":"v"}`,
			args: []string{"-m", "put", "-H", "X-Test: one", "-H", "x-test:two", "-H", "Content-Type: application/json",
				"-H", "Host: example.test", "-H", "User-Agent: curl/8", "-d", `{"k":"v"}`},
			header: http.Header{"X-Test": {"one", "two"}, "Content-Type": {"application/json"}, "User-Agent": {"curl/8"}}},
		{name: "d from a file", method: "POST", body: fileBody,
			args:   []string{"-d", "@" + bodyFile},
			header: http.Header{"Content-Length": {strconv.Itoa(len(fileBody))}}},
		{name: "GET without body", method: "GET", body: "",
			args: []string{"-m", "GET", "-H", "Accept: */*"}, header: http.Header{"Accept": {"*/*"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := newRecordingBackend(t)
			args := append([]string{"-url", srv.URL + "/requests", "-n", "3", "-c", "1"}, tt.args...)
			if code, _, stderr := runMain(t, args...); code != 0 {
				t.Fatalf("loadtest %q: exit status %d, stderr %q; want 0", args, code, stderr)
			}
			if n := len(got); n != 3 {
				t.Fatalf("backend got %d requests, want 3", n)
			}
			wantHost := tt.host
			if wantHost == "" {
				wantHost = strings.TrimPrefix(srv.URL, "http://")
			}
			for range 3 {
				r := <-got
				if r.method != tt.method || r.host != wantHost || r.body != tt.body {
					t.Errorf("backend got %s, Host %q, body %q; want %s, %q, %q", r.method, r.host, r.body, tt.method, wantHost, tt.body)
				}
				for name, want := range tt.header {
					if v := r.header.Values(name); !reflect.DeepEqual(v, want) {
						t.Errorf("backend got %s: %q, want %q (all: %v)", name, v, want, r.header)
					}
				}
			}
		})
	}
}

func TestMainBadHeader(t *testing.T) {
	srv, got := newRecordingBackend(t)
	code, _, stderr := runMain(t, "-url", srv.URL, "-n", "1", "-H", "X-Test")
	if code != 2 || !strings.Contains(stderr, "want 'Name: value'") || !strings.Contains(stderr, "usage:") {
		t.Errorf("loadtest -H X-Test: exit status %d, stderr %q; want 2, the error and the usage", code, stderr)
	}
	if len(got) != 0 {
		t.Error("a request was sent despite the bad flag")
	}
}
