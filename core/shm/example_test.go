package shm_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/switchyard-lb/switchyard/core/shm"
)

// The control plane creates the segment and assigns a slot to a backend; a
// data-plane process opens the segment and counts a request on that slot.
func Example() {
	dir, err := os.MkdirTemp("", "shm-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "switchyard.shm")

	// Control plane.
	seg, err := shm.Create(path, 8)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	slots := shm.NewAllocator(seg)
	slot, epoch, _ := slots.Alloc()
	seg.Backend(slot).SetState(shm.StateUp)
	seg.Generation().Add(1)
	// ... sends (slot, epoch, "http://127.0.0.1:8081") to the data-plane processes.

	// Data-plane process.
	dp, err := shm.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer dp.Close()
	b := dp.Backend(slot)
	if b.Epoch() != epoch {
		log.Fatal("stale assignment")
	}
	b.Inflight().Add(1)
	b.Requests().Add(1)

	// Control plane, for status.
	sb := seg.Backend(slot)
	fmt.Println(sb.State(), sb.Inflight().Load(), sb.Requests().Load(), sb.QueueLength().Load())
	// Output: up 1 1 -1
}
