package status

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

func TestAdminEndpoints(t *testing.T) {
	backends := []string{"http://127.0.0.1:8081", "http://127.0.0.1:8082"}
	s := newSource(t, strategy.Status{Name: "leastconn", State: "running"}, urls(backends...)...)
	s.SetListeners([]Listener{{Addr: "127.0.0.1:8080", Front: "eventloop"}})
	srv := httptest.NewServer(AdminHandler(s))
	defer srv.Close()

	// isStatus checks that body is the status JSON of s.
	isStatus := func(t *testing.T, body []byte) {
		var st Status
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatalf("status JSON %s: %v", body, err)
		}
		var got []string
		for _, b := range st.Backends {
			got = append(got, b.URL)
		}
		if !slices.Equal(got, backends) || len(st.Listeners) != 1 || st.Listeners[0].Addr != "127.0.0.1:8080" {
			t.Errorf("status JSON has backends %v and listeners %+v, want %v and 127.0.0.1:8080", got, st.Listeners, backends)
		}
	}
	contains := func(want string) func(*testing.T, []byte) {
		return func(t *testing.T, body []byte) {
			if !strings.Contains(string(body), want) {
				t.Errorf("body lacks %q:\n%.500s", want, body)
			}
		}
	}
	for _, tc := range []struct {
		method, path string
		code         int
		ctype        string                   // the Content-Type's start
		noStore      bool                     // Cache-Control: no-store
		check        func(*testing.T, []byte) // of the body, when not nil
	}{
		{"GET", "/", 200, "text/html", true, contains(`id="listeners"`)},
		{"GET", "/status", 200, "application/json", true, isStatus},
		{"POST", "/status", 200, "application/json", true, isStatus},
		{"GET", "/queue/status", 200, "application/json", true, isStatus},
		{"POST", "/queue/status", 200, "application/json", true, isStatus},
		{"GET", "/status/history", 200, "application/json", true, contains(`"samples":[]`)},
		{"GET", "/metrics", 200, "text/plain", false, contains("lb_backend_healthy")},
		{"GET", "/debug/pprof/", 200, "text/html", false, contains("goroutine")},
		{"PUT", "/status", 405, "text/plain", false, nil},
		{"DELETE", "/metrics", 405, "text/plain", false, nil},
		{"POST", "/status/history", 405, "text/plain", false, nil},
		{"GET", "/backends/state", 405, "text/plain", false, nil},
		{"GET", "/backends/weight", 405, "text/plain", false, nil},
		{"GET", "/nothing", 404, "text/plain", false, nil},
		{"GET", "/index.html", 404, "text/plain", false, nil},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.code || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) {
				t.Fatalf("%s %s = %d %s, want %d %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.code, tc.ctype)
			}
			if cc := resp.Header.Get("Cache-Control"); tc.noStore && cc != "no-store" {
				t.Errorf("%s %s Cache-Control = %q, want no-store", tc.method, tc.path, cc)
			}
			if tc.check != nil {
				tc.check(t, body)
			}
		})
	}
}

// scrape gets url's /metrics and parses it as Prometheus text.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics = %d %s, want 200 text/plain", resp.StatusCode, ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics is not Prometheus text: %v", err)
	}
	return fams
}

// labels are a metric's labels, "name=value" each, as a metric test names them.
func labels(m *dto.Metric) []string {
	var out []string
	for _, l := range m.GetLabel() {
		out = append(out, l.GetName()+"="+l.GetValue())
	}
	return out
}

