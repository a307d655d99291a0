package status

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/pool"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// testPool sizes the pool of newSource.
var testPool = pool.Config{MinWorkers: 2, MaxWorkers: 8, QueueCapacity: 10, QueueTimeout: time.Second}

// newSource returns a Source over a real backend set of backends, as core/lb builds
// one: its strategy reports strat, its Controller works on the set (see controller).
func newSource(t *testing.T, strat strategy.Status, backends ...config.Backend) *Source {
	t.Helper()
	set := backend.NewSet()
	set.Update(backends)
	return &Source{Pool: pool.New(testPool), Backends: set, Strategy: func() strategy.Status { return strat },
		Own: &backend.Answers{}, Control: controller{[]*backend.Set{set}}, Version: "v1.2.3"}
}

// urls makes a config.Backend of weight 1 of each URL.
func urls(us ...string) []config.Backend {
	out := make([]config.Backend, len(us))
	for i, u := range us {
		out[i] = config.Backend{URL: u, Weight: 1}
	}
	return out
}

// byURL is the backend of s with url; it fails t when there is none.
func byURL(t *testing.T, s *Source, url string) *backend.Backend {
	t.Helper()
	for _, b := range s.Backends.Snapshot().All {
		if b.URL == url {
			return b
		}
	}
	t.Fatalf("no backend %s in the set", url)
	return nil
}

// decode unmarshals s's status JSON into v; it fails t when the JSON is not valid.
func decode(t *testing.T, s *Source, v any) {
	t.Helper()
	out := s.JSON()
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("JSON() = %s: %v", out, err)
	}
}

