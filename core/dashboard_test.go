//go:build unix

package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
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

// waitPage waits until the page shows an element matching sel.
func waitPage(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(sel)); err != nil {
		t.Fatalf("the dashboard never showed %s: %v", sel, err)
	}
}
