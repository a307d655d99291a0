package shm

import (
	"strings"
	"testing"
)

func TestAllocator(t *testing.T) {
	seg, _ := newSegment(t, 3)
	a := NewAllocator(seg)
	if got := a.Available(); got != 3 {
		t.Fatalf("Available() = %d, want 3", got)
	}
	var slots []int
	for range 3 {
		i, epoch, ok := a.Alloc()
		if !ok {
			t.Fatalf("Alloc() with free slots: not ok")
		}
		if epoch != 1 {
			t.Errorf("Alloc() of a new slot %d: epoch %d, want 1", i, epoch)
		}
		if got := seg.Backend(i).State(); got != StateDown {
			t.Errorf("allocated slot %d: State() = %v, want down", i, got)
		}
		slots = append(slots, i)
	}
	if want := []int{0, 1, 2}; !equal(slots, want) {
		t.Errorf("Alloc() order = %v, want %v", slots, want)
	}
	if i, _, ok := a.Alloc(); ok {
		t.Fatalf("Alloc() with no free slot = %d, want not ok", i)
	}

	// A slot comes back reset, and freed slots are reused in the order they were freed.
	seg.Backend(1).Requests().Add(5)
	seg.Backend(1).SetState(StateUp)
	for _, i := range []int{1, 0} {
		if err := a.Free(i); err != nil {
			t.Fatalf("Free(%d): %v", i, err)
		}
		if got := seg.Backend(i).State(); got != StateFree {
			t.Errorf("freed slot %d: State() = %v, want free", i, got)
		}
	}
	if got := a.Available(); got != 2 {
		t.Errorf("Available() after two Frees = %d, want 2", got)
	}
	i, epoch, ok := a.Alloc()
	if !ok || i != 1 || epoch != 2 {
		t.Errorf("Alloc() = %d, %d, %v, want slot 1 (freed first), epoch 2, ok", i, epoch, ok)
	}
	if got := seg.Backend(1).Requests().Load(); got != 0 {
		t.Errorf("reallocated slot Requests = %d, want 0", got)
	}

	for _, tt := range []struct {
		slot int
		want string
	}{
		{0, "already free"},
		{-1, "out of range"},
		{3, "out of range"},
	} {
		if err := a.Free(tt.slot); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Free(%d) = %v, want %q", tt.slot, err, tt.want)
		}
	}
	if got := a.Available(); got != 1 {
		t.Errorf("Available() after refused Frees = %d, want 1", got)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
