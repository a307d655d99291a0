// Package backend holds the upstream servers: their identity, live figures and
// pooled connections, and the snapshot of candidates that each request reads.
package backend

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/shm"
)

// Backend is one upstream server. It is keyed by its normalized URL and outlives
// configuration generations, so its counters survive reloads.
//
// A Backend is safe for use by multiple goroutines: its live figures are atomics.
type Backend struct {
	// URL is the backend's URL as written in config.json.
	URL string
	// Key is the normalized URL, the backend's identity within its pool (see
	// config.NormalizeURL).
	Key string
	// Pool is the name of the pool the backend belongs to ("default" for servers);
	// a URL listed in two pools is two backends.
	Pool   string
	source atomic.Pointer[string]   // "config" or "dns"
	dial   atomic.Pointer[DialAddr] // where a data plane dials it (see DialAddr)
	h2c    h2cConn                  // the event loop's HTTP/2 connection to an h2c backend
	// priority ranks the backend for taking requests (see config.Backend.Priority).
	priority atomic.Int64

	// weight is the weight in force: config.json's, or the operator's (SetWeight)
	// until config.json gives the backend another weight than fileWeight.
	weight     atomic.Int64
	fileWeight int  // the weight config.json gave last; guarded by hmu
	runtime    bool // weight was set by SetWeight; guarded by hmu
	// The live figures point into own, or into a slot of the shared memory segment
	// that every process of the load balancer updates (see Set.Share).
	inflight       *atomic.Int64
	queueLength    *atomic.Int64 // -1 when the backend reports none
	requests       *atomic.Uint64
	failures       *atomic.Uint64
	stale          *atomic.Uint64 // pooled connections found unsound before reuse
	ejectionsTotal *atomic.Uint64 // passive ejections since it joined
	latencyNs      *atomic.Int64  // moving average of response latency
	errorRate      *atomic.Uint64 // moving average of failures, in millionths
	failsInRow     *atomic.Int64  // failed requests in a row
	words          *shm.Backend   // the slot, nil when the figures are in own
	mine           *atomic.Int64  // this process's share of inflight (Slot.Mine)
	// Answers counts the requests answered through the backend, by status code and
	// duration, for metrics.
	Answers *Answers
	own     struct {
		inflight, queueLength, latencyNs, failsInRow   atomic.Int64
		mine                                           atomic.Int64
		requests, failures, stale, ejections, errorPPM atomic.Uint64
		answers                                        Answers
	}

	up          atomic.Bool // passes active checks
	ejected     atomic.Bool // ejected by passive checks
	drained     atomic.Bool // taken out by an operator
	hmu         sync.Mutex  // guards health, returnedAt, ejectReason, fileWeight and runtime
	health      Health
	returnedAt  time.Time
	ejectReason string
	lastCheck   atomic.Pointer[Check] // the last active health check (check.go); nil before one
}

// Source says where the backend comes from: "config" or "dns".
func (b *Backend) Source() string { return *b.source.Load() }

// Weight is the backend's weight in force: config.json's, or the one an operator set
// at run time (SetWeight). A backend of weight 0 takes no new requests.
func (b *Backend) Weight() int { return int(b.weight.Load()) }

// MaxWeight bounds a weight set at run time, as HAProxy's "set server ... weight".
const MaxWeight = 256

// SetWeight sets the backend's weight at an operator's request, as HAProxy's "set
// server ... weight": it holds across configuration reloads until config.json gives
// the backend another weight than it gave before. Weight 0 takes the backend out of
// the picks (requests in flight finish). It reports whether the weight changed; the
// caller publishes the change (Set.Rebuild). w must be within 0..MaxWeight.
func (b *Backend) SetWeight(w int) bool {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	b.runtime = true
	was := b.state()
	changed := b.weight.Swap(int64(w)) != int64(w)
	b.change(was, "runtime: weight set to "+strconv.Itoa(w), time.Now().UTC())
	return changed
}