func TestStatusJSONFields(t *testing.T) {
	const a, b = "http://127.0.0.1:8081", "http://127.0.0.1:8082"
	strat := strategy.Status{Name: "leastconn", State: "running", PID: 4242, Fallbacks: 3}
	s := newSource(t, strat, config.Backend{URL: a, Weight: 2}, config.Backend{URL: b, Weight: 1})
	loaded := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	s.SetConfig(Config{Path: "config.json", Generation: 3, LoadedAt: loaded})

	// Traffic through a: three requests, one failed, one still in flight.
	ba := byURL(t, s, a)
	for range 4 {
		ba.Start()
	}
	ba.Finish(10*time.Millisecond, false)
	ba.Finish(10*time.Millisecond, false)
	ba.Finish(10*time.Millisecond, true)
	ba.Answers.Add(200, 10*time.Millisecond)
	ba.Answers.Add(200, 10*time.Millisecond)
	ba.Answers.Add(502, 10*time.Millisecond)
	ba.Answers.AddBytes(100, 2000)
	ba.SetLastCheck(backend.Check{At: loaded, Took: 1500 * time.Microsecond, OK: true})
	// b fails its checks; the proxy sheds one request on its own.
	byURL(t, s, b).SetUp(false, "active: 2 checks in a row failed", "connection refused")
	s.Own.Add(503, time.Millisecond)
	s.Own.AddBytes(0, 50)

	// Every top-level field of DESIGN section 9 is there, discovery only when
	// configured.
	var keys map[string]json.RawMessage
	decode(t, s, &keys)
	for _, k := range []string{"strategy", "pool", "backends", "config", "listeners", "process", "totals", "pools"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("status JSON lacks %q: %s", k, s.JSON())
		}
	}
	if _, ok := keys["discovery"]; ok {
		t.Errorf("status JSON has discovery without discovery configured: %s", keys["discovery"])
	}

	var st Status
	decode(t, s, &st)
	if st.Strategy.Name != strat.Name || st.Strategy.State != strat.State || st.Strategy.PID != strat.PID || st.Strategy.Fallbacks != strat.Fallbacks {
		t.Errorf("strategy = %+v, want %+v", st.Strategy, strat)
	}
	if p := st.Pool; p.Workers != testPool.MinWorkers || p.MaxWorkers != testPool.MaxWorkers || p.QueueCapacity != testPool.QueueCapacity {
		t.Errorf("pool = %+v, want %d workers of %d, queue capacity %d", p, testPool.MinWorkers, testPool.MaxWorkers, testPool.QueueCapacity)
	}
	if c := st.Config; c.Path != "config.json" || c.Generation != 3 || !c.LoadedAt.Equal(loaded) || c.LastError != "" {
		t.Errorf("config = %+v, want path config.json, generation 3, loaded at %v, no error", c, loaded)
	}
	if p := st.Process; p.Version != s.Version || p.PID == 0 || p.StartedAt.IsZero() {
		t.Errorf("process = %+v, want version %s, a pid and a start time", p, s.Version)
	}

	var got []string
	for _, e := range st.Backends {
		got = append(got, e.URL)
	}
	if !slices.Equal(got, []string{a, b}) {
		t.Fatalf("backends = %v, want [%s %s] in config order", got, a, b)
	}
	ea, eb := st.Backends[0], st.Backends[1]
	if ea.Pool != backend.DefaultPool || len(st.Pools) != 1 || st.Pools[0].Name != backend.DefaultPool || len(st.Pools[0].Backends) != 2 {
		t.Errorf("backend a in pool %q, pools %+v; want one pool, default, with a and b", ea.Pool, st.Pools)
	}
	if !ea.Healthy || ea.State != backend.StateUp || ea.Weight != 2 || ea.Source != "config" {
		t.Errorf("backend a = healthy %v, state %q, weight %d, source %q; want true, up, 2, config", ea.Healthy, ea.State, ea.Weight, ea.Source)
	}
	if ea.Requests != 4 || ea.Failures != 1 || ea.Inflight != 1 {
		t.Errorf("backend a = %d requests, %d failures, %d in flight; want 4, 1, 1", ea.Requests, ea.Failures, ea.Inflight)
	}
	if ea.Answers.Success != 2 || ea.Answers.ServerError != 1 || ea.BytesIn != 100 || ea.BytesOut != 2000 {
		t.Errorf("backend a answers = %+v, bytes %d in %d out; want 2 2xx, 1 5xx, 100 in, 2000 out", ea.Answers, ea.BytesIn, ea.BytesOut)
	}
	if ea.Check == nil || !ea.Check.OK || ea.Check.DurationMs != 1.5 || !ea.Check.At.Equal(loaded) {
		t.Errorf("backend a check = %+v, want ok in 1.5 ms at %v", ea.Check, loaded)
	}
	if eb.Healthy || eb.State != backend.StateDown || eb.Reason != "active: 2 checks in a row failed" || eb.LastError != "connection refused" || eb.Check != nil {
		t.Errorf("backend b = healthy %v, state %q, reason %q, last error %q, check %v; want a down backend with no check yet",
			eb.Healthy, eb.State, eb.Reason, eb.LastError, eb.Check)
	}

	// Totals add the backends' answers and the proxy's own.
	tot := st.Totals
	if tot.Answers.Success != 2 || tot.Answers.ServerError != 2 || tot.OwnAnswers.ServerError != 1 || tot.OwnAnswers.Success != 0 {
		t.Errorf("totals = %+v, want 2 2xx and 2 5xx, of which 1 5xx own", tot)
	}
	if tot.BytesIn != 100 || tot.BytesOut != 2050 {
		t.Errorf("totals bytes = %d in, %d out; want 100, 2050", tot.BytesIn, tot.BytesOut)
	}
}

// listenersJSON is the "listeners" value of s's status JSON, compacted.
func listenersJSON(t *testing.T, s *Source) string {
	t.Helper()
	var st struct {
		Listeners json.RawMessage `json:"listeners"`
	}
	decode(t, s, &st)
	var buf bytes.Buffer
	if err := json.Compact(&buf, st.Listeners); err != nil {
		t.Fatalf("compacting listeners %s: %v", st.Listeners, err)
	}
	return buf.String()
}

