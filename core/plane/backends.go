//go:build linux || darwin || freebsd || netbsd || openbsd

package plane

import (
	"sync"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/plane/wire"
	"github.com/switchyard-lb/switchyard/core/shm"
)

// applyBackends makes each pool's backend set match the control plane's.
func (d *process) applyBackends(list []wire.Backend) {
	moved := d.slots.assign(list)
	byPool := map[string][]wire.Backend{}
	for _, b := range list {
		byPool[b.Pool] = append(byPool[b.Pool], b)
	}
	for name, pp := range d.pools {
		applySet(pp.set, byPool[name], moved)
	}
}

// applySet makes set list exactly list, moved naming (by slot key) the backends the
// control plane gave another slot.
func applySet(set *backend.Set, list []wire.Backend, moved map[string]bool) {
	cbs := make([]config.Backend, 0, len(list))
	candidate := make(map[string]bool, len(list))
	again := false
	for _, b := range list {
		if !moved[backend.SlotKey(b.Pool, b.Key)] {
			cbs = append(cbs, config.Backend{URL: b.URL, Weight: b.Weight, Priority: b.Priority, Source: b.Source})
		} else {
			again = true
		}
		candidate[b.Key] = b.Candidate
	}
	if again {
		// A backend the control plane gave another slot (removed, its slot freed,
		// and added again) starts over here too, counting into its new slot.
		set.Update(cbs)
		cbs = cbs[:0]
		for _, b := range list {
			cbs = append(cbs, config.Backend{URL: b.URL, Weight: b.Weight, Priority: b.Priority, Source: b.Source})
		}
	}
	set.Update(cbs)
	for _, b := range set.Snapshot().All {
		b.Mirror(candidate[b.Key]) // what the slot says wins at the next refresh
	}
	set.Rebuild()
	set.Refresh()
}

// slots places a data-plane process's backends in the slots the control plane
// assigned.
type slots struct {
	seg    *shm.Segment
	ledger *shm.Ledger
	mu     sync.Mutex
	bykey  map[string]*backend.Slot
}

// assign records the control plane's slots, and returns the backends whose slot
// changed since the previous assignment.
func (s *slots) assign(list []wire.Backend) (moved map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.bykey
	s.bykey = make(map[string]*backend.Slot, len(list))
	for _, b := range list {
		key := backend.SlotKey(b.Pool, b.Key)
		var slot *backend.Slot
		if b.Slot >= 0 && b.Slot < s.seg.Slots() {
			slot = &backend.Slot{Index: b.Slot, Epoch: b.Epoch, Words: s.seg.Backend(b.Slot), Area: s.seg.Area(b.Slot),
				Mine: s.ledger.Inflight(b.Slot)}
			s.bykey[key] = slot
		}
		if old, ok := prev[key]; ok && (slot == nil || old.Index != slot.Index || old.Epoch != slot.Epoch) {
			if moved == nil {
				moved = map[string]bool{}
			}
			moved[key] = true
		}
	}
	return moved
}

// Slot returns the slot the control plane assigned to the backend with key (its slot
// key, see backend.SlotKey).
func (s *slots) Slot(key string) *backend.Slot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bykey[key]
}

// Interface guards
var _ backend.Slots = (*slots)(nil)
