package main

import (
	"io"
	"math"
	"testing"
	"time"
)

func TestRunSeconds(t *testing.T) {
	srv := newBackend(t)
	opts := testOptions(srv.URL, 200, 8)
	if s := mustRun(t, t.Context(), opts, io.Discard); s.Seconds != nil {
		t.Errorf("Seconds = %v without -plot, want nil", s.Seconds)
	}
	opts.plot = "unused.html" // run records seconds; realMain writes the page
	s := mustRun(t, t.Context(), opts, io.Discard)
	if want := int(math.Ceil(s.Duration)); len(s.Seconds) != want {
		t.Errorf("len(Seconds) = %d for %.3fs, want %d", len(s.Seconds), s.Duration, want)
	}
	var ok, failed, responses int64
	for _, st := range s.Seconds {
		ok, failed, responses = ok+st.OK, failed+st.Failed, responses+st.Responses
		if st.Responses > 0 && !(0 < st.P50 && st.P50 <= st.P90 && st.P90 <= st.P99) {
			t.Errorf("second %+v: want 0 < p50 <= p90 <= p99", st)
		}
	}
	if ok != s.Status["200"] || failed != s.Status["503"] || responses != s.Requests {
		t.Errorf("seconds count %d ok, %d failed, %d responses; summary %v, %d requests",
			ok, failed, responses, s.Status, s.Requests)
	}
}

func TestTimeline(t *testing.T) {
	start := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	ms := time.Millisecond
	tl := newTimeline(start)
	l0, l1 := tl.newLane(), tl.newLane()

	l0.record(at(100*ms), 10*ms, 200)
	l0.record(at(500*ms), 20*ms, 503)
	l1.record(at(900*ms), 30*ms, 204) // l1 keeps second 0 while l0 moves on
	l0.record(at(1200*ms), 0, 0)
	l0.record(at(3100*ms), 50*ms, 200)
	if _, ok := tl.pending[0]; !ok || len(tl.final) != 0 {
		t.Errorf("second 0 was reduced while lane 1 could still add to it: final = %v", tl.final)
	}
	l1.record(at(2500*ms), 40*ms, 200) // hands second 0 over; 0 and 1 are final
	if len(tl.final) != 2 || len(tl.pending) != 0 {
		t.Errorf("after both lanes passed second 1: final = %v, %d pending; want 2 final, none pending (the lanes hold seconds 2 and 3)",
			tl.final, len(tl.pending))
	}
	l0.close()
	l1.close()
	got := tl.seconds(4500 * ms)

	if len(got) != 5 {
		t.Fatalf("seconds(4.5s) = %d seconds, want 5: %+v", len(got), got)
	}
	near := func(v, want float64) bool { return math.Abs(v-want) <= want*0.01 }
	s0 := got[0]
	if s0.OK != 2 || s0.Failed != 1 || s0.Responses != 3 || !near(s0.P50, 20) || !near(s0.P99, 30) {
		t.Errorf("second 0 = %+v, want 2 ok, 1 failed, 3 responses, p50 20ms, p99 30ms", s0)
	}
	if s1 := got[1]; s1 != (secondStats{Failed: 1}) {
		t.Errorf("second 1 = %+v, want one transport error only", s1)
	}
	if s2 := got[2]; s2.OK != 1 || !near(s2.P50, 40) || !near(s2.P99, 40) {
		t.Errorf("second 2 = %+v, want one 40ms response", s2)
	}
	if s3 := got[3]; s3.OK != 1 || !near(s3.P90, 50) {
		t.Errorf("second 3 = %+v, want one 50ms response", s3)
	}
	if got[4] != (secondStats{}) {
		t.Errorf("second 4 = %+v, want empty", got[4])
	}
	if len(tl.spare) == 0 {
		t.Error("no histogram was kept for reuse")
	}
}

func TestNilLane(t *testing.T) {
	var tl *timeline
	l := tl.newLane()
	l.record(time.Now(), time.Millisecond, 200) // must not panic
	l.close()
}
