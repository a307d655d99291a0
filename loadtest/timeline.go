package main

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// secondSigFigs is the precision of the per-second latency histograms of
// -plot: 2 significant digits (1%) keep each one near 20 KB.
const secondSigFigs = 2

// timeline collects the per-second statistics of a run for -plot: for each
// second since the start, the requests that finished in it and the latency
// percentiles of its responses. Each worker records into its own lane and
// hands a second over when it finishes a request in a later one, so the lock
// is taken about once per worker per second, not per request. A second is
// reduced to its percentiles, and its histogram reused, as soon as no lane can
// add to it any more, so histograms do not pile up over a long run.
type timeline struct {
	start time.Time

	mu      sync.Mutex
	low     []int                     // per lane: the earliest second it may still hand over
	pending map[int]*secondTally      // seconds some lane may still add to
	final   []secondStats             // reduced seconds by index; seconds without requests stay zero
	spare   []*hdrhistogram.Histogram // reset histograms for reuse
}

// secondTally counts the requests that finished in one second.
type secondTally struct {
	ok     int64                   // 2xx responses
	failed int64                   // other responses and transport errors
	hist   *hdrhistogram.Histogram // latency of the responses in µs
}

// secondStats is one second of a run as the plot shows it.
type secondStats struct {
	OK        int64   // 2xx responses
	Failed    int64   // other responses and transport errors
	Responses int64   // responses, which the percentiles are over
	P50       float64 // latency percentiles in ms; 0 without responses
	P90       float64
	P99       float64
}

// newTimeline returns an empty timeline of a run starting at start.
func newTimeline(start time.Time) *timeline {
	return &timeline{start: start, pending: map[int]*secondTally{}}
}

// newSecondHist returns an empty per-second latency histogram.
func newSecondHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMin, histMax, secondSigFigs)
}

// newLane adds a lane for one worker. On a nil timeline it returns nil, a
// lane that records nothing.
func (tl *timeline) newLane() *lane {
	if tl == nil {
		return nil
	}
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.low = append(tl.low, 0)
	return &lane{tl: tl, id: len(tl.low) - 1, acc: secondTally{hist: newSecondHist()}}
}

// second returns the index of the second of the run that t falls in.
func (tl *timeline) second(t time.Time) int {
	return max(int(t.Sub(tl.start)/time.Second), 0)
}

// add merges one lane's count of second sec; tl.mu must be held.
func (tl *timeline) add(sec int, t *secondTally) {
	p := tl.pending[sec]
	if p == nil {
		p = &secondTally{}
		if n := len(tl.spare); n > 0 {
			p.hist, tl.spare = tl.spare[n-1], tl.spare[:n-1]
		} else {
			p.hist = newSecondHist()
		}
		tl.pending[sec] = p
	}
	p.ok += t.ok
	p.failed += t.failed
	p.hist.Merge(t.hist)
}

// reduce turns the pending seconds no lane can add to into secondStats;
// tl.mu must be held.
func (tl *timeline) reduce() {
	low := slices.Min(tl.low)
	for sec, p := range tl.pending {
		if sec >= low {
			continue
		}
		if sec >= len(tl.final) {
			tl.final = append(tl.final, make([]secondStats, sec+1-len(tl.final))...)
		}
		tl.final[sec] = p.stats()
		p.hist.Reset()
		tl.spare = append(tl.spare, p.hist)
		delete(tl.pending, sec)
	}
}

// stats reduces a second's count to what the plot shows.
func (t *secondTally) stats() secondStats {
	ms := func(q float64) float64 { return float64(t.hist.ValueAtQuantile(q)) / 1000 }
	st := secondStats{OK: t.ok, Failed: t.failed, Responses: t.hist.TotalCount()}
	if st.Responses > 0 {
		st.P50, st.P90, st.P99 = ms(50), ms(90), ms(99)
	}
	return st
}

// seconds returns the statistics of each second of a run that took elapsed.
// Every lane must have been closed.
func (tl *timeline) seconds(elapsed time.Duration) []secondStats {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.reduce()
	n := max(int(math.Ceil(elapsed.Seconds())), len(tl.final))
	out := make([]secondStats, n)
	copy(out, tl.final)
	return out
}

// lane is one worker's part of a timeline: the count of the second it is
// in, which only that worker touches.
type lane struct {
	tl  *timeline
	id  int         // index in tl.low
	sec int         // the second acc counts
	acc secondTally // requests of second sec not yet handed over
}

// record adds a request that finished at end: a response with status after
// elapsed, or a transport error when status is 0. A nil lane does nothing.
func (l *lane) record(end time.Time, elapsed time.Duration, status int) {
	if l == nil {
		return
	}
	if sec := l.tl.second(end); sec > l.sec {
		l.handOver(sec)
	}
	switch {
	case status == 0:
		l.acc.failed++
		return
	case status >= 200 && status <= 299:
		l.acc.ok++
	default:
		l.acc.failed++
	}
	us := min(max(elapsed.Microseconds(), histMin), histMax)
	_ = l.acc.hist.RecordValue(us) // cannot fail: us is clamped to the range
}

// handOver gives the lane's count to the timeline and moves the lane on to
// second next.
func (l *lane) handOver(next int) {
	tl := l.tl
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if l.acc.ok+l.acc.failed > 0 {
		tl.add(l.sec, &l.acc)
		l.acc.ok, l.acc.failed = 0, 0
		l.acc.hist.Reset()
	}
	l.sec = next
	tl.low[l.id] = next
	tl.reduce()
}

// close hands over the lane's last count; the lane must not record after it.
// A nil lane does nothing.
func (l *lane) close() {
	if l != nil {
		l.handOver(math.MaxInt)
	}
}
