package pool

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/core/shm"
)

// sharedPools returns n pools over one shared memory segment, each with a ledger of
// its own, as the data-plane processes have them.
func sharedPools(t *testing.T, cfg Config, n int) ([]*Pool, *shm.Segment) {
	t.Helper()
	seg, err := shm.Create(filepath.Join(t.TempDir(), "shared.shm"), 4)
	if err != nil {
		t.Fatal(err)
	}
	pools := make([]*Pool, n)
	t.Cleanup(func() {
		// A grant is made under the pool's lock, and the ledger written after it:
		// wait for both before the segment's memory goes.
		for _, p := range pools {
			p.mu.Lock()
			p.mu.Unlock()
		}
		_ = seg.Close()
	})
	for i := range pools {
		pools[i] = NewShared(cfg, seg.Pool(), i == 0)
		pools[i].Ledger(seg.Ledger(i))
	}
	return pools, seg
}

// grantOrder queues a request on p that reports name on order once granted.
func grantOrder(t *testing.T, p *Pool, name string, order chan<- string) {
	t.Helper()
	ok, _, err := p.AcquireAsync(func() { order <- name })
	if ok || err != nil {
		t.Fatalf("AcquireAsync(%s) = %v, %v; want queued", name, ok, err)
	}
}

// A worker freed in one process goes to the request that has waited longest in any
// process, not to the freeing process's own: the queue is FIFO for the whole load
// balancer (DESIGN section 5).
func TestSharedPoolsKeepOneFIFOQueue(t *testing.T) {
	cfg := Config{MinWorkers: 1, MaxWorkers: 1, QueueCapacity: 10, QueueTimeout: time.Minute, IdleTimeout: time.Minute}
	pools, seg := sharedPools(t, cfg, 2)
	a, b := pools[0], pools[1]
	if ok, _, err := a.AcquireAsync(nil); !ok || err != nil {
		t.Fatalf("the first request = %v, %v; want the one worker", ok, err)
	}
	order := make(chan string, 4)
	grantOrder(t, b, "b1", order)
	grantOrder(t, a, "a2", order)
	grantOrder(t, b, "b3", order)
	if q := seg.Pool().QueueLength().Load(); q != 3 {
		t.Fatalf("queue length = %d, want 3", q)
	}
	// Each worker freed, in whichever process, goes to the next in line.
	for i, want := range []string{"b1", "a2", "b3"} {
		[]*Pool{a, b, a}[i].Release()
		select {
		case got := <-order:
			if got != want {
				t.Fatalf("grant %d went to %s, want %s (queued first)", i+1, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("grant %d: %s never got the freed worker", i+1, want)
		}
	}
	b.Release()
	if busy, q := seg.Pool().Busy().Load(), seg.Pool().QueueLength().Load(); busy != 0 || q != 0 {
		t.Errorf("after every release: busy %d, queued %d; want 0, 0", busy, q)
	}
}

// A process that stops looking at its queue (stopped or stuck) holds up nobody: the
// others serve their own requests after a while.
func TestSharedPoolsPassOverAStuckProcess(t *testing.T) {
	cfg := Config{MinWorkers: 1, MaxWorkers: 1, QueueCapacity: 10, QueueTimeout: time.Minute, IdleTimeout: time.Minute}
	pools, seg := sharedPools(t, cfg, 2)
	a := pools[0]
	if ok, _, err := a.AcquireAsync(nil); !ok || err != nil {
		t.Fatalf("the first request = %v, %v; want the one worker", ok, err)
	}
	// Ledger 1 claims an older request but its process never looks at its queue.
	stuck := seg.Ledger(1)
	stuck.Head().Store(1)
	stuck.Seen().Store(time.Now().UnixNano())
	seg.Pool().Tickets().Store(1)
	order := make(chan string, 1)
	grantOrder(t, a, "a2", order)
	a.Release()
	select {
	case got := <-order:
		t.Logf("%s served after the stuck process's head went stale", got)
	case <-time.After(10 * time.Second):
		t.Fatal("a request waited behind a process that does not look at its queue")
	}
}
