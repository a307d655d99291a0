package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

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
