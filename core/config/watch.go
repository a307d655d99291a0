package config

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Debounce is how long a watcher waits after the last event of a burst before it reads
// the file: one save by an editor is several events.
const Debounce = 100 * time.Millisecond

// MaxDelay bounds how long a burst of events about the file can put its read off: a
// file written without a pause of Debounce is still read (DESIGN section 12).
const MaxDelay = 500 * time.Millisecond

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
	// names are the base names whose events concern the file: its own, and that of
	// the file a symlink leads to. Events about other files in the watched
	// directories (an access log beside the config) are not waited for.
	names map[string]bool
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
	w := &Watcher{path: path, w: fw, last: content, dirs: map[string]bool{}, names: map[string]bool{},
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
	w.names[filepath.Base(w.path)] = true
	if real, err := filepath.EvalSymlinks(w.path); err == nil {
		dirs = append(dirs, filepath.Dir(real))
		w.names[filepath.Base(real)] = true
	}
	// Each name along the symlinks the path goes through: a swap of one of them
	// (config.json -> current/config.json, then current replaced) is a change.
	p := w.path
	for range 16 {
		target, err := os.Readlink(p)
		if err != nil {
			break
		}
		for _, part := range strings.Split(filepath.ToSlash(target), "/") {
			if part != "" && part != "." && part != ".." {
				w.names[part] = true
			}
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		p = target
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
	var burst time.Time // when the pending burst's first event came; zero: none
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.w.Events:
			if !ok {
				return
			}
			if !w.concerns(ev.Name) {
				continue
			}
			// Read after the burst, but no later than MaxDelay after it began.
			now := time.Now()
			if burst.IsZero() {
				burst = now
			}
			timer.Reset(max(0, min(Debounce, burst.Add(MaxDelay).Sub(now))))
		case err, ok := <-w.w.Errors:
			if !ok {
				return
			}
			w.report(err)
		case <-timer.C:
			burst = time.Time{}
			w.check(ctx)
		}
	}
}

// concerns reports whether an event about name may change the file: one about the
// file itself, the file a symlink leads to, or the hidden "..data" links and
// directories through which a Kubernetes ConfigMap volume swaps its files.
func (w *Watcher) concerns(name string) bool {
	base := filepath.Base(name)
	return w.names[base] || strings.HasPrefix(base, "..")
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
