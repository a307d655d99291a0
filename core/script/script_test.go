package script

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-lb/switchyard/sdk"
)

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

// BenchmarkScriptPick is one pick over 3 backends on one goroutine, the interpreter's
// own cost: "minimal" only calls least(backends), "loop" is least connections written
// in Starlark (testdata/least.star).
func BenchmarkScriptPick(b *testing.B) {
	loop, err := os.ReadFile("testdata/least.star")
	if err != nil {
		b.Fatal(err)
	}
	for _, bench := range []struct{ name, src string }{
		{"minimal", "def pick(req, backends):\n    return least(backends)\n"},
		{"loop", string(loop)},
	} {
		b.Run(bench.name, func(b *testing.B) {
			s := configured(b, bench.src)
			bs := []sdk.Backend{{URL: "http://a:1", Weight: 1, Inflight: 3, QueueLength: -1}, {URL: "http://b:1", Weight: 2, Inflight: 1, QueueLength: 4}, {URL: "http://c:1", Weight: 1, QueueLength: -1}}
			req := &sdk.Request{Method: "GET", Path: "/"}
			b.ReportAllocs()
			for b.Loop() {
				if i, err := s.Pick(req, bs); err != nil || i != 2 {
					b.Fatalf("Pick = %d, %v, want 2", i, err)
				}
			}
		})
	}
}

func TestCheckRefusesWhatCannotPick(t *testing.T) {
	for _, tt := range []struct{ name, src, options, want string }{
		{"syntax", "def pick(req, backends)\n    return 0\n", "", "s.star:2:1: got newline, want ':'"},
		{"unresolved name", "def pick(req, backends):\n    return nope\n", "", "s.star:2:12: undefined: nope"},
		{"no pick", "def choose(req, backends):\n    return 0\n", "", "defines no function pick"},
		{"pick arity", "def pick(req):\n    return 0\n", "", "pick takes 1 parameters, want 2"},
		{"headers type", "HEADERS = \"X-User\"\ndef pick(req, backends):\n    return 0\n", "", "HEADERS is a string"},
		{"configure refuses", "def configure(o):\n    if not o:\n        fail(\"needs options\")\ndef pick(req, backends):\n    return 0\n", "null", "s.star:3:13: needs options"},
		{"top level error", "X = 1 // 0\ndef pick(req, backends):\n    return 0\n", "", "s.star:1:7: floored division by zero"},
		{"runaway top level", "X = [i for i in range(100000000)]\ndef pick(req, backends):\n    return 0\n", "", "too many steps"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Check("s.star", []byte(tt.src), []byte(tt.options))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Check = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestStateStaysMutableAndOptionsArrive(t *testing.T) {
	s := configured(t, `
S = state                       # a top-level reference: the module's globals freeze
def configure(options):
    state["step"] = (options or {}).get("step", 1)
def pick(req, backends):
    S["n"] = S.get("n", 0) + state["step"]
    return S["n"] % len(backends)
`)
	if err := s.Configure([]byte(`{"step": 2}`)); err != nil {
		t.Fatal(err)
	}
	bs := []sdk.Backend{{URL: "http://a:1"}, {URL: "http://b:1"}, {URL: "http://c:1"}}
	var got []int
	for range 4 {
		i, err := s.Pick(&sdk.Request{}, bs)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, i)
	}
	if fmt.Sprint(got) != "[2 1 0 2]" {
		t.Errorf("picks = %v, want [2 1 0 2] (n += 2 each time, kept in state)", got)
	}
}

func TestPickFailuresAreTold(t *testing.T) {
	bs := []sdk.Backend{{URL: "http://a:1"}, {URL: "http://b:1"}}
	declining := configured(t, "def pick(req, backends):\n    fail(\"no tenant\", 42)\n")
	if _, err := declining.Pick(&sdk.Request{}, bs); err == nil || err.Error() != "no tenant 42" {
		t.Errorf("fail() in pick = %v, want the error \"no tenant 42\" (a 503)", err)
	}
	for _, tt := range []struct{ name, src, want string }{
		{"out of range", "def pick(req, backends):\n    return 5\n", "pick returned 5 for 2 backends"},
		{"not an index", "def pick(req, backends):\n    return backends[0]\n", "pick returned backend, want an index"},
		{"runtime error", "def pick(req, backends):\n    return {}[\"x\"]\n", "s.star:2:14: key \"x\" not in dict"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := configured(t, tt.src)
			defer func() {
				if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), tt.want) {
					t.Errorf("Pick panicked with %v, want a message containing %q (a bad answer)", p, tt.want)
				}
			}()
			_, _ = s.Pick(&sdk.Request{}, bs)
		})
	}
}

func TestRequestAttributes(t *testing.T) {
	s := configured(t, `
HEADERS = ["X-User"]
def pick(req, backends):
    fail(req.method, req.host, req.path, req.remote_addr, req.pool, req.headers, dir(req))
`)
	bs := []sdk.Backend{{URL: "http://a:1"}, {URL: "http://b:1"}}
	for _, tt := range []struct {
		name, pool, want string
	}{
		{"a pool", "api", "GET example.com /x 10.0.0.1 api"},
		{"the default pool", "default", "GET example.com /x 10.0.0.1 default"},
		{"no pool from a core older than pools", "", "GET example.com /x 10.0.0.1 default"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := &sdk.Request{Method: "GET", Host: "example.com", Path: "/x", RemoteAddr: "10.0.0.1",
				Headers: map[string]string{"X-User": "ann"}, Pool: tt.pool}
			_, err := s.Pick(req, bs)
			want := tt.want + ` {"x-user": "ann"} ["headers", "host", "method", "path", "pool", "remote_addr"]`
			if err == nil || err.Error() != want {
				t.Errorf("req's attributes = %v\nwant %s", err, want)
			}
		})
	}
}
