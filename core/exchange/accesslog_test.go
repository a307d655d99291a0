package exchange

import (
	"bytes"
	"encoding/json"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestAccessLogLines(t *testing.T) {
	e := &entry{start: time.Date(2026, 11, 25, 17, 1, 2, 0, time.UTC), client: []byte("127.0.0.1"), method: []byte("GET"),
		path: []byte("/a\"b\\c\x01\xff?q=1"), proto: "HTTP/2.0", status: 200, backend: "http://127.0.0.1:8081", pool: "api", in: 5, out: 74,
		duration: 10512 * time.Microsecond, attempts: 2}

	var js bytes.Buffer
	write(&js, true, e)
	var got map[string]any
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatalf("JSON line %q: %v", js.String(), err)
	}
	if got["path"] != "/a\"b\\c\x01\ufffd?q=1" || got["status"] != 200.0 || got["backend"] != "http://127.0.0.1:8081" || got["pool"] != "api" || got["protocol"] != "HTTP/2.0" ||
		got["attempts"] != 2.0 || got["duration_ms"] != 10.512 || got["time"] != "2026-11-25T17:01:02Z" {
		t.Errorf("JSON line = %v", got)
	}

	var lf bytes.Buffer
	write(&lf, false, e)
	want := `time=2026-11-25T17:01:02Z client=127.0.0.1 method="GET" path="/a\"b\\c\u0001\ufffd?q=1" protocol=HTTP/2.0 status=200 backend=http://127.0.0.1:8081 pool=api bytes_in=5 bytes_out=74 duration=10.512ms attempts=2` + "\n"
	if lf.String() != want {
		t.Errorf("logfmt line =\n%s want\n%s", lf.String(), want)
	}
	e.backend, e.pool = "", ""
	lf.Reset()
	write(&lf, false, e)
	if !strings.Contains(lf.String(), " backend=- pool=- ") {
		t.Errorf("a proxy-made answer's line %q, want backend=- pool=-", lf.String())
	}
}

func TestAccessLogSetWriterLosesAndTearsNoLine(t *testing.T) {
	var before, after bytes.Buffer
	l := NewAccessLog(&before, false)
	e := entry{start: time.Now(), client: []byte("127.0.0.1"), method: []byte("POST"), path: []byte("/requests"),
		status: 200, backend: "http://127.0.0.1:8081", out: 74, duration: time.Millisecond, attempts: 1}
	const writers, lines = 8, 2000
	var wg sync.WaitGroup
	var written atomic.Int64
	for range writers {
		wg.Go(func() {
			e := e
			for range lines {
				l.write(&e)
				written.Add(1)
			}
		})
	}
	for written.Load() < writers*lines/2 { // switch in the middle of the stream
		runtime.Gosched()
	}
	if !l.SetWriter(&after) {
		t.Fatal("SetWriter on an open log = false")
	}
	n := strings.Count(before.String(), "\n") // the previous writer is ours again
	if n < writers*lines/2 {
		t.Errorf("%d lines in the previous writer after SetWriter, want the %d written before at least", n, writers*lines/2)
	}
	l.write(&e)
	wg.Wait()
	l.Close()
	if l.SetWriter(io.Discard) {
		t.Error("SetWriter on a closed log = true")
	}
	if got, want := n+strings.Count(after.String(), "\n"), writers*lines+1; got != want {
		t.Errorf("%d lines in both writers, want %d", got, want)
	}
	for _, b := range []*bytes.Buffer{&before, &after} {
		for line := range strings.Lines(b.String()) {
			if !strings.HasPrefix(line, "time=") || !strings.HasSuffix(line, "attempts=1\n") {
				t.Fatalf("torn line %q", line)
			}
		}
	}
}

// write writes e through a new access log on w, and closes it.
func write(w *bytes.Buffer, asJSON bool, e *entry) {
	l := NewAccessLog(w, asJSON)
	l.write(e)
	l.Close()
}

// BenchmarkAccessLogLine is one request's line, from 64 goroutines at once.
func BenchmarkAccessLogLine(b *testing.B) {
	l := NewAccessLog(io.Discard, false)
	defer l.Close()
	e := entry{start: time.Now(), client: []byte("127.0.0.1"), method: []byte("POST"), path: []byte("/requests"),
		status: 200, backend: "http://127.0.0.1:8081", out: 74, duration: time.Millisecond, attempts: 1}
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		e := e
		for pb.Next() {
			l.write(&e)
		}
	})
}
