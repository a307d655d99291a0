package shm

import (
	"path/filepath"
	"testing"
	"unsafe"
)

func TestLayout(t *testing.T) {
	var h header
	var p Pool
	var b Backend
	sizes := []struct {
		name      string
		got, want uintptr
	}{
		{"header", unsafe.Sizeof(h), headerSize},
		{"Pool", unsafe.Sizeof(p), poolSize},
		{"Backend", unsafe.Sizeof(b), SlotSize},
	}
	for _, s := range sizes {
		if s.got != s.want {
			t.Errorf("Sizeof(%s) = %d, want %d", s.name, s.got, s.want)
		}
	}
	// The offsets are the file format: a change here needs a new Version.
	offsets := []struct {
		name      string
		got, want uintptr
	}{
		{"header.magic", unsafe.Offsetof(h.magic), 0},
		{"header.version", unsafe.Offsetof(h.version), 8},
		{"header.slots", unsafe.Offsetof(h.slots), 16},
		{"header.slotSize", unsafe.Offsetof(h.slotSize), 24},
		{"header.generation", unsafe.Offsetof(h.generation), 32},
		{"Pool.busy", unsafe.Offsetof(p.busy), 0},
		{"Pool.queueLength", unsafe.Offsetof(p.queueLength), 8},
		{"Pool.workers", unsafe.Offsetof(p.workers), 16},
		{"Pool.admitted", unsafe.Offsetof(p.admitted), 24},
		{"Pool.shedFull", unsafe.Offsetof(p.shedFull), 32},
		{"Pool.shedTimeout", unsafe.Offsetof(p.shedTimeout), 40},
		{"Backend.inflight", unsafe.Offsetof(b.inflight), 0},
		{"Backend.requests", unsafe.Offsetof(b.requests), 8},
		{"Backend.failures", unsafe.Offsetof(b.failures), 16},
		{"Backend.state", unsafe.Offsetof(b.state), 24},
		{"Backend.queueLength", unsafe.Offsetof(b.queueLength), 32},
		{"Backend.latencyNs", unsafe.Offsetof(b.latencyNs), 40},
		{"Backend.errorPPM", unsafe.Offsetof(b.errorPPM), 48},
		{"Backend.failsInRow", unsafe.Offsetof(b.failsInRow), 56},
		{"Backend.epoch", unsafe.Offsetof(b.epoch), 64},
		{"Backend.stale", unsafe.Offsetof(b.stale), 72},
		{"Backend.ejections", unsafe.Offsetof(b.ejections), 80},
		{"Pool.peak", unsafe.Offsetof(p.peak), 48},
	}
	for _, o := range offsets {
		if o.got != o.want {
			t.Errorf("Offsetof(%s) = %d, want %d", o.name, o.got, o.want)
		}
	}
	if got, want := size(3), 384+3*128+4*AreaSize+Ledgers*256; got != want {
		t.Errorf("size(3) = %d, want %d", got, want)
	}
}

// TestAlignment checks where the words of a real segment land: every part on a
// 128-byte boundary, so every word is 8-aligned for sync/atomic.
func TestAlignment(t *testing.T) {
	seg, err := Create(filepath.Join(t.TempDir(), "shm"), 5)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	base := uintptr(unsafe.Pointer(seg.hdr))
	check := func(name string, p unsafe.Pointer, off uintptr) {
		t.Helper()
		addr := uintptr(p)
		if addr%lineSize != 0 {
			t.Errorf("%s at %#x, not on a %d-byte boundary", name, addr, lineSize)
		}
		if addr-base != off {
			t.Errorf("%s at offset %d, want %d", name, addr-base, off)
		}
	}
	check("header", unsafe.Pointer(seg.hdr), 0)
	check("pool", unsafe.Pointer(seg.Pool()), poolOffset)
	check("strategy", unsafe.Pointer(seg.Strategy()), strategyOffset)
	for i := range seg.Slots() {
		check("slot", unsafe.Pointer(seg.Backend(i)), uintptr(slotOffset+i*SlotSize))
		if a := uintptr(unsafe.Pointer(seg.Backend(i).Inflight())); a%8 != 0 {
			t.Errorf("slot %d in-flight word at %#x, not 8-aligned", i, a)
		}
	}
	for i := range seg.Slots() + 1 {
		check("area", seg.Area(i), uintptr(slotOffset+seg.Slots()*SlotSize+i*AreaSize))
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{
		StateFree: "free", StateUp: "up", StateDown: "down",
		StateEjected: "ejected", StateDrain: "drain", 99: "unknown",
	} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", uint64(s), got, want)
		}
	}
}
