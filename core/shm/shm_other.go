//go:build !(unix && (386 || amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x || arm.7))

package shm

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"unsafe"
)

// Shared reports whether a segment is shared between processes on this system.
//
// Here it is not: either the system has no mapping of a file that this package uses,
// or Go makes 64-bit atomic operations on this architecture with a lock of its own
// process, which other processes would not take. A segment lives in the memory of
// the process that created it, and the load balancer runs one process.
const Shared = false

// segments holds the segments this process created, by absolute path, for Open.
var segments struct {
	mu sync.Mutex
	m  map[string]*mapping
}

// mapping is a segment's memory in this process.
type mapping struct {
	data []byte
	key  string // the entry in segments
}

// create allocates size bytes, starting on a 128-byte boundary, lets init fill them,
// and registers them under path.
func create(path string, size int, init func(data []byte)) (*mapping, error) {
	words := make([]uint64, (size+lineSize)/8)
	skip := (lineSize - uintptr(unsafe.Pointer(&words[0]))%lineSize) % lineSize
	data := unsafe.Slice((*byte)(unsafe.Pointer(&words[skip/8])), size)
	init(data)
	m := &mapping{data: data, key: key(path)}
	segments.mu.Lock()
	defer segments.mu.Unlock()
	if segments.m == nil {
		segments.m = make(map[string]*mapping)
	}
	segments.m[m.key] = m
	return m, nil
}

// open finds the segment this process created at path.
func open(path string) (*mapping, error) {
	segments.mu.Lock()
	m := segments.m[key(path)]
	segments.mu.Unlock()
	if m == nil {
		return nil, fmt.Errorf("shm: open %s: no segment of this process has that path, and on %s/%s segments are not shared between processes: %w",
			path, runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
	}
	return &mapping{data: m.data}, nil
}

// unmap forgets the memory; when remove is set, Open no longer finds it either.
func (m *mapping) unmap(remove bool) error {
	if remove {
		segments.mu.Lock()
		if segments.m[m.key] == m {
			delete(segments.m, m.key)
		}
		segments.mu.Unlock()
	}
	m.data = nil
	return nil
}

// key returns the registry key of path.
func key(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return filepath.Clean(path)
}
