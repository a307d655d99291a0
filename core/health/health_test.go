package health

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
)

func TestThreshold(t *testing.T) {
	var th Threshold
	th.Reset(true)
	steps := []struct {
		ok          bool
		wantChanged bool
		wantUp      bool
	}{
		{false, false, true}, // 1 failure of 2
		{true, false, true},  // a success resets the count
		{false, false, true},
		{false, true, false}, // 2 in a row: down
		{false, false, false},
		{true, false, false}, // 1 success of 3
		{true, false, false},
		{false, false, false}, // a failure resets it
		{true, false, false},
		{true, false, false},
		{true, true, true}, // 3 in a row: up
	}
	for i, s := range steps {
		if changed := th.Observe(s.ok, 3, 2); changed != s.wantChanged || th.Up() != s.wantUp {
			t.Fatalf("step %d: Observe(%v) = %v, up %v; want %v, up %v", i, s.ok, changed, th.Up(), s.wantChanged, s.wantUp)
		}
	}
}

// newSet builds a backend set of n backends.
func newSet(n int) *backend.Set {
	s := backend.NewSet()
	var cfg []config.Backend
	for i := range n {
		cfg = append(cfg, config.Backend{URL: fmt.Sprintf("http://127.0.0.1:%d", 20000+i), Weight: 1})
	}
	s.Update(cfg)
	return s
}

// fakeAfter records scheduled returns instead of waiting for them.
type fakeAfter struct {
	mu    sync.Mutex
	waits []time.Duration
	fns   []func()
}

func (f *fakeAfter) after(d time.Duration, fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits, f.fns = append(f.waits, d), append(f.fns, fn)
}

func (f *fakeAfter) fire(i int) { f.fns[i]() }

func failN(p *Passive, b *backend.Backend, n int) {
	for range n {
		p.Observe(b, true, "status 500")
	}
}

func TestPassiveEjectsAndDoubles(t *testing.T) {
	set := newSet(3)
	p := NewPassive(PassiveConfig{ConsecutiveFailures: 3, EjectionTime: time.Second}, set, hclog.NewNullLogger())
	fa := &fakeAfter{}
	p.after = fa.after
	b := set.Snapshot().All[0]

	failN(p, b, 2)
	p.Observe(b, false, "") // a success breaks the run
	failN(p, b, 2)
	if b.Ejected() {
		t.Fatalf("ejected after 2+2 failures with a success between, want 3 in a row")
	}
	failN(p, b, 1)
	if !b.Ejected() || len(set.Snapshot().Candidates) != 2 {
		t.Fatalf("after 3 failures in a row: ejected %v, candidates %d; want ejected, 2 left", b.Ejected(), len(set.Snapshot().Candidates))
	}
	if h := b.Health(); h.State != backend.StateEjected || !strings.Contains(h.Reason, "passive") || h.LastError != "status 500" {
		t.Errorf("health = %+v, want ejected by passive checks with the last error", h)
	}
	fa.fire(0)
	if b.Ejected() || len(set.Snapshot().Candidates) != 3 {
		t.Fatalf("after the ejection time: ejected %v, candidates %d; want back", b.Ejected(), len(set.Snapshot().Candidates))
	}
	failN(p, b, 3)
	fa.fire(1)
	failN(p, b, 3)
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
	if fmt.Sprint(fa.waits) != fmt.Sprint(want) {
		t.Errorf("ejection times = %v, want %v (doubling)", fa.waits, want)
	}
	if h := b.Health(); h.Ejections != 3 {
		t.Errorf("ejections = %d, want 3", h.Ejections)
	}
}

func TestPassiveEjectsAtMostHalf(t *testing.T) {
	set := newSet(5)
	p := NewPassive(PassiveConfig{ConsecutiveFailures: 1, EjectionTime: time.Second}, set, hclog.NewNullLogger())
	p.after = (&fakeAfter{}).after
	for _, b := range set.Snapshot().All {
		failN(p, b, 1)
	}
	if got := len(set.Snapshot().Candidates); got != 3 {
		t.Errorf("with all 5 failing, %d candidates left, want 3 (at most half ejected)", got)
	}
	one := newSet(1)
	p = NewPassive(PassiveConfig{ConsecutiveFailures: 1, EjectionTime: time.Second}, one, hclog.NewNullLogger())
	failN(p, one.Snapshot().All[0], 5)
	if len(one.Snapshot().Candidates) != 1 {
		t.Errorf("the only backend was ejected, want it kept (half of 1 is 0)")
	}
}

