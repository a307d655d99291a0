// Package pool provides the adaptive worker pool that admits requests to the backends:
// a bounded FIFO queue in front of a number of workers that grows while requests wait
// and shrinks when workers sit idle, as HAProxy's maxconn and queue, sized by load.
//
// A worker here is a slot: the goroutine already serving a request's connection holds
// it while it proxies the request, so admission costs no goroutine hand-off.
package pool

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-lb/switchyard/core/shm"
)

var (
	// ErrQueueFull is returned by Acquire when every worker is busy and the queue is full.
	ErrQueueFull = errors.New("pool: queue full")
	// ErrQueueTimeout is returned by Acquire when a request waited longer than QueueTimeout.
	ErrQueueTimeout = errors.New("pool: timed out waiting for a worker")
)

// Config sizes a Pool.
type Config struct {
	MinWorkers    int           // the floor the pool never shrinks below
	MaxWorkers    int           // the most requests served at once
	QueueCapacity int           // the most requests waiting; 0 sheds as soon as all are busy
	QueueTimeout  time.Duration // the longest a request waits for a worker
	IdleTimeout   time.Duration // workers idle this long are retired (see Run)
}

// Stats is a snapshot of the pool's figures.
type Stats struct {
	Workers       int    `json:"workers"`
	Busy          int    `json:"busy"`
	MinWorkers    int    `json:"min_workers"`
	MaxWorkers    int    `json:"max_workers"`
	QueueLength   int    `json:"queue_length"`
	QueueCapacity int    `json:"queue_capacity"`
	Shed          uint64 `json:"shed"`
	ShedFull      uint64 `json:"shed_queue_full"`
	ShedTimeout   uint64 `json:"shed_queue_timeout"`
	Admitted      uint64 `json:"admitted"`
}

// Pool admits requests: Acquire takes a worker, Release gives it back.
//
// Pool is safe for use by multiple goroutines. A request that finds a free worker
// takes it with atomic operations only; the mutex guards the queue and resizing.
type Pool struct {
	// The figures point into own, or into a shared memory segment that every process
	// of the load balancer uses (NewShared).
	busy     *atomic.Int64 // workers serving a request; may exceed workers after a shrink
	workers  *atomic.Int64 // current size, between MinWorkers and MaxWorkers
	queued   *atomic.Int64 // requests queued, in every process sharing the pool
	peak     *atomic.Int64 // most busy workers since the last Shrink
	admitted *atomic.Uint64
	shedFull *atomic.Uint64
	shedTime *atomic.Uint64
	// myBusy and myQueued are this process's shares of busy and queued, in its
	// ledger (see shm.Ledger); they point into own when there is none.
	myBusy   *atomic.Int64
	myQueued *atomic.Int64
	own      struct {
		busy, workers, queued, peak  atomic.Int64
		myBusy, myQueued             atomic.Int64
		admitted, shedFull, shedTime atomic.Uint64
	}
	shared  bool
	polling bool // a goroutine watches for workers freed by other processes; guarded by mu
	// tickets numbers queued requests across processes, and ledger publishes the
	// ticket at the head of this process's queue (see shm.Ledger.Head), so that a
	// freed worker goes to the request that has waited longest, wherever it waits.
	tickets *atomic.Uint64
	ledger  *shm.Ledger

	mu    sync.Mutex
	cfg   Config
	queue []*waiter // FIFO from head
	head  int
}

// waiter is one queued request; ready receives once when it is given a worker, or
// granted is called, for a waiter queued by AcquireAsync.
type waiter struct {
	ready   chan struct{}
	granted func()
	ticket  uint64 // its place in the queue of all processes (see Pool.tickets)
}

var waiterPool = sync.Pool{New: func() any { return &waiter{ready: make(chan struct{}, 1)} }}

// New returns a pool of cfg.MinWorkers workers.
func New(cfg Config) *Pool {
	p := &Pool{cfg: cfg}
	o := &p.own
	p.busy, p.workers, p.queued, p.peak = &o.busy, &o.workers, &o.queued, &o.peak
	p.myBusy, p.myQueued = &o.myBusy, &o.myQueued
	p.admitted, p.shedFull, p.shedTime = &o.admitted, &o.shedFull, &o.shedTime
	p.workers.Store(int64(cfg.MinWorkers))
	return p
}