// value is the value of the metric of fam with exactly labels want: a gauge's,
// a counter's, or a histogram's count.
func value(fam *dto.MetricFamily, want []string) (float64, bool) {
	for _, m := range fam.GetMetric() {
		if !slices.Equal(labels(m), want) {
			continue
		}
		switch fam.GetType() {
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		case dto.MetricType_HISTOGRAM:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

func TestAdminMetrics(t *testing.T) {
	const a, b = "http://127.0.0.1:8081", "http://127.0.0.1:8082"
	strat := strategy.Status{Name: "leastconn", State: "running", Fallbacks: 5, Restarts: 2}
	s := newSource(t, strat, config.Backend{URL: a, Weight: 1}, config.Backend{URL: b, Weight: 3})
	resolved := time.Unix(1700000000, 0).UTC()
	s.SetDiscovery(&Discovery{Record: "_http._tcp.api", Backends: 2, ResolvedAt: resolved, Lookups: Lookups{OK: 7, Partial: 1, Error: 2}})
	s.SetConfig(Config{Path: "config.json", Generation: 4})
	s.CountReload(true)
	s.CountReload(true)
	s.CountReload(false)
	if err := s.Pool.Acquire(); err != nil { // one busy worker
		t.Fatal(err)
	}
	defer s.Pool.Release()

	ba := byURL(t, s, a)
	for range 3 {
		ba.Start()
	}
	ba.Finish(20*time.Millisecond, false)
	ba.Finish(20*time.Millisecond, true)
	ba.Answers.Add(200, 20*time.Millisecond)
	ba.Answers.Add(502, 20*time.Millisecond)
	ba.Answers.AddBytes(300, 4000)
	ba.SetQueueLength(6)
	ba.SetLastCheck(backend.Check{At: resolved, Took: 250 * time.Millisecond, OK: true})
	byURL(t, s, b).Drain()
	s.Own.Add(503, time.Millisecond)

	srv := httptest.NewServer(AdminHandler(s))
	defer srv.Close()
	fams := scrape(t, srv.URL)

	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"lb_pool_workers", nil, float64(testPool.MinWorkers)},
		{"lb_pool_busy_workers", nil, 1},
		{"lb_pool_queue_length", nil, 0},
		{"lb_pool_queue_capacity", nil, float64(testPool.QueueCapacity)},
		{"lb_pool_admitted_total", nil, 1},
		{"lb_pool_shed_total", []string{"reason=queue_full"}, 0},
		{"lb_pool_shed_total", []string{"reason=queue_timeout"}, 0},
		{"lb_backend_healthy", []string{"backend=" + a, "pool=default"}, 1},
		{"lb_backend_healthy", []string{"backend=" + b, "pool=default"}, 0},
		{"lb_backend_inflight", []string{"backend=" + a, "pool=default"}, 1},
		{"lb_backend_queue_length", []string{"backend=" + a, "pool=default"}, 6},
		{"lb_backend_queue_length", []string{"backend=" + b, "pool=default"}, -1},
		{"lb_backend_requests_total", []string{"backend=" + a, "pool=default"}, 3},
		{"lb_backend_failures_total", []string{"backend=" + a, "pool=default"}, 1},
		{"lb_backend_stale_connections_total", []string{"backend=" + a, "pool=default"}, 0},
		{"lb_backend_weight", []string{"backend=" + b, "pool=default"}, 3},
		{"lb_backend_ejections", []string{"backend=" + a, "pool=default"}, 0},
		{"lb_backend_ejections_total", []string{"backend=" + a, "pool=default"}, 0},
		{"lb_backend_priority", []string{"backend=" + a, "pool=default"}, 0},
		{"lb_backend_state", []string{"backend=" + a, "pool=default", "state=up"}, 1},
		{"lb_backend_state", []string{"backend=" + b, "pool=default", "state=up"}, 0},
		{"lb_backend_state", []string{"backend=" + b, "pool=default", "state=drain"}, 1},
		{"lb_backend_body_bytes_total", []string{"backend=" + a, "direction=in", "pool=default"}, 300},
		{"lb_backend_body_bytes_total", []string{"backend=" + a, "direction=out", "pool=default"}, 4000},
		{"lb_backend_check_duration_seconds", []string{"backend=" + a, "pool=default"}, 0.25},
		{"lb_requests_total", []string{"backend=" + a, "code=200", "pool=default"}, 1},
		{"lb_requests_total", []string{"backend=" + a, "code=502", "pool=default"}, 1},
		{"lb_requests_total", []string{"backend=", "code=503", "pool="}, 1},
		{"lb_request_duration_seconds", []string{"backend=" + a, "pool=default"}, 2},
		{"lb_request_duration_seconds", []string{"backend=" + b, "pool=default"}, 0},
		{"lb_request_duration_seconds", []string{"backend=", "pool="}, 1},
		{"lb_config_generation", nil, 4},
		{"lb_config_reloads_total", []string{"result=applied"}, 2},
		{"lb_config_reloads_total", []string{"result=refused"}, 1},
		{"lb_strategy_info", []string{"name=leastconn", "pool=default", "state=running"}, 1},
		{"lb_strategy_fallbacks_total", []string{"pool=default"}, 5},
		{"lb_strategy_restarts_total", []string{"pool=default"}, 2},
		{"lb_discovery_lookups_total", []string{"pool=default", "result=ok"}, 7},
		{"lb_discovery_lookups_total", []string{"pool=default", "result=partial"}, 1},
		{"lb_discovery_lookups_total", []string{"pool=default", "result=error"}, 2},
		{"lb_discovery_backends", []string{"pool=default"}, 2},
		{"lb_discovery_resolved_timestamp_seconds", []string{"pool=default"}, float64(resolved.Unix())},
	} {
		fam, ok := fams[tc.name]
		if !ok {
			t.Errorf("/metrics lacks %s", tc.name)
			continue
		}
		if got, ok := value(fam, tc.labels); !ok || got != tc.want {
			t.Errorf("/metrics %s%v = %v (found %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	// The process's own metrics come too.
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	// A backend without a check has no check duration; no lookups without discovery.
	if _, ok := value(fams["lb_backend_check_duration_seconds"], []string{"backend=" + b, "pool=default"}); ok {
		t.Errorf("/metrics has lb_backend_check_duration_seconds of %s, which has had no check", b)
	}
	s.SetDiscovery(nil)
	fams = scrape(t, srv.URL)
	for _, name := range []string{"lb_discovery_lookups_total", "lb_discovery_backends", "lb_discovery_resolved_timestamp_seconds"} {
		if _, ok := fams[name]; ok {
			t.Errorf("/metrics has %s without discovery", name)
		}
	}
}

// TestAdminMetricsPools scrapes two pools that share a URL: each pool's backend,
// strategy and discovery has its own series.
func TestAdminMetricsPools(t *testing.T) {
	s := newPoolsSource(t)
	for range 2 {
		poolBackend(t, s, "default", poolA).Start()
	}
	apiA := poolBackend(t, s, "api", poolA)
	for range 5 {
		apiA.Start()
	}
	apiA.Answers.Add(201, time.Millisecond)
	apiA.Drain()
	srv := httptest.NewServer(AdminHandler(s))
	defer srv.Close()
	fams := scrape(t, srv.URL)

	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"lb_backend_requests_total", []string{"backend=" + poolA, "pool=default"}, 2},
		{"lb_backend_requests_total", []string{"backend=" + poolA, "pool=api"}, 5},
		{"lb_backend_requests_total", []string{"backend=" + poolB, "pool=default"}, 0},
		{"lb_backend_requests_total", []string{"backend=" + poolC, "pool=api"}, 0},
		{"lb_backend_weight", []string{"backend=" + poolA, "pool=default"}, 1},
		{"lb_backend_weight", []string{"backend=" + poolA, "pool=api"}, 5},
		{"lb_backend_state", []string{"backend=" + poolA, "pool=default", "state=up"}, 1},
		{"lb_backend_state", []string{"backend=" + poolA, "pool=api", "state=drain"}, 1},
		{"lb_requests_total", []string{"backend=" + poolA, "code=201", "pool=api"}, 1},
		{"lb_request_duration_seconds", []string{"backend=" + poolA, "pool=api"}, 1},
		{"lb_request_duration_seconds", []string{"backend=" + poolA, "pool=default"}, 0},
		{"lb_strategy_info", []string{"name=leastconn", "pool=default", "state=running"}, 1},
		{"lb_strategy_info", []string{"name=weighted", "pool=api", "state=running"}, 1},
		{"lb_strategy_fallbacks_total", []string{"pool=default"}, 1},
		{"lb_strategy_fallbacks_total", []string{"pool=api"}, 4},
		{"lb_strategy_restarts_total", []string{"pool=api"}, 1},
		{"lb_discovery_lookups_total", []string{"pool=api", "result=ok"}, 3},
		{"lb_discovery_backends", []string{"pool=api"}, 2},
	} {
		if got, ok := value(fams[tc.name], tc.labels); !ok || got != tc.want {
			t.Errorf("/metrics %s%v = %v (found %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
	// Every metric of a backend names its pool; the default pool has no discovery.
	for name, fam := range fams {
		for _, m := range fam.GetMetric() {
			ls := strings.Join(labels(m), " ")
			if strings.Contains(ls, "backend=") && !strings.Contains(ls, "pool=") {
				t.Errorf("/metrics %s{%s} has a backend and no pool", name, ls)
			}
		}
	}
	if _, ok := value(fams["lb_discovery_backends"], []string{"pool=default"}); ok {
		t.Error("/metrics has lb_discovery_backends of the default pool, which has no discovery")
	}
}

// TestDashboardRendersPools checks that the dashboard draws a section per pool from
// the status's "pools" and names the pool in its runtime control, and that it is
// self-contained.
func TestDashboardRendersPools(t *testing.T) {
	srv := httptest.NewServer(AdminHandler(newPoolsSource(t)))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	page := string(body)
	for _, want := range []string{
		`st.pools`,                           // reads the pools of the status JSON
		`<section class="pool"`,              // a section per pool
		`class="pool-name"`,                  // with its name
		`class="pool-strategy"`,              // and its strategy
		`data-pool="${esc(pool)}"`,           // its rows and buttons name the pool
		`JSON.stringify({pool, url, state})`, // which drain and ready send
		`id="backends"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("GET / lacks %s", want)
		}
	}
	for _, external := range []string{"http://", "https://", "<link", " src="} {
		if strings.Contains(page, external) {
			t.Errorf("GET / has %q: the dashboard must load nothing from elsewhere", external)
		}
	}
}
