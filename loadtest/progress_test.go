package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

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