// RuntimeWeight reports whether the weight in force was set at run time (SetWeight)
// rather than by config.json.
func (b *Backend) RuntimeWeight() bool {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	return b.runtime
}

// configure takes the weight config.json gives the backend: it replaces a weight set
// at run time only when it differs from the one config.json gave before.
func (b *Backend) configure(w int) {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	if b.runtime && w == b.fileWeight {
		return
	}
	first := b.fileWeight == 0 // config.json's weights are 1 or more: never configured
	b.runtime, b.fileWeight = false, w
	was := b.state()
	b.weight.Store(int64(w))
	if !first {
		b.change(was, "config: weight set to "+strconv.Itoa(w), time.Now().UTC())
	}
}

// Priority ranks the backend for taking requests: it takes none while a backend of a
// lower Priority can (see config.Backend.Priority).
func (b *Backend) Priority() int { return int(b.priority.Load()) }

// Inflight is the number of requests this proxy has open on the backend now.
func (b *Backend) Inflight() int { return int(b.inflight.Load()) }

// QueueLength is the backend's own reported queue length, -1 when unknown.
func (b *Backend) QueueLength() int { return int(b.queueLength.Load()) }

// SetQueueLength records the backend's reported queue length (-1: unknown).
func (b *Backend) SetQueueLength(n int) { b.queueLength.Store(int64(n)) }

// Requests is the number of requests sent to the backend.
func (b *Backend) Requests() uint64 { return b.requests.Load() }

// Failures is the number of requests to the backend that failed (transport error or 5xx).
func (b *Backend) Failures() uint64 { return b.failures.Load() }

// Latency is the moving average of the backend's response latency.
func (b *Backend) Latency() time.Duration { return time.Duration(b.latencyNs.Load()) }

// ErrorRate is the moving average share of failed requests, 0..1.
func (b *Backend) ErrorRate() float64 { return float64(b.errorRate.Load()) / 1e6 }

// StaleConns is the number of pooled connections discarded before reuse because the
// backend had closed them or sent bytes nobody asked for.
func (b *Backend) StaleConns() uint64 { return b.stale.Load() }

// Start records that a request is being sent to the backend.
func (b *Backend) Start() {
	b.inflight.Add(1)
	b.mine.Add(1)
	b.requests.Add(1)
}

// Finish records the end of a request started with Start: its latency and whether it
// failed (a transport error or a 5xx answer).
func (b *Backend) Finish(latency time.Duration, failed bool) {
	b.inflight.Add(-1)
	b.mine.Add(-1)
	var fail uint64
	if failed {
		b.failures.Add(1)
		fail = 1e6
	}
	// Exponentially weighted moving averages with alpha = 1/8; a lost update under a
	// race only skips one sample.
	old := b.latencyNs.Load()
	b.latencyNs.Store(old + (int64(latency)-old)/8)
	oldRate := b.errorRate.Load()
	b.errorRate.Store(oldRate - oldRate/8 + fail/8)
}

// Abandon ends a request started with Start that failed through no fault of the
// backend (the client sent a malformed body or went away): it counts neither as a
// success nor as a failure.
func (b *Backend) Abandon() {
	b.inflight.Add(-1)
	b.mine.Add(-1)
}

// Snapshot is an immutable view of the backend set, rebuilt on every change and read
// by each request without locks.
type Snapshot struct {
	// All lists every configured backend, in config.json order.
	All []*Backend
	// Candidates lists the backends that may take new requests: those that can
	// (Backend.Candidate), of the lowest Priority that has one.
	Candidates []*Backend
}

// Set is the live set of backends, keyed by normalized URL.
//
// Set is safe for use by multiple goroutines: Snapshot is lock-free, Update is
// serialized by a mutex.
type Set struct {
	pool     string // the pool's name, given to its backends
	slots    Slots  // nil: figures in process memory
	onChange func()
	// gen counts the changes of the backends' states written to their slots (nil:
	// the states are this process's own); follow: this set takes them from there.
	gen     *atomic.Uint64
	follow  bool
	seen    atomic.Uint64 // the gen of the snapshot, when following
	mu      sync.Mutex
	byKey   map[string]*Backend
	snap    atomic.Pointer[Snapshot]
	updated bool // Update has run before
}

