package config

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Debounce is how long a watcher waits after the last event of a burst before it reads
// the file: one save by an editor is several events.
const Debounce = 100 * time.Millisecond

// Watcher reports each change of a file's content once, however it was saved: in
// place, by truncate-and-write, by rename over it (vim and most editors), or by a
// symlink swap (a Kubernetes ConfigMap mount). It watches the file's directory, and
// the directory of the file a symlink leads to, since a renamed-over file is a new
// file that a watch on the old one would never see.
type Watcher struct {
	path string
	w    *fsnotify.Watcher
	last []byte // the content last reported, or read at start
	dirs map[string]bool
	// Changed receives the new content after each change.
	Changed chan []byte
	// Errors receives the watcher's own failures (not the file's content errors).
	Errors chan error
}

// Watch starts watching path; content is what the caller has already applied, so a
// change is only reported when the file differs from it.
func Watch(path string, content []byte) (*Watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watching %s: %w", path, err)
	}
	w := &Watcher{path: path, w: fw, last: content, dirs: map[string]bool{},
		Changed: make(chan []byte, 1), Errors: make(chan error, 1)}
	if err := w.watchDirs(); err != nil {
		fw.Close()
		return nil, err
	}
	return w, nil
}

// watchDirs watches the directory of path and of the file it resolves to.
func (w *Watcher) watchDirs() error {
	dirs := []string{filepath.Dir(w.path)}
	if real, err := filepath.EvalSymlinks(w.path); err == nil {
		dirs = append(dirs, filepath.Dir(real))
	}
	for _, d := range dirs {
		if w.dirs[d] {
			continue
		}
		if err := w.w.Add(d); err != nil {
			return fmt.Errorf("watching %s: %w", d, err)
		}
		w.dirs[d] = true
	}
	return nil
}

// Run delivers changes until ctx is done, then closes the watcher.
func (w *Watcher) Run(ctx context.Context) {
	defer w.w.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-w.w.Events:
			if !ok {
				return
			}
			timer.Reset(Debounce) // any event in the directory: read after the burst
		case err, ok := <-w.w.Errors:
			if !ok {
				return
			}
			w.report(err)
		case <-timer.C:
			w.check(ctx)
		}
	}
}

// Check reads the file now and reports it if it changed (for SIGHUP).
func (w *Watcher) check(ctx context.Context) {
	if err := w.watchDirs(); err != nil { // a symlink may lead somewhere new
		w.report(err)
	}
	data, err := os.ReadFile(w.path)
	if err != nil {
		return // mid-save (renamed away, not yet back): the next event reads it
	}
	if bytes.Equal(data, w.last) {
		return
	}
	w.last = data
	select {
	case w.Changed <- data:
	case <-ctx.Done():
	}
}

func (w *Watcher) report(err error) {
	select {
	case w.Errors <- err:
	default:
	}
}
