package backend

import (
	"slices"
	"testing"

	"github.com/switchyard-lb/switchyard/core/config"
)

func TestCandidatesAreOfTheLowestPriorityThatCan(t *testing.T) {
	set := NewSet()
	set.Update([]config.Backend{
		{URL: "http://127.0.0.1:1", Weight: 1, Priority: 0},
		{URL: "http://127.0.0.1:2", Weight: 1, Priority: 0},
		{URL: "http://127.0.0.1:3", Weight: 1, Priority: 1},
		{URL: "http://127.0.0.1:4", Weight: 1, Priority: 2},
	})
	all := set.Snapshot().All
	for _, tc := range []struct {
		name string
		down []int // indexes of all taken down
		want []int // indexes of all that are candidates
	}{
		{"all up", nil, []int{0, 1}},
		{"one primary down", []int{0}, []int{1}},
		{"every primary down", []int{0, 1}, []int{2}},
		{"the first backup down too", []int{0, 1, 2}, []int{3}},
		{"a primary back", []int{0, 2}, []int{1}},
		{"none up", []int{0, 1, 2, 3}, nil},
	} {
		for i, b := range all {
			b.SetUp(!slices.Contains(tc.down, i), "test", "")
		}
		set.Rebuild()
		var got []int
		for _, b := range set.Snapshot().Candidates {
			got = append(got, slices.Index(all, b))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: candidates %v, want %v", tc.name, got, tc.want)
		}
	}

	// A later Update takes a new priority.
	for _, b := range all {
		b.SetUp(true, "test", "")
	}
	set.Update([]config.Backend{
		{URL: "http://127.0.0.1:1", Weight: 1, Priority: 1},
		{URL: "http://127.0.0.1:3", Weight: 1, Priority: 0},
	})
	if c := set.Snapshot().Candidates; len(c) != 1 || c[0].URL != "http://127.0.0.1:3" || c[0].Priority() != 0 {
		t.Errorf("after the priorities swapped: candidates %d, want :3 alone", len(c))
	}
}