// NewShared returns a pool whose figures are sh, shared with the pools of the other
// processes of one load balancer: its limits (MaxWorkers, QueueCapacity) hold for all
// of them together. Each process queues its own requests; a worker freed in one
// process goes to a request queued in another within PollInterval. When create is
// true, the pool starts at cfg.MinWorkers workers; otherwise it keeps sh's figures.
func NewShared(cfg Config, sh *shm.Pool, create bool) *Pool {
	p := &Pool{cfg: cfg, shared: true}
	p.myBusy, p.myQueued = &p.own.myBusy, &p.own.myQueued
	p.busy, p.workers, p.queued, p.peak = sh.Busy(), sh.Workers(), sh.QueueLength(), sh.Peak()
	p.admitted, p.shedFull, p.shedTime = sh.Admitted(), sh.ShedFull(), sh.ShedTimeout()
	p.tickets = sh.Tickets()
	if create {
		p.workers.Store(int64(cfg.MinWorkers))
	}
	return p
}

// Ledger makes the pool count this process's share of the busy workers and queued
// requests in l, so that they are given back if the process dies (shm.Segment.Settle),
// and keep one FIFO queue with the other processes' pools: a worker freed here is
// left to a request that has waited longer in another process, which takes it
// within PollInterval. Call it before the pool is used.
func (p *Pool) Ledger(l *shm.Ledger) { p.myBusy, p.myQueued, p.ledger = l.Busy(), l.Queued(), l }

// staleAfter is how long a process may go without looking at its queue before the
// others stop leaving freed workers to its requests: it is stopped or stuck.
const staleAfter = 50 * PollInterval

// PollInterval is how often a shared pool with requests queued looks for workers
// freed by other processes.
const PollInterval = time.Millisecond

// pollLocked starts watching for workers freed elsewhere while requests wait here.
// p.mu must be held.
func (p *Pool) pollLocked() {
	if !p.shared || p.polling || p.len() == 0 {
		return
	}
	p.polling = true
	go func() {
		t := time.NewTicker(PollInterval)
		defer t.Stop()
		for range t.C {
			p.mu.Lock()
			p.dispatchLocked()
			if p.len() == 0 {
				p.polling = false
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
		}
	}()
}

// grow adds a worker, up to MaxWorkers, when all are busy and a request is about to
// wait. p.mu must be held.
func (p *Pool) grow() {
	if w := p.workers.Load(); w < int64(p.cfg.MaxWorkers) && p.busy.Load() >= w {
		p.workers.CompareAndSwap(w, w+1) // lost to another process: it grew the pool
	}
}

// Acquire takes a worker for one request, waiting in the queue when all are busy.
// It returns ErrQueueFull at once when the queue is full, and ErrQueueTimeout after
// QueueTimeout. A nil error must be matched by exactly one Release.
func (p *Pool) Acquire() error {
	// Fast path: a free worker and nobody ahead in the queue.
	if p.queued.Load() == 0 && p.takeSlot() {
		p.admitted.Add(1)
		return nil
	}
	return p.acquireSlow()
}

// acquireSlow grows the pool or queues the request.
func (p *Pool) acquireSlow() error {
	p.mu.Lock()
	if p.queued.Load() == 0 {
		p.grow() // a request is about to wait: grow instead, up to MaxWorkers
		if p.takeSlot() {
			p.mu.Unlock()
			p.admitted.Add(1)
			return nil
		}
	}
	if int(p.queued.Load()) >= p.cfg.QueueCapacity {
		p.mu.Unlock()
		p.shedFull.Add(1)
		return ErrQueueFull
	}
	w := waiterPool.Get().(*waiter)
	p.enqueueLocked(w)
	p.dispatchLocked() // a worker may have been released since takeSlot failed
	p.pollLocked()
	timeout := p.cfg.QueueTimeout
	p.mu.Unlock()

	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-w.ready:
	case <-t.C:
		p.mu.Lock()
		removed := p.remove(w)
		p.mu.Unlock()
		if removed {
			waiterPool.Put(w)
			p.shedTime.Add(1)
			return ErrQueueTimeout
		}
		<-w.ready // granted while the timer fired
	}
	waiterPool.Put(w)
	p.admitted.Add(1)
	return nil
}

