//go:build linux || darwin || freebsd || netbsd || openbsd

package evloop

import (
	"slices"
	"testing"
	"time"
)

// fakeWheel is a wheel driven by a hand-moved clock.
type fakeWheel struct {
	w     wheel
	now   time.Time
	start time.Time
}

func newFakeWheel(tick time.Duration, slots int) *fakeWheel {
	f := &fakeWheel{start: time.Unix(1000, 0)}
	f.now = f.start
	f.w.init(&f.now, tick, slots)
	return f
}

func (f *fakeWheel) timer(fn func()) *Timer {
	return &Timer{w: &f.w, f: fn, slot: idle}
}

// step moves the clock to start+at and serves the wheel, as a loop pass would.
func (f *fakeWheel) step(at time.Duration) {
	f.now = f.start.Add(at)
	f.w.advance(f.now)
}

// TestWheelFiresAtRoundedDeadline arms timers at time 0 on a 10 ms × 8 wheel (an
// 80 ms span) and moves the clock 1 ms at a time: each fires at its delay rounded up
// to the tick, timers beyond the span included.
func TestWheelFiresAtRoundedDeadline(t *testing.T) {
	tests := []struct {
		delay, fires time.Duration
	}{
		{0, 10 * time.Millisecond},
		{-time.Second, 10 * time.Millisecond},
		{time.Millisecond, 10 * time.Millisecond},
		{10 * time.Millisecond, 10 * time.Millisecond},
		{25 * time.Millisecond, 30 * time.Millisecond},
		{79 * time.Millisecond, 80 * time.Millisecond},
		{80 * time.Millisecond, 80 * time.Millisecond},
		{81 * time.Millisecond, 90 * time.Millisecond},
		{250 * time.Millisecond, 250 * time.Millisecond},
		{401 * time.Millisecond, 410 * time.Millisecond},
	}
	f := newFakeWheel(10*time.Millisecond, 8)
	fired := make([]time.Duration, len(tests))
	for i, tt := range tests {
		f.timer(func() { fired[i] = f.now.Sub(f.start) }).Reset(tt.delay)
	}
	for at := time.Duration(0); at <= 500*time.Millisecond; at += time.Millisecond {
		f.step(at)
	}
	for i, tt := range tests {
		if fired[i] != tt.fires {
			t.Errorf("Reset(%v) fired at %v, want %v", tt.delay, fired[i], tt.fires)
		}
	}
	if f.w.count != 0 {
		t.Errorf("%d timers left in the wheel, want 0", f.w.count)
	}
}

// TestWheelCatchUp serves a wheel after a stall of several revolutions: the timers
// due meanwhile fire in one go, in deadline order.
func TestWheelCatchUp(t *testing.T) {
	f := newFakeWheel(10*time.Millisecond, 8)
	var order []time.Duration
	delays := []time.Duration{250, 30, 170, 90, 80, 2000}
	for _, d := range delays {
		d *= time.Millisecond
		f.timer(func() { order = append(order, d) }).Reset(d)
	}
	f.step(time.Second)
	want := []time.Duration{30 * time.Millisecond, 80 * time.Millisecond, 90 * time.Millisecond,
		170 * time.Millisecond, 250 * time.Millisecond}
	if !slices.Equal(order, want) {
		t.Errorf("after a 1 s stall fired %v, want %v", order, want)
	}
	f.step(2 * time.Second)
	if len(order) != len(delays) {
		t.Errorf("after 2 s fired %v, want all %d", order, len(delays))
	}
}

func TestWheelStopAndResetWithinBatch(t *testing.T) {
	f := newFakeWheel(10*time.Millisecond, 8)
	var fired []string
	var b, c *Timer
	a := f.timer(func() {
		fired = append(fired, "a")
		b.Stop()                      // due in the same step: must not fire
		c.Reset(5 * time.Millisecond) // due in the same step: moved later
	})
	b = f.timer(func() { fired = append(fired, "b") })
	c = f.timer(func() { fired = append(fired, "c") })
	for _, tm := range []*Timer{a, b, c} {
		tm.Reset(10 * time.Millisecond)
	}
	f.step(10 * time.Millisecond)
	if want := []string{"a"}; !slices.Equal(fired, want) {
		t.Fatalf("at 10ms fired %v, want %v", fired, want)
	}
	f.step(20 * time.Millisecond)
	if want := []string{"a", "c"}; !slices.Equal(fired, want) {
		t.Errorf("at 20ms fired %v, want %v", fired, want)
	}
}

// TestWheelAfterIdle arms a timer on a wheel that had nothing to do for an hour: the
// ticks of that hour are skipped, and the timer fires on time.
func TestWheelAfterIdle(t *testing.T) {
	f := newFakeWheel(10*time.Millisecond, 8)
	f.step(0)
	f.now = f.start.Add(time.Hour) // no pass since: the poll had no timeout
	fired := false
	f.timer(func() { fired = true }).Reset(20 * time.Millisecond)
	if want := f.w.tickOf(f.now); f.w.cur != want {
		t.Errorf("after Reset on an idle wheel, cur = %d, want %d", f.w.cur, want)
	}
	f.step(time.Hour + 19*time.Millisecond)
	if fired {
		t.Fatal("fired 19 ms after being armed for 20 ms")
	}
	f.step(time.Hour + 20*time.Millisecond)
	if !fired {
		t.Fatal("did not fire 20 ms after being armed for 20 ms")
	}
}

