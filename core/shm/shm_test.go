package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// newSegment makes a segment of n slots in a temporary directory and closes it at the
// end of the test.
func newSegment(t testing.TB, n int) (*Segment, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shm")
	seg, err := Create(path, n)
	if err != nil {
		t.Fatalf("Create(%q, %d): %v", path, n, err)
	}
	t.Cleanup(func() { seg.Close() })
	return seg, path
}

func TestCreateOpen(t *testing.T) {
	seg, path := newSegment(t, 4)
	if got := seg.Slots(); got != 4 {
		t.Errorf("Slots() = %d, want 4", got)
	}
	for i := range seg.Slots() {
		if got := seg.Backend(i).State(); got != StateFree {
			t.Errorf("new slot %d: State() = %v, want free", i, got)
		}
	}
	seg.Backend(3).Inflight().Add(7)
	seg.Pool().Busy().Add(2)
	seg.Generation().Store(5)

	other, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%q): %v", path, err)
	}
	defer other.Close()
	if got := other.Slots(); got != 4 {
		t.Errorf("opened Slots() = %d, want 4", got)
	}
	if got := other.Backend(3).Inflight().Load(); got != 7 {
		t.Errorf("opened slot 3 Inflight = %d, want 7", got)
	}
	if got := other.Pool().Busy().Load(); got != 2 {
		t.Errorf("opened Pool Busy = %d, want 2", got)
	}
	if got := other.Generation().Load(); got != 5 {
		t.Errorf("opened Generation = %d, want 5", got)
	}
	other.Backend(0).Requests().Add(9)
	if got := seg.Backend(0).Requests().Load(); got != 9 {
		t.Errorf("Requests written through Open, read through Create = %d, want 9", got)
	}
}

func TestCreateSlots(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{0, -1, MaxSlots + 1} {
		seg, err := Create(filepath.Join(dir, "shm"), n)
		if err == nil {
			seg.Close()
			t.Errorf("Create(%d slots) succeeded, want an error", n)
		} else if !strings.Contains(err.Error(), "want 1 to") {
			t.Errorf("Create(%d slots) = %v, want it to name the range", n, err)
		}
	}
}

func TestCreateFile(t *testing.T) {
	if !Shared {
		t.Skip("no file: segments live in process memory here")
	}
	seg, path := newSegment(t, 2)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode = %v, want 0600", got)
	}
	if got, want := fi.Size(), int64(size(2)); got != want {
		t.Errorf("size = %d, want %d", got, want)
	}
	if err := seg.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after the creator's Close, Stat = %v, want not exist", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 0 {
		t.Errorf("directory holds %d files after Close, want none", len(entries))
	}
}

// TestCreateReplace checks that a new Create leaves the processes on the old segment
// undisturbed, and that the old creator's Close leaves the new file.
func TestCreateReplace(t *testing.T) {
	oldSeg, path := newSegment(t, 2)
	opened, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer opened.Close()
	opened.Backend(1).Requests().Add(3)

	newSeg, err := Create(path, 3)
	if err != nil {
		t.Fatalf("Create over an existing segment: %v", err)
	}
	defer newSeg.Close()
	opened.Backend(1).Requests().Add(1)
	if got := oldSeg.Backend(1).Requests().Load(); got != 4 {
		t.Errorf("old segment Requests = %d, want 4", got)
	}
	if got := newSeg.Backend(1).Requests().Load(); got != 0 {
		t.Errorf("new segment Requests = %d, want 0", got)
	}
	if err := oldSeg.Close(); err != nil {
		t.Fatalf("old Close: %v", err)
	}
	again, err := Open(path)
	if err != nil {
		t.Fatalf("Open after the old creator's Close: %v", err)
	}
	defer again.Close()
	if got := again.Slots(); got != 3 {
		t.Errorf("Open after replacement: Slots() = %d, want 3", got)
	}
}

