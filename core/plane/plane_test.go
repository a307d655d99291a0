//go:build linux || darwin || freebsd || netbsd || openbsd

package plane

import (
	"net"
	"path/filepath"
	"slices"
	"testing"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/plane/wire"
	"github.com/switchyard-lb/switchyard/core/shm"
)

func TestSlotsAssignReportsMoves(t *testing.T) {
	seg, err := shm.Create(filepath.Join(t.TempDir(), "shared.shm"), 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = seg.Close() })
	s := &slots{seg: seg, ledger: seg.Ledger(0), bykey: map[string]*backend.Slot{}}
	a, b := wire.Backend{Key: "a", Slot: 1, Epoch: 1}, wire.Backend{Key: "b", Slot: 2, Epoch: 1}
	for _, tt := range []struct {
		name  string
		list  []wire.Backend
		moved []string
	}{
		{"first assignment", []wire.Backend{a, b}, nil},
		{"the same again", []wire.Backend{a, b}, nil},
		{"b's slot given anew", []wire.Backend{a, {Key: "b", Slot: 2, Epoch: 2}}, []string{"b"}},
		{"a in another slot", []wire.Backend{{Key: "a", Slot: 3, Epoch: 1}, {Key: "b", Slot: 2, Epoch: 2}}, []string{"a"}},
		{"a without a slot", []wire.Backend{{Key: "a", Slot: -1}, {Key: "b", Slot: 2, Epoch: 2}}, []string{"a"}},
		{"a gone", []wire.Backend{{Key: "b", Slot: 2, Epoch: 2}}, nil},
	} {
		var moved []string
		for k := range s.assign(tt.list) {
			moved = append(moved, k)
		}
		slices.Sort(moved)
		if !slices.Equal(moved, tt.moved) {
			t.Errorf("%s: assign moved %v, want %v", tt.name, moved, tt.moved)
		}
		for _, w := range tt.list {
			got := s.Slot(w.Key)
			if w.Slot < 0 {
				if got != nil {
					t.Errorf("%s: Slot(%s) = %d, want none", tt.name, w.Key, got.Index)
				}
				continue
			}
			if got == nil || got.Index != w.Slot || got.Epoch != w.Epoch {
				t.Errorf("%s: Slot(%s) = %+v, want slot %d epoch %d", tt.name, w.Key, got, w.Slot, w.Epoch)
			}
		}
	}
	if got := s.Slot("a"); got != nil {
		t.Errorf("Slot(a) after a left = %+v, want nil", got)
	}
}

func TestOutcomesReport(t *testing.T) {
	near, far := net.Pipe()
	t.Cleanup(func() { near.Close(); far.Close() })
	o := newOutcomes(wire.NewConn(near), 3, 2)
	for i, tt := range []struct {
		key, err string
		told     bool
		want     bool
	}{
		{"a", "refused", false, true},  // first failure of a
		{"a", "refused", false, false}, // the same text again, at once
		{"a", "reset", false, false},   // another text, but within reportChanged
		{"a", "reset", true, true},     // an ejection is always told
		{"b", "refused", false, true},  // another backend
		{"c", "refused", false, true},  // a third key: the record starts over
		{"a", "reset", false, true},    // forgotten with the rest
	} {
		if got := o.report(tt.key, tt.err, tt.told); got != tt.want {
			t.Errorf("%d: report(%s, %q, %v) = %v, want %v", i, tt.key, tt.err, tt.told, got, tt.want)
		}
	}
}
