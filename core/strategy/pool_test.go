//go:build unix

package strategy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/plugins/leastconn"
)

// toldPool makes a pick over three candidates with p, whose strategy declines
// saying which pool it was told, and returns what it said.
func toldPool(t *testing.T, p Picker) string {
	t.Helper()
	_, err := p.Pick(&Request{Method: []byte("GET"), Path: []byte("/")}, candidates(t, 3), nil)
	if !errors.Is(err, ErrNoBackend) {
		t.Fatalf("Pick = %v, want the strategy to decline", err)
	}
	return err.Error()[strings.LastIndex(err.Error(), "pool "):]
}

func TestLocalTellsThePool(t *testing.T) {
	if got := toldPool(t, NewLocalFor("api", "pool", poolTeller{})); got != `pool "api"` {
		t.Errorf("NewLocalFor(api): the strategy was told %s, want pool \"api\"", got)
	}
	if got := toldPool(t, NewLocal("pool", poolTeller{})); got != `pool "default"` {
		t.Errorf("NewLocal: the strategy was told %s, want pool \"default\"", got)
	}
}

// TestPluginTellsThePool: a plugin process hears its pool once, at start, and its
// strategy sees it in each pick, on the core's channel and on a data-plane
// process's; the built-in pick that stands in for it sees it too.
func TestPluginTellsThePool(t *testing.T) {
	for _, tt := range []struct{ pool, want string }{
		{"api", `pool "api"`},
		{"", `pool "default"`},
	} {
		spec, err := selfSpec("pool", testStrategyEnv+"=pool")
		if err != nil {
			t.Fatal(err)
		}
		spec.Pool = tt.pool
		p := startSpec(t, spec)
		if got := toldPool(t, p); got != tt.want {
			t.Errorf("Spec.Pool %q: the plugin's strategy was told %s, want %s", tt.pool, got, tt.want)
		}
		if got := `pool "` + p.fallback.pool + `"`; got != tt.want {
			t.Errorf("Spec.Pool %q: the built-in pick is for %s, want %s", tt.pool, got, tt.want)
		}
		if st := p.Status(); st.Fallbacks != 0 || st.BadAnswers != 0 {
			t.Errorf("status = %+v, want the plugin to answer", st)
		}
	}

	spec, err := selfSpec("pool", testStrategyEnv+"=pool")
	if err != nil {
		t.Fatal(err)
	}
	spec.Pool = "api"
	ep, ok := startSpec(t, spec).Endpoint()
	if !ok || ep.Pool != "api" {
		t.Fatalf("Endpoint() = %+v, %v; want pool api", ep, ok)
	}
	attached := AttachFor("api", "pool", nil, nil)
	t.Cleanup(attached.Close)
	if err := attached.Connect(ep); err != nil {
		t.Fatal(err)
	}
	if got := toldPool(t, attached); got != `pool "api"` {
		t.Errorf("through an attached channel the strategy was told %s, want pool \"api\"", got)
	}
	other := AttachFor("static", "pool", nil, nil)
	t.Cleanup(other.Close)
	if err := other.Connect(ep); err == nil || !strings.Contains(err.Error(), `picks for pool "api", not "static"`) {
		t.Errorf("Connect of pool static's plugin to pool api's = %v, want it refused", err)
	}
}

// TestFallbackPickTellsThePool: the built-in pick that stands in for a plugin is a
// Local of the plugin's pool (leastconn schedules, so it is seldom asked; when it
// is, it sees the pool as TestLocalTellsThePool shows).
func TestFallbackPickTellsThePool(t *testing.T) {
	p := AttachFor("api", "leastconn", nil, nil) // no channel yet: every pick falls back
	t.Cleanup(p.Close)
	if b, err := p.Pick(&Request{}, candidates(t, 3), nil); b == nil || err != nil || p.Status().Fallbacks != 1 {
		t.Fatalf("Pick = %v, %v after %d fallbacks; want the built-in pick", b, err, p.Status().Fallbacks)
	}
	if p.fallback.pool != "api" {
		t.Errorf("AttachFor(api): the built-in pick is for pool %q, want api", p.fallback.pool)
	}
	if _, ok := p.fallback.s.(*leastconn.Strategy); !ok {
		t.Errorf("the built-in pick is %T, want leastconn", p.fallback.s)
	}
	a := Attach("leastconn", nil, nil)
	t.Cleanup(a.Close)
	if a.fallback.pool != "default" {
		t.Errorf("Attach: the built-in pick is for pool %q, want default", a.fallback.pool)
	}
}

func TestScriptPluginTellsThePool(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pool.star")
	if err := os.WriteFile(path, []byte("def pick(req, backends):\n    fail(\"pool %r\" % req.pool)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := ScriptSpec("pool", path)
	if err != nil {
		t.Fatal(err)
	}
	spec.Pool, spec.RuntimeDir, spec.Log = "api", t.TempDir(), hclog.NewNullLogger()
	p := startSpec(t, spec)
	if got := toldPool(t, p); got != `pool "api"` {
		t.Errorf("the script was told %s, want pool \"api\"", got)
	}
}