func TestPassiveOff(t *testing.T) {
	set := newSet(2)
	p := NewPassive(PassiveConfig{ConsecutiveFailures: 0, EjectionTime: time.Second}, set, hclog.NewNullLogger())
	failN(p, set.Snapshot().All[0], 100)
	if len(set.Snapshot().Candidates) != 2 {
		t.Errorf("consecutive_failures 0 ejected a backend, want passive checks off")
	}
}

// recorder is a StatusSetter that keeps the verdicts.
type recorder struct{ events chan string }

func (r *recorder) SetActive(b *backend.Backend, up bool, reason, lastErr string) {
	if _, changed := b.SetUp(up, reason, lastErr); changed {
		r.events <- fmt.Sprintf("%s up=%v", b.URL, up)
	}
}

// scripted is a backend whose /health answers the given statuses in turn, then the last.
func scripted(t *testing.T, statuses ...int) *httptest.Server {
	var mu sync.Mutex
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		code := statuses[0]
		if len(statuses) > 1 {
			statuses = statuses[1:]
		}
		mu.Unlock()
		w.WriteHeader(code)
		fmt.Fprint(w, `{"queue_length": 7}`)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestCheckerFollowsThresholds(t *testing.T) {
	flaky := scripted(t, 200, 500, 500, 200, 200, 200)
	hang := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	t.Cleanup(func() { close(hang); hanging.Close() })

	set := backend.NewSet()
	set.Update([]config.Backend{{URL: flaky.URL, Weight: 1}, {URL: hanging.URL, Weight: 1}})
	rec := &recorder{events: make(chan string, 10)}
	c := NewChecker(Config{Path: "/health", Interval: 5 * time.Millisecond, Timeout: time.Hour, Healthy: 2, Unhealthy: 2}, rec, hclog.NewNullLogger())
	c.Start(t.Context(), set.Snapshot().All)

	// The flaky backend goes down and comes back while the other backend's first
	// probe still hangs (its timeout is an hour): one backend cannot delay another.
	for _, want := range []string{flaky.URL + " up=false", flaky.URL + " up=true"} {
		select {
		case got := <-rec.events:
			if got != want {
				t.Fatalf("event %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %q event", want)
		}
	}
	flakyB := set.Snapshot().All[0]
	if flakyB.QueueLength() != 7 {
		t.Errorf("queue_length = %d, want 7 from the health answer", flakyB.QueueLength())
	}
	if h := flakyB.Health(); h.LastError != "" || h.State != backend.StateUp || !strings.Contains(h.Reason, "2 checks in a row passed") {
		t.Errorf("health = %+v, want up with the reason of the change and no error left", h)
	}
}

func TestCheckerVerifiesHTTPSBackendsAsConfigured(t *testing.T) {
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }))
	t.Cleanup(s.Close)
	set := backend.NewSet()
	set.Update([]config.Backend{{URL: s.URL, Weight: 1}})
	rec := &recorder{events: make(chan string, 10)}
	// The system's roots do not know httptest's certificate: the backend goes down.
	cfg := Config{Path: "/health", Interval: 5 * time.Millisecond, Timeout: time.Second, Healthy: 1, Unhealthy: 1}
	c := NewChecker(cfg, rec, hclog.NewNullLogger())
	c.Start(t.Context(), set.Snapshot().All)
	next := func(want string) {
		t.Helper()
		select {
		case got := <-rec.events:
			if got != want {
				t.Fatalf("event %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %q event", want)
		}
	}
	next(s.URL + " up=false")
	if h := set.Snapshot().All[0].Health(); !strings.Contains(h.LastError, "certificate") {
		t.Errorf("last error %q, want the certificate named", h.LastError)
	}
	// servers.ca trusts it from the next probe on.
	cfg.TLS, cfg.TLSKey = s.Client().Transport.(*http.Transport).TLSClientConfig, "ca=httptest"
	c.SetConfig(cfg)
	next(s.URL + " up=true")
	// And back to the system's roots: the connection the checks kept, verified
	// under the CA, is not used again, so the next probe fails.
	cfg.TLS, cfg.TLSKey = nil, ""
	c.SetConfig(cfg)
	next(s.URL + " up=false")
}
