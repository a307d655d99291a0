package strategy

import (
	"fmt"
	"sync/atomic"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/sdk"
)

// planKind says how picks use a plan.
type planKind uint8

const (
	planWalk     planKind = iota // walk the plan's order
	planDeclined                 // the strategy declined: ask it for each pick
	planInvalid                  // a bad answer: pick without it
)

// plan is a strategy's answer to sdk.Scheduler.Schedule for one set of candidates,
// ready to walk. It never changes once made, but for its cursor and noted.
type plan struct {
	kind    planKind
	err     error // why the strategy declined, or what was wrong with its answer
	order   []int // indexes into the candidates, never empty when kind is planWalk
	least   bool
	weights []int // the candidates' weights as the strategy saw them
	cursor  *cursor
	noted   atomic.Bool // the decline or the bad answer was logged and counted
}

// cursor is the position of the next pick in a plan's order, on a cache line of its
// own: every pick moves it.
type cursor struct {
	_ [64]byte
	n atomic.Uint64
	_ [56]byte
}

// newPlan checks a schedule made for candidates with weights and readies it for
// walking. err is the strategy's own error, which declines.
func newPlan(weights, order []int, least bool, err error) *plan {
	p := &plan{kind: planWalk, least: least, weights: weights, cursor: new(cursor)}
	switch {
	case err != nil:
		p.kind, p.err = planDeclined, err
		return p
	case len(order) > sdk.MaxOrder:
		p.kind, p.err = planDeclined, fmt.Errorf("strategy: Schedule returned %d entries, more than %d", len(order), sdk.MaxOrder)
		return p
	}
	for _, i := range order {
		if i < 0 || i >= len(weights) {
			p.kind, p.err = planInvalid, fmt.Errorf("strategy: Schedule returned index %d for %d backends", i, len(weights))
			return p
		}
	}
	if len(order) == 0 { // every backend in turn
		for i := range weights {
			order = append(order, i)
		}
	} else {
		order = append([]int(nil), order...) // the strategy may reuse its slice
	}
	p.order = order
	return p
}

// schedule binds a plan to one candidate snapshot, whose indexes it walks.
type schedule struct {
	cands []*backend.Backend
	*plan
}

// pick returns the backend for the next request, skipping those in exclude unless
// nothing else is left. It is lock-free.
func (s *schedule) pick(exclude []*backend.Backend) *backend.Backend {
	n := s.cursor.n.Add(1) - 1
	if s.least {
		if b := s.leastLoaded(n, exclude); b != nil {
			return b
		}
		return s.leastLoaded(n, nil) // all excluded: try them again
	}
	start := int(n % uint64(len(s.order)))
	for i, k := start, 0; k < len(s.order); k++ {
		if b := s.cands[s.order[i]]; len(exclude) == 0 || !contains(exclude, b) {
			return b
		}
		if i++; i == len(s.order) {
			i = 0
		}
	}
	return s.cands[s.order[start]] // all excluded: try them again
}

// leastLoaded returns the backend of the order with the fewest
// (in-flight + reported queue) / weight, nil when all are excluded. Ties take turns:
// the n-th pick takes the (n mod ties)-th of them in the order.
func (s *schedule) leastLoaded(n uint64, exclude []*backend.Backend) *backend.Backend {
	var best *backend.Backend
	var bestLoad, bestWeight, ties int
	for _, i := range s.order {
		b := s.cands[i]
		if len(exclude) > 0 && contains(exclude, b) {
			continue
		}
		load, weight := loadOf(b), weightOf(b)
		// load/weight against bestLoad/bestWeight, without division
		switch l, r := load*bestWeight, bestLoad*weight; {
		case best == nil || l < r:
			best, bestLoad, bestWeight, ties = b, load, weight, 1
		case l == r:
			ties++
		}
	}
	switch {
	case ties < 2:
		return best
	case ties == len(s.order): // all equal: no need to look again
		return s.cands[s.order[n%uint64(ties)]]
	}
	k := n % uint64(ties)
	for _, i := range s.order {
		b := s.cands[i]
		if len(exclude) > 0 && contains(exclude, b) || loadOf(b)*bestWeight != bestLoad*weightOf(b) {
			continue
		}
		if k == 0 {
			return b
		}
		k--
	}
	return best // the loads moved meanwhile
}

