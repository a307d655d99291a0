package shm

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Version is the layout version this build reads and writes. It changes whenever a
// word moves or changes meaning; Open refuses a segment of another version.
const Version = 4

// MaxSlots is the most backend slots a segment holds.
const MaxSlots = 1 << 16

// magic is the first word of every segment. On a little-endian machine its bytes
// read "swyd-shm".
const magic uint64 = 0x6d68732d64797773

// Sizes and offsets, in bytes. Each part starts on its own 128-byte boundary: that is
// a cache line on arm64 and ppc64 (Apple silicon among them) and the pair of lines
// that x86 processors prefetch together, so no two parts share a line and a write to
// one backend's counters never slows a reader of another's.
const (
	lineSize       = 128
	headerSize     = lineSize
	poolSize       = lineSize
	poolOffset     = headerSize
	strategyOffset = poolOffset + poolSize
	slotOffset     = strategyOffset + lineSize
)

// AreaSize is the size in bytes of one area (see Segment.Area): room for a backend's
// answer counters by status code and duration.
const AreaSize = 33 * lineSize

// SlotSize is the size of one backend slot in bytes.
const SlotSize = 128

// The words of the segment are atomic.Int64 and atomic.Uint64 values placed over
// the mapping. That is sound only while each is exactly one 8-byte word (their
// noCopy and align64 fields take no space); these fail to compile otherwise.
var (
	_ [8 - unsafe.Sizeof(atomic.Int64{})]byte
	_ [unsafe.Sizeof(atomic.Int64{}) - 8]byte
	_ [8 - unsafe.Sizeof(atomic.Uint64{})]byte
	_ [unsafe.Sizeof(atomic.Uint64{}) - 8]byte
)

// size returns the size in bytes of a segment with n slots: the slots, then an area
// per slot and one more for the load balancer's own answers.
func size(n int) int { return ledgerOffset(n) + Ledgers*ledgerSize(n) }

// ledgerOffset is where the ledgers of a segment with n slots start.
func ledgerOffset(n int) int { return areaOffset(n) + (n+1)*AreaSize }

// ledgerSize is the size of one ledger of a segment with n slots: a line for the
// pool's words, then a word per slot, rounded up to whole lines.
func ledgerSize(n int) int { return lineSize + (n*8+lineSize-1)/lineSize*lineSize }

// Ledgers is the number of ledgers of a segment (see Ledger).
const Ledgers = 512

// areaOffset is where the areas of a segment with n slots start.
func areaOffset(n int) int { return slotOffset + n*SlotSize }

// header is the first part of a segment: what Open checks, and the generation.
type header struct {
	magic      atomic.Uint64 // written last by Create: a segment with it is complete
	version    atomic.Uint64 // Version
	slots      atomic.Uint64 // number of backend slots
	slotSize   atomic.Uint64 // SlotSize
	generation atomic.Uint64 // see Segment.Generation
	ledgers    atomic.Uint64 // one more than the highest ledger handed out (see Segment.Ledger)
	routes     atomic.Uint64 // see Segment.Routes
	_          [9]uint64
}

// Pool holds the worker pool's figures, shared by every process: the admission
// limits apply to the load balancer as a whole, not to each process.
//
// A Pool lives in the segment's memory: it must not be copied, and it must not be
// used after the segment is closed.
type Pool struct {
	busy        atomic.Int64
	queueLength atomic.Int64
	workers     atomic.Int64
	admitted    atomic.Uint64
	shedFull    atomic.Uint64
	shedTimeout atomic.Uint64
	peak        atomic.Int64
	tickets     atomic.Uint64
	_           [8]uint64
}

// Strategy holds the strategy's figures, counted by every process that picks.
//
// A Strategy lives in the segment's memory: it must not be copied, and it must not be
// used after the segment is closed.
type Strategy struct {
	fallbacks  atomic.Uint64
	timeouts   atomic.Uint64
	badAnswers atomic.Uint64
	_          [13]uint64
}

// Reset zeroes the counters, for a strategy that starts counting in a reused area.
func (s *Strategy) Reset() {
	s.fallbacks.Store(0)
	s.timeouts.Store(0)
	s.badAnswers.Store(0)
}

