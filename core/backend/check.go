package backend

import "time"

// Check is the outcome of one active health check of a backend.
type Check struct {
	At   time.Time     // when the probe started
	Took time.Duration // until its answer, its error or its timeout
	OK   bool          // whether it passed
}

// SetLastCheck records the outcome of the backend's latest active health check.
func (b *Backend) SetLastCheck(c Check) { b.lastCheck.Store(&c) }

// LastCheck returns the outcome of the backend's latest active health check, and
// false before its first one ended.
func (b *Backend) LastCheck() (Check, bool) {
	if c := b.lastCheck.Load(); c != nil {
		return *c, true
	}
	return Check{}, false
}