func TestWheelNextUsed(t *testing.T) {
	f := newFakeWheel(time.Millisecond, 256) // four bitmap words
	if got := f.w.count; got != 0 {
		t.Fatalf("count = %d", got)
	}
	tm := f.timer(func() {})
	// The next used slot is visited even when its timer is a revolution away.
	for _, tt := range []struct{ at, next uint64 }{
		{1, 1}, {63, 63}, {64, 64}, {65, 65}, {200, 200}, {255, 255}, {256, 256}, {300, 44},
	} {
		tm.Reset(time.Duration(tt.at) * time.Millisecond)
		if got := f.w.nextUsed(f.w.cur + 1); got != tt.next {
			t.Errorf("timer at tick %d: nextUsed = %d, want %d", tt.at, got, tt.next)
		}
	}
	f.step(100 * time.Millisecond) // cur = 100, the timer (tick 300) is in slot 44
	if got := f.w.nextUsed(f.w.cur + 1); got != 300 {
		t.Errorf("after moving to tick 100, nextUsed = %d, want 300", got)
	}
	tm.Stop()
	if f.w.count != 0 || f.w.used[0]|f.w.used[1]|f.w.used[2]|f.w.used[3] != 0 {
		t.Errorf("after Stop: count %d, bitmap %x", f.w.count, f.w.used)
	}
}

// fired records, on the loop, which timers fired and when (by the loop's clock).
type fired struct {
	name string
	at   time.Time
}

// TestTimersOnLoop runs timers on a real loop: they fire in deadline order, never
// before their deadline, Stop prevents firing and Reset moves the deadline either way.
func TestTimersOnLoop(t *testing.T) {
	l := startLoop(t)
	var got []fired
	var base time.Time
	done := make(chan struct{})
	record := func(name string) func() {
		return func() { got = append(got, fired{name, l.Now()}) }
	}
	delays := map[string]time.Duration{
		"t50": 50 * time.Millisecond, "t10": 10 * time.Millisecond,
		"t30": 30 * time.Millisecond, "t20": 20 * time.Millisecond,
		"later": 80 * time.Millisecond, "earlier": 5 * time.Millisecond,
	}
	onLoop(t, l, func() {
		base = l.Now()
		for _, name := range []string{"t50", "t10", "t30", "t20"} {
			l.NewTimer(record(name)).Reset(delays[name])
		}
		stopped := l.NewTimer(record("stopped"))
		stopped.Reset(15 * time.Millisecond)
		stopped.Stop()
		later := l.NewTimer(record("later"))
		later.Reset(15 * time.Millisecond)
		later.Reset(delays["later"])
		earlier := l.NewTimer(record("earlier"))
		earlier.Reset(time.Hour)
		earlier.Reset(delays["earlier"])
		l.NewTimer(func() { close(done) }).Reset(100 * time.Millisecond)
	})
	select {
	case <-done:
	case <-time.After(hang):
		t.Fatal("timers did not fire")
	}
	onLoop(t, l, func() {
		var names []string
		for _, f := range got {
			names = append(names, f.name)
			if d := f.at.Sub(base); d < delays[f.name] {
				t.Errorf("%s fired %v after being armed, before its %v", f.name, d, delays[f.name])
			}
		}
		want := []string{"earlier", "t10", "t20", "t30", "t50", "later"}
		if !slices.Equal(names, want) {
			t.Errorf("fired %v, want %v", names, want)
		}
	})
}

// TestLongTimerOnLoop uses a wheel spanning 16 ms, so that timers of 40 and 100 ms wait
// for later revolutions; a timer re-armed from its own callback fires each time.
func TestLongTimerOnLoop(t *testing.T) {
	l, err := newLoop(time.Millisecond, 16)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run() }()
	defer func() {
		l.Close()
		<-done
	}()
	var got []fired
	var base time.Time
	finished := make(chan struct{})
	delays := map[string]time.Duration{
		"t5": 5 * time.Millisecond, "t16": 16 * time.Millisecond, "t17": 17 * time.Millisecond,
		"t40": 40 * time.Millisecond, "t100": 100 * time.Millisecond,
	}
	onLoop(t, l, func() {
		base = l.Now()
		for _, name := range []string{"t100", "t40", "t17", "t16", "t5"} {
			l.NewTimer(func() { got = append(got, fired{name, l.Now()}) }).Reset(delays[name])
		}
		var tick *Timer
		n := 0
		tick = l.NewTimer(func() {
			if n++; n < 3 {
				tick.Reset(30 * time.Millisecond)
				return
			}
			if d := l.Now().Sub(base); d < 90*time.Millisecond {
				t.Errorf("a 30 ms timer re-armed twice fired the third time %v after start", d)
			}
		})
		tick.Reset(30 * time.Millisecond)
		l.NewTimer(func() { close(finished) }).Reset(120 * time.Millisecond)
	})
	select {
	case <-finished:
	case <-time.After(hang):
		t.Fatal("timers did not fire")
	}
	onLoop(t, l, func() {
		var names []string
		for _, f := range got {
			names = append(names, f.name)
			if d := f.at.Sub(base); d < delays[f.name] {
				t.Errorf("%s fired %v after being armed, before its %v", f.name, d, delays[f.name])
			}
		}
		if want := []string{"t5", "t16", "t17", "t40", "t100"}; !slices.Equal(names, want) {
			t.Errorf("fired %v, want %v", names, want)
		}
	})
}