func TestStatusListeners(t *testing.T) {
	plain := Listener{Addr: "127.0.0.1:8080", Front: "eventloop"}
	tls := Listener{Addr: "127.0.0.1:8443", Front: "nethttp", TLS: true, Protocols: []string{"h2", "http/1.1"},
		Certificates: []Certificate{{Names: []string{"lb.example.com", "*.example.com"}, Issuer: "Test CA",
			NotAfter: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}}}
	for _, tc := range []struct {
		name string
		sets [][]Listener // the calls of SetListeners, in order
		want string
	}{
		{name: "none set", want: `[]`},
		{name: "set to nil", sets: [][]Listener{nil}, want: `[]`},
		{name: "plaintext", sets: [][]Listener{{plain}}, want: `[{"addr":"127.0.0.1:8080","front":"eventloop"}]`},
		{name: "plaintext first, then TLS", sets: [][]Listener{{plain, tls}},
			want: `[{"addr":"127.0.0.1:8080","front":"eventloop"},` +
				`{"addr":"127.0.0.1:8443","front":"nethttp","tls":true,"protocols":["h2","http/1.1"],` +
				`"certificates":[{"names":["lb.example.com","*.example.com"],"issuer":"Test CA","not_after":"2030-01-02T03:04:05Z"}]}]`},
		{name: "replaced", sets: [][]Listener{{plain}, {{Addr: "127.0.0.1:9090", Front: "nethttp"}}},
			want: `[{"addr":"127.0.0.1:9090","front":"nethttp"}]`},
		{name: "removed", sets: [][]Listener{{plain}, {}}, want: `[]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSource(t, strategy.Status{}, urls("http://127.0.0.1:8081")...)
			for _, ls := range tc.sets {
				s.SetListeners(ls)
			}
			if got := listenersJSON(t, s); got != tc.want {
				t.Errorf("listeners = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSetListenersCopies(t *testing.T) {
	s := newSource(t, strategy.Status{})
	ls := []Listener{{Addr: "127.0.0.1:8080", Front: "eventloop"}}
	s.SetListeners(ls)
	ls[0].Addr = "changed:1"
	st := s.Status()
	st.Listeners[0].Addr = "changed:2"
	if got := s.Status().Listeners; len(got) != 1 || got[0].Addr != "127.0.0.1:8080" {
		t.Errorf("Status().Listeners = %+v after changing the slices set and read, want the address set", got)
	}
}

// TestSetListenersWhileServing replaces the listeners while clients read the status:
// each answer shows one whole set, never a mix (and -race sees no race).
func TestSetListenersWhileServing(t *testing.T) {
	s := newSource(t, strategy.Status{}, urls("http://127.0.0.1:8081")...)
	one := []Listener{{Addr: "127.0.0.1:8080", Front: "eventloop"}}
	two := []Listener{{Addr: "127.0.0.1:9090", Front: "nethttp"}, {Addr: "127.0.0.1:9443", Front: "nethttp", TLS: true}}
	srv := httptest.NewServer(AdminHandler(s))
	t.Cleanup(srv.Close)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				s.SetListeners(one)
			} else {
				s.SetListeners(two)
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			for range 50 {
				resp, err := http.Get(srv.URL + "/status")
				if err != nil {
					t.Error(err)
					return
				}
				var st Status
				err = json.NewDecoder(resp.Body).Decode(&st)
				resp.Body.Close()
				switch {
				case err != nil:
					t.Errorf("decoding GET /status: %v", err)
					return
				case st.Listeners == nil:
					t.Error("GET /status has listeners null")
				case len(st.Listeners) > 0 && !slices.EqualFunc(st.Listeners, one, listenerEqual) && !slices.EqualFunc(st.Listeners, two, listenerEqual):
					t.Errorf("GET /status listeners = %+v, want %+v or %+v", st.Listeners, one, two)
				}
			}
		})
	}
	for range 100 {
		s.Status() // a reader in-process too
	}
	close(stop)
	wg.Wait()
}

// listenerEqual compares the fields that TestSetListenersWhileServing sets.
func listenerEqual(a, b Listener) bool {
	return a.Addr == b.Addr && a.Front == b.Front && a.TLS == b.TLS
}

func TestStatusConfigLastError(t *testing.T) {
	for _, tc := range []struct {
		name      string
		edit      []string // SetLastError calls, in order
		script    string   // SetScriptError
		wantError string
	}{
		{name: "none", wantError: ""},
		{name: "refused edit", edit: []string{"config.json:3:5: unknown key"}, wantError: "config.json:3:5: unknown key"},
		{name: "refused script", script: "pick.star:1: syntax error", wantError: "pick.star:1: syntax error"},
		{name: "the edit's shows over the script's", edit: []string{"bad edit"}, script: "bad script", wantError: "bad edit"},
		{name: "a good edit clears the edit's", edit: []string{"bad edit", ""}, wantError: ""},
		{name: "the script's shows once the edit's clears", edit: []string{"bad edit", ""}, script: "bad script", wantError: "bad script"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSource(t, strategy.Status{})
			s.SetConfig(Config{Path: "config.json", Generation: 1})
			for _, e := range tc.edit {
				s.SetLastError(e)
			}
			s.SetScriptError(tc.script)
			var st Status
			decode(t, s, &st)
			if st.Config.LastError != tc.wantError || st.Config.Generation != 1 {
				t.Errorf("config = %+v, want last_error %q at generation 1", st.Config, tc.wantError)
			}
		})
	}
}

func TestStatusOptionalParts(t *testing.T) {
	resolved := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		set         func(*Source)
		discovery   string // the record shown, "" for no "discovery"
		pendingName string // the strategy pending, "" for no "pending"
	}{
		{name: "none", set: func(*Source) {}},
		{name: "discovery", set: func(s *Source) {
			s.SetDiscovery(&Discovery{Record: "_http._tcp.api.internal", ResolvedAt: resolved, Backends: 2, Lookups: Lookups{OK: 1}})
		}, discovery: "_http._tcp.api.internal"},
		{name: "discovery turned off", set: func(s *Source) {
			s.SetDiscovery(&Discovery{Record: "api.internal"})
			s.SetDiscovery(nil)
		}},
		{name: "pending strategy", set: func(s *Source) {
			s.SetPendingStrategy(&strategy.Pending{Name: "weighted", Since: resolved, Reason: "waiting for the plugin"})
		}, pendingName: "weighted"},
		{name: "pending strategy done", set: func(s *Source) {
			s.SetPendingStrategy(&strategy.Pending{Name: "weighted"})
			s.SetPendingStrategy(nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSource(t, strategy.Status{Name: "leastconn", State: "running"})
			tc.set(s)
			var st struct {
				Strategy struct {
					Pending *strategy.Pending `json:"pending"`
				} `json:"strategy"`
				Discovery *Discovery `json:"discovery"`
			}
			decode(t, s, &st)
			switch {
			case tc.discovery == "" && st.Discovery != nil:
				t.Errorf("discovery = %+v, want none", st.Discovery)
			case tc.discovery != "" && (st.Discovery == nil || st.Discovery.Record != tc.discovery):
				t.Errorf("discovery = %+v, want record %s", st.Discovery, tc.discovery)
			}
			switch {
			case tc.pendingName == "" && st.Strategy.Pending != nil:
				t.Errorf("strategy.pending = %+v, want none", st.Strategy.Pending)
			case tc.pendingName != "" && (st.Strategy.Pending == nil || st.Strategy.Pending.Name != tc.pendingName):
				t.Errorf("strategy.pending = %+v, want %s", st.Strategy.Pending, tc.pendingName)
			}
		})
	}
}

// The backends of newPoolsSource: a is in both pools.
const poolA, poolB, poolC = "http://127.0.0.1:8081", "http://127.0.0.1:8082", "http://127.0.0.1:8083"

// newPoolsSource returns a Source of two pools, as core/lb builds one: default (a
// and b, strategy leastconn, no discovery) and api (a and c, strategy weighted, DNS
// discovery). Its Controller works on both sets.
func newPoolsSource(t *testing.T) *Source {
	t.Helper()
	s := newSource(t, strategy.Status{Name: "leastconn", State: "running", Fallbacks: 1}, urls(poolA, poolB)...)
	api := backend.NewPoolSet("api", nil)
	api.Update([]config.Backend{{URL: poolA, Weight: 5}, {URL: poolC, Weight: 1}})
	apiDiscovery := &Discovery{Record: "_http._tcp.api.internal", Backends: 2, Lookups: Lookups{OK: 3}}
	s.Pools = func() []PoolSource {
		return []PoolSource{
			{Name: backend.DefaultPool, Backends: s.Backends, Strategy: s.Strategy},
			{Name: "api", Backends: api, Strategy: func() strategy.Status {
				return strategy.Status{Name: "weighted", State: "running", Fallbacks: 4, Restarts: 1}
			}, Discovery: func() *Discovery { return apiDiscovery }},
		}
	}
	s.Control = controller{[]*backend.Set{s.Backends, api}}
	return s
}

// poolBackend is the backend of s's pool with url; it fails t when there is none.
func poolBackend(t *testing.T, s *Source, pool, url string) *backend.Backend {
	t.Helper()
	for _, p := range s.poolSources(nil) {
		if p.Name != pool {
			continue
		}
		for _, b := range p.Backends.Snapshot().All {
			if b.URL == url {
				return b
			}
		}
	}
	t.Fatalf("no backend %s in pool %s", url, pool)
	return nil
}

// poolEntries lists the pool, URL and requests of each backend entry of ps.
func poolEntries(ps []Pool) []string {
	var out []string
	for _, p := range ps {
		for _, b := range p.Backends {
			out = append(out, fmt.Sprintf("%s/%s %s %d", p.Name, b.Pool, b.URL, b.Requests))
		}
	}
	return out
}

func TestStatusPools(t *testing.T) {
	s := newPoolsSource(t)
	for range 2 {
		poolBackend(t, s, "default", poolA).Start()
	}
	for range 5 {
		poolBackend(t, s, "api", poolA).Start()
	}
	poolBackend(t, s, "api", poolA).Answers.Add(200, time.Millisecond)
	poolBackend(t, s, "default", poolB).Answers.Add(500, time.Millisecond)
	s.SetDiscovery(&Discovery{Record: "default.internal"})
	s.SetPendingStrategy(&strategy.Pending{Name: "roundrobin"})

	var st Status
	decode(t, s, &st)
	want := []string{
		"default/default " + poolA + " 2", "default/default " + poolB + " 0",
		"api/api " + poolA + " 5", "api/api " + poolC + " 0",
	}
	if got := poolEntries(st.Pools); !slices.Equal(got, want) {
		t.Errorf("pools = %q, want %q", got, want)
	}
	// The top level is the default pool.
	if got := poolEntries([]Pool{{Name: "default", Backends: st.Backends}}); !slices.Equal(got, want[:2]) {
		t.Errorf("backends = %q, want the default pool's %q", got, want[:2])
	}
	if st.Strategy.Name != "leastconn" || st.Discovery == nil || st.Discovery.Record != "default.internal" {
		t.Errorf("top level strategy %q, discovery %+v; want the default pool's, leastconn and default.internal", st.Strategy.Name, st.Discovery)
	}
	def, api := st.Pools[0], st.Pools[1]
	if def.Strategy.Name != "leastconn" || def.Discovery == nil || def.Discovery.Record != "default.internal" {
		t.Errorf("pool default: strategy %q, discovery %+v; want leastconn and default.internal", def.Strategy.Name, def.Discovery)
	}
	if def.Strategy.Pending == nil || st.Strategy.Pending == nil || api.Strategy.Pending != nil {
		t.Errorf("strategy.pending = %v at the top, %v in default, %v in api; want the one set in default only",
			st.Strategy.Pending, def.Strategy.Pending, api.Strategy.Pending)
	}
	if api.Strategy.Name != "weighted" || api.Strategy.Fallbacks != 4 || api.Discovery == nil || api.Discovery.Record != "_http._tcp.api.internal" {
		t.Errorf("pool api: strategy %+v, discovery %+v; want weighted with 4 fallbacks and _http._tcp.api.internal", api.Strategy, api.Discovery)
	}
	if w := api.Backends[0].Weight; w != 5 {
		t.Errorf("pool api backend %s weight = %d, want its own, 5", poolA, w)
	}
	// Totals count every pool's backends once.
	if tot := st.Totals.Answers; tot.Success != 1 || tot.ServerError != 1 {
		t.Errorf("totals = %+v, want the 2xx of api and the 5xx of default", tot)
	}
}

// TestStatusPoolsJSON checks the shape of "pools": each entry as the top level, with
// discovery only when the pool has one; and "pools" there with one pool too.
func TestStatusPoolsJSON(t *testing.T) {
	for _, tc := range []struct {
		name   string
		source func(*testing.T) *Source
		want   []string // the keys of each pool entry
	}{
		{name: "one pool", source: func(t *testing.T) *Source { return newSource(t, strategy.Status{}, urls(poolA)...) },
			want: []string{"backends name strategy"}},
		{name: "two pools", source: newPoolsSource,
			want: []string{"backends name strategy", "backends discovery name strategy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var st struct {
				Pools []map[string]json.RawMessage `json:"pools"`
			}
			decode(t, tc.source(t), &st)
			var got []string
			for _, p := range st.Pools {
				keys := slices.Sorted(maps.Keys(p))
				got = append(got, strings.Join(keys, " "))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("pools have keys %q, want %q", got, tc.want)
			}
			if len(st.Pools) > 0 && string(st.Pools[0]["name"]) != `"default"` {
				t.Errorf("first pool = %s, want default", st.Pools[0]["name"])
			}
		})
	}
}

// TestStatusPoolsDefault checks where the default pool comes from when Pools lists
// it without some parts, not first, or not at all.
func TestStatusPoolsDefault(t *testing.T) {
	other := backend.NewPoolSet(backend.DefaultPool, nil)
	other.Update(urls(poolC))
	api := backend.NewPoolSet("api", nil)
	api.Update(urls(poolB))
	apiSource := PoolSource{Name: "api", Backends: api}
	for _, tc := range []struct {
		name      string
		pools     []PoolSource
		want      []string // the backends of the pools, as poolEntries
		strategy  string   // of the default pool
		discovery string   // of the default pool
	}{
		{name: "not listed", pools: []PoolSource{apiSource},
			want: []string{"default/default " + poolA + " 0", "api/api " + poolB + " 0"}, strategy: "leastconn", discovery: "set"},
		{name: "listed second, without parts", pools: []PoolSource{apiSource, {Name: backend.DefaultPool}},
			want: []string{"default/default " + poolA + " 0", "api/api " + poolB + " 0"}, strategy: "leastconn", discovery: "set"},
		{name: "with its own parts", pools: []PoolSource{{Name: backend.DefaultPool, Backends: other,
			Strategy:  func() strategy.Status { return strategy.Status{Name: "weighted"} },
			Discovery: func() *Discovery { return &Discovery{Record: "own"} }}},
			want: []string{"default/default " + poolC + " 0"}, strategy: "weighted", discovery: "own"},
		{name: "with discovery reporting none", pools: []PoolSource{{Name: backend.DefaultPool,
			Discovery: func() *Discovery { return nil }}},
			want: []string{"default/default " + poolA + " 0"}, strategy: "leastconn", discovery: "set"},
		{name: "empty list", pools: []PoolSource{},
			want: []string{"default/default " + poolA + " 0"}, strategy: "leastconn", discovery: "set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSource(t, strategy.Status{Name: "leastconn"}, urls(poolA)...)
			s.SetDiscovery(&Discovery{Record: "set"})
			s.Pools = func() []PoolSource { return tc.pools }
			st := s.Status()
			if got := poolEntries(st.Pools); !slices.Equal(got, tc.want) {
				t.Errorf("pools = %q, want %q", got, tc.want)
			}
			def := st.Pools[0]
			if def.Strategy.Name != tc.strategy || def.Discovery == nil || def.Discovery.Record != tc.discovery {
				t.Errorf("default pool: strategy %q, discovery %+v; want %q and %q", def.Strategy.Name, def.Discovery, tc.strategy, tc.discovery)
			}
			if st.Strategy.Name != def.Strategy.Name || len(st.Backends) != len(def.Backends) || st.Discovery == nil || st.Discovery.Record != tc.discovery {
				t.Errorf("top level = strategy %q, %d backends, discovery %+v; want the default pool's", st.Strategy.Name, len(st.Backends), st.Discovery)
			}
		})
	}
}