// NewSet returns an empty set of the default pool; Update fills it.
func NewSet() *Set { return NewPoolSet(DefaultPool, nil) }

// DefaultPool is the name of the pool that config.json's servers describe.
const DefaultPool = "default"

// NewPoolSet returns the empty set of the pool called pool, whose backends keep their
// figures where slots says (nil: in this process's memory).
func NewPoolSet(pool string, slots Slots) *Set {
	s := &Set{pool: pool, slots: slots, byKey: map[string]*Backend{}}
	s.snap.Store(&Snapshot{})
	return s
}

// Pool is the name of the set's pool.
func (s *Set) Pool() string { return s.pool }

// SlotKey is the key a backend's slot is known by: its Key in the default pool (so
// that a slot outlives a change that only adds pools), the pool's name and its Key
// in another.
func SlotKey(pool, key string) string {
	if pool == DefaultPool || pool == "" {
		return key
	}
	return pool + " " + key
}

// Slot is where a backend's live figures live in a shared memory segment (package
// shm), so that every process of the load balancer counts into the same words.
type Slot struct {
	// Index and Epoch identify the slot's assignment (see shm.Allocator).
	Index int
	Epoch uint64
	// Words are the slot's counters; Area holds the backend's Answers.
	Words *shm.Backend
	Area  unsafe.Pointer
	// Mine, when set, is this process's share of the in-flight count, in its
	// ledger (see shm.Ledger).
	Mine *atomic.Int64
}

// Slots places the figures of backends that join a Set.
type Slots interface {
	// Slot returns the slot for the backend with key, or nil to keep its figures in
	// the process's memory.
	Slot(key string) *Slot
}

// Answers must fit in a segment's area.
var _ [shm.AreaSize - unsafe.Sizeof(Answers{})]byte

// NewSharedSet returns an empty set of the default pool whose backends keep their
// figures where slots says.
func NewSharedSet(slots Slots) *Set { return NewPoolSet(DefaultPool, slots) }

// Snapshot returns the current view of the set. It never returns nil.
func (s *Set) Snapshot() *Snapshot {
	if s.follow {
		if g := s.gen.Load(); g != s.seen.Load() {
			s.refresh(g)
		}
	}
	return s.snap.Load()
}

// ShareStates makes the set write its backends' states to their slots and count each
// change in gen, for other processes to follow; or, with follow, take the states
// from there: a backend takes new requests when its slot says StateUp, from the first
// request after the change. Call it before the set is used.
func (s *Set) ShareStates(gen *atomic.Uint64, follow bool) {
	s.gen, s.follow = gen, follow
}

// Refresh takes the backends' states from their slots now, in a set that follows
// them (ShareStates).
func (s *Set) Refresh() {
	if s.follow {
		s.seen.Store(s.gen.Load() - 1)
		s.refresh(s.gen.Load())
	}
}

// refresh takes the backends' states from their slots. Backends without a slot keep
// theirs.
func (s *Set) refresh(g uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen.Load() == g {
		return
	}
	all := s.snap.Load().All
	for _, b := range all {
		if b.words != nil {
			b.Mirror(b.words.State() == shm.StateUp)
		}
	}
	s.seen.Store(g)
	s.publish(all)
}

