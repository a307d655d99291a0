package weighted

import (
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
