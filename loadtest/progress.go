package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/schollz/progressbar/v3"
)

// reporter shows the progress of a run, as a bar or as plain lines.
type reporter struct {
	opts  options
	w     io.Writer
	live  *counters
	start time.Time
	bar   *progressbar.ProgressBar // nil for plain lines

	lastDone int64     // live.done at the previous report
	lastAt   time.Time // time of the previous report
}

// newReporter returns a reporter for a run starting at start.
func newReporter(opts options, w io.Writer, live *counters, start time.Time) *reporter {
	r := &reporter{opts: opts, w: w, live: live, start: start, lastAt: start}
	if opts.progressBar {
		r.bar = newBar(opts, w)
	}
	return r
}

// newBar returns a bar counting requests for -n or seconds for -duration alone.
func newBar(opts options, w io.Writer) *progressbar.ProgressBar {
	total := opts.requests
	if total == 0 {
		total = int64(math.Ceil(opts.duration.Seconds()))
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(opts.requests > 0),
		progressbar.OptionThrottle(0),
		progressbar.OptionSetRenderBlankState(true),
	)
}

// loop reports progress periodically until ctx is done.
func (r *reporter) loop(ctx context.Context) {
	every := r.opts.progressEvery
	if every <= 0 {
		every = time.Second
	}
	if r.bar != nil {
		every = min(every, 250*time.Millisecond)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.report(now.Sub(r.start))
		}
	}
}

// finish writes the final report of a run that took elapsed.
func (r *reporter) finish(elapsed time.Duration) {
	r.lastDone, r.lastAt = 0, r.start // final rate: the run's average
	r.report(elapsed)
	if r.bar != nil {
		_ = r.bar.Exit()
		fmt.Fprintln(r.w)
	}
}

// report writes one progress update at elapsed into the run.
func (r *reporter) report(elapsed time.Duration) {
	done, failed := r.live.done.Load(), r.live.failed.Load()
	now := r.start.Add(elapsed)
	rps := 0.0
	if dt := now.Sub(r.lastAt).Seconds(); dt > 0 {
		rps = float64(done-r.lastDone) / dt
	}
	r.lastDone, r.lastAt = done, now
	if r.bar != nil {
		r.updateBar(done, elapsed, rps, failed)
		return
	}
	if r.opts.requests > 0 {
		fmt.Fprintf(r.w, "progress: %d/%d requests, %.0f req/s, errors %d\n", done, r.opts.requests, rps, failed)
		return
	}
	fmt.Fprintf(r.w, "progress: %d requests, %v/%v, %.0f req/s, errors %d\n",
		done, elapsed.Truncate(time.Second), r.opts.duration, rps, failed)
}

// updateBar moves the bar to done requests (or elapsed seconds) and shows the rate.
func (r *reporter) updateBar(done int64, elapsed time.Duration, rps float64, failed int64) {
	r.bar.Describe(fmt.Sprintf("%.0f req/s, errors %d", rps, failed))
	if r.opts.requests > 0 {
		_ = r.bar.Set64(done)
		return
	}
	_ = r.bar.Set64(min(int64(elapsed.Seconds()), r.bar.GetMax64()))
}
