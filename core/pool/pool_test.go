package pool

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func testConfig() Config {
	return Config{MinWorkers: 1, MaxWorkers: 4, QueueCapacity: 2, QueueTimeout: time.Minute, IdleTimeout: time.Minute}
}

// acquireN takes n workers, failing the test if any Acquire fails.
func acquireN(t *testing.T, p *Pool, n int) {
	t.Helper()
	for i := range n {
		if err := p.Acquire(); err != nil {
			t.Fatalf("Acquire #%d = %v, want nil", i, err)
		}
	}
}

// waitFor polls cond until it holds; the deadline only guards against a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGrowsToCeilingThenQueuesThenSheds(t *testing.T) {
	p := New(testConfig())
	if s := p.Stats(); s.Workers != 1 {
		t.Fatalf("new pool workers = %d, want min_workers 1", s.Workers)
	}
	acquireN(t, p, 4)
	if s := p.Stats(); s.Workers != 4 || s.Busy != 4 {
		t.Fatalf("after 4 requests workers, busy = %d, %d, want 4, 4", s.Workers, s.Busy)
	}
	// The ceiling is reached: the next two wait in the queue, the third is shed.
	results := make(chan error, 2)
	for range 2 {
		go func() { results <- p.Acquire() }()
	}
	waitFor(t, "two queued requests", func() bool { return p.Stats().QueueLength == 2 })
	if err := p.Acquire(); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Acquire with a full queue = %v, want ErrQueueFull", err)
	}
	if s := p.Stats(); s.Workers != 4 || s.Shed != 1 || s.ShedFull != 1 {
		t.Errorf("stats = %+v, want workers 4 (ceiling), shed 1", s)
	}
	p.Release()
	p.Release()
	for range 2 {
		if err := <-results; err != nil {
			t.Errorf("queued Acquire = %v, want nil after a Release", err)
		}
	}
	if s := p.Stats(); s.QueueLength != 0 || s.Busy != 4 {
		t.Errorf("after hand-over stats = %+v, want queue 0, busy 4", s)
	}
}

func TestQueueTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.MaxWorkers, cfg.QueueTimeout = 1, 20*time.Millisecond
	p := New(cfg)
	acquireN(t, p, 1)
	if err := p.Acquire(); !errors.Is(err, ErrQueueTimeout) {
		t.Fatalf("Acquire past queue_timeout = %v, want ErrQueueTimeout", err)
	}
	if s := p.Stats(); s.QueueLength != 0 || s.ShedTimeout != 1 || s.Shed != 1 {
		t.Errorf("stats = %+v, want an empty queue and one timeout shed", s)
	}
	p.Release()
	acquireN(t, p, 1) // the timed-out waiter did not keep the worker
}

func TestQueueIsFIFO(t *testing.T) {
	cfg := testConfig()
	cfg.MaxWorkers, cfg.QueueCapacity = 1, 10
	p := New(cfg)
	acquireN(t, p, 1)
	order := make(chan int, 5)
	for i := range 5 {
		go func() {
			if err := p.Acquire(); err != nil {
				t.Error(err)
			}
			order <- i
		}()
		waitFor(t, "request queued", func() bool { return p.Stats().QueueLength == i+1 })
	}
	for want := range 5 {
		p.Release()
		if got := <-order; got != want {
			t.Fatalf("request %d was served, want %d (first in, first out)", got, want)
		}
	}
}

func TestShrinksIdleWorkersToFloor(t *testing.T) {
	cfg := testConfig()
	cfg.MinWorkers = 2
	p := New(cfg)
	acquireN(t, p, 4)
	for range 3 {
		p.Release()
	}
	// The peak since the pool started was 4: the first Shrink keeps them all.
	p.Shrink()
	if got := p.Stats().Workers; got != 4 {
		t.Errorf("workers after a busy period = %d, want 4", got)
	}
	// A whole idle period with one busy: shrink to the floor of 2, not to 1.
	p.Shrink()
	if got := p.Stats().Workers; got != 2 {
		t.Errorf("workers after an idle period = %d, want min_workers 2", got)
	}
	p.Release()
	p.Shrink()
	if got := p.Stats().Workers; got != 2 {
		t.Errorf("workers when all idle = %d, want min_workers 2 (the floor)", got)
	}
}