// Fallbacks counts the picks made by the built-in strategy instead of the plugin.
func (s *Strategy) Fallbacks() *atomic.Uint64 { return &s.fallbacks }

// Timeouts counts the picks the plugin did not answer in time.
func (s *Strategy) Timeouts() *atomic.Uint64 { return &s.timeouts }

// BadAnswers counts the plugin's answers that were not a candidate.
func (s *Strategy) BadAnswers() *atomic.Uint64 { return &s.badAnswers }

// Peak is the most workers busy at once since the pool last shrank.
func (p *Pool) Peak() *atomic.Int64 { return &p.peak }

// Busy is the number of workers serving a request now.
func (p *Pool) Busy() *atomic.Int64 { return &p.busy }

// QueueLength is the number of requests waiting for a worker now.
func (p *Pool) QueueLength() *atomic.Int64 { return &p.queueLength }

// Workers is the pool's current number of workers.
func (p *Pool) Workers() *atomic.Int64 { return &p.workers }

// Admitted counts the requests that got a worker.
func (p *Pool) Admitted() *atomic.Uint64 { return &p.admitted }

// ShedFull counts the requests refused because the queue was full.
func (p *Pool) ShedFull() *atomic.Uint64 { return &p.shedFull }

// ShedTimeout counts the requests refused after waiting too long in the queue.
func (p *Pool) ShedTimeout() *atomic.Uint64 { return &p.shedTimeout }

// Tickets numbers the requests that queue, in every process: the lower a queued
// request's ticket, the longer it has waited (see Ledger.Head).
func (p *Pool) Tickets() *atomic.Uint64 { return &p.tickets }

// Backend is one backend slot: the live figures of the backend that the control
// plane assigned to it, shared by every process. The words written on every request
// share the slot's first 64 bytes, so a request touches one cache line per backend.
//
// A Backend lives in the segment's memory: it must not be copied, and it must not be
// used after the segment is closed.
type Backend struct {
	inflight    atomic.Int64
	requests    atomic.Uint64
	failures    atomic.Uint64
	state       atomic.Uint64
	queueLength atomic.Int64
	latencyNs   atomic.Int64
	errorPPM    atomic.Uint64
	failsInRow  atomic.Int64
	epoch       atomic.Uint64 // second line: changes only when the slot is reassigned
	stale       atomic.Uint64
	ejections   atomic.Uint64
	_           [5]uint64
}

// FailsInRow is the number of requests to the backend that failed in a row, across
// all processes.
func (b *Backend) FailsInRow() *atomic.Int64 { return &b.failsInRow }

// Stale counts the pooled connections to the backend found unsound before reuse.
func (b *Backend) Stale() *atomic.Uint64 { return &b.stale }

// Ejections counts the backend's passive ejections.
func (b *Backend) Ejections() *atomic.Uint64 { return &b.ejections }

// Inflight is the number of requests open on the backend now, across all processes.
func (b *Backend) Inflight() *atomic.Int64 { return &b.inflight }

// Requests counts the requests sent to the backend.
func (b *Backend) Requests() *atomic.Uint64 { return &b.requests }

// Failures counts the requests to the backend that failed.
func (b *Backend) Failures() *atomic.Uint64 { return &b.failures }

// QueueLength is the backend's own reported queue length, -1 when unknown.
func (b *Backend) QueueLength() *atomic.Int64 { return &b.queueLength }

// LatencyNanos is the moving average of the backend's response latency, in
// nanoseconds.
func (b *Backend) LatencyNanos() *atomic.Int64 { return &b.latencyNs }

// ErrorRatePPM is the moving average of the backend's share of failed requests, in
// millionths.
func (b *Backend) ErrorRatePPM() *atomic.Uint64 { return &b.errorPPM }

// State returns the backend's state.
func (b *Backend) State() State { return State(b.state.Load()) }

// SetState sets the backend's state.
func (b *Backend) SetState(s State) { b.state.Store(uint64(s)) }

