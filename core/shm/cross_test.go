package shm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// childEnv, when set, makes the test binary a child of TestCrossProcess: it opens
// the segment at the path the variable names and runs work on it.
const childEnv = "SHM_TEST_CHILD"

const (
	crossChildren   = 2
	crossIterations = 100_000
	crossSlots      = 4
)

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(child(path))
	}
	os.Exit(m.Run())
}

// child is a child process's main: it announces itself in the pool's Workers word,
// waits for the parent to set the generation to 1, runs work and reports the peak
// in-flight count it saw on stdout.
func child(path string) int {
	seg, err := Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer seg.Close()
	seg.Pool().Workers().Add(1)
	deadline := time.Now().Add(time.Minute)
	for seg.Generation().Load() != 1 {
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "no start signal from the parent")
			return 1
		}
		runtime.Gosched()
	}
	fmt.Fprintf(os.Stdout, "peak %d\n", work(seg))
	return 0
}

// work runs what each process does concurrently, spread over the slots, and returns
// the most requests in flight it saw on a slot: in-flight and busy up and down,
// requests and admitted up, and failures up by compare-and-swap.
func work(seg *Segment) int64 {
	pool := seg.Pool()
	var peak int64
	for i := range crossIterations {
		b := seg.Backend(i % crossSlots)
		n := b.Inflight().Add(1)
		peak = max(peak, n)
		pool.Busy().Add(1)
		b.Requests().Add(1)
		pool.Admitted().Add(1)
		for {
			f := b.Failures().Load()
			if b.Failures().CompareAndSwap(f, f+1) {
				break
			}
		}
		pool.Busy().Add(-1)
		b.Inflight().Add(-1)
	}
	return peak
}

// TestCrossProcess runs work in this process and in child processes on one segment
// at once, and checks that no update was lost.
func TestCrossProcess(t *testing.T) {
	if !Shared {
		t.Skipf("segments are not shared between processes on %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	seg, path := newSegment(t, crossSlots)

	type result struct {
		out bytes.Buffer
		err error
	}
	results := make([]*result, crossChildren)
	done := make(chan int, crossChildren)
	for i := range results {
		r := &result{}
		results[i] = r
		cmd := exec.CommandContext(t.Context(), os.Args[0])
		cmd.Env = append(os.Environ(), childEnv+"="+path)
		cmd.Stdout = &r.out
		cmd.Stderr = &r.out
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting child: %v", err)
		}
		go func() { r.err = cmd.Wait(); done <- i }()
	}

	// Wait until every child has the segment open, then start them all and work too.
	exited := 0
	deadline := time.After(time.Minute)
	for seg.Pool().Workers().Load() < crossChildren {
		select {
		case i := <-done:
			exited++
			t.Fatalf("child %d exited before starting: %v\n%s", i, results[i].err, &results[i].out)
		case <-deadline:
			t.Fatalf("%d of %d children opened the segment in a minute", seg.Pool().Workers().Load(), crossChildren)
		case <-time.After(time.Millisecond):
		}
	}
	seg.Generation().Store(1)
	peak := work(seg)
	for exited < crossChildren {
		i := <-done
		exited++
		if r := results[i]; r.err != nil {
			t.Fatalf("child %d: %v\n%s", i, r.err, &r.out)
		}
	}

	peaks := []string{strconv.FormatInt(peak, 10)}
	for _, r := range results {
		peaks = append(peaks, strings.TrimPrefix(strings.TrimSpace(r.out.String()), "peak "))
	}
	t.Logf("peak in-flight on one slot seen by the parent and each child: %s", strings.Join(peaks, ", "))

	const processes = crossChildren + 1
	const perSlot = processes * crossIterations / crossSlots
	for i := range crossSlots {
		b := seg.Backend(i)
		if got := b.Inflight().Load(); got != 0 {
			t.Errorf("slot %d Inflight = %d, want 0", i, got)
		}
		if got := b.Requests().Load(); got != perSlot {
			t.Errorf("slot %d Requests = %d, want %d", i, got, perSlot)
		}
		if got := b.Failures().Load(); got != perSlot {
			t.Errorf("slot %d Failures (compare-and-swap) = %d, want %d", i, got, perSlot)
		}
	}
	if got := seg.Pool().Busy().Load(); got != 0 {
		t.Errorf("Pool Busy = %d, want 0", got)
	}
	if got := seg.Pool().Admitted().Load(); got != processes*crossIterations {
		t.Errorf("Pool Admitted = %d, want %d", got, processes*crossIterations)
	}
}
