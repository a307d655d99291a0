package backend

import (
	"testing"

	"github.com/switchyard-lb/switchyard/core/config"
)

func TestRuntimeWeightKeptUntilTheFileChangesIt(t *testing.T) {
	set := NewSet()
	list := func(wa, wb int) []config.Backend {
		return []config.Backend{{URL: "http://127.0.0.1:1", Weight: wa}, {URL: "http://127.0.0.1:2", Weight: wb}}
	}
	set.Update(list(1, 1))
	a := set.Snapshot().All[0]
	if !a.SetWeight(3) || a.Weight() != 3 || !a.RuntimeWeight() {
		t.Fatalf("SetWeight(3): weight %d, runtime %v; want 3 set at run time", a.Weight(), a.RuntimeWeight())
	}
	for _, tc := range []struct {
		name          string
		wa, wb        int
		weight        int
		runtimeWeight bool
	}{
		{"a reload that keeps its weight", 1, 1, 3, true},
		{"a reload that changes another's", 1, 5, 3, true},
		{"a reload that changes its weight", 2, 5, 2, false},
		{"the next reload", 2, 5, 2, false},
	} {
		set.Update(list(tc.wa, tc.wb))
		if a.Weight() != tc.weight || a.RuntimeWeight() != tc.runtimeWeight {
			t.Errorf("after %s: weight %d, runtime %v; want %d, %v", tc.name, a.Weight(), a.RuntimeWeight(), tc.weight, tc.runtimeWeight)
		}
	}
}

func TestWeightZeroIsNoCandidate(t *testing.T) {
	set := NewSet()
	set.Update([]config.Backend{{URL: "http://127.0.0.1:1", Weight: 1}, {URL: "http://127.0.0.1:2", Weight: 1}})
	a := set.Snapshot().All[0]
	a.SetWeight(0)
	set.Rebuild()
	if c := set.Snapshot().Candidates; len(c) != 1 || c[0] == a {
		t.Fatalf("candidates after weight 0: %d, want the other backend alone", len(c))
	}
	if h := a.Health(); h.State != StateDrain || h.Reason != "runtime: weight set to 0" {
		t.Errorf("a backend of weight 0 is %s (%q), want drain for its weight, as HAProxy shows it", h.State, h.Reason)
	}
	a.SetWeight(1)
	set.Rebuild()
	if c := set.Snapshot().Candidates; len(c) != 2 {
		t.Errorf("candidates after weight 1 again: %d, want 2", len(c))
	}
	if h := a.Health(); h.State != StateUp || h.Reason != "runtime: weight set to 1" {
		t.Errorf("after weight 1 again the backend is %s (%q), want up", h.State, h.Reason)
	}
}