// Waiter is a request queued by AcquireAsync.
type Waiter struct{ w *waiter }

// AcquireAsync takes a worker for one request without blocking. It returns true when
// one was free. Otherwise the request joins the queue: granted is called once when it
// is given a worker (from the goroutine that released it, with the pool's lock held,
// so granted must only hand the news on), unless Cancel takes it out of the queue
// first. It returns ErrQueueFull at once when the queue is full. The caller bounds the
// wait itself (QueueTimeout) with Cancel. Every true answer or granted call must be
// matched by exactly one Release.
func (p *Pool) AcquireAsync(granted func()) (bool, Waiter, error) {
	if p.queued.Load() == 0 && p.takeSlot() {
		p.admitted.Add(1)
		return true, Waiter{}, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.queued.Load() == 0 {
		p.grow()
		if p.takeSlot() {
			p.admitted.Add(1)
			return true, Waiter{}, nil
		}
	}
	if int(p.queued.Load()) >= p.cfg.QueueCapacity {
		p.shedFull.Add(1)
		return false, Waiter{}, ErrQueueFull
	}
	w := &waiter{granted: func() {
		p.admitted.Add(1)
		granted()
	}}
	p.enqueueLocked(w)
	p.dispatchLocked()
	p.pollLocked()
	return false, Waiter{w}, nil
}

// Cancel takes a request queued by AcquireAsync out of the queue, counting it as
// timed out. It returns false when the request was given a worker already (its
// granted call has happened or is under way).
func (p *Pool) Cancel(w Waiter) bool {
	p.mu.Lock()
	removed := p.remove(w.w)
	p.mu.Unlock()
	if removed {
		p.shedTime.Add(1)
	}
	return removed
}

// QueueTimeout is how long a request may wait for a worker.
func (p *Pool) QueueTimeout() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg.QueueTimeout
}

// Release gives back a worker taken by Acquire, to the first queued request if any.
func (p *Pool) Release() {
	p.busy.Add(-1)
	p.myBusy.Add(-1)
	// Acquire queues before it checks busy, and we decrement before we check the
	// queue, so one of the two always sees the other: no waiter is left behind.
	if p.queued.Load() > 0 {
		p.mu.Lock()
		p.dispatchLocked() // those queued in other processes poll
		p.mu.Unlock()
	}
}

// addQueued counts d more requests queued here.
func (p *Pool) addQueued(d int64) {
	p.queued.Add(d)
	p.myQueued.Add(d)
}

// takeSlot marks one more worker busy if one is free.
func (p *Pool) takeSlot() bool {
	for {
		b := p.busy.Load()
		if b >= p.workers.Load() {
			return false
		}
		if p.busy.CompareAndSwap(b, b+1) {
			p.myBusy.Add(1)
			if b+1 > p.peak.Load() {
				p.peak.Store(b + 1) // a lost race here only makes Shrink more cautious
			}
			return true
		}
	}
}

// enqueueLocked queues w behind every request queued before, in any process. p.mu
// must be held.
func (p *Pool) enqueueLocked(w *waiter) {
	w.ticket = 0
	if p.tickets != nil {
		w.ticket = p.tickets.Add(1)
	}
	p.queue = append(p.queue, w)
	p.addQueued(1)
	p.publishLocked()
}

// publishLocked writes the ticket at the head of the queue to the ledger, and that
// the process is looking at its queue. p.mu must be held.
func (p *Pool) publishLocked() {
	if p.ledger == nil {
		return
	}
	var head uint64
	if p.len() > 0 {
		head = p.queue[p.head].ticket
	}
	p.ledger.Head().Store(head)
	p.ledger.Seen().Store(time.Now().UnixNano())
}

