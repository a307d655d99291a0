package shm

import (
	"sync/atomic"
	"testing"
)

// BenchmarkAdd compares an Add on a word of a segment with one on an atomic.Int64 in
// the process's own memory, from one goroutine and from all.
func BenchmarkAdd(b *testing.B) {
	seg, _ := newSegment(b, 1)
	shared := seg.Backend(0).Inflight()
	local := new(atomic.Int64)
	for _, w := range []struct {
		name string
		word *atomic.Int64
	}{{"shared", shared}, {"local", local}} {
		b.Run(w.name, func(b *testing.B) {
			for b.Loop() {
				w.word.Add(1)
			}
		})
		b.Run(w.name+"-parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					w.word.Add(1)
				}
			})
		})
	}
}
