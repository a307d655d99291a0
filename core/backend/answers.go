package backend

import (
	"sync/atomic"
	"time"
)

// DurationBuckets are the upper bounds, in seconds, of the request-duration
// histogram (Prometheus's default buckets).
var DurationBuckets = [...]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Answers counts answers by status code, their durations in a histogram and their
// body bytes, with atomics only: the request path takes no lock for them.
//
// Answers is safe for use by multiple goroutines; its zero value is ready.
type Answers struct {
	codes   [500]atomic.Uint64 // by status code - 100
	other   atomic.Uint64      // codes outside 100..599
	buckets [len(DurationBuckets)]atomic.Uint64
	count   atomic.Uint64
	sumNs   atomic.Int64
	// Body bytes, beside count and sumNs: the words an answer writes share a cache
	// line (in a shared memory area, its last one).
	bytesIn, bytesOut atomic.Uint64
}

// Classes counts answers by the class of their status code, as HAProxy's stats
// page shows them.
type Classes struct {
	Informational uint64 `json:"1xx"`
	Success       uint64 `json:"2xx"`
	Redirection   uint64 `json:"3xx"`
	ClientError   uint64 `json:"4xx"`
	ServerError   uint64 `json:"5xx"`
	Other         uint64 `json:"other"` // codes outside 100..599
}

// Add adds c's counts to x's.
func (x *Classes) Add(c Classes) {
	x.Informational += c.Informational
	x.Success += c.Success
	x.Redirection += c.Redirection
	x.ClientError += c.ClientError
	x.ServerError += c.ServerError
	x.Other += c.Other
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

// AddBytes counts the body bytes of one exchange: in from the client, out to it.
func (a *Answers) AddBytes(in, out int64) {
	a.bytesIn.Add(uint64(max(in, 0)))
	a.bytesOut.Add(uint64(max(out, 0)))
}

// Bytes returns the body bytes counted so far: in from clients, out to them.
func (a *Answers) Bytes() (in, out uint64) { return a.bytesIn.Load(), a.bytesOut.Load() }

// Classes returns the answers counted so far by class.
func (a *Answers) Classes() Classes {
	var c Classes
	for class, n := range []*uint64{&c.Informational, &c.Success, &c.Redirection, &c.ClientError, &c.ServerError} {
		for i := class * 100; i < class*100+100; i++ {
			*n += a.codes[i].Load()
		}
	}
	c.Other = a.other.Load()
	return c
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
