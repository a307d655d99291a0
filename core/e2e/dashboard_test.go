//go:build unix

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/status"
)

// browser returns a headless Chromium context, or skips the test when none is
// installed (CI installs one: see .ci/run).
func browser(t *testing.T) context.Context {
	t.Helper()
	var bin string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no Chromium to test the dashboard with; .ci/run installs Debian's chromium")
		}
		t.Skip("no Chromium installed (apt-get install -y chromium) to test the dashboard with")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

func TestDashboardShowsBackendsAndFollowsADrain(t *testing.T) {
	ctx := browser(t)
	_, a := startBackend(t, "-work", "0")
	_, b := startBackend(t, "-work", "0")
	lb := startCore(t, map[string]any{"servers": backendsConfig(a, b), "health_check": fastChecks(nil)})
	countBy(t, postMany(lb.url+"/requests", 20, 2))

	if err := chromedp.Do(ctx, chromedp.Navigate(lb.admin+"/")); err != nil {
		t.Fatalf("loading the dashboard: %v", err)
	}
	waitPage(t, ctx, `tr[data-url="`+a+`"] td.state span`)
	waitPage(t, ctx, `tr[data-url="`+b+`"] td.state span`)
	strategy, err := chromedp.Run(ctx, chromedp.Text("#strategy"))
	if err != nil {
		t.Fatal(err)
	}
	table, err := chromedp.Run(ctx, chromedp.Text("#backends"))
	if err != nil {
		t.Fatal(err)
	}
	if strategy != "leastconn" {
		t.Errorf("dashboard strategy %q, want leastconn", strategy)
	}
	for _, u := range []string{a, b} {
		if !strings.Contains(table, u) {
			t.Errorf("dashboard table lacks backend %s:\n%s", u, table)
		}
	}
	if strings.Count(table, "up") < 2 {
		t.Errorf("dashboard table does not show both backends up:\n%s", table)
	}

	// A drain from elsewhere shows on the open page within its refresh...
	if code, body := lb.setState(t, `{"url": "`+b+`", "state": "drain"}`); code != 200 {
		t.Fatalf("drain = %d %s", code, body)
	}
	waitPage(t, ctx, `tr[data-url="`+b+`"] td.state span.drain`)
	// ...and the page's own button makes it ready again.
	if err := chromedp.Do(ctx, chromedp.Click(`tr[data-url="`+b+`"] button[data-state="ready"]`)); err != nil {
		t.Fatalf("clicking ready: %v", err)
	}
	waitUntil(t, "the backend ready again", func() bool { state, _, _, _ := lb.backendStatus(t, b); return state == "up" })
	waitPage(t, ctx, `tr[data-url="`+b+`"] td.state span.up`)
}

// codeBackend answers GET /code/N with status N (and a Location for a 3xx), anything
// else (its health checks) with 200.
func codeBackend(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/code/"))
		if err != nil {
			code = http.StatusOK
		}
		if code >= 300 && code < 400 {
			w.Header().Set("Location", "/")
		}
		w.WriteHeader(code)
		fmt.Fprintln(w, "answered", code)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// history reads GET /status/history on the core's admin address.
func (l *lbInstance) history(t *testing.T) []status.Sample {
	t.Helper()
	resp, err := http.Get(l.admin + "/status/history")
	if err != nil {
		t.Fatalf("GET /status/history: %v", err)
	}
	defer resp.Body.Close()
	var h struct{ Samples []status.Sample }
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("decoding /status/history: %v", err)
	}
	return h.Samples
}

func TestDashboardShowsTotalsAndOpensWithHistory(t *testing.T) {
	ctx := browser(t)
	be := codeBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(be), "health_check": fastChecks(nil)})
	// One 5xx only: three in a row would eject the backend.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, code := range []int{200, 302, 404, 200, 500, 302, 404, 200} {
		resp, err := client.Get(lb.url + "/code/" + itoa(code))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Fatalf("GET /code/%d = %d", code, resp.StatusCode)
		}
	}
	// The core samples once a second from its start, whether a page is open or not.
	waitUntil(t, "three samples of history", func() bool { return len(lb.history(t)) >= 3 })
	want := backend.Classes{Success: 3, Redirection: 2, ClientError: 2, ServerError: 1}
	st := lb.status(t)
	if b := st.Backends[0]; b.Answers != want || b.BytesOut == 0 || b.Check == nil {
		t.Errorf("status of the backend: answers %+v, bytes out %d, check %v; want %+v, some bytes, a check", b.Answers, b.BytesOut, b.Check, want)
	}
	if st.Totals.Answers != want || st.Process.Version == "" {
		t.Errorf("status totals %+v, version %q; want %+v and a version", st.Totals.Answers, st.Process.Version, want)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(lb.admin+"/")); err != nil {
		t.Fatalf("loading the dashboard: %v", err)
	}
	row := `tr[data-url="` + be + `"] `
	waitPage(t, ctx, row+`td[data-class="5xx"]`)
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	for class, n := range map[string]uint64{"2xx": want.Success, "3xx": want.Redirection, "4xx": want.ClientError, "5xx": want.ServerError} {
		if got := text(row + `td[data-class="` + class + `"]`); got != strconv.FormatUint(n, 10) {
			t.Errorf("dashboard %s of the backend = %q, want %d", class, got, n)
		}
	}
	if got := text("#answered"); got != "8" {
		t.Errorf("dashboard answered since start = %q, want 8", got)
	}
	if got := text("#version"); got != st.Process.Version {
		t.Errorf("dashboard version = %q, want %q", got, st.Process.Version)
	}
	if got := text("#uptime"); !strings.HasPrefix(got, "up ") {
		t.Errorf("dashboard uptime = %q, want up ...", got)
	}
	if got := text(row + ".check"); !strings.Contains(got, "check passed in") {
		t.Errorf("dashboard last check = %q, want check passed in ...", got)
	}
	if got := text(row + "td.bytes-out"); got == "0 B" {
		t.Errorf("dashboard bytes out of the backend = %q, want some", got)
	}
	// The charts open with the history drawn, not with one point.
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.dataset.history || ""`))
	if err != nil {
		t.Fatal(err)
	}
	points, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('`+row+`td.chart').dataset.points`))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.Atoi(loaded); n < 3 {
		t.Errorf("dashboard drew %q samples of history, want 3 or more", loaded)
	}
	if n, _ := strconv.Atoi(points); n < 3 {
		t.Errorf("dashboard chart of the backend has %q points on load, want 3 or more", points)
	}
}

// waitPage waits until the page shows an element matching sel.
func waitPage(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(sel)); err != nil {
		t.Fatalf("the dashboard never showed %s: %v", sel, err)
	}
}
