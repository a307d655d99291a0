package sdktest_test

import (
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
