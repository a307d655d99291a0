package backend

import (
	"time"
)

// Health states of a backend, as the status JSON shows them.
const (
	StateUp      = "up"      // takes new requests
	StateDown    = "down"    // failed its active health checks
	StateEjected = "ejected" // failed real traffic; back after its ejection time
)

// Health describes why a backend is or is not a candidate.
type Health struct {
	State        string    `json:"state"`
	Reason       string    `json:"reason,omitempty"`     // what caused the last change
	Since        time.Time `json:"since"`                // when the state began
	LastError    string    `json:"last_error,omitempty"` // of the last failed check or request
	EjectedUntil time.Time `json:"ejected_until,omitzero"`
	Ejections    int       `json:"ejections"` // in a row; each doubles the next ejection
}

// Health returns the backend's health.
func (b *Backend) Health() Health {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	h := b.health
	switch {
	case !b.up.Load():
		h.State = StateDown
		h.EjectedUntil = time.Time{}
	case b.ejected.Load():
		h.State = StateEjected
	default:
		h.State = StateUp
		h.EjectedUntil = time.Time{}
	}
	return h
}

// Candidate reports whether the backend may take new requests: up and not ejected.
func (b *Backend) Candidate() bool { return b.up.Load() && !b.ejected.Load() }

// SetUp records the outcome of active checks: up or down, with the reason and the
// check's error. It reports whether the state changed.
func (b *Backend) SetUp(up bool, reason, lastErr string) bool {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	if lastErr != "" {
		b.health.LastError = lastErr
	}
	if b.up.Load() == up {
		return false
	}
	b.up.Store(up)
	b.health.Reason, b.health.Since = reason, time.Now().UTC()
	return true
}

// AddFailure counts a failed request (connection error or 5xx) and returns the
// failures in a row.
func (b *Backend) AddFailure(err string) int {
	if err != "" {
		b.hmu.Lock()
		b.health.LastError = err
		b.hmu.Unlock()
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
// It returns n and the length.
func (b *Backend) Eject(reason string, resetAfter time.Duration, length func(n int) time.Duration) (int, time.Duration) {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	now := time.Now().UTC()
	if !b.returnedAt.IsZero() && now.Sub(b.returnedAt) > resetAfter {
		b.health.Ejections = 0 // it behaved for long enough: start over
	}
	b.health.Ejections++
	d := length(b.health.Ejections)
	b.health.Reason, b.health.Since, b.health.EjectedUntil = reason, now, now.Add(d)
	b.ejected.Store(true)
	return b.health.Ejections, d
}

// Return ends an ejection.
func (b *Backend) Return() {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	b.ejected.Store(false)
	b.failsInRow.Store(0)
	b.returnedAt = time.Now().UTC()
	b.health.Reason, b.health.Since = "ejection time over", b.returnedAt
}

// Ejected reports whether the backend is ejected now.
func (b *Backend) Ejected() bool { return b.ejected.Load() }

// Up reports whether the backend passes its active checks.
func (b *Backend) Up() bool { return b.up.Load() }
