package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// A target that refuses connections answers each attempt at once, so a run
// against one would count refusals as fast as the kernel hands them out
// (58,000 a second against a closed local port) and report nothing useful.
// Instead the run ends, with a refusedError, once every attempt for a while
// has been refused:
//
//   - refusedAtStart (1s) while the target has not answered in this run: it is
//     not running, or the URL is wrong;
//   - refusedAfterAnswer (2s) once it has: a restart of the load balancer
//     refuses connections for a moment, and that should not end a long run.
//
// The clock starts at the first refused attempt and restarts at any attempt
// that ends otherwise: a response of any status, or another error such as a
// timeout. A worker whose attempt was refused waits before its next one,
// refusedBackoffMin at first and twice as long after each further refusal up
// to refusedBackoffMax, so that it does not spin.
const (
	refusedAtStart     = time.Second
	refusedAfterAnswer = 2 * time.Second

	refusedBackoffMin = 10 * time.Millisecond
	refusedBackoffMax = 100 * time.Millisecond
)

// refusals watches the attempts of a run for a target that refuses every
// connection, and stops the run when it does. It is safe for use by multiple
// goroutines; noting an attempt that was not refused costs an atomic load
// unless it ends a run of refusals.
type refusals struct {
	url  string                  // the target, for the error
	stop context.CancelCauseFunc // ends the run with a *refusedError

	since    atomic.Int64 // Unix time in ns of the first refusal since the last other outcome; 0 for none
	answered atomic.Bool  // some attempt of the run got a response
}

// newRefusals returns the watch of a run against url that stop ends.
func newRefusals(url string, stop context.CancelCauseFunc) *refusals {
	return &refusals{url: url, stop: stop}
}

// refused notes an attempt that ended at now, refused with err. It stops the
// run when every attempt since the first refusal has been refused for
// refusedAtStart, or refusedAfterAnswer once the target has answered.
func (r *refusals) refused(now time.Time, err error) {
	t := now.UnixNano()
	r.since.CompareAndSwap(0, t)
	since := r.since.Load()
	if since == 0 {
		return // an attempt that was not refused ended meanwhile
	}
	answered := r.answered.Load()
	limit := refusedAtStart
	if answered {
		limit = refusedAfterAnswer
	}
	if lasted := time.Duration(t - since); lasted >= limit {
		r.stop(&refusedError{url: r.url, answered: answered, lasted: lasted, err: err})
	}
}

// other notes an attempt that was not refused; answered says it got a
// response.
func (r *refusals) other(answered bool) {
	if r.since.Load() != 0 {
		r.since.Store(0)
	}
	if answered && !r.answered.Load() {
		r.answered.Store(true)
	}
}

// refusedError is why a run whose target refused every connection ended.
type refusedError struct {
	url      string
	answered bool          // the target had answered earlier in the run
	lasted   time.Duration // how long every attempt was refused
	err      error         // the last refusal
}

func (e *refusedError) Error() string {
	if !e.answered {
		return fmt.Sprintf("loadtest: %s refuses connections (%v); is the load balancer running?", e.url, e.err)
	}
	return fmt.Sprintf("loadtest: %s refused every connection for %v (%v); stopped the run: did the load balancer stop?",
		e.url, e.lasted.Round(100*time.Millisecond), e.err)
}

// Unwrap returns the last refusal, a dial error.
func (e *refusedError) Unwrap() error { return e.err }

// nextBackoff returns how long a worker waits after a refused attempt when it
// waited prev after the one before (0 for none).
func nextBackoff(prev time.Duration) time.Duration {
	return min(max(2*prev, refusedBackoffMin), refusedBackoffMax)
}

// sleep waits for d or until ctx is done, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
