package shm

import (
	"fmt"
	"sync"
	"unsafe"
)

// Allocator hands out the slots of a segment to backends. It belongs to the control
// plane and lives in its memory, not in the segment.
//
// A slot is reassigned in this order: Alloc resets it and returns its index and
// epoch; the control plane sends (index, epoch, backend URL) to every process; when
// the backend leaves, the control plane sends an assignment without it, and calls
// Free only once every process has applied that and the slot's in-flight count has
// fallen to zero, so no late update from the old backend lands on the next one.
// Freed slots are reused in the order they were freed, which keeps a slot idle as
// long as possible before its next owner.
//
// An Allocator is safe for use by multiple goroutines.
type Allocator struct {
	seg  *Segment
	mu   sync.Mutex
	free []int  // FIFO of free slots
	used []bool // by slot
}

// NewAllocator returns an Allocator of the slots of seg, all free. It assumes that no
// slot of seg is in use.
func NewAllocator(seg *Segment) *Allocator {
	a := &Allocator{seg: seg, free: make([]int, seg.Slots()), used: make([]bool, seg.Slots())}
	for i := range a.free {
		a.free[i] = i
	}
	return a
}

// Alloc takes a free slot, resets it (see Backend.Reset) and zeroes its area, and returns its index and
// new epoch. ok is false when every slot is in use.
func (a *Allocator) Alloc() (slot int, epoch uint64, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.free) == 0 {
		return -1, 0, false
	}
	slot = a.free[0]
	a.free = a.free[1:]
	a.used[slot] = true
	clear(unsafe.Slice((*byte)(a.seg.Area(slot)), AreaSize)) // nobody uses a free slot's area
	return slot, a.seg.Backend(slot).Reset(), true
}

// Free gives slot back and marks it StateFree. It refuses, changing nothing, a slot
// that is out of range or already free.
func (a *Allocator) Free(slot int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if slot < 0 || slot >= len(a.used) {
		return fmt.Errorf("shm: free slot %d: out of range [0, %d)", slot, len(a.used))
	}
	if !a.used[slot] {
		return fmt.Errorf("shm: free slot %d: already free", slot)
	}
	a.used[slot] = false
	a.seg.Backend(slot).SetState(StateFree)
	a.free = append(a.free, slot)
	return nil
}

// Available returns the number of free slots.
func (a *Allocator) Available() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.free)
}
