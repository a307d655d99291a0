package strategy

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/plugins/weighted"
	"github.com/switchyard-lb/switchyard/sdk"
	"github.com/switchyard-lb/switchyard/sdk/wire"
)

// testSet returns a set of candidate backends, one per weight: http://127.0.0.1:10000
// has the first, and so on.
func testSet(t testing.TB, weights ...int) *backend.Set {
	t.Helper()
	s := backend.NewSet()
	setWeights(s, weights...)
	if n := len(s.Snapshot().Candidates); n != len(weights) {
		t.Fatalf("%d candidates, want %d", n, len(weights))
	}
	return s
}

// setWeights updates s to one backend per weight, as a config edit does.
func setWeights(s *backend.Set, weights ...int) {
	var cfg []config.Backend
	for i, w := range weights {
		cfg = append(cfg, config.Backend{URL: fmt.Sprintf("http://127.0.0.1:%d", 10000+i), Weight: w})
	}
	s.Update(cfg)
}

// walkOf returns a schedule of order over cands.
func walkOf(cands []*backend.Backend, least bool, order ...int) *schedule {
	weights := make([]int, len(cands))
	for i, b := range cands {
		weights[i] = b.Weight()
	}
	return &schedule{cands: cands, plan: newPlan(weights, order, least, nil)}
}

// indexes returns the positions in cands of n picks from s.
func indexes(s *schedule, n int, exclude ...*backend.Backend) string {
	var out []string
	for range n {
		b := s.pick(exclude)
		for i, c := range s.cands {
			if c == b {
				out = append(out, fmt.Sprint(i))
			}
		}
	}
	return strings.Join(out, "")
}

