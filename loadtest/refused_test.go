package main

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestRefusals(t *testing.T) {
	type event struct {
		at   time.Duration // since the start
		kind string        // "refused", "answer" or "timeout"
	}
	ms := time.Millisecond
	tests := []struct {
		name     string
		events   []event
		stopAt   int  // index of the event that stops the run; -1 for none
		answered bool // the stop's error says the target had answered
	}{
		{name: "refused from the start",
			events: []event{{0, "refused"}, {500 * ms, "refused"}, {999 * ms, "refused"}, {1000 * ms, "refused"}},
			stopAt: 3},
		{name: "answered, then refused for 2s",
			events: []event{{0, "answer"}, {100 * ms, "refused"}, {1100 * ms, "refused"}, {2099 * ms, "refused"}, {2100 * ms, "refused"}},
			stopAt: 4, answered: true},
		{name: "an answer restarts the clock",
			events: []event{{0, "refused"}, {900 * ms, "refused"}, {950 * ms, "answer"}, {1000 * ms, "refused"}, {2900 * ms, "refused"}, {3000 * ms, "refused"}},
			stopAt: 5, answered: true},
		{name: "a timeout restarts the clock but is no answer",
			events: []event{{0, "refused"}, {900 * ms, "timeout"}, {1000 * ms, "refused"}, {1999 * ms, "refused"}, {2000 * ms, "refused"}},
			stopAt: 4},
		{name: "refusals between answers",
			events: []event{{0, "refused"}, {800 * ms, "refused"}, {900 * ms, "answer"}, {1000 * ms, "refused"}, {1900 * ms, "refused"}, {1950 * ms, "answer"}},
			stopAt: -1},
	}
	start := time.Unix(1000, 0)
	refusal := &net.OpError{Op: "dial", Net: "tcp", Err: errConnRefused}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stopped []error
			r := newRefusals("http://lb/requests", func(err error) { stopped = append(stopped, err) })
			for i, e := range tt.events {
				switch e.kind {
				case "refused":
					r.refused(start.Add(e.at), refusal)
				default:
					r.other(e.kind == "answer")
				}
				if got, want := len(stopped) > 0, tt.stopAt >= 0 && i >= tt.stopAt; got != want {
					t.Fatalf("after event %d (%s at %v): stopped = %v (%v), want %v", i, e.kind, e.at, got, stopped, want)
				}
			}
			if tt.stopAt < 0 {
				return
			}
			var re *refusedError
			if !errors.As(stopped[0], &re) || re.answered != tt.answered || !errors.Is(re, errConnRefused) {
				t.Errorf("stopped with %#v, want a *refusedError wrapping ECONNREFUSED with answered = %v", stopped[0], tt.answered)
			}
		})
	}
}

func TestRefusedErrorMessage(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		err  refusedError
		want string
	}{
		{refusedError{url: "http://localhost:8000/requests", lasted: time.Second, err: dial},
			"loadtest: http://localhost:8000/requests refuses connections (dial tcp: connection refused); is the load balancer running?"},
		{refusedError{url: "http://localhost:8000/requests", answered: true, lasted: 2049 * time.Millisecond, err: dial},
			"loadtest: http://localhost:8000/requests refused every connection for 2s (dial tcp: connection refused); stopped the run: did the load balancer stop?"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestNextBackoff(t *testing.T) {
	ms := time.Millisecond
	var got []time.Duration
	for d := time.Duration(0); len(got) < 6; {
		d = nextBackoff(d)
		got = append(got, d)
	}
	want := []time.Duration{10 * ms, 20 * ms, 40 * ms, 80 * ms, 100 * ms, 100 * ms}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backoffs = %v, want %v", got, want)
		}
	}
}

func TestMainRefusedTarget(t *testing.T) {
	t.Parallel()
	u := deadURL(t)
	begin := time.Now()
	code, stdout, stderr := runMain(t, "-url", u, "-duration", "1m", "-c", "4", "-json")
	took := time.Since(begin)

	if took < refusedAtStart || took > refusedAtStart+3*time.Second {
		t.Errorf("run against a closed port took %v, want about %v", took, refusedAtStart)
	}
	want := "loadtest: " + u + " refuses connections (dial tcp "
	if code != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "connection refused); is the load balancer running?") {
		t.Errorf("exit status = %d, stderr = %q; want 1 and %q...", code, stderr, want)
	}
	var s summary
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("stdout %q is not the JSON summary: %v", stdout, err)
	}
	// Backing off from 10ms to 100ms, a worker tries about 12 times in the
	// first second; without backoff it would be thousands.
	if s.Requests == 0 || s.Errors[errRefused] != s.Requests || s.Requests > 4*30 {
		t.Errorf("Requests = %d, Errors = %v; want a few dozen, all connection refused", s.Requests, s.Errors)
	}
}

// serveOn serves h on ln until the test ends or the returned func is called.
func serveOn(t *testing.T, ln net.Listener, h http.Handler) (stop func()) {
	t.Helper()
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return func() { srv.Close() }
}

func TestRunRefusedAfterAnswer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"server":"a"}`) })
	stop := serveOn(t, ln, ok)
	var stoppedAt atomic.Pointer[time.Time]
	time.AfterFunc(300*time.Millisecond, func() {
		now := time.Now() // no refusal before this
		stoppedAt.Store(&now)
		stop()
	})

	opts := testOptions("http://"+ln.Addr().String()+"/requests", 0, 4)
	opts.duration = time.Minute
	s, err := run(t.Context(), opts, io.Discard)
	end := time.Now()

	var re *refusedError
	if !errors.As(err, &re) || !re.answered || !errors.Is(err, errConnRefused) {
		t.Fatalf("run error = %v, want a *refusedError after answers, wrapping ECONNREFUSED", err)
	}
	if at := stoppedAt.Load(); at == nil {
		t.Error("run ended before the target stopped")
	} else if d := end.Sub(*at); d < refusedAfterAnswer || d > refusedAfterAnswer+3*time.Second {
		t.Errorf("run ended %v after the target stopped, want about %v", d, refusedAfterAnswer)
	}
	if s.Status["200"] == 0 || s.Errors[errRefused] == 0 {
		t.Errorf("Status = %v, Errors = %v; want the answers before and the refusals after", s.Status, s.Errors)
	}
}

func TestRunRidesOutRestart(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var after atomic.Int64 // requests answered after the restart
	first := serveOn(t, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"server":"a"}`) }))
	restarted := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		first()
		time.Sleep(refusedAtStart) // down longer than a target that never answered may be
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			serveOn(t, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				after.Add(1)
				io.WriteString(w, `{"server":"b"}`)
			}))
		}
		restarted <- err
	}()

	opts := testOptions("http://"+addr+"/requests", 0, 4)
	opts.duration = 2500 * time.Millisecond
	s, err := run(t.Context(), opts, io.Discard)
	if rerr := <-restarted; rerr != nil {
		t.Skipf("could not listen on %s again: %v", addr, rerr)
	}
	if err != nil {
		t.Fatalf("run error = %v, want none: the target was down %v, less than %v", err, refusedAtStart, refusedAfterAnswer)
	}
	if s.Backends["a"] == 0 || s.Backends["b"] == 0 || s.Errors[errRefused] == 0 || after.Load() == 0 {
		t.Errorf("Backends = %v, Errors = %v; want answers before and after the restart, refusals between", s.Backends, s.Errors)
	}
}
