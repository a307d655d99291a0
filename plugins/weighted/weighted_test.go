package weighted

import (
	"strings"
	"testing"

	"github.com/switchyard-lb/switchyard/sdk"
	"github.com/switchyard-lb/switchyard/sdk/sdktest"
)

func weighted(ws ...int) []sdk.Backend {
	bs := sdktest.Backends("http://a:1", "http://b:1", "http://c:1")[:len(ws)]
	for i, w := range ws {
		bs[i].Weight = w
	}
	return bs
}

func TestExactShareOverAWindow(t *testing.T) {
	h := sdktest.New(t, New(), weighted(1, 2, 3)...)
	counts := h.Spread(nil, 600)
	if counts["http://a:1"] != 100 || counts["http://b:1"] != 200 || counts["http://c:1"] != 300 {
		t.Errorf("600 picks with weights 1:2:3 = %v, want exactly 100/200/300", counts)
	}
}

func TestSmoothNotInRuns(t *testing.T) {
	s := New()
	bs := weighted(5, 1, 1)
	var seq []int
	for range 7 {
		i, _ := s.Pick(nil, bs)
		seq = append(seq, i)
	}
	// nginx's example: weights 5,1,1 give a a b a c a a, not a a a a a b c.
	want := []int{0, 0, 1, 0, 2, 0, 0}
	for i := range want {
		if seq[i] != want[i] {
			t.Fatalf("picks = %v, want %v", seq, want)
		}
	}
}

func TestWeightChangeAppliesNextWindow(t *testing.T) {
	h := sdktest.New(t, New(), weighted(1, 1)...)
	h.Spread(nil, 2)
	h.SetBackends(weighted(3, 1)...)
	if got := h.Spread(nil, 4); got["http://a:1"] != 3 || got["http://b:1"] != 1 {
		t.Errorf("after the weight edit 4 picks = %v, want 3 and 1", got)
	}
}

func TestScheduleIsTheRotation(t *testing.T) {
	for _, ws := range [][]int{{1, 2, 3}, {5, 1, 1}, {4, 6, 10}, {7}, {3, 3, 3}, {1000, 1}} {
		bs := weighted(ws...)
		sc, err := New().Schedule(bs)
		if err != nil {
			t.Fatalf("Schedule(%v) = %v", ws, err)
		}
		// The schedule repeats one cycle of what Pick answers from a fresh start.
		s := New()
		total := 0
		for _, w := range ws {
			total += w
		}
		for n := range 2 * total {
			want, _ := s.Pick(nil, bs)
			if got := sc.Order[n%len(sc.Order)]; got != want {
				t.Fatalf("weights %v: schedule entry %d = %d, Pick's %d-th pick = %d", ws, n, got, n+1, want)
			}
		}
		// Over any window of sum(weights) picks, each backend gets its weight.
		for start := range len(sc.Order) {
			counts := make([]int, len(ws))
			for n := range total {
				counts[sc.Order[(start+n)%len(sc.Order)]]++
			}
			for i, w := range ws {
				if counts[i] != w {
					t.Fatalf("weights %v: window at %d gives %v", ws, start, counts)
				}
			}
		}
	}
}

func TestScheduleDividesByTheCommonDivisor(t *testing.T) {
	sc, err := New().Schedule(weighted(200, 400, 600))
	if err != nil || len(sc.Order) != 6 {
		t.Errorf("Schedule(200, 400, 600) = %d entries, %v; want the 6 of 1, 2, 3", len(sc.Order), err)
	}
}

func TestScheduleDeclinesLongCycles(t *testing.T) {
	if _, err := New().Schedule(weighted(sdk.MaxOrder, 1)); err == nil {
		t.Error("Schedule with weights summing past sdk.MaxOrder = nil error, want one (picks per request)")
	}
}

func TestHarnessWalksTheSchedule(t *testing.T) {
	h := sdktest.New(t, New(), weighted(5, 1, 1)...)
	var seq []string
	for range 14 {
		url, err := h.Pick(nil)
		if err != nil {
			t.Fatal(err)
		}
		seq = append(seq, url[7:8])
	}
	if got := strings.Join(seq, ""); got != "aabacaaaabacaa" {
		t.Errorf("14 picks with weights 5,1,1 = %s, want aabacaa twice", got)
	}
}