// loadOf is the outstanding work on b: in-flight requests plus its reported queue.
func loadOf(b *backend.Backend) int { return b.Inflight() + max(b.QueueLength(), 0) }

// weightOf is b's weight, at least 1.
func weightOf(b *backend.Backend) int { return max(b.Weight(), 1) }

// fits reports whether cands are the backends of s, in the same order and with the
// same weights: a snapshot republished with no change that a strategy would see.
func (s *schedule) fits(cands []*backend.Backend) bool {
	if len(cands) != len(s.cands) {
		return false
	}
	for i, b := range cands {
		if b != s.cands[i] || b.Weight() != s.weights[i] {
			return false
		}
	}
	return true
}

// schedules holds the schedule in force for a strategy, and the candidate sets it saw
// last. Picks read the schedule in force without a lock (current); everything else
// requires the owner's mutex, so that the schedule in force only moves to newer
// snapshots.
type schedules struct {
	cur  atomic.Pointer[schedule]
	seen recentSets
}

// current returns the schedule in force if it was made for cands, else nil. It is the
// picks' fast path, small enough to inline.
func (x *schedules) current(cands []*backend.Backend) *schedule {
	if s := x.cur.Load(); s != nil && sameSet(s.cands, cands) {
		return s
	}
	return nil
}

// miss decides what a pick over cands does when current found nothing: it returns
// the schedule to walk; or nil and ask, when cands are a set not seen before that
// needs a schedule of its own (the caller asks, notes it with seen.add and installs
// the answer); or neither, when the picks over cands ask the strategy one by one (an
// older snapshot, or a schedule on its way). A new set with the same backends and
// weights as the schedule in force takes it over, cursor and all, so that a
// republished snapshot does not restart the walk. The owner's mutex must be held.
func (x *schedules) miss(cands []*backend.Backend) (s *schedule, ask bool) {
	if s := x.current(cands); s != nil {
		return s, false
	}
	if x.seen.has(cands) {
		return nil, false
	}
	s = x.cur.Load()
	if s == nil || !s.fits(cands) {
		return nil, true
	}
	x.seen.add(seenSet{cands: cands})
	return x.install(cands, s.plan), false
}

// install makes p, made for cands, the schedule in force, and returns it. The owner's
// mutex must be held.
func (x *schedules) install(cands []*backend.Backend, p *plan) *schedule {
	s := &schedule{cands: cands, plan: p}
	x.cur.Store(s)
	return s
}

// awaited returns the set whose schedule was asked for with the table of version, if
// it is still the latest seen: an answer for a set that newer ones followed is not
// installed. The owner's mutex must be held.
func (x *schedules) awaited(version uint32) (seenSet, bool) {
	a := x.seen.latest()
	return a, a.asked && a.version == version
}

// seenSet is a candidate set seen by a strategy's picks.
type seenSet struct {
	cands   []*backend.Backend
	asked   bool   // its schedule was asked for, rather than taken over
	weights []int  // as the strategy saw them, when asked
	version uint32 // of the pick channel's table of cands, when asked
}

// recentSets remembers the last candidate sets seen, the latest last, so that a pick
// still holding an older snapshot does not ask again. Holding the sets keeps their
// addresses from being reused.
type recentSets struct {
	sets [4]seenSet
	next int
}

// has reports whether cands were seen recently.
func (r *recentSets) has(cands []*backend.Backend) bool {
	for _, a := range r.sets {
		if sameSet(a.cands, cands) {
			return true
		}
	}
	return false
}

// add records a as the latest set, forgetting the oldest.
func (r *recentSets) add(a seenSet) {
	r.sets[r.next] = a
	r.next = (r.next + 1) % len(r.sets)
}

// latest returns the set added last.
func (r *recentSets) latest() seenSet {
	return r.sets[(r.next+len(r.sets)-1)%len(r.sets)]
}
