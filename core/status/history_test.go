package status

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// at is a sample that says when it was taken, and nothing else.
func at(sec int) Sample { return Sample{Time: time.Unix(int64(sec), 0).UTC()} }

// seconds lists the samples' times, in seconds.
func seconds(ss []Sample) []int64 {
	out := make([]int64, len(ss))
	for i, s := range ss {
		out[i] = s.Time.Unix()
	}
	return out
}

func TestHistoryKeepsTheLatestInOrder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		added int
		want  []int64
	}{
		{name: "empty", size: 3, added: 0, want: []int64{}},
		{name: "not full", size: 3, added: 2, want: []int64{1, 2}},
		{name: "full", size: 3, added: 3, want: []int64{1, 2, 3}},
		{name: "wrapped once", size: 3, added: 4, want: []int64{2, 3, 4}},
		{name: "wrapped to the start", size: 3, added: 6, want: []int64{4, 5, 6}},
		{name: "wrapped many times", size: 3, added: 3*5 + 2, want: []int64{15, 16, 17}},
		{name: "one", size: 1, added: 4, want: []int64{4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHistory(tc.size)
			for i := 1; i <= tc.added; i++ {
				h.Add(at(i))
			}
			got := seconds(h.Samples())
			if len(got) != len(tc.want) {
				t.Fatalf("Samples() after %d adds = %v, want %v", tc.added, got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("Samples() after %d adds = %v, want %v", tc.added, got, tc.want)
				}
			}
		})
	}
}

func TestHistorySamplesIsACopy(t *testing.T) {
	h := NewHistory(2)
	h.Add(at(1))
	h.Add(at(2))
	got := h.Samples()
	got[0] = at(99)
	h.Add(at(3))
	if s := seconds(h.Samples()); s[0] != 2 || s[1] != 3 {
		t.Errorf("Samples() = %v after changing an earlier result, want [2 3]", s)
	}
}

func TestHistoryZeroValueKeepsHistorySize(t *testing.T) {
	var h History
	for i := 1; i <= HistorySize+10; i++ {
		h.Add(at(i))
	}
	got := h.Samples()
	if len(got) != HistorySize || h.Size() != HistorySize {
		t.Fatalf("zero History keeps %d samples (Size %d), want %d", len(got), h.Size(), HistorySize)
	}
	if first := got[0].Time.Unix(); first != 11 {
		t.Errorf("oldest sample kept = %d, want 11", first)
	}
}

// pooled is a status with backends bs in the default pool and the pools after it.
func pooled(bs []Backend, more ...Pool) Status {
	return Status{Backends: bs, Pools: append([]Pool{{Name: "default", Backends: bs}}, more...)}
}

func TestSamplerRates(t *testing.T) {
	t0 := time.Unix(1000, 0)
	st := func(a, b uint64) Status {
		return pooled([]Backend{
			{URL: "http://a", Requests: a, LatencyMs: 2.5, Inflight: 1, QueueLength: -1},
			{URL: "http://b", Requests: b, ErrorRate: 0.25},
		})
	}
	var p sampler
	if _, ok := p.take(st(10, 100), t0); ok {
		t.Fatal("take(first status) reported a sample; a rate needs two")
	}
	s, ok := p.take(st(30, 101), t0.Add(2*time.Second))
	if !ok {
		t.Fatal("take(second status) reported no sample")
	}
	if s.Backends[0].RequestsPerSecond != 10 || s.Backends[1].RequestsPerSecond != 0.5 || s.RequestsPerSecond != 10.5 {
		t.Errorf("rates = %v, %v, total %v; want 10, 0.5, total 10.5",
			s.Backends[0].RequestsPerSecond, s.Backends[1].RequestsPerSecond, s.RequestsPerSecond)
	}
	if b := s.Backends[0]; b.LatencyMs != 2.5 || b.Inflight != 1 || b.QueueLength != -1 || s.Backends[1].ErrorRate != 0.25 {
		t.Errorf("sample = %+v, want the status's latency, in-flight, queue and error rate", s.Backends)
	}
	// A backend that joins has no rate until its second sample.
	s, _ = p.take(pooled([]Backend{{URL: "http://c", Requests: 7}}), t0.Add(3*time.Second))
	if s.Backends[0].RequestsPerSecond != 0 {
		t.Errorf("rate of a new backend = %v, want 0", s.Backends[0].RequestsPerSecond)
	}
}

// TestSamplerPools samples a URL in two pools as two backends, each at its own rate.
func TestSamplerPools(t *testing.T) {
	t0 := time.Unix(1000, 0)
	st := func(def, api uint64) Status {
		return pooled([]Backend{{URL: "http://a", Pool: "default", Requests: def}},
			Pool{Name: "api", Backends: []Backend{{URL: "http://a", Pool: "api", Requests: api}}})
	}
	var p sampler
	p.take(st(10, 100), t0)
	s, _ := p.take(st(12, 140), t0.Add(2*time.Second))
	var got []string
	for _, b := range s.Backends {
		got = append(got, fmt.Sprintf("%s %s %v", b.Pool, b.URL, b.RequestsPerSecond))
	}
	want := []string{"default http://a 1", "api http://a 20"}
	if !slices.Equal(got, want) || s.RequestsPerSecond != 21 {
		t.Errorf("take(two pools) = %q, total %v; want %q, total 21", got, s.RequestsPerSecond, want)
	}
}

func TestAdminServesHistory(t *testing.T) {
	s := &Source{}
	s.history.Add(at(1))
	s.history.Add(at(2))
	srv := httptest.NewServer(AdminHandler(s))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/status/history")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got historyJSON
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("decoding GET /status/history: %v", err)
	}
	if got.EverySeconds != 1 || got.Size != HistorySize || len(got.Samples) != 2 {
		t.Errorf("GET /status/history = every %v, size %d, %d samples; want 1, %d, 2", got.EverySeconds, got.Size, len(got.Samples), HistorySize)
	}
}
