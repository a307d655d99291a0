package config

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// watch starts a watcher on path (holding initial) for the test's lifetime.
func watch(t *testing.T, path string, initial []byte) *Watcher {
	t.Helper()
	w, err := Watch(path, initial)
	if err != nil {
		t.Fatal(err)
	}
	go w.Run(t.Context())
	return w
}

// expectOnce waits for exactly one change carrying want.
func expectOnce(t *testing.T, w *Watcher, want string) {
	t.Helper()
	select {
	case got := <-w.Changed:
		if string(got) != want {
			t.Fatalf("change = %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no change reported for %q", want)
	}
	select {
	case got := <-w.Changed:
		t.Fatalf("a second change %q for one save", got)
	case <-time.After(5 * Debounce):
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWatchSaveStyles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	write(t, path, "v0")
	w := watch(t, path, []byte("v0"))

	// In place: truncate, then write.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("v1")
	f.Close()
	expectOnce(t, w, "v1")

	// By rename over the file, as vim and most editors save.
	write(t, filepath.Join(dir, ".config.json.swp"), "v2")
	if err := os.Rename(filepath.Join(dir, ".config.json.swp"), path); err != nil {
		t.Fatal(err)
	}
	expectOnce(t, w, "v2")

	// A save that changes nothing is no change.
	write(t, path, "v2")
	select {
	case got := <-w.Changed:
		t.Fatalf("change %q reported for identical content", got)
	case <-time.After(5 * Debounce):
	}

	// Other files in the directory do not matter.
	write(t, filepath.Join(dir, "other.txt"), "x")
	select {
	case got := <-w.Changed:
		t.Fatalf("change %q reported for another file", got)
	case <-time.After(5 * Debounce):
	}
}

func TestWatchSymlinkSwap(t *testing.T) {
	// A Kubernetes ConfigMap volume: config.json -> ..data/config.json, and ..data is a
	// symlink to a timestamped directory that an update replaces atomically.
	dir := t.TempDir()
	version := func(name, content string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, name, "config.json"), content)
	}
	version("..2026_01", "v0")
	if err := os.Symlink("..2026_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.json")
	if err := os.Symlink(filepath.Join("..data", "config.json"), path); err != nil {
		t.Fatal(err)
	}
	w := watch(t, path, []byte("v0"))

	version("..2026_02", "v1")
	if err := os.Symlink("..2026_02", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	_ = os.RemoveAll(filepath.Join(dir, "..2026_01"))
	expectOnce(t, w, "v1")
}

// A file written every 20ms beside the config (an access log) does not hold a save
// back: each of the saves below, by rename over the file as editors and `sed -i` do,
// is reported within a second (DESIGN section 12).
func TestWatchSaveAppliesWhileTheDirectoryIsBusy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	write(t, path, "v0")
	w := watch(t, path, []byte("v0"))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		f, err := os.Create(filepath.Join(dir, "access.log"))
		if err != nil {
			return
		}
		defer f.Close()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				_, _ = f.WriteString("a line\n")
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	worst := time.Duration(0)
	for i := 1; i <= 5; i++ {
		want := fmt.Sprintf("v%d", i)
		tmp := filepath.Join(dir, ".config.json.tmp")
		write(t, tmp, want)
		start := time.Now()
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-w.Changed:
			if string(got) != want {
				t.Fatalf("change = %q, want %q", got, want)
			}
			worst = max(worst, time.Since(start))
		case <-time.After(5 * time.Second):
			t.Fatalf("save %d not reported after 5s while the directory is busy", i)
		}
	}
	t.Logf("worst time from save to report: %v", worst)
	if worst > 3*time.Second {
		t.Errorf("a save took %v to be reported, want about a second at most", worst)
	}
}

// A swap of a symlink the path goes through, not of the file's own link, is a change
// too: config.json -> current/config.json, then current pointed elsewhere.
func TestWatchIntermediateSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"a", "b"} {
		if err := os.Mkdir(filepath.Join(dir, v), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, v, "config.json"), v)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("a", filepath.Join(dir, "current")))
	path := filepath.Join(dir, "config.json")
	must(os.Symlink(filepath.Join("current", "config.json"), path))
	w := watch(t, path, []byte("a"))
	must(os.Symlink("b", filepath.Join(dir, "current.tmp")))
	must(os.Rename(filepath.Join(dir, "current.tmp"), filepath.Join(dir, "current")))
	expectOnce(t, w, "b")
}