func TestCloseTwice(t *testing.T) {
	seg, _ := newSegment(t, 1)
	if err := seg.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := seg.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close = %v, want os.ErrClosed", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	if !Shared {
		t.Skip("Open reads no file here")
	}
	word := func(off int, v uint64) func([]byte) []byte {
		return func(b []byte) []byte { binary.NativeEndian.PutUint64(b[off:], v); return b }
	}
	tests := []struct {
		name    string
		edit    func([]byte) []byte
		wantErr error
		want    string
	}{
		{"empty", func([]byte) []byte { return nil }, ErrFormat, "file is 0 bytes, shorter than a segment's header"},
		{"short", func(b []byte) []byte { return b[:100] }, ErrFormat, "file is 100 bytes, shorter"},
		{"truncated", func(b []byte) []byte { return b[:len(b)-8] }, ErrFormat, "file is 148728 bytes, a segment of 3 slots is 148736 (truncated"},
		{"longer", func(b []byte) []byte { return append(b, 0) }, ErrFormat, "file is 148737 bytes, a segment of 3 slots is 148736"},
		{"magic", word(0, 0x1234), ErrFormat, "magic number 0x1234, want 0x6d68732d64797773"},
		{"no magic", word(0, 0), ErrFormat, "magic number 0x0"},
		{"version", word(8, Version+1), ErrVersion, fmt.Sprintf("the file has version %d, this build uses %d", Version+1, Version)},
		{"slot size", word(24, 64), ErrFormat, "slots of 64 bytes, want 128"},
		{"no slots", word(16, 0), ErrFormat, "0 slots, want 1 to 65536"},
		{"slots", word(16, 2), ErrFormat, "file is 148736 bytes, a segment of 2 slots is 144384"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seg, path := newSegment(t, 3)
			good, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := seg.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tt.edit(good), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := Open(path)
			if err == nil {
				got.Close()
				t.Fatalf("Open(%s file) succeeded, want an error", tt.name)
			}
			t.Logf("Open(%s file): %v", tt.name, err)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Open(%s file) = %v, want it to wrap %v", tt.name, err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "shm: open "+path+": ") {
				t.Errorf("Open(%s file) = %q, want \"shm: open %s: ...%s...\"", tt.name, err, path, tt.want)
			}
		})
	}
}

func TestOpenNotFile(t *testing.T) {
	if !Shared {
		t.Skip("Open reads no file here")
	}
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want not exist", err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(sub); err == nil {
		t.Errorf("Open(directory) succeeded, want an error")
	}
}

func TestOpenUnshared(t *testing.T) {
	if Shared {
		t.Skip("segments are shared between processes here")
	}
	_, err := Open(filepath.Join(t.TempDir(), "shm"))
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Open(unknown path) = %v, want errors.ErrUnsupported", err)
	}
}

func TestReset(t *testing.T) {
	seg, _ := newSegment(t, 1)
	b := seg.Backend(0)
	b.Inflight().Add(2)
	b.Requests().Add(3)
	b.Failures().Add(4)
	b.QueueLength().Store(5)
	b.LatencyNanos().Store(6)
	b.ErrorRatePPM().Store(7)
	b.SetState(StateUp)
	if got := b.Reset(); got != 1 {
		t.Errorf("first Reset() = %d, want epoch 1", got)
	}
	if got := b.Reset(); got != 2 || b.Epoch() != 2 {
		t.Errorf("second Reset() = %d, Epoch() = %d, want 2", got, b.Epoch())
	}
	if b.Inflight().Load() != 0 || b.Requests().Load() != 0 || b.Failures().Load() != 0 ||
		b.LatencyNanos().Load() != 0 || b.ErrorRatePPM().Load() != 0 {
		t.Errorf("after Reset, counters are not zero")
	}
	if got := b.QueueLength().Load(); got != -1 {
		t.Errorf("after Reset, QueueLength = %d, want -1", got)
	}
	if got := b.State(); got != StateDown {
		t.Errorf("after Reset, State() = %v, want down", got)
	}
	if b.CompareAndSwapState(StateUp, StateDrain) {
		t.Errorf("CompareAndSwapState(up, drain) on a down slot succeeded")
	}
	if !b.CompareAndSwapState(StateDown, StateUp) || b.State() != StateUp {
		t.Errorf("CompareAndSwapState(down, up) on a down slot failed")
	}
}

// TestSettleGivesBackWhatADeadProcessHeld: a process's ledger mirrors what it added
// to the totals, and Settle takes exactly that off them.
func TestSettleGivesBackWhatADeadProcessHeld(t *testing.T) {
	seg, err := Create(filepath.Join(t.TempDir(), "shm"), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	add := func(ledger, slot int, n int64) {
		seg.Backend(slot).Inflight().Add(n)
		seg.Ledger(ledger).Inflight(slot).Add(n)
	}
	add(0, 1, 2)
	add(1, 1, 3)
	add(1, 2, 1)
	seg.Pool().Busy().Add(4)
	seg.Ledger(1).Busy().Add(4)
	seg.Pool().QueueLength().Add(2)
	seg.Ledger(1).Queued().Add(2)
	inflight, busy := seg.Settle(1)
	if inflight != 4 || busy != 4 {
		t.Errorf("Settle(1) = %d in flight, %d busy; want 4 and 4", inflight, busy)
	}
	if got := seg.Backend(1).Inflight().Load(); got != 2 {
		t.Errorf("slot 1 in flight after settling ledger 1 = %d, want ledger 0's 2", got)
	}
	if got := seg.Backend(2).Inflight().Load(); got != 0 {
		t.Errorf("slot 2 in flight = %d, want 0", got)
	}
	if b, q := seg.Pool().Busy().Load(), seg.Pool().QueueLength().Load(); b != 0 || q != 0 {
		t.Errorf("pool busy %d, queued %d after settling; want 0 and 0", b, q)
	}
	if again, _ := seg.Settle(1); again != 0 {
		t.Errorf("a second Settle gave back %d, want 0", again)
	}
}
