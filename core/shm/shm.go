// Package shm provides the shared memory segment through which the processes of one
// load balancer share the figures that must be exact across them: each backend's
// in-flight requests, requests, failures and state, and the worker pool's busy
// workers and queue length.
//
// The control plane creates the segment, a file in the run directory, with Create;
// each data-plane process maps the same file with Open. Every figure is an aligned
// 64-bit word used with sync/atomic, so an update made by any process is seen at once
// by all the others, with no lock and no message.
//
// # Layout
//
// All words are 8 bytes in the machine's byte order; each part starts on a 128-byte
// boundary.
//
//	offset       part     words
//	0            header   magic, version, slots, slot size, generation, ledgers
//	                      handed out, 10 reserved
//	128          pool     busy, queue length, workers, admitted, shed (queue full),
//	                      shed (queue timeout), peak, tickets, 8 reserved
//	256          strategy fallbacks, timeouts, bad answers, 13 reserved
//	384 + 128*i  slot i   in-flight, requests, failures, state, queue length,
//	                      latency (ns), error rate (ppm), failures in a row;
//	                      epoch, stale connections, ejections, 5 reserved
//	384 + 128*n  areas    AreaSize bytes per slot, then one more (see Area)
//	then         ledgers  Ledgers of them: busy, queued, head, seen, 12 reserved; a word per
//	                      slot, rounded up to 128 bytes (see Ledger)
//
// # Slots
//
// Which backend owns which slot is the control plane's decision: it takes slots from
// an Allocator, resets them, and sends the assignment (slot, epoch, backend URL) to
// the data-plane processes with the rest of their configuration.
//
// # Systems
//
// Where Shared is false (Windows and the other systems that are not Unix, and the
// architectures whose 64-bit atomics Go emulates with a lock inside each process:
// 32-bit ARM before ARMv7, 32-bit MIPS), a segment lives in the memory of the
// process that created it: Open finds it by path within that process only, so the
// load balancer runs a single process there.
package shm

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"
)

var (
	// ErrFormat is wrapped by the errors of Open for a file that is not a segment: a
	// wrong magic number, a size that does not match its header (a truncated file),
	// or a header that makes no sense.
	ErrFormat = errors.New("not a shared memory segment")
	// ErrVersion is wrapped by the errors of Open for a segment of another layout
	// version, made by another build.
	ErrVersion = errors.New("unsupported segment layout version")
)

// Segment is a mapped shared memory segment.
//
// A Segment is safe for use by multiple goroutines, and its words by multiple
// processes. Close must be called only when nothing uses the segment any more:
// after Close, the Pool, the Backends and every pointer obtained from them are
// invalid, and touching them may crash the process.
type Segment struct {
	path     string
	m        *mapping
	hdr      *header
	pool     *Pool
	strategy *Strategy
	backends []Backend
	areas    unsafe.Pointer // first of Slots()+1 areas
	ledgers  unsafe.Pointer // first of Ledgers ledgers
	creator  bool           // Close removes the file
	closed   atomic.Bool
}

// Create creates the segment at path with the given number of backend slots, all
// free, and maps it. An existing file at path is replaced, not truncated: processes
// that mapped it keep their mapping, and Open sees either the old segment or the
// complete new one. The file is readable and writable by its owner only (0600).
//
// The segment's creator owns the file: its Close removes it. Where Shared is false,
// no file is written: the segment lives in this process's memory.
func Create(path string, slots int) (*Segment, error) {
	if slots < 1 || slots > MaxSlots {
		return nil, fmt.Errorf("shm: create %s: %d slots, want 1 to %d", path, slots, MaxSlots)
	}
	m, err := create(path, size(slots), func(data []byte) {
		h := (*header)(unsafe.Pointer(&data[0]))
		h.version.Store(Version)
		h.slots.Store(uint64(slots))
		h.slotSize.Store(SlotSize)
		h.magic.Store(magic) // last: Open accepts nothing less than a whole header
	})
	if err != nil {
		return nil, fmt.Errorf("shm: create %s: %w", path, err)
	}
	s, err := attach(path, m.data)
	if err != nil {
		m.unmap(true)
		return nil, err
	}
	s.m, s.creator = m, true
	return s, nil
}

// Open maps the segment that Create made at path. It refuses a file that is not a
// complete segment of this layout version, with an error wrapping ErrFormat or
// ErrVersion.
func Open(path string) (*Segment, error) {
	m, err := open(path)
	if err != nil {
		return nil, err
	}
	s, err := attach(path, m.data)
	if err != nil {
		m.unmap(false)
		return nil, err
	}
	s.m = m
	return s, nil
}

// checkSize refuses a file size that no segment has, before it is mapped.
func checkSize(path string, n int64) error {
	if n < slotOffset {
		return fmt.Errorf("shm: open %s: %w: file is %d bytes, shorter than a segment's header (%d bytes)",
			path, ErrFormat, n, slotOffset)
	}
	if n > int64(size(MaxSlots)) {
		return fmt.Errorf("shm: open %s: %w: file is %d bytes, larger than any segment (%d bytes)",
			path, ErrFormat, n, size(MaxSlots))
	}
	return nil
}

