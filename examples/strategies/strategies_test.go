// Package strategies holds strategy scripts to copy; these tests run each one as the
// load balancer would, through the sdk's test kit.
package strategies

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/core/script"
	"github.com/switchyard-lb/switchyard/sdk"
	"github.com/switchyard-lb/switchyard/sdk/sdktest"
)

// harness runs the script file with options over backends.
func harness(t *testing.T, file string, options any, backends ...sdk.Backend) *sdktest.Harness {
	t.Helper()
	s := script.New(file)
	h := sdktest.New(t, s, backends...)
	if options != nil {
		if err := h.Configure(options); err != nil {
			t.Fatalf("Configure(%v) = %v", options, err)
		}
	}
	return h
}

func TestSticky(t *testing.T) {
	h := harness(t, "sticky.star", map[string]any{"header": "X-User", "cookie": "session"},
		sdktest.Backends("http://a:1", "http://b:1", "http://c:1")...)
	users := map[string]string{}
	for i := range 30 {
		user := fmt.Sprintf("user-%d", i)
		first, err := h.Pick(&sdk.Request{Headers: map[string]string{"X-User": user}})
		if err != nil {
			t.Fatal(err)
		}
		users[user] = first
		for range 5 {
			if got, _ := h.Pick(&sdk.Request{Headers: map[string]string{"X-User": user}}); got != first {
				t.Fatalf("%s went to %s, then %s: want the same backend", user, first, got)
			}
		}
	}
	spread := map[string]int{}
	for _, b := range users {
		spread[b]++
	}
	if len(spread) != 3 {
		t.Errorf("30 users over 3 backends: %v, want every backend to have some", spread)
	}
	// The cookie works as the header does.
	byCookie, _ := h.Pick(&sdk.Request{Headers: map[string]string{"Cookie": "theme=dark; session=user-7"}})
	if byCookie != users["user-7"] {
		t.Errorf("session cookie user-7 went to %s, the header to %s: want the same", byCookie, users["user-7"])
	}
	// Without either, requests spread by load.
	h = harness(t, "sticky.star", nil, sdktest.Backends("http://a:1", "http://b:1", "http://c:1")...)
	if counts := h.Spread(&sdk.Request{}, 30); len(counts) != 3 {
		t.Errorf("anonymous requests: %v, want them spread over all 3", counts)
	}
}

func TestStickyRefusesAHeaderItCannotSee(t *testing.T) {
	h := harness(t, "sticky.star", nil, sdktest.Backends("http://a:1")...)
	if err := h.Configure(map[string]any{"header": "X-Tenant"}); err == nil {
		t.Error("Configure with a header not in HEADERS succeeded, want it refused")
	}
}

func TestLowestQueue(t *testing.T) {
	bs := sdktest.Backends("http://a:1", "http://b:1", "http://c:1")
	bs[0].QueueLength, bs[1].QueueLength, bs[2].QueueLength = 9, 2, 5
	h := harness(t, "lowest_queue.star", nil, bs...)
	if got, _ := h.Pick(nil); got != "http://b:1" {
		t.Errorf("queues 9, 2, 5: picked %s, want http://b:1", got)
	}
	// In-flight requests count too: b now carries 2 + 4.
	for range 3 {
		h.Pick(nil)
	}
	if got, _ := h.Pick(nil); got == "http://a:1" {
		t.Errorf("picked a, with the longest queue")
	}
}

func TestCanarySplit(t *testing.T) {
	h := harness(t, "canary.star", map[string]any{"canary": ":8083", "percent": 10},
		sdktest.Backends("http://10.0.0.1:8081", "http://10.0.0.2:8081", "http://10.0.0.3:8083")...)
	counts := h.Spread(nil, 1000)
	if got := counts["http://10.0.0.3:8083"]; got != 100 {
		t.Errorf("canary got %d of 1000, want exactly 10%% (counts %v)", got, counts)
	}
	if counts["http://10.0.0.1:8081"] < 400 || counts["http://10.0.0.2:8081"] < 400 {
		t.Errorf("the stable backends did not share the rest: %v", counts)
	}
	if err := h.Configure(map[string]any{"percent": 120}); err == nil {
		t.Error("percent 120 accepted, want it refused")
	}
}

func TestLatencyAware(t *testing.T) {
	h := harness(t, "latency.star", nil, sdktest.Backends("http://fast:1", "http://slow:1")...)
	for range 5 {
		h.Done("http://fast:1", 200, 5*time.Millisecond)
		h.Done("http://slow:1", 200, 80*time.Millisecond)
	}
	counts := h.Spread(nil, 100)
	if counts["http://fast:1"] < 90 {
		t.Errorf("after 5ms against 80ms answers: %v, want the fast backend to take nearly all", counts)
	}
	// Failures make a backend slow in the strategy's eyes.
	for range 10 {
		h.Done("http://fast:1", 502, time.Millisecond)
	}
	if got, _ := h.Pick(nil); got != "http://slow:1" {
		t.Errorf("after the fast backend failed 10 times, picked %s, want the slow one", got)
	}
}
