//go:build unix && (386 || amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x || arm.7)

package shm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Shared reports whether a segment is shared between processes on this system.
//
// Here a segment is a file mapped with MAP_SHARED: every process that maps it sees
// the same physical pages, and the atomic instructions that sync/atomic uses for
// 64-bit words on this architecture act on those pages, so they are atomic between
// processes as they are between goroutines.
const Shared = true

// mapping is a file mapped into memory.
type mapping struct {
	data []byte
	path string
	file os.FileInfo // the file mapped, to recognize it at removal
}

// create makes a file of size bytes beside path, maps it, lets init fill it, and
// renames it to path. Replacing rather than truncating matters: a process that has
// the old file mapped would crash (SIGBUS) on touching pages that a truncation
// removed.
func create(path string, size int, init func(data []byte)) (_ *mapping, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return nil, err
	}
	defer func() {
		f.Close() // the mapping outlives the descriptor
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	if err := f.Truncate(int64(size)); err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	init(data)
	if err := os.Rename(f.Name(), path); err != nil {
		unix.Munmap(data)
		return nil, err
	}
	return &mapping{data: data, path: path, file: fi}, nil
}

// open maps the whole file at path.
func open(path string) (*mapping, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("shm: %w", err)
	}
	defer f.Close() // the mapping outlives the descriptor
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("shm: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("shm: open %s: %w: not a regular file (%s)", path, ErrFormat, fi.Mode().Type())
	}
	if err := checkSize(path, fi.Size()); err != nil {
		return nil, err
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("shm: open %s: mmap: %w", path, err)
	}
	return &mapping{data: data, path: path, file: fi}, nil
}

// unmap unmaps the file and, when remove is set, removes it from its path if the
// path still names it.
func (m *mapping) unmap(remove bool) error {
	err := unix.Munmap(m.data)
	m.data = nil
	if remove {
		if fi, serr := os.Stat(m.path); serr == nil && os.SameFile(fi, m.file) {
			err = errors.Join(err, os.Remove(m.path))
		}
	}
	return err
}