func TestResizeLive(t *testing.T) {
	p := New(testConfig())
	acquireN(t, p, 4)
	results := make(chan error, 2)
	for range 2 {
		go func() { results <- p.Acquire() }()
	}
	waitFor(t, "two queued requests", func() bool { return p.Stats().QueueLength == 2 })

	// A smaller queue drops none of the requests already waiting...
	cfg := testConfig()
	cfg.QueueCapacity = 1
	p.Resize(cfg)
	if s := p.Stats(); s.QueueLength != 2 || s.QueueCapacity != 1 {
		t.Fatalf("after shrinking the queue stats = %+v, want 2 still queued, capacity 1", s)
	}
	if err := p.Acquire(); !errors.Is(err, ErrQueueFull) {
		t.Errorf("Acquire over the new capacity = %v, want ErrQueueFull", err)
	}
	// ...and a higher ceiling serves them at once.
	cfg.MaxWorkers = 10
	p.Resize(cfg)
	for range 2 {
		if err := <-results; err != nil {
			t.Errorf("queued Acquire after raising max_workers = %v, want nil", err)
		}
	}
	if s := p.Stats(); s.Workers != 6 || s.Busy != 6 || s.MaxWorkers != 10 {
		t.Errorf("stats = %+v, want workers 6, busy 6, max 10", s)
	}

	// A lower ceiling lets busy workers finish and admits no more until below it.
	cfg.MaxWorkers = 2
	p.Resize(cfg)
	if s := p.Stats(); s.Workers != 2 || s.Busy != 6 {
		t.Errorf("after lowering max_workers stats = %+v, want workers 2, busy 6", s)
	}
	for range 5 {
		p.Release()
	}
	acquireN(t, p, 1)
	if s := p.Stats(); s.Busy != 2 {
		t.Errorf("busy = %d, want 2 (the new ceiling)", s.Busy)
	}

	// A higher floor grows the pool at once.
	cfg.MinWorkers, cfg.MaxWorkers = 8, 10
	p.Resize(cfg)
	if s := p.Stats(); s.Workers != 8 {
		t.Errorf("workers after raising min_workers = %d, want 8", s.Workers)
	}
}

func TestConcurrentUseAnswersEveryRequest(t *testing.T) {
	cfg := Config{MinWorkers: 1, MaxWorkers: 8, QueueCapacity: 16, QueueTimeout: 50 * time.Millisecond, IdleTimeout: time.Minute}
	p := New(cfg)
	const n = 4000
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[error]int{}
	for i := range n {
		wg.Go(func() {
			err := p.Acquire()
			if err == nil {
				if i%7 == 0 {
					time.Sleep(time.Millisecond)
				}
				p.Release()
			}
			mu.Lock()
			outcomes[err]++
			mu.Unlock()
		})
		if i%500 == 0 {
			p.Shrink()
		}
	}
	wg.Wait()
	s := p.Stats()
	if total := outcomes[nil] + outcomes[ErrQueueFull] + outcomes[ErrQueueTimeout]; total != n || len(outcomes) > 3 {
		t.Errorf("outcomes = %v, want %d answers, each nil, ErrQueueFull or ErrQueueTimeout", outcomes, n)
	}
	if s.Busy != 0 || s.QueueLength != 0 || s.Workers > 8 {
		t.Errorf("after all requests stats = %+v, want busy 0, queue 0, workers <= 8", s)
	}
	if uint64(outcomes[nil]) != s.Admitted || uint64(outcomes[ErrQueueFull]+outcomes[ErrQueueTimeout]) != s.Shed {
		t.Errorf("stats = %+v, outcomes = %v: counters disagree", s, outcomes)
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	p := New(Config{MinWorkers: 1, MaxWorkers: 64, QueueCapacity: 1000, QueueTimeout: time.Second, IdleTimeout: time.Minute})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := p.Acquire(); err != nil {
				b.Fatal(err)
			}
			p.Release()
		}
	})
}

func TestAcquireAsync(t *testing.T) {
	p := New(Config{MinWorkers: 1, MaxWorkers: 1, QueueCapacity: 2, QueueTimeout: time.Second})
	if ok, _, err := p.AcquireAsync(func() { t.Error("the first request waited") }); !ok || err != nil {
		t.Fatalf("first: %v, %v", ok, err)
	}
	granted := make(chan int, 2)
	ok, w1, err := p.AcquireAsync(func() { granted <- 1 })
	if ok || err != nil {
		t.Fatalf("second: %v, %v; want queued", ok, err)
	}
	_, w2, _ := p.AcquireAsync(func() { granted <- 2 })
	if _, _, err := p.AcquireAsync(func() {}); err != ErrQueueFull {
		t.Fatalf("fourth: %v, want ErrQueueFull", err)
	}
	p.Release()
	if got := <-granted; got != 1 {
		t.Fatalf("granted %d first, want 1 (FIFO)", got)
	}
	if p.Cancel(w1) {
		t.Error("Cancel of a granted request took it out of the queue")
	}
	if !p.Cancel(w2) {
		t.Error("Cancel of a queued request failed")
	}
	p.Release()
	select {
	case g := <-granted:
		t.Fatalf("request %d granted after its Cancel", g)
	default:
	}
	st := p.Stats()
	if st.Busy != 0 || st.QueueLength != 0 || st.ShedTimeout != 1 || st.ShedFull != 1 || st.Admitted != 2 {
		t.Errorf("stats %+v", st)
	}
}
