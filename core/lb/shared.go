package lb

import (
	"fmt"
	"path/filepath"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/shm"
)

// sharedSlots is the number of backend slots of the shared memory segment. Slots are
// mapped lazily: an unused one costs address space, not memory.
const sharedSlots = 4096

// shared is the load balancer's shared memory segment, where the backends' figures
// and the pool's live, so that the data-plane processes count into the same words
// (least-connections reads one in-flight count per backend, whichever process
// serves the request) and the control plane reads them for status and metrics
// without asking anyone.
type shared struct {
	seg   *shm.Segment
	alloc *shm.Allocator
	log   hclog.Logger

	mu      sync.Mutex
	bykey   map[string]*slotRef
	ledgers [shm.Ledgers]bool // in use by a data-plane process
}

// slotRef is a backend's slot and how many Backend values of the control plane use
// it (a backend removed and added again before its drain ends has two).
type slotRef struct {
	slot backend.Slot
	refs int
}

// newShared creates the segment in the runtime directory dir.
func newShared(dir string, log hclog.Logger) (*shared, error) {
	seg, err := shm.Create(filepath.Join(dir, "shared.shm"), sharedSlots)
	if err != nil {
		return nil, err
	}
	return &shared{seg: seg, alloc: shm.NewAllocator(seg), log: log, bykey: map[string]*slotRef{}}, nil
}

// Slot gives the backend with key its slot (backend.Slots).
func (s *shared) Slot(key string) *backend.Slot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.bykey[key]; r != nil {
		r.refs++
		return &r.slot
	}
	i, epoch, ok := s.alloc.Alloc()
	if !ok {
		s.log.Warn("no shared memory slot left for the backend: its figures stay in the control plane's memory, and data-plane processes count it apart",
			"backend", key, "slots", sharedSlots)
		return nil
	}
	s.seg.Backend(i).SetState(shm.StateUp)
	r := &slotRef{slot: backend.Slot{Index: i, Epoch: epoch, Words: s.seg.Backend(i), Area: s.seg.Area(i)}, refs: 1}
	s.bykey[key] = r
	return &r.slot
}

// release gives back the slot of a backend that left the set, once no Backend of
// the control plane uses it and it has no request in flight.
func (s *shared) release(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.bykey[key]
	if r == nil {
		return
	}
	if r.refs--; r.refs > 0 {
		return
	}
	if n := r.slot.Words.Inflight().Load(); n != 0 {
		// Requests that outlived the drain would count into the slot's next
		// backend: the slot stays taken.
		s.log.Warn("backend removed with requests still in flight after the drain; its shared memory slot is kept",
			"backend", key, "inflight", n)
		r.refs = 1
		return
	}
	delete(s.bykey, key)
	if err := s.alloc.Free(r.slot.Index); err != nil {
		s.log.Error("freeing a shared memory slot", "backend", key, "error", err)
	}
}

// slotOf returns the slot index and epoch of the backend with key, -1 when it has none.
func (s *shared) slotOf(key string) (int, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.bykey[key]; r != nil {
		return r.slot.Index, r.slot.Epoch
	}
	return -1, 0
}

// own is where the load balancer's own answers (made without a backend) are counted.
func (s *shared) own() *backend.Answers { return (*backend.Answers)(s.seg.Area(s.seg.Slots())) }

// takeLedger gives a data-plane process a ledger of its own (see shm.Ledger).
func (s *shared) takeLedger() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, used := range s.ledgers {
		if !used {
			s.ledgers[i] = true
			return i, nil
		}
	}
	return -1, fmt.Errorf("all %d ledgers of the shared memory segment are in use: too many data-plane processes at once", shm.Ledgers)
}

// settle gives back what the data-plane process with ledger i held when it exited,
// and frees the ledger.
func (s *shared) settle(i int) (inflight, busy int64) {
	inflight, busy = s.seg.Settle(i)
	s.mu.Lock()
	s.ledgers[i] = false
	s.mu.Unlock()
	return inflight, busy
}
