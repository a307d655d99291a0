package sdktest_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/sdk"
	"github.com/switchyard-lb/switchyard/sdk/sdktest"
)

// fewest picks the backend with the fewest requests in flight, the first on ties,
// and remembers the last outcome it observed.
type fewest struct{ last sdk.Outcome }

func (*fewest) Pick(_ *sdk.Request, bs []sdk.Backend) (int, error) {
	best := 0
	for i, b := range bs {
		if b.Inflight < bs[best].Inflight {
			best = i
		}
	}
	return best, nil
}

func (f *fewest) Observe(o sdk.Outcome) { f.last = o }

func TestHarnessCountsInflight(t *testing.T) {
	s := &fewest{}
	h := sdktest.New(t, s, sdktest.Backends("http://a:1", "http://b:1")...)
	// Without Done, requests stay in flight and the strategy alternates.
	var got []string
	for range 4 {
		url, err := h.Pick(nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, url)
	}
	if got[0] != "http://a:1" || got[1] != "http://b:1" || got[2] != "http://a:1" || got[3] != "http://b:1" {
		t.Errorf("picks with requests left in flight = %v, want a b a b", got)
	}
	if bs := h.Backends(); bs[0].Inflight != 2 || bs[1].Inflight != 2 {
		t.Errorf("in flight = %d, %d, want 2, 2", bs[0].Inflight, bs[1].Inflight)
	}
	h.Done("http://b:1", 503, 3*time.Millisecond)
	if s.last.URL != "http://b:1" || s.last.Status != 503 || h.Backends()[1].Inflight != 1 {
		t.Errorf("after Done: observed %+v, in flight %d; want b's 503 and 1 left", s.last, h.Backends()[1].Inflight)
	}
	// Spread finishes each request before the next: all go to the least loaded.
	if counts := h.Spread(nil, 10); counts["http://b:1"] != 10 {
		t.Errorf("Spread = %v, want all 10 on b (1 in flight against a's 2)", counts)
	}
}

// planned schedules a, b, b and fails any request it is asked about.
type planned struct{ schedules, picks int }

func (p *planned) Pick(*sdk.Request, []sdk.Backend) (int, error) {
	p.picks++
	return 0, errors.New("planned: asked for a pick")
}

func (p *planned) Schedule(bs []sdk.Backend) (sdk.Schedule, error) {
	p.schedules++
	if len(bs) < 2 {
		return sdk.Schedule{}, errors.New("planned: too few backends")
	}
	return sdk.Schedule{Order: []int{0, 1, 1}}, nil
}

func TestHarnessWalksASchedule(t *testing.T) {
	s := &planned{}
	h := sdktest.New(t, s, sdktest.Backends("http://a:1", "http://b:1")...)
	if counts := h.Spread(nil, 300); counts["http://a:1"] != 100 || counts["http://b:1"] != 200 || s.picks != 0 || s.schedules != 1 {
		t.Errorf("Spread = %v with %d picks and %d schedules asked, want 100/200, 0 and 1", counts, s.picks, s.schedules)
	}
	// New backends: a new schedule; one backend: declined, so each request asks Pick.
	h.SetBackends(sdktest.Backends("http://a:1")...)
	if _, err := h.Pick(nil); err == nil || s.picks != 1 || s.schedules != 2 {
		t.Errorf("after a declined schedule: Pick err %v, %d picks, %d schedules; want Pick's error, 1, 2", err, s.picks, s.schedules)
	}
}

// least schedules least-loaded picks over every backend.
type least struct{}

func (least) Pick(*sdk.Request, []sdk.Backend) (int, error) {
	return 0, errors.New("least: asked for a pick")
}

func (least) Schedule([]sdk.Backend) (sdk.Schedule, error) { return sdk.Schedule{Least: true}, nil }

func TestHarnessWalksALeastSchedule(t *testing.T) {
	h := sdktest.New(t, least{}, sdktest.Backends("http://a:1", "http://b:1", "http://c:1")...)
	// Left in flight, requests fill the backends evenly; the n-th pick takes the
	// (n mod ties)-th of the least loaded.
	var got []string
	for range 6 {
		url, err := h.Pick(nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, url[7:8])
	}
	if strings.Join(got, "") != "acbabc" {
		t.Errorf("picks left in flight = %v, want a c b a b c", got)
	}
	h.Done("http://b:1", 200, time.Millisecond)
	if url, _ := h.Pick(nil); url != "http://b:1" {
		t.Errorf("Pick after b finished one = %s, want b, the least loaded", url)
	}
	if sc, err := h.Schedule(); err != nil || !sc.Least {
		t.Errorf("Schedule() = %+v, %v, want a Least schedule", sc, err)
	}
}

// byPool sends the requests of pool "api" to the second backend, the rest to the
// first.
type byPool struct{ seen []string }

func (b *byPool) Pick(req *sdk.Request, _ []sdk.Backend) (int, error) {
	b.seen = append(b.seen, req.Pool)
	if req.Pool == "api" {
		return 1, nil
	}
	return 0, nil
}

func TestHarnessRequestsCarryThePool(t *testing.T) {
	s := &byPool{}
	h := sdktest.New(t, s, sdktest.Backends("http://a:1", "http://b:1")...)
	req := &sdk.Request{Method: "GET", Path: "/"}
	if counts := h.Spread(req, 2); counts["http://a:1"] != 2 {
		t.Errorf("Spread in the default pool = %v, want both on a", counts)
	}
	h.SetPool("api")
	if counts := h.Spread(req, 2); counts["http://b:1"] != 2 {
		t.Errorf("Spread after SetPool(api) = %v, want both on b", counts)
	}
	if url, _ := h.Pick(&sdk.Request{Pool: "static"}); url != "http://a:1" {
		t.Errorf("Pick of a request naming pool static = %s, want a", url)
	}
	if got := strings.Join(s.seen, " "); got != "default default api api static" {
		t.Errorf("pools seen = %s, want default default api api static", got)
	}
	if req.Pool != "" {
		t.Errorf("the caller's request has Pool %q after the picks, want it untouched", req.Pool)
	}
}
