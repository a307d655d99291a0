//go:build linux || darwin || freebsd || netbsd || openbsd

package evloop

import (
	"math/bits"
	"time"
)

// Timer calls a function on the loop's goroutine once a delay has passed. It is made
// by Loop.NewTimer and may be armed, stopped and re-armed any number of times without
// allocating. Its methods must be called on the loop's goroutine.
//
// A timer fires in the first pass whose Now is at least its delay after the Now of the
// pass that armed it, never earlier; it may fire up to the wheel's resolution (10 ms)
// later, more when the loop is busy. Timers due in the same pass fire in the order of
// their deadlines rounded up to the resolution, and in the order they were armed
// within one such step.
type Timer struct {
	w          *wheel
	f          func()
	at         uint64 // deadline in ticks since the wheel's start
	slot       int32  // index in the wheel while pending, else idle or firing
	prev, next *Timer // neighbours in the slot's list
}

const (
	idle   int32 = -1 // not armed
	firing int32 = -2 // taken out of its slot, about to fire in this pass
)

// maxDelay caps delays so that deadlines cannot overflow (about 146 years).
const maxDelay = time.Duration(1 << 62)

// NewTimer returns a timer that calls f when it fires. It is not armed: call Reset.
func (l *Loop) NewTimer(f func()) *Timer {
	return &Timer{w: &l.wheel, f: f, slot: idle}
}

// Reset arms the timer to fire after d, measured from the loop's Now, replacing any
// earlier deadline. With d <= 0 it fires at the next step of the wheel.
func (t *Timer) Reset(d time.Duration) {
	w := t.w
	if t.slot >= 0 {
		w.unlink(t)
	}
	if w.count == 0 {
		// Nothing is pending, so the ticks since the last pass need no serving: skip
		// them, or the next pass would walk them all after a long idle spell.
		w.cur = max(w.cur, w.tickOf(*w.now))
	}
	d = min(d, maxDelay)
	var at uint64
	if since := w.now.Sub(w.start) + d; since > 0 {
		at = uint64((since + w.tick - 1) / w.tick) // rounded up: never early
	}
	w.link(t, max(at, w.cur+1))
}

// Stop disarms the timer: it does not fire until Reset again. Stopping a timer that is
// not armed does nothing.
func (t *Timer) Stop() {
	if t.slot >= 0 {
		t.w.unlink(t)
	}
	t.slot = idle
}

// wheel is a hashed timing wheel (Varghese and Lauck, "Hashed and Hierarchical Timing
// Wheels", 1987, scheme 6): a ring of slots, one per tick, each holding the timers
// whose deadline falls on it modulo the ring's size. A timer further away than one
// revolution stays in its slot and is passed over until the revolution of its
// deadline. Arming and stopping are O(1); a bitmap of non-empty slots finds the next
// slot to visit without walking empty ones.
type wheel struct {
	start time.Time     // tick 0
	now   *time.Time    // the loop's Now
	tick  time.Duration // resolution
	mask  uint64        // slots - 1
	cur   uint64        // the last tick served
	count int           // timers in slots
	slots []timerList
	used  []uint64 // bit i set: slots[i] is not empty
	due   []*Timer // scratch for the timers of the slot being served
}

type timerList struct{ head, tail *Timer }

// init sizes the wheel; slots must be a power of two.
func (w *wheel) init(now *time.Time, tick time.Duration, slots int) {
	if slots <= 0 || slots&(slots-1) != 0 {
		panic("evloop: wheel size must be a power of two")
	}
	*w = wheel{
		start: *now,
		now:   now,
		tick:  tick,
		mask:  uint64(slots - 1),
		slots: make([]timerList, slots),
		used:  make([]uint64, (slots+63)/64),
	}
}

// link appends t to the slot of tick at.
func (w *wheel) link(t *Timer, at uint64) {
	i := at & w.mask
	s := &w.slots[i]
	t.at, t.slot, t.prev, t.next = at, int32(i), s.tail, nil
	if s.tail != nil {
		s.tail.next = t
	} else {
		s.head = t
		w.used[i>>6] |= 1 << (i & 63)
	}
	s.tail = t
	w.count++
}

// unlink takes t out of its slot; t.slot is left for the caller to set.
func (w *wheel) unlink(t *Timer) {
	i := uint64(t.slot)
	s := &w.slots[i]
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		s.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else {
		s.tail = t.prev
	}
	t.prev, t.next = nil, nil
	if s.head == nil {
		w.used[i>>6] &^= 1 << (i & 63)
	}
	w.count--
}

// nextUsed returns the first tick at or after from whose slot holds timers. The wheel
// must not be empty.
func (w *wheel) nextUsed(from uint64) uint64 {
	s := int(from & w.mask)
	i := s >> 6
	found := -1
	if b := w.used[i] >> (s & 63); b != 0 {
		found = s + bits.TrailingZeros64(b)
	} else {
		// The words after i, then from the start round to i (whose bits below s
		// are the only ones left).
		for k := 1; k <= len(w.used); k++ {
			j := (i + k) % len(w.used)
			if b := w.used[j]; b != 0 {
				found = j<<6 + bits.TrailingZeros64(b)
				break
			}
		}
	}
	return from + uint64(found-s)&w.mask
}

// untilNext returns how long from now until the next slot holding timers is due. The
// wheel must not be empty.
func (w *wheel) untilNext(now time.Time) time.Duration {
	next := w.nextUsed(w.cur + 1)
	return max(w.start.Add(time.Duration(next)*w.tick).Sub(now), 0)
}

// tickOf returns the tick that t falls in.
func (w *wheel) tickOf(t time.Time) uint64 {
	return uint64(t.Sub(w.start) / w.tick)
}

// advance serves every tick up to now, in order, firing the timers that are due.
// Timers armed by those that fire are served in the same call if they are due too.
func (w *wheel) advance(now time.Time) {
	end := w.tickOf(now)
	for w.count > 0 && w.cur < end {
		next := w.nextUsed(w.cur + 1)
		if next > end {
			break
		}
		w.cur = next
		w.fire(next)
	}
	w.cur = max(w.cur, end)
}

// fire runs the timers of tick t's slot that are due at t, in the order they were
// armed. A timer stopped or re-armed by an earlier one in the same batch does not fire.
func (w *wheel) fire(t uint64) {
	for tm := w.slots[t&w.mask].head; tm != nil; {
		next := tm.next
		if tm.at <= t {
			w.unlink(tm)
			tm.slot = firing
			w.due = append(w.due, tm)
		}
		tm = next
	}
	for i, tm := range w.due {
		w.due[i] = nil
		if tm.slot == firing {
			tm.slot = idle
			tm.f()
		}
	}
	w.due = w.due[:0]
}
