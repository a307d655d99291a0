package status

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
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
		Own: &backend.Answers{}, Control: controller{set}, Version: "v1.2.3"}
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
	for _, k := range []string{"strategy", "pool", "backends", "config", "listeners", "process", "totals"} {
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
