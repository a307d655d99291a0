package script

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard-lb/switchyard/sdk"
)

// leastScript is least-connections written in Starlark, as a user would write it.
const leastScript = `
def pick(req, backends):
    best, best_queued = 0, None
    for i, b in enumerate(backends):
        queued = (b.inflight + max(b.queue_length, 0)) * 1000 // b.weight
        if best_queued == None or queued < best_queued:
            best, best_queued = i, queued
    return best
`

// configured returns the strategy of src, loaded.
func configured(tb testing.TB, src string) *Strategy {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "s.star")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		tb.Fatal(err)
	}
	s := New(path)
	if err := s.Configure([]byte("null")); err != nil {
		tb.Fatal(err)
	}
	return s
}

// BenchmarkScriptPick is one pick of least-connections in Starlark over 3 backends,
// on one goroutine: the interpreter's own cost.
func BenchmarkScriptPick(b *testing.B) {
	s := configured(b, leastScript)
	bs := []sdk.Backend{{URL: "http://a:1", Weight: 1, Inflight: 3, QueueLength: -1}, {URL: "http://b:1", Weight: 2, Inflight: 1, QueueLength: 4}, {URL: "http://c:1", Weight: 1, QueueLength: -1}}
	req := &sdk.Request{Method: "GET", Path: "/"}
	b.ReportAllocs()
	for b.Loop() {
		if i, err := s.Pick(req, bs); err != nil || i != 2 {
			b.Fatalf("Pick = %d, %v, want 2", i, err)
		}
	}
}

// BenchmarkScriptPickMinimal is the cost of calling a script at all: a pick that
// returns least(backends).
func BenchmarkScriptPickMinimal(b *testing.B) {
	s := configured(b, "def pick(req, backends):\n    return least(backends)\n")
	bs := []sdk.Backend{{URL: "http://a:1", Weight: 1, Inflight: 3, QueueLength: -1}, {URL: "http://b:1", Weight: 2, Inflight: 1, QueueLength: 4}, {URL: "http://c:1", Weight: 1, QueueLength: -1}}
	req := &sdk.Request{Method: "GET", Path: "/"}
	b.ReportAllocs()
	for b.Loop() {
		if i, err := s.Pick(req, bs); err != nil || i != 2 {
			b.Fatalf("Pick = %d, %v, want 2", i, err)
		}
	}
}
