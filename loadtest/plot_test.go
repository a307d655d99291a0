package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

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