func TestScheduleWalk(t *testing.T) {
	cands := testSet(t, 1, 1, 1).Snapshot().Candidates
	tests := []struct {
		name    string
		s       *schedule
		exclude []*backend.Backend
		want    string
	}{
		{"order, wrapping around", walkOf(cands, false, 2, 0, 0), nil, "200200200"},
		{"empty: every backend in turn", walkOf(cands, false), nil, "012012012"},
		{"excluded entries skipped", walkOf(cands, false, 0, 1, 2), cands[1:2], "022022022"},
		{"all excluded: tried again", walkOf(cands, false, 0, 1, 2), cands, "012012012"},
		{"least, equal loads take turns", walkOf(cands, true), nil, "012012012"},
		{"least within order only", walkOf(cands, true, 1, 2), nil, "121212121"},
		{"least, excluded skipped", walkOf(cands, true), cands[:1], "121212121"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := indexes(tt.s, 9, tt.exclude...); got != tt.want {
				t.Errorf("9 picks = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestScheduleLeastReadsLiveLoads(t *testing.T) {
	cands := testSet(t, 1, 2, 4).Snapshot().Candidates
	s := walkOf(cands, true)
	for range 2 {
		cands[0].Start() // 2 per unit of weight
	}
	for range 3 {
		cands[1].Start() // 1.5
	}
	cands[2].SetQueueLength(5) // 1.25
	for i := range 3 {
		if b := s.pick(nil); b != cands[2] {
			t.Fatalf("pick %d = %s, want %s, the least loaded per unit of weight", i, b.URL, cands[2].URL)
		}
	}
	cands[2].SetQueueLength(7) // 1.75
	if b := s.pick(nil); b != cands[1] {
		t.Errorf("pick after the queue grew = %s, want %s", b.URL, cands[1].URL)
	}
}

func TestPlanChecksTheAnswer(t *testing.T) {
	weights := []int{1, 1, 1}
	tests := []struct {
		name string
		p    *plan
		kind planKind
		err  string
	}{
		{"schedule", planOf(weights, wire.Scheduled{Result: wire.ScheduleOK, Order: []int{2, 1}}), planWalk, ""},
		{"index out of range", planOf(weights, wire.Scheduled{Result: wire.ScheduleOK, Order: []int{0, 3}}), planInvalid,
			"strategy: Schedule returned index 3 for 3 backends"},
		{"declined", planOf(weights, wire.Scheduled{Result: wire.ScheduleDeclined, Err: "not today"}), planDeclined, "not today"},
		{"bad answer", planOf(weights, wire.Scheduled{Result: wire.ScheduleBad, Err: "strategy: Schedule panicked: x"}), planInvalid,
			"strategy: Schedule panicked: x"},
		{"too long", newPlan(weights, make([]int, sdk.MaxOrder+1), false, nil), planDeclined,
			"strategy: Schedule returned 262145 entries, more than 262144"},
		{"negative index", newPlan(weights, []int{-1}, false, nil), planInvalid, "strategy: Schedule returned index -1 for 3 backends"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ""
			if tt.p.err != nil {
				err = tt.p.err.Error()
			}
			if tt.p.kind != tt.kind || err != tt.err {
				t.Errorf("plan = kind %d, %q; want kind %d, %q", tt.p.kind, err, tt.kind, tt.err)
			}
		})
	}
}

// ask makes the miss of a new set ask, and notes the question as version.
func ask(t *testing.T, x *schedules, cands []*backend.Backend, version uint32) {
	t.Helper()
	if s, ask := x.miss(cands); s != nil || !ask {
		t.Fatalf("miss(new set) = %v, %v; want nil, ask", s, ask)
	}
	weights := make([]int, len(cands))
	for i, b := range cands {
		weights[i] = b.Weight()
	}
	x.seen.add(seenSet{cands: cands, asked: true, weights: weights, version: version})
}

// reply installs a schedule of order for the set asked as version, if still awaited.
func reply(x *schedules, version uint32, order ...int) bool {
	set, ok := x.awaited(version)
	if ok {
		x.install(set.cands, newPlan(set.weights, order, false, nil))
	}
	return ok
}

func TestScheduleInForceMovesOnlyToNewerSnapshots(t *testing.T) {
	set := testSet(t, 1, 2)
	var x schedules
	a := set.Snapshot().Candidates
	ask(t, &x, a, 1)
	if !reply(&x, 1, 1, 0, 1) || x.current(a) == nil {
		t.Fatal("the answer for the only set asked was not installed")
	}
	if b := x.current(a).pick(nil); b != a[1] {
		t.Fatalf("first pick = %s, want %s", b.URL, a[1].URL)
	}

	// A republished snapshot with nothing a strategy sees changed takes the schedule
	// over: no question, and the walk goes on.
	set.Rebuild()
	a2 := set.Snapshot().Candidates
	s, asks := x.miss(a2)
	if s == nil || asks || s.plan != x.current(a2).plan {
		t.Fatalf("miss(republished) = %v, %v; want the schedule in force, taken over", s, asks)
	}
	if b := s.pick(nil); b != a2[0] {
		t.Errorf("second pick = %s, want %s: the walk goes on", b.URL, a2[0].URL)
	}

	// A weight edit is a new set: asked for. A pick still holding an older snapshot
	// asks nothing and moves nothing.
	setWeights(set, 1, 3)
	c := set.Snapshot().Candidates
	ask(t, &x, c, 2)
	if s, asks := x.miss(a); s != nil || asks || x.current(a2) == nil {
		t.Errorf("miss(older snapshot) = %v, %v, want nil, no question, and the schedule in force kept", s, asks)
	}
	if !reply(&x, 2, 0, 1, 1, 1) || x.current(c) == nil {
		t.Fatal("the answer for the latest set was not installed")
	}
	if reply(&x, 1, 0) || x.current(c) == nil {
		t.Error("a late answer for an older set was installed")
	}
	if s, asks := x.miss(a2); s != nil || asks || x.current(c) == nil {
		t.Errorf("miss(older snapshot) after the answer = %v, %v; want nil, no question, the schedule of the edit kept", s, asks)
	}

	// An answer that a newer snapshot overtook is dropped: here d, republished as e
	// before its answer came.
	setWeights(set, 2, 3)
	d := set.Snapshot().Candidates
	ask(t, &x, d, 3)
	set.Rebuild()
	e := set.Snapshot().Candidates
	ask(t, &x, e, 4)
	if reply(&x, 3, 0) || x.current(d) != nil || !reply(&x, 4, 1) || x.current(e) == nil {
		t.Error("the answer for an overtaken set was installed, or the latest one was not")
	}
}

// counted is the weighted strategy, counting the calls it gets.
type counted struct {
	*weighted.Strategy
	picks, schedules atomic.Int64
	decline          bool
}

func (c *counted) Pick(req *sdk.Request, bs []sdk.Backend) (int, error) {
	c.picks.Add(1)
	return c.Strategy.Pick(req, bs)
}

func (c *counted) Schedule(bs []sdk.Backend) (sdk.Schedule, error) {
	c.schedules.Add(1)
	if c.decline {
		return sdk.Schedule{}, errors.New("counted: declines")
	}
	return c.Strategy.Schedule(bs)
}

// spread makes n picks from goroutines at once and counts them by backend URL.
func spread(t *testing.T, p Picker, cands []*backend.Backend, goroutines, n int) map[string]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range n / goroutines {
				b, err := p.Pick(&Request{}, cands, nil)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				counts[b.URL]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return counts
}

func TestLocalWalksTheSchedule(t *testing.T) {
	s := &counted{Strategy: weighted.New()}
	l := NewLocal("weighted", s)
	set := testSet(t, 1, 2, 3)
	cands := set.Snapshot().Candidates
	counts := spread(t, l, cands, 8, 6000)
	if counts[cands[0].URL] != 1000 || counts[cands[1].URL] != 2000 || counts[cands[2].URL] != 3000 {
		t.Errorf("6000 picks from 8 goroutines with weights 1:2:3 = %v, want exactly 1000/2000/3000", counts)
	}
	if s.picks.Load() != 0 || s.schedules.Load() != 1 {
		t.Errorf("strategy asked for %d picks and %d schedules, want 0 and 1", s.picks.Load(), s.schedules.Load())
	}
	set.Rebuild()
	l.Pick(&Request{}, set.Snapshot().Candidates, nil)
	if s.schedules.Load() != 1 {
		t.Errorf("schedules after a republish = %d, want still 1", s.schedules.Load())
	}
	setWeights(set, 1, 1)
	cands = set.Snapshot().Candidates
	if counts := spread(t, l, cands, 1, 10); counts[cands[0].URL] != 5 || s.schedules.Load() != 2 {
		t.Errorf("after a weight edit: %v with %d schedules, want 5/5 and 2", counts, s.schedules.Load())
	}
}

func TestLocalAsksEachPickWhenTheScheduleIsDeclined(t *testing.T) {
	s := &counted{Strategy: weighted.New(), decline: true}
	l := NewLocal("weighted", s)
	cands := testSet(t, 1, 2, 3).Snapshot().Candidates
	counts := spread(t, l, cands, 1, 600)
	if counts[cands[2].URL] != 300 || s.picks.Load() != 600 || s.schedules.Load() != 1 {
		t.Errorf("%v from %d picks and %d schedules asked, want 300 on the third and 600, 1", counts, s.picks.Load(), s.schedules.Load())
	}
}