// waitsElsewhere reports whether a request queued in another process has waited
// longer than the head of this one's queue. p.mu must be held, and the queue must
// not be empty.
func (p *Pool) waitsElsewhere() bool {
	if p.ledger == nil {
		return false
	}
	oldest := p.ledger.OldestElsewhere(time.Now().Add(-staleAfter).UnixNano())
	return oldest != 0 && oldest < p.queue[p.head].ticket
}

// dispatchLocked hands free workers to queued requests in order, leaving them to
// requests that have waited longer in other processes. p.mu must be held.
func (p *Pool) dispatchLocked() {
	if p.len() == 0 {
		return
	}
	defer p.publishLocked()
	for p.len() > 0 && !p.waitsElsewhere() && p.takeSlot() {
		w := p.queue[p.head]
		p.queue[p.head] = nil
		p.head++
		p.addQueued(-1)
		if p.head == len(p.queue) {
			p.queue, p.head = p.queue[:0], 0
		} else if p.head >= 64 && p.head*2 >= len(p.queue) {
			n := copy(p.queue, p.queue[p.head:]) // keep a queue that never empties from growing
			clear(p.queue[n:])
			p.queue, p.head = p.queue[:n], 0
		}
		if w.granted != nil {
			w.granted()
		} else {
			w.ready <- struct{}{}
		}
	}
}

// len is the number of queued requests. p.mu must be held.
func (p *Pool) len() int { return len(p.queue) - p.head }

// remove takes w out of the queue; false when it was already dispatched. p.mu must be held.
func (p *Pool) remove(w *waiter) bool {
	for i := p.head; i < len(p.queue); i++ {
		if p.queue[i] == w {
			copy(p.queue[i:], p.queue[i+1:])
			p.queue[len(p.queue)-1] = nil
			p.queue = p.queue[:len(p.queue)-1]
			p.addQueued(-1)
			p.publishLocked()
			return true
		}
	}
	return false
}

// Shrink retires the workers that stayed idle since the previous Shrink, never going
// below MinWorkers. Run calls it every IdleTimeout.
func (p *Pool) Shrink() {
	p.mu.Lock()
	defer p.mu.Unlock()
	busy := p.busy.Load()
	peak := max(p.peak.Swap(busy), busy)
	target := max(int64(p.cfg.MinWorkers), peak)
	if p.queued.Load() == 0 && p.workers.Load() > target {
		p.workers.Store(target)
	}
}

// Resize applies a new configuration live. A smaller queue drops none of the requests
// already waiting; a smaller MaxWorkers lets busy workers finish.
func (p *Pool) Resize(cfg Config) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg = cfg
	w := min(max(p.workers.Load(), int64(cfg.MinWorkers)), int64(cfg.MaxWorkers))
	if q := p.queued.Load(); q > 0 {
		w = max(w, min(p.busy.Load()+q, int64(cfg.MaxWorkers)))
	}
	p.workers.Store(w)
	p.dispatchLocked()
}

// Run retires idle workers every IdleTimeout until ctx is done.
func (p *Pool) Run(ctx context.Context) {
	for {
		p.mu.Lock()
		idle := p.cfg.IdleTimeout
		p.mu.Unlock()
		t := time.NewTimer(idle)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			p.Shrink()
		}
	}
}

// Stats returns the pool's current figures.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	cfg := p.cfg
	p.mu.Unlock()
	queued := int(max(p.queued.Load(), 0))
	full, timeout := p.shedFull.Load(), p.shedTime.Load()
	return Stats{
		Workers:       int(p.workers.Load()),
		Busy:          int(max(p.busy.Load(), 0)),
		MinWorkers:    cfg.MinWorkers,
		MaxWorkers:    cfg.MaxWorkers,
		QueueLength:   queued,
		QueueCapacity: cfg.QueueCapacity,
		Shed:          full + timeout,
		ShedFull:      full,
		ShedTimeout:   timeout,
		Admitted:      p.admitted.Load(),
	}
}
