package backend

import (
	"sync/atomic"
	"time"
)

// DurationBuckets are the upper bounds, in seconds, of the request-duration
// histogram (Prometheus's default buckets).
var DurationBuckets = [...]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Answers counts answers by status code and their durations in a histogram, with
// atomics only: the request path takes no lock for them.
//
// Answers is safe for use by multiple goroutines; its zero value is ready.
type Answers struct {
	codes   [500]atomic.Uint64 // by status code - 100
	other   atomic.Uint64      // codes outside 100..599
	buckets [len(DurationBuckets)]atomic.Uint64
	count   atomic.Uint64
	sumNs   atomic.Int64
}

// Add counts one answer with status code that took d.
func (a *Answers) Add(code int, d time.Duration) {
	if code >= 100 && code < 600 {
		a.codes[code-100].Add(1)
	} else {
		a.other.Add(1)
	}
	s := d.Seconds()
	for i, ub := range DurationBuckets {
		if s <= ub {
			a.buckets[i].Add(1)
			break
		}
	}
	a.count.Add(1)
	a.sumNs.Add(int64(d))
}

// Codes calls f for each status code counted so far, with its count.
func (a *Answers) Codes(f func(code int, n uint64)) {
	for i := range a.codes {
		if n := a.codes[i].Load(); n > 0 {
			f(i+100, n)
		}
	}
}

// Histogram returns the durations' count, sum in seconds, and cumulative counts
// per bucket of DurationBuckets.
func (a *Answers) Histogram() (count uint64, sum float64, cumulative map[float64]uint64) {
	cumulative = make(map[float64]uint64, len(DurationBuckets))
	var acc uint64
	for i, ub := range DurationBuckets {
		acc += a.buckets[i].Load()
		cumulative[ub] = acc
	}
	return a.count.Load(), time.Duration(a.sumNs.Load()).Seconds(), cumulative
}