// Update makes the set match the configured backends and returns the ones it
// removed, which keep serving their in-flight requests (see Drain). Existing backends
// (by normalized URL) keep their counters and take the new weight, unless an operator
// set one at run time and the backend's weight in backends is the same as before (see
// SetWeight); a changed cc gives them new connection pools. New backends join as
// candidates on the first Update; on later ones they join down, and take traffic once
// health checks pass them.
// The backends must have passed config validation.
func (s *Set) Update(backends []config.Backend) (removed []*Backend) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := !s.updated
	s.updated = true
	var all []*Backend
	keep := make(map[string]*Backend, len(backends))
	for _, cb := range backends {
		key, err := config.NormalizeURL(cb.URL)
		if err != nil || keep[key] != nil {
			continue // validated before; or listed twice (in config.json and in DNS): the first stays
		}
		b := s.byKey[key]
		switch {
		case b == nil:
			var slot *Slot
			if s.slots != nil {
				slot = s.slots.Slot(SlotKey(s.pool, key))
			}
			b = newBackend(cb.URL, key, first, slot)
			b.Pool = s.pool
		}
		b.configure(cb.Weight)
		b.priority.Store(int64(cb.Priority))
		src := cb.Source
		if src == "" {
			src = "config"
		}
		b.source.Store(&src)
		keep[key] = b
		all = append(all, b)
	}
	for key, b := range s.byKey {
		if keep[key] == nil {
			removed = append(removed, b)
		}
	}
	s.byKey = keep
	s.publish(all)
	return removed
}

// Drain waits until b has no request in flight, or ctx is done.
func Drain(ctx context.Context, b *Backend) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for b.Inflight() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Rebuild publishes a new snapshot after a backend's health changed.
func (s *Set) Rebuild() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publish(s.snap.Load().All)
}

// publish stores a snapshot of all with the candidates among them. s.mu must be held.
func (s *Set) publish(all []*Backend) {
	s.snap.Store(&Snapshot{All: all, Candidates: candidates(all)})
	if s.gen != nil && !s.follow {
		for _, b := range all {
			if b.words != nil {
				b.words.SetState(b.sharedState())
			}
		}
		s.gen.Add(1)
	}
	if s.onChange != nil {
		s.onChange()
	}
}

// candidates lists the backends of all that can take requests, of the lowest
// priority that has one: backups take requests only while no backend before them
// can, as nginx's backup servers and SRV priorities (RFC 2782) do.
func candidates(all []*Backend) []*Backend {
	var out []*Backend
	first := 0
	for _, b := range all {
		if !b.Candidate() {
			continue
		}
		switch p := b.Priority(); {
		case len(out) == 0 || p < first:
			out, first = append(out[:0], b), p
		case p == first:
			out = append(out, b)
		}
	}
	return out
}

// OnChange makes f be called after each change of the set or of a backend's state,
// with the set's lock held: f must only hand the news on. Call it before the set is
// used.
func (s *Set) OnChange(f func()) { s.onChange = f }

// newBackend builds a backend with its own connection pool, its figures in slot (or
// in its own memory when slot is nil).
func newBackend(rawURL, key string, up bool, slot *Slot) *Backend {
	b := &Backend{URL: rawURL, Key: key}
	if slot != nil {
		s := slot.Words
		b.words = s
		b.inflight, b.queueLength, b.requests, b.failures = s.Inflight(), s.QueueLength(), s.Requests(), s.Failures()
		b.stale, b.ejectionsTotal, b.latencyNs, b.errorRate = s.Stale(), s.Ejections(), s.LatencyNanos(), s.ErrorRatePPM()
		b.failsInRow, b.Answers = s.FailsInRow(), (*Answers)(slot.Area)
		b.mine = slot.Mine
		if b.mine == nil {
			b.mine = &b.own.mine
		}
	} else {
		o := &b.own
		b.inflight, b.queueLength, b.requests, b.failures = &o.inflight, &o.queueLength, &o.requests, &o.failures
		b.stale, b.ejectionsTotal, b.latencyNs, b.errorRate = &o.stale, &o.ejections, &o.latencyNs, &o.errorPPM
		b.failsInRow, b.Answers, b.mine = &o.failsInRow, &o.answers, &o.mine
		b.queueLength.Store(-1)
	}
	b.up.Store(up)
	b.health.Since = time.Now().UTC()
	// Every state has a reason from the start, so tools need not handle its absence.
	b.health.Reason = "started: up until its checks say otherwise"
	if !up {
		b.health.Reason = "added: waiting for its health checks to pass"
	}
	return b
}