// CompareAndSwapState sets the backend's state to new if it is old, and reports
// whether it did.
func (b *Backend) CompareAndSwapState(old, new State) bool {
	return b.state.CompareAndSwap(uint64(old), uint64(new))
}

// Epoch is the number of times the slot has been reset. The control plane sends it
// with a slot's assignment; a process whose assignment names another epoch than the
// slot's holds a stale assignment.
func (b *Backend) Epoch() uint64 { return b.epoch.Load() }

// Reset prepares the slot for a newly assigned backend and returns its new epoch:
// counters and averages zero, queue length unknown (-1), state StateDown (a backend
// joins down until its health checks pass).
//
// Reset is for the control plane, and only while no process uses the slot (see
// Allocator): an update racing with it would be lost or land on the new backend.
func (b *Backend) Reset() uint64 {
	b.inflight.Store(0)
	b.requests.Store(0)
	b.failures.Store(0)
	b.queueLength.Store(-1)
	b.latencyNs.Store(0)
	b.errorPPM.Store(0)
	b.failsInRow.Store(0)
	b.stale.Store(0)
	b.ejections.Store(0)
	b.state.Store(uint64(StateDown))
	return b.epoch.Add(1)
}

// Ledger is one process's share of the counts that go up and come down again (the
// pool's busy workers and queue, each backend's requests in flight). A process adds
// to its ledger what it adds to the totals; when it dies, Settle takes what it held
// off the totals, so a crashed process leaves no request in flight behind.
//
// A Ledger is a view of the segment's memory: it must not be used after the segment
// is closed.
type Ledger struct {
	seg      *Segment
	index    int
	pool     *ledgerPool
	inflight []atomic.Int64
}

// ledgerPool is the first line of a ledger.
type ledgerPool struct {
	busy   atomic.Int64
	queued atomic.Int64
	head   atomic.Uint64
	seen   atomic.Int64
	_      [12]uint64
}

// Busy is the process's share of Pool.Busy.
func (l *Ledger) Busy() *atomic.Int64 { return &l.pool.busy }

// Queued is the process's share of Pool.QueueLength.
func (l *Ledger) Queued() *atomic.Int64 { return &l.pool.queued }

// Head is the ticket (see Pool.Tickets) of the request that has waited longest in the
// process's queue, 0 when none waits.
func (l *Ledger) Head() *atomic.Uint64 { return &l.pool.head }

// Seen is when the process last looked at its queue, in nanoseconds since the Unix
// epoch: a Head whose process has not looked for a while belongs to a process that is
// stopped or stuck.
func (l *Ledger) Seen() *atomic.Int64 { return &l.pool.seen }

// OldestElsewhere returns the lowest Head of the other ledgers handed out whose
// process looked at its queue at notBefore or later, 0 when none has a request waiting.
func (l *Ledger) OldestElsewhere(notBefore int64) uint64 {
	var oldest uint64
	for i := range int(l.seg.hdr.ledgers.Load()) {
		if i == l.index {
			continue
		}
		o := l.seg.ledgerPool(i)
		if h := o.head.Load(); h != 0 && (oldest == 0 || h < oldest) && o.seen.Load() >= notBefore {
			oldest = h
		}
	}
	return oldest
}

// Inflight is the process's share of slot i's in-flight count. It panics if i is out
// of range.
func (l *Ledger) Inflight(i int) *atomic.Int64 { return &l.inflight[i] }

// State is a backend's state, as one word of its slot.
type State uint64

// States of a backend slot. The names of the assigned states are those of the status
// JSON.
const (
	StateFree    State = iota // no backend is assigned to the slot
	StateUp                   // takes new requests
	StateDown                 // failed its active health checks, or not checked yet
	StateEjected              // failed real traffic; back after its ejection time
	StateDrain                // taken out by an operator; back when made ready
)

// String returns the state's name: "free", "up", "down", "ejected" or "drain".
func (s State) String() string {
	switch s {
	case StateFree:
		return "free"
	case StateUp:
		return "up"
	case StateDown:
		return "down"
	case StateEjected:
		return "ejected"
	case StateDrain:
		return "drain"
	}
	return "unknown"
}

// Interface guards
var _ fmt.Stringer = StateFree