// attach checks the header of the segment in data and returns its views.
//
// The views are pointers into data, which is sound: data starts on a page (or, in
// process memory, on a 128-byte boundary), every part's offset is a multiple of 128
// and every word's a multiple of 8, so each word is aligned as sync/atomic requires,
// on 32-bit systems too; the parts hold nothing but 8-byte words and no Go pointers,
// so the garbage collector has nothing to scan or free there.
func attach(path string, data []byte) (*Segment, error) {
	if err := checkSize(path, int64(len(data))); err != nil {
		return nil, err
	}
	h := (*header)(unsafe.Pointer(&data[0]))
	bad := func(format string, args ...any) error {
		return fmt.Errorf("shm: open %s: %w: %s", path, ErrFormat, fmt.Sprintf(format, args...))
	}
	if got := h.magic.Load(); got != magic {
		return nil, bad("magic number %#x, want %#x", got, magic)
	}
	if got := h.version.Load(); got != Version {
		return nil, fmt.Errorf("shm: open %s: %w: the file has version %d, this build uses %d",
			path, ErrVersion, got, Version)
	}
	if got := h.slotSize.Load(); got != SlotSize {
		return nil, bad("slots of %d bytes, want %d", got, SlotSize)
	}
	n := h.slots.Load()
	if n < 1 || n > MaxSlots {
		return nil, bad("%d slots, want 1 to %d", n, MaxSlots)
	}
	if want := size(int(n)); len(data) != want {
		return nil, bad("file is %d bytes, a segment of %d slots is %d (truncated or overwritten?)",
			len(data), n, want)
	}
	return &Segment{
		path:     path,
		hdr:      h,
		pool:     (*Pool)(unsafe.Pointer(&data[poolOffset])),
		strategy: (*Strategy)(unsafe.Pointer(&data[strategyOffset])),
		backends: unsafe.Slice((*Backend)(unsafe.Pointer(&data[slotOffset])), int(n)),
		areas:    unsafe.Pointer(&data[areaOffset(int(n))]),
		ledgers:  unsafe.Pointer(&data[ledgerOffset(int(n))]),
	}, nil
}

// Path returns the path the segment was created or opened with.
func (s *Segment) Path() string { return s.path }

// Slots returns the number of backend slots.
func (s *Segment) Slots() int { return len(s.backends) }

// Generation is a counter of the control plane's slot assignments: it advances it
// each time it changes which backend owns which slot, and sends the value with the
// assignment, so that a process can tell whether the assignment it holds is the
// newest.
func (s *Segment) Generation() *atomic.Uint64 { return &s.hdr.generation }

// Pool returns the worker pool's figures.
func (s *Segment) Pool() *Pool { return s.pool }

// Strategy returns the strategy's figures.
func (s *Segment) Strategy() *Strategy { return s.strategy }

// Routes is the generation of the routing table every process serves with: the
// control plane writes it once each process has the table ready, and each process
// switches to it at its next request (see exchange.Proxy.Table).
func (s *Segment) Routes() *atomic.Uint64 { return &s.hdr.routes }

// StrategyIn returns strategy counters laid out in the area of slot i, for a strategy
// other than the one of Strategy (each pool's): the control plane allocates the slot
// for it. It panics if i is not in [0, Slots()).
func (s *Segment) StrategyIn(i int) *Strategy {
	if i >= len(s.backends) {
		panic(fmt.Sprintf("shm: strategy area %d of %d", i, len(s.backends)))
	}
	return (*Strategy)(s.Area(i))
}

// Backend returns slot i. It panics if i is not in [0, Slots()).
func (s *Segment) Backend(i int) *Backend { return &s.backends[i] }

// Area returns the AreaSize bytes of memory that go with slot i, zeroed when the
// segment is created; Area(Slots()) is one more, for the load balancer as a whole.
// The caller lays out 8-byte atomic words there, as with the slots. It panics if i is
// not in [0, Slots()].
func (s *Segment) Area(i int) unsafe.Pointer {
	if i < 0 || i > len(s.backends) {
		panic(fmt.Sprintf("shm: area %d of %d", i, len(s.backends)+1))
	}
	return unsafe.Add(s.areas, i*AreaSize)
}

// Ledger returns ledger i. It panics if i is not in [0, Ledgers).
func (s *Segment) Ledger(i int) *Ledger {
	if i < 0 || i >= Ledgers {
		panic(fmt.Sprintf("shm: ledger %d of %d", i, Ledgers))
	}
	for {
		n := s.hdr.ledgers.Load()
		if n >= uint64(i+1) || s.hdr.ledgers.CompareAndSwap(n, uint64(i+1)) {
			break
		}
	}
	p := s.ledgerPool(i)
	return &Ledger{seg: s, index: i, pool: p,
		inflight: unsafe.Slice((*atomic.Int64)(unsafe.Add(unsafe.Pointer(p), lineSize)), len(s.backends))}
}

// ledgerPool is the first line of ledger i.
func (s *Segment) ledgerPool(i int) *ledgerPool {
	return (*ledgerPool)(unsafe.Add(s.ledgers, i*ledgerSize(len(s.backends))))
}

// Settle takes what ledger i holds off the totals and zeroes it: for a process that
// died with requests in flight or queued. It returns the in-flight requests and busy
// workers it gave back. The process must be gone.
func (s *Segment) Settle(i int) (inflight, busy int64) {
	l := s.Ledger(i)
	for slot := range l.inflight {
		if v := l.inflight[slot].Swap(0); v != 0 {
			s.backends[slot].inflight.Add(-v)
			inflight += v
		}
	}
	busy = l.pool.busy.Swap(0)
	s.pool.busy.Add(-busy)
	s.pool.queueLength.Add(-l.pool.queued.Swap(0))
	l.pool.head.Store(0)
	l.pool.seen.Store(0)
	return inflight, busy
}

// Close unmaps the segment. For the segment's creator it also removes the file,
// unless another Create has replaced it since. Processes that have the segment
// mapped keep it until they close it.
func (s *Segment) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return fmt.Errorf("shm: close %s: %w", s.path, os.ErrClosed)
	}
	s.hdr, s.pool, s.strategy, s.backends = nil, nil, nil, nil
	if err := s.m.unmap(s.creator); err != nil {
		return fmt.Errorf("shm: close %s: %w", s.path, err)
	}
	return nil
}
