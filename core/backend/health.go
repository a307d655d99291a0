package backend

import (
	"time"

	"github.com/switchyard-lb/switchyard/core/shm"
)

// Health states of a backend, as the status JSON shows them.
const (
	StateUp      = "up"      // takes new requests
	StateDown    = "down"    // failed its active health checks
	StateEjected = "ejected" // failed real traffic; back after its ejection time
	StateDrain   = "drain"   // taken out by an operator; back when made ready
)

// Health describes why a backend is or is not a candidate.
type Health struct {
	State        string    `json:"state"`
	Reason       string    `json:"reason"`               // what caused the last change of State, or the start
	Since        time.Time `json:"since"`                // when the state began
	LastError    string    `json:"last_error,omitempty"` // of the last failed check or request while not up
	EjectedUntil time.Time `json:"ejected_until,omitzero"`
	Ejections    int       `json:"ejections"` // in a row; each doubles the next ejection
}

// Health returns the backend's health.
func (b *Backend) Health() Health {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	h := b.health
	h.State = b.state()
	if h.State != StateEjected {
		h.EjectedUntil = time.Time{}
	}
	return h
}

// state is the state that status shows. b.hmu must be held.
func (b *Backend) state() string {
	switch {
	case b.drained.Load() || b.weight.Load() == 0: // weight 0 takes no new requests, as a drain (HAProxy shows it so)
		return StateDrain
	case !b.up.Load():
		return StateDown
	case b.ejected.Load():
		return StateEjected
	}
	return StateUp
}

// Candidate reports whether the backend may take new requests: up, not ejected, not
// drained, and of a weight above 0 (as HAProxy, a weight of 0 takes no new requests;
// so strategies never see one).
func (b *Backend) Candidate() bool {
	return b.up.Load() && !b.ejected.Load() && !b.drained.Load() && b.weight.Load() > 0
}

// change records, after one of the flags moved, the reason when the visible state
// differs from was, and reports whether it does. A backend that becomes a candidate
// again starts with no error. b.hmu must be held.
func (b *Backend) change(was, reason string, now time.Time) bool {
	is := b.state()
	if is == was {
		return false
	}
	b.health.Reason, b.health.Since = reason, now
	if is == StateUp {
		b.health.LastError = ""
	}
	return true
}

// SetUp records the verdict of active checks: up or down, with the reason and the
// check's error. It reports whether the backend's state changed, and its health.
// A backend that passes its checks while ejected stays ejected: the reason then says
// both.
func (b *Backend) SetUp(up bool, reason, lastErr string) (Health, bool) {
	b.hmu.Lock()
	was := b.state()
	if lastErr != "" {
		b.health.LastError = lastErr
	}
	if up && b.ejected.Load() {
		reason += "; still ejected (" + b.ejectReason + ")"
	}
	b.up.Store(up)
	changed := b.change(was, reason, time.Now().UTC())
	b.hmu.Unlock()
	return b.Health(), changed
}

// NoteError records the error of a failed check or request that changed nothing.
// It reports whether it is the first since the backend last changed state.
func (b *Backend) NoteError(err string) (first bool) {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	first = b.health.LastError == ""
	b.health.LastError = err
	return first
}

// AddFailure counts a failed request (connection error or 5xx) and returns the
// failures in a row.
func (b *Backend) AddFailure(err string) int {
	if err != "" {
		b.NoteError(err)
	}
	return int(b.failsInRow.Add(1))
}

// AddSuccess ends a run of failed requests.
func (b *Backend) AddSuccess() {
	if b.failsInRow.Load() != 0 { // a store only when needed keeps the cache line shared
		b.failsInRow.Store(0)
	}
}

// Eject takes the backend out for length(n), where n counts the ejections in a row
// (the first is 1; the count starts over once the backend stayed in for resetAfter).
// It returns n, the length, the backend's health and whether its state changed (an
// ejection of a backend that is down changes nothing visible).
func (b *Backend) Eject(reason string, resetAfter time.Duration, length func(n int) time.Duration) (int, time.Duration, Health, bool) {
	b.hmu.Lock()
	now := time.Now().UTC()
	if !b.returnedAt.IsZero() && now.Sub(b.returnedAt) > resetAfter {
		b.health.Ejections = 0 // it behaved for long enough: start over
	}
	b.health.Ejections++
	b.ejectionsTotal.Add(1)
	n := b.health.Ejections
	d := length(n)
	was := b.state()
	b.health.EjectedUntil, b.ejectReason = now.Add(d), reason
	b.ejected.Store(true)
	changed := b.change(was, reason, now)
	b.hmu.Unlock()
	return n, d, b.Health(), changed
}

// Return ends an ejection with reason. It reports the backend's health and whether
// its state changed (a backend that went down meanwhile stays down).
func (b *Backend) Return(reason string) (Health, bool) {
	b.hmu.Lock()
	was := b.state()
	b.ejected.Store(false)
	b.failsInRow.Store(0)
	b.returnedAt = time.Now().UTC()
	b.health.EjectedUntil = time.Time{}
	changed := b.change(was, reason, b.returnedAt)
	b.hmu.Unlock()
	return b.Health(), changed
}

// Drain takes the backend out of the picks at an operator's request (HAProxy's
// "set server ... state drain"): requests in flight finish, no new ones come. It
// reports the backend's health and whether its state changed.
func (b *Backend) Drain() (Health, bool) {
	b.hmu.Lock()
	was := b.state()
	b.drained.Store(true)
	changed := b.change(was, "runtime: drain requested", time.Now().UTC())
	b.hmu.Unlock()
	return b.Health(), changed
}

// Ready ends a drain and a passive ejection, with its backoff, at an operator's
// request. A backend that fails its active checks stays down.
func (b *Backend) Ready() (Health, bool) {
	b.hmu.Lock()
	was := b.state()
	b.drained.Store(false)
	b.ejected.Store(false)
	b.failsInRow.Store(0)
	b.health.Ejections, b.health.EjectedUntil, b.returnedAt = 0, time.Time{}, time.Time{}
	changed := b.change(was, "runtime: ready requested", time.Now().UTC())
	b.hmu.Unlock()
	return b.Health(), changed
}

// EjectionsTotal is the number of passive ejections of the backend since it joined.
func (b *Backend) EjectionsTotal() uint64 { return b.ejectionsTotal.Load() }

// Ejected reports whether the backend is ejected now.
func (b *Backend) Ejected() bool { return b.ejected.Load() }

// Up reports whether the backend passes its active checks.
func (b *Backend) Up() bool { return b.up.Load() }

// sharedState is the backend's state as its slot holds it. A weight of 0 is a drain
// there, as HAProxy shows it: up, taking no new requests.
func (b *Backend) sharedState() shm.State {
	switch {
	case b.Candidate():
		return shm.StateUp
	case b.drained.Load():
		return shm.StateDrain
	case b.ejected.Load():
		return shm.StateEjected
	case !b.up.Load():
		return shm.StateDown
	}
	return shm.StateDrain // up, of weight 0
}

// Mirror sets whether the backend takes new requests as the control plane decided
// it, in a data-plane process that runs no health checks of its own.
func (b *Backend) Mirror(candidate bool) {
	b.up.Store(candidate)
	b.ejected.Store(false)
	b.drained.Store(false)
}
