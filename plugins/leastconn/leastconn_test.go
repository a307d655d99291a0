package leastconn

import (
	"testing"

	"github.com/switchyard-lb/switchyard/sdk"
	"github.com/switchyard-lb/switchyard/sdk/sdktest"
)

func TestPickLeastLoaded(t *testing.T) {
	tests := []struct {
		name     string
		backends []sdk.Backend
		want     int
	}{
		{"fewest in-flight", []sdk.Backend{{Weight: 1, Inflight: 3, QueueLength: -1}, {Weight: 1, Inflight: 1, QueueLength: -1}, {Weight: 1, Inflight: 2, QueueLength: -1}}, 1},
		{"reported queue counts", []sdk.Backend{{Weight: 1, Inflight: 0, QueueLength: 9}, {Weight: 1, Inflight: 2, QueueLength: 0}}, 1},
		{"weight divides load", []sdk.Backend{{Weight: 1, Inflight: 2, QueueLength: -1}, {Weight: 4, Inflight: 4, QueueLength: -1}}, 1},
		{"single", []sdk.Backend{{Weight: 1, Inflight: 100, QueueLength: -1}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New().Pick(&sdk.Request{}, tt.backends)
			if err != nil || got != tt.want {
				t.Errorf("Pick() = %d, %v, want %d, nil", got, err, tt.want)
			}
		})
	}
}

func TestPickSpreadsTies(t *testing.T) {
	s := New()
	backends := []sdk.Backend{{Weight: 1}, {Weight: 1}, {Weight: 1}}
	counts := make([]int, len(backends))
	for range 3000 {
		i, err := s.Pick(&sdk.Request{}, backends)
		if err != nil {
			t.Fatal(err)
		}
		counts[i]++
	}
	for i, c := range counts {
		if c < 800 {
			t.Errorf("backend %d got %d of 3000 tied picks, want about 1000 (counts %v)", i, c, counts)
		}
	}
}

func TestScheduleLeavesPicksToLiveFigures(t *testing.T) {
	h := sdktest.New(t, New(), sdktest.Backends("http://a:1", "http://b:1", "http://c:1")...)
	if sc, err := h.Schedule(); err != nil || !sc.Least || len(sc.Order) != 0 {
		t.Fatalf("Schedule() = %+v, %v; want Least over every backend", sc, err)
	}
	// Requests left in flight spread evenly: equal backends take turns.
	counts := map[string]int{}
	for range 300 {
		url, err := h.Pick(nil)
		if err != nil {
			t.Fatal(err)
		}
		counts[url]++
	}
	for url, n := range counts {
		if n != 100 {
			t.Errorf("%s got %d of 300 picks left in flight, want 100 (counts %v)", url, n, counts)
		}
	}
	// A backend that finishes requests is the least loaded.
	h.Done("http://c:1", 200, 0)
	if url, _ := h.Pick(nil); url != "http://c:1" {
		t.Errorf("Pick after c finished one = %s, want c", url)
	}
}
